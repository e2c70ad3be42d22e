/*
 * tiny_unified_cache: a per-thread, per-class array stack in front of a box
 * with the class interface (superslab). Internal types.
 *
 * The slice holds, per class, a pointer to its stack, a count and a
 * capacity; the stacks themselves live in one buffer per slice taken from
 * the instance's pool (metadata memory, reused by the next thread), because
 * the slice size is fixed by the descriptor and the capacities are not.
 * A zeroed slice has every capacity 0, so the first call of a thread lands
 * on the slow path, which attaches a buffer.
 */
#ifndef TINY_UNIFIED_CACHE_H
#define TINY_UNIFIED_CACHE_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_front.h>
#include <box_api/hakmem_util.h>
#include <stdbool.h>
#include <stddef.h>

#define UC_MAX_CLASSES 16
#define UC_SIZE_INDEX_MAX 128u /* (1024 + 7) >> 3 */
#define UC_NO_CLASS UC_MAX_CLASSES

struct uc_buf {
    struct uc_buf *next; /* in the instance's pool while unused */
    void *slots[];
};

/* Begins with the fields of struct hak_fast_stack, in its order: the host
 * pops and pushes these stacks itself on its fast path. */
struct uc_class {
    void **top;   /* next free slot: count = top - base */
    void **base;
    void **limit; /* base + capacity; all three NULL until the slice is set up */
    /* Counted per free on the fast paths (the host's as hak_fast_stack
     * .pushes); allocs are derived (see uc_stats): allocs = in + frees - out
     * - count, so alloc counts nothing. */
    uint64_t frees;
    /* The host's quick block-start test: p & block_mask must be 0. */
    uint64_t block_mask;
    /* The box's exact block-start test, (p & 0xFFFF) * magic <= magic_m1:
     * blocks start at multiples of the class size from their granule (any
     * class size). magic 0 turns it off. */
    uint64_t magic, magic_m1;
    /* Blocks that came from below or a front above, less those that went
     * back (modular arithmetic). */
    uint64_t net;
};

_Static_assert(sizeof(struct uc_class) == 64, "one cache line per class");
_Static_assert(offsetof(struct uc_class, top) == offsetof(struct hak_fast_stack, top) &&
               offsetof(struct uc_class, base) == offsetof(struct hak_fast_stack, base) &&
               offsetof(struct uc_class, limit) == offsetof(struct hak_fast_stack, limit) &&
               offsetof(struct uc_class, frees) == offsetof(struct hak_fast_stack, pushes) &&
               offsetof(struct uc_class, block_mask) == offsetof(struct hak_fast_stack, block_mask) &&
               offsetof(struct uc_class, magic) == offsetof(struct hak_fast_stack, block_magic) &&
               offsetof(struct uc_class, magic_m1) == offsetof(struct hak_fast_stack, block_magic_m1),
               "uc_class is a hak_fast_stack");

static inline uint32_t uc_count(const struct uc_class *c)
{
    return (uint32_t)(c->top - c->base);
}

struct uc_tls {
    struct hak_tls_head head;
    uint64_t secret;   /* tiny free-marker secret; 0 until ready */
    uint32_t ready;
    uint32_t pad;
    struct uc_buf *buf;
    uint64_t refills, drains;
    /* (size + 7) >> 3 -> byte offset of the class in cls[]; all zeros in a
     * zeroed slice, which is class 0, empty: the slow path sets things up. */
    uint16_t cls_off[UC_SIZE_INDEX_MAX + 8];
    struct uc_class cls[UC_MAX_CLASSES + 1]; /* [UC_NO_CLASS] stays empty */
    /* Other threads' blocks on their way home (uc_free_remote). */
    struct hak_front_outbox outbox[UC_MAX_CLASSES];
};

struct uc_inst {
    const struct hak_host *host;
    struct hak_link below;
    const struct hak_box_ops *bops;
    char name[48];
    uint16_t owner;
    uint32_t nclasses;
    uint32_t class_size[UC_MAX_CLASSES];
    uint32_t cap[UC_MAX_CLASSES];
    uint32_t refill[UC_MAX_CLASSES];
    uint32_t drain[UC_MAX_CLASSES];
    uint32_t slot_off[UC_MAX_CLASSES]; /* class stack within a buffer */
    uint64_t magic[UC_MAX_CLASSES];
    uint8_t cls_of[UC_SIZE_INDEX_MAX + 8];
    uint16_t cls_off[UC_SIZE_INDEX_MAX + 8];
    uint32_t buf_slots;
    uint64_t secret;
    /* host.hardened: frees are not cached but given to the box below,
     * which checks each one against its own metadata (a block never handed
     * out, say). The stacks' block_mask is all ones, so the fast paths
     * always fall to uc_free_slow. */
    int hardened;
    hak_spinlock *pool_lock;
    struct uc_buf *pool;
};

static inline uint64_t uc_allocs(const struct uc_class *c)
{
    return c->net + c->frees - uc_count(c);
}

/* Invariant checks of debug builds (HAKMEM_DEBUG=1); nothing in release. */
#ifdef HAKMEM_DEBUG
#include <stdlib.h>
#define UC_ASSERT(in, cond) do { if (!(cond)) { \
    (in)->host->log(HAK_LOG_ERROR, (in)->name, "invariant failed: %s (%s:%d)", \
                    #cond, __FILE__, __LINE__); abort(); } } while (0)
#else
#define UC_ASSERT(in, cond) ((void)0)
#endif

static inline struct uc_inst *uc_inst_of(const struct uc_tls *t)
{
    return (struct uc_inst *)t->head.inst;
}

static inline void *uc_below_tls(const struct uc_inst *in, void *my_tls)
{
    return hak_link_tls(my_tls, &in->below);
}

/* uc_box.c */
void uc_event(const struct uc_inst *in, uint16_t type, uint32_t cls, uint64_t count);

/* uc_thread.c */
bool uc_tls_init(struct uc_tls *t);
void uc_thread_init(void *inst, void *tls);
void uc_thread_exit(void *inst, void *tls);
size_t uc_trim(void *inst, void *tls);
void uc_drain(struct uc_tls *t, uint32_t cls, uint32_t n);
void uc_flush_outboxes(struct uc_tls *t);

/* uc_cache.c */
void *uc_alloc(void *tls, size_t size);
void uc_free(void *tls, void *p, uint16_t tag);
void uc_free_remote(void *tls, void *p, uint16_t tag);
size_t uc_usable_size(void *tls, const void *p, uint16_t tag);
uint32_t uc_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n);
void uc_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n);

#endif
