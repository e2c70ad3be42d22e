/*
 * tiny_hot_ring: a per-thread, per-class ring buffer in front of a box with
 * the class interface (superslab, or tiny_unified_cache). Internal types.
 *
 * A ring is used as a stack at its head (last freed, first reused) and
 * evicts at its tail: when full, the oldest blocks go below in one batch
 * without moving the others. Ring sizes are powers of two; the rings live
 * in one buffer per slice taken from the instance's pool, as in the
 * unified cache. A zeroed slice has every size 0: its first call lands on
 * the slow path, which attaches a buffer.
 */
#ifndef TINY_HOT_RING_H
#define TINY_HOT_RING_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_front.h>
#include <box_api/hakmem_util.h>
#include <stdbool.h>

#define HR_MAX_CLASSES 16
#define HR_SIZE_INDEX_MAX 128u /* (1024 + 7) >> 3 */
#define HR_NO_CLASS HR_MAX_CLASSES

struct hr_buf {
    struct hr_buf *next; /* in the instance's pool while unused */
    void *slots[];
};

struct hr_class {
    void **slots;
    uint32_t head, tail; /* free-running; count = head - tail */
    uint32_t mask;       /* size - 1 */
    uint32_t size;       /* 0 until the slice is set up */
    /* Block-start test as in the unified cache; magic 0 turns it off. */
    uint64_t magic, magic_m1;
    /* As in the unified cache: frees counted, allocs derived as
     * in + frees - out - count. */
    uint64_t frees;
    uint64_t in, out;
};

_Static_assert(sizeof(struct hr_class) == 64, "one cache line per class");

static inline uint64_t hr_allocs(const struct hr_class *c)
{
    return c->in + c->frees - c->out - (c->head - c->tail);
}

struct hr_tls {
    struct hak_tls_head head;
    uint64_t secret;
    uint32_t ready;
    uint32_t pad;
    struct hr_buf *buf;
    uint64_t refills, drains;
    /* (size + 7) >> 3 -> byte offset of the class in cls[] (0 = class 0,
     * empty, in a zeroed slice). */
    uint16_t cls_off[HR_SIZE_INDEX_MAX + 8];
    struct hr_class cls[HR_MAX_CLASSES + 1]; /* [HR_NO_CLASS] stays empty */
    /* Other threads' blocks on their way home (hr_free_remote). */
    struct hak_front_outbox outbox[HR_MAX_CLASSES];
};

struct hr_inst {
    const struct hak_host *host;
    struct hak_link below;
    const struct hak_box_ops *bops;
    char name[48];
    uint16_t owner;
    uint32_t nclasses;
    uint32_t class_size[HR_MAX_CLASSES];
    uint32_t size[HR_MAX_CLASSES];
    uint32_t refill[HR_MAX_CLASSES];
    uint32_t drain[HR_MAX_CLASSES];
    uint32_t slot_off[HR_MAX_CLASSES];
    uint64_t magic[HR_MAX_CLASSES];
    uint8_t cls_of[HR_SIZE_INDEX_MAX + 8];
    uint16_t cls_off[HR_SIZE_INDEX_MAX + 8];
    uint32_t buf_slots;
    uint64_t secret;
    hak_spinlock *pool_lock;
    struct hr_buf *pool;
};

/* Invariant checks of debug builds (HAKMEM_DEBUG=1); nothing in release. */
#ifdef HAKMEM_DEBUG
#include <stdlib.h>
#define HR_ASSERT(in, cond) do { if (!(cond)) { \
    (in)->host->log(HAK_LOG_ERROR, (in)->name, "invariant failed: %s (%s:%d)", \
                    #cond, __FILE__, __LINE__); abort(); } } while (0)
#else
#define HR_ASSERT(in, cond) ((void)0)
#endif

static inline struct hr_inst *hr_inst_of(const struct hr_tls *t)
{
    return (struct hr_inst *)t->head.inst;
}

static inline void *hr_below_tls(const struct hr_inst *in, void *my_tls)
{
    return hak_link_tls(my_tls, &in->below);
}

/* hr_box.c */
void hr_event(const struct hr_inst *in, uint16_t type, uint32_t cls, uint64_t count);

/* hr_thread.c */
bool hr_tls_init(struct hr_tls *t);
void hr_thread_init(void *inst, void *tls);
void hr_thread_exit(void *inst, void *tls);
size_t hr_trim(void *inst, void *tls);
void hr_drain(struct hr_tls *t, uint32_t cls, uint32_t n);
void hr_flush_outboxes(struct hr_tls *t);

/* hr_ring.c */
void *hr_alloc(void *tls, size_t size);
void hr_free(void *tls, void *p, uint16_t tag);
void hr_free_remote(void *tls, void *p, uint16_t tag);
size_t hr_usable_size(void *tls, const void *p, uint16_t tag);
uint32_t hr_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n);
void hr_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n);

#endif
