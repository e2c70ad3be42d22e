/*
 * The fast paths of malloc and free, inlined into the exported functions
 * (malloc_api.c) so a call costs no extra jump; runtime.c holds the tables
 * and the slow paths they fall to.
 *
 * malloc (size <= 1 KB): the thread block, the route slot of (size + 15) >> 4,
 * and a pop from the routed front's fast stack; else one call into the box.
 * free: one region-map lookup; a granule marked as this thread's (the box
 * marks a slab for the thread it hands the slab to: set_thread_owner), or
 * as an exited thread's under live_home, is a class block of the fast
 * owner and is pushed on this thread's stack of its class; a block of
 * another live thread's slab goes home through the front's free_remote;
 * else one call into the owner's free entry.
 */
#ifndef HAKMEM_HOST_FASTPATH_H
#define HAKMEM_HOST_FASTPATH_H

#include <stdbool.h>

#include "internal.h"

struct route_slot {
    void *(*alloc)(void *tls, size_t size);
    uint32_t tls_offset;
    uint32_t stack_off; /* the class's fast stack in the block; 0: the empty one */
};

/* 32 bytes, so the free path indexes it with one shift; what only slow
 * paths need lives in owner_info. */
struct owner_slot {
    /* A granule marked as the calling thread's whose push failed (stack
     * full, not a block start, a double free): the free entry decides. */
    void (*free)(void *tls, void *p, uint16_t tag);
    uint32_t free_tls;
    uint32_t other_tls;
    /* Every other free: for the fast owner the front's free_remote (the
     * block is another thread's, or nobody's), for other owners = free. */
    void (*other)(void *tls, void *p, uint16_t tag);
    uint32_t reserved[2];
};

_Static_assert(sizeof(struct owner_slot) == 32, "one shift to index");

extern HAK_HIDDEN struct route_slot hak_small_routes[HAK_SMALL_MAX / 16 + 1];
extern HAK_HIDDEN struct owner_slot hak_owners[HAK_MAX_INSTANCES + 1];

void *hak_malloc_general(size_t size);
void *hak_malloc_above_small(size_t size);
void *hak_malloc_box(const struct route_slot *slot, char *block, size_t size);
void hak_free_general(void *p, uint32_t entry);

static inline __attribute__((always_inline)) void *hak_malloc_fast(size_t size)
{
    char *block = hak_tls_block;
    if (HAK_LIKELY(size <= HAK_SMALL_MAX)) {
        const struct route_slot *slot = &hak_small_routes[(size + 15) >> 4];
        /* The front's fast stack (or the block's always-empty one). */
        struct hak_fast_stack *stack = (struct hak_fast_stack *)(block + slot->stack_off);
        void **top = stack->top;
        if (HAK_LIKELY(top != stack->base)) {
            void *p = *--top;
            stack->top = top;
            *(uintptr_t *)p = 0; /* clear the free marker */
            return p;
        }
        return hak_malloc_box(slot, block, size);
    }
    return hak_malloc_above_small(size);
}

static inline __attribute__((always_inline)) void hak_free_fast(void *p)
{
    char *block = hak_tls_block;
    uint64_t slot = hak_region_lookup_wide(p);
    uint32_t raw = (uint32_t)slot;
    uint32_t marked = (uint32_t)(slot >> 32);
    /* This thread's slab, or (live_home) an exited thread's, whose blocks
     * are reused where they are freed. */
    bool mine = marked == hak_block_token(block) || marked == HAK_TOKEN_ORPHAN;
    if (HAK_LIKELY(mine)) {
        /* A class block of a slab this thread allocates from: push on its
         * stack of the class (the null block matches only an empty slot,
         * tag 0, whose stack there is full: slow path). */
        struct hak_fast_stack *stack =
            (struct hak_fast_stack *)(block + hak_fast_base + (raw & 0xffff) * HAK_FAST_STACK_STRIDE);
        void **top = stack->top;
        uintptr_t mark = (uintptr_t)p ^ hak_block_secret;
        /* Full, not a block start, or a marker already there (a double
         * free, or a live block that happens to hold it): the box decides
         * and reports. */
        if (HAK_LIKELY(top != stack->limit &&
                       ((uintptr_t)p & 0xFFFF) * stack->block_magic <= stack->block_magic_m1 &&
                       *(uintptr_t *)p != mark)) {
            *(uintptr_t *)p = mark;
            *top = p;
            stack->top = top + 1;
            stack->pushes++;
            return;
        }
    }
    uint32_t entry = raw & ~HAK_REGION_FAST;
    if (HAK_UNLIKELY(block == hak_null_block)) {
        hak_free_general(p, entry);
        return;
    }
    const struct owner_slot *o = &hak_owners[entry >> 16];
    if (HAK_LIKELY(!mine))
        o->other(block + o->other_tls, p, (uint16_t)entry);
    else
        o->free(block + o->free_tls, p, (uint16_t)entry);
}

#endif
