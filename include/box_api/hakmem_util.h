/*
 * Small inline helpers shared by boxes: part of the box kit, so a box needs
 * nothing but include/box_api/. Everything here is header-only and has no
 * state, so boxes stay independent .so files.
 */
#ifndef HAKMEM_UTIL_H
#define HAKMEM_UTIL_H

#include <box_api/hakmem_box.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>

/* A test-and-test-and-set spinlock for short critical sections (a few
 * pointer moves). Boxes hold it for bounded work only; yields after a while
 * so a preempted holder on a 2-core machine does not stall us for a slice. */
typedef struct { atomic_int locked; } hak_spinlock;

#define HAK_SPINLOCK_INIT { 0 }

static inline void hak_spin_lock(hak_spinlock *l)
{
    for (unsigned spins = 0;; spins++) {
        if (!atomic_exchange_explicit(&l->locked, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(&l->locked, memory_order_relaxed)) {
            if (++spins > 64) { sched_yield(); spins = 0; }
            else __builtin_ia32_pause();
        }
    }
}

static inline int hak_spin_trylock(hak_spinlock *l)
{
    return !atomic_load_explicit(&l->locked, memory_order_relaxed) &&
           !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire);
}

static inline void hak_spin_unlock(hak_spinlock *l)
{
    atomic_store_explicit(&l->locked, 0, memory_order_release);
}

/* After fork the child has one thread: whatever the lock said, it is free. */
static inline void hak_spin_reset(hak_spinlock *l)
{
    atomic_store_explicit(&l->locked, 0, memory_order_relaxed);
}

static inline size_t hak_align_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

static inline int hak_is_pow2(size_t n) { return n && !(n & (n - 1)); }

/* Index of the highest set bit; n must be non-zero. */
static inline unsigned hak_log2(size_t n)
{
    return (unsigned)(63 - __builtin_clzll((unsigned long long)n));
}

/* Add one slice's counters into a stats() output (boxes keep a struct
 * hak_stats per slice; the host sums slices). */
static inline void hak_stats_add(struct hak_stats *out, const struct hak_stats *s)
{
    out->allocs += s->allocs;
    out->frees += s->frees;
    out->bytes_allocated += s->bytes_allocated;
    out->bytes_freed += s->bytes_freed;
    out->refills += s->refills;
    out->drains += s->drains;
    out->remote_frees += s->remote_frees;
    out->cached_bytes += s->cached_bytes;
}

#endif
