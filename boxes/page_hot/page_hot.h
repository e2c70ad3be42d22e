/*
 * page_hot (PA1): internal declarations shared by page_hot.c (the pages
 * role, per-thread cache) and hot_shared.c (the shared stack behind it).
 */
#ifndef HAKBOX_PAGE_HOT_H
#define HAKBOX_PAGE_HOT_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>

#include <box_api/hakmem_span_ring.h>

#define HOT_TLS_MAX 64     /* per-thread slots, compiled in: tls_size is fixed */
#define HOT_BATCH_MAX 64   /* spans moved per locked section */

struct hot_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    int enabled;
    uint32_t tls_slots;
    uint64_t idle_ns; /* 0: spans never released for idleness */
    struct hak_link below;
    hak_spinlock *lock; /* guards ring */
    struct span_ring ring;
    _Atomic uint64_t shared_bytes;  /* ring.count * granule, for stats */
    _Atomic uint64_t next_sweep_ns; /* earliest time a pass-through sweeps */
};

/* Counters: allocs/frees and bytes count every call (served here or passed
 * through); refills counts spans taken from below, drains spans given to it. */
struct hot_tls {
    struct hak_tls_head head;
    uint32_t count;
    void *slots[HOT_TLS_MAX]; /* a LIFO of one-granule spans owned by this box */
    struct hak_stats st;
};

static inline struct hot_inst *hot_inst_of(const struct hot_tls *t)
{
    return t->head.inst;
}

/* Give spans (one granule each) to the box below; HAK_EV_DRAIN. */
void hot_release_down(struct hot_tls *t, void *const *spans, uint32_t n);
/* Move n spans (n <= HOT_BATCH_MAX) onto the shared stack; what does not
 * fit pushes the oldest down to below. Sweeps idle spans. */
void hot_shared_put(struct hot_tls *t, void *const *spans, uint32_t n);
/* Up to n spans (n <= HOT_BATCH_MAX) from the shared stack, the most
 * recent at out[got - 1]; sweeps idle spans. */
uint32_t hot_shared_get(struct hot_tls *t, void **out, uint32_t n);
/* Release idle spans if a sweep is due (pass-through paths). */
void hot_maybe_sweep(struct hot_tls *t);
/* Give every shared span to below; bytes released. */
size_t hot_shared_flush(struct hot_tls *t);

#endif
