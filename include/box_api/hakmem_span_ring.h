/*
 * Part of the box kit (header-only, no state): a ring of cached spans used
 * as a stack with an old end, for page boxes (page_hot, span_warm): the box pushes and
 * pops at the top (LIFO: the most recently freed span, the one most likely
 * still in cache, goes out first) and releases idle spans from the bottom.
 * Spans enter at the top in time order, so the bottom is always the oldest
 * and an idle sweep stops at the first span that is not idle.
 *
 * The caller holds the lock guarding the ring.
 */
#ifndef HAKMEM_SPAN_RING_H
#define HAKMEM_SPAN_RING_H

#include <stdint.h>

struct span_entry {
    void *p;
    uint64_t freed_ns;
};

struct span_ring {
    struct span_entry *e; /* cap entries, from host->meta_alloc */
    uint32_t cap, bottom, count;
};

static inline uint32_t span_ring_index(const struct span_ring *r, uint32_t i)
{
    uint32_t j = r->bottom + i;
    return j >= r->cap ? j - r->cap : j;
}

/* The caller checks count < cap. */
static inline void span_ring_push(struct span_ring *r, void *p, uint64_t now)
{
    r->e[span_ring_index(r, r->count)] = (struct span_entry){p, now};
    r->count++;
}

static inline void *span_ring_pop(struct span_ring *r)
{
    return r->e[span_ring_index(r, --r->count)].p;
}

static inline void *span_ring_pop_oldest(struct span_ring *r)
{
    void *p = r->e[r->bottom].p;
    r->bottom = r->bottom + 1 == r->cap ? 0 : r->bottom + 1;
    r->count--;
    return p;
}

static inline int span_ring_oldest_idle(const struct span_ring *r, uint64_t now,
                                        uint64_t idle_ns)
{
    return r->count && now - r->e[r->bottom].freed_ns >= idle_ns;
}

/* The most recent span within `depth` of the top whose address is a
 * multiple of align, removed from the ring; NULL if none. */
static inline void *span_ring_take_aligned(struct span_ring *r, uintptr_t align,
                                           uint32_t depth)
{
    for (uint32_t k = 0; k < depth && k < r->count; k++) {
        uint32_t i = r->count - 1 - k;
        void *p = r->e[span_ring_index(r, i)].p;
        if ((uintptr_t)p & (align - 1))
            continue;
        for (; i + 1 < r->count; i++)
            r->e[span_ring_index(r, i)] = r->e[span_ring_index(r, i + 1)];
        r->count--;
        return p;
    }
    return NULL;
}

#endif
