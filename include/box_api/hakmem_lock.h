/*
 * The box kit's lock: a short spin, then a futex sleep, with the holder's
 * identity in the lock word. Header-only, no state outside the lock, so
 * boxes stay independent .so files.
 *
 * Why not a plain spinlock: with more threads than cores a holder can lose
 * the CPU for a whole time slice, and spinners (even yielding ones) burn the
 * slices it needs. After HAK_LOCK_SPINS tries a waiter sleeps in the kernel
 * and the holder's unlock wakes one waiter.
 *
 * Why the owner: fork. A signal handler may call fork() while the thread it
 * interrupted is inside the allocator holding a lock; fork_prepare must not
 * wait for a lock its own thread holds (it would wait forever). The lock word
 * is the holder's thread pointer (%fs:0 on x86-64, unique among live threads
 * and unchanged in a fork child), so `hak_spin_fork_prepare` can tell "held by
 * me" from "held by another thread": it waits for the latter only. The
 * interrupted call resumes after the handler and releases the lock itself,
 * in parent and child alike.
 *
 * The word: 0 free; else (thread pointer | HAK_LOCK_WAITERS). Thread pointers
 * are at least 16-byte aligned, so bit 0 is free for the "someone may sleep" flag.
 * The futex is the word's low 32 bits (x86-64 is little-endian): a sleeper
 * compares them with a value that has the flag set, so it sleeps only while
 * the word carries the flag, and whoever holds such a word wakes a sleeper
 * when it unlocks (Drepper, "Futexes Are Tricky", mutex 2).
 */
#ifndef HAKMEM_LOCK_H
#define HAKMEM_LOCK_H

#include <box_api/hakmem_box.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    _Atomic uintptr_t word; /* 0, or holder | HAK_LOCK_WAITERS */
    /* One bit per fork_prepare in progress, innermost lowest: 1 when that
     * prepare found the lock already held by its own thread. A stack, since
     * a signal handler's fork can run inside this thread's own fork (between
     * its prepare and parent handlers); only the holder touches it. */
    uint32_t fork_kept;
} hak_spinlock;

#define HAK_SPINLOCK_INIT { 0, 0 }
#define HAK_LOCK_WAITERS ((uintptr_t)1)
#define HAK_LOCK_SPINS 100

static inline uintptr_t hak_thread_self(void)
{
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

static inline int hak_spin_trylock(hak_spinlock *l)
{
    uintptr_t free_word = 0;
    return atomic_compare_exchange_strong_explicit(&l->word, &free_word, hak_thread_self(),
                                                   memory_order_acquire, memory_order_relaxed);
}

/* futex calls must not change the program's errno (EAGAIN, EINTR). */
static inline void hak_lock_futex(hak_spinlock *l, int op, uint32_t val)
{
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)&l->word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
    errno = saved;
}

__attribute__((noinline, cold)) static void hak_spin_lock_slow(hak_spinlock *l, uintptr_t self)
{
    for (int spin = 0; spin < HAK_LOCK_SPINS; spin++) {
        __builtin_ia32_pause();
        uintptr_t free_word = 0;
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&l->word, &free_word, self,
                                                  memory_order_acquire, memory_order_relaxed))
            return;
    }
    /* Sleep. Once we have slept we take the lock with the flag set: other
     * sleepers may remain, and our unlock must wake them. */
    for (;;) {
        uintptr_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
        if (w == 0) {
            if (atomic_compare_exchange_weak_explicit(&l->word, &w, self | HAK_LOCK_WAITERS,
                                                      memory_order_acquire, memory_order_relaxed))
                return;
            continue;
        }
        if (!(w & HAK_LOCK_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&l->word, &w, w | HAK_LOCK_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        hak_lock_futex(l, FUTEX_WAIT, (uint32_t)(w | HAK_LOCK_WAITERS));
    }
}

static inline void hak_spin_lock(hak_spinlock *l)
{
    uintptr_t self = hak_thread_self(), free_word = 0;
    if (HAK_LIKELY(atomic_compare_exchange_weak_explicit(&l->word, &free_word, self,
                                                         memory_order_acquire, memory_order_relaxed)))
        return;
    hak_spin_lock_slow(l, self);
}

static inline void hak_spin_unlock(hak_spinlock *l)
{
    if (HAK_UNLIKELY(atomic_exchange_explicit(&l->word, 0, memory_order_release) &
                     HAK_LOCK_WAITERS))
        hak_lock_futex(l, FUTEX_WAKE, 1);
}

/* Is the calling thread the holder? (Debug checks; fork.) */
static inline int hak_spin_held_by_me(const hak_spinlock *l)
{
    return (atomic_load_explicit(&l->word, memory_order_relaxed) & ~HAK_LOCK_WAITERS) ==
           hak_thread_self();
}

/* ---- fork: what a box's fork hooks call for each of its locks ------------ */

/* fork_prepare: take the lock, unless this thread holds it already (fork
 * from a signal handler that interrupted this box, or that interrupted
 * this thread's own fork after its prepare). */
static inline void hak_spin_fork_prepare(hak_spinlock *l)
{
    uint32_t kept = (uint32_t)hak_spin_held_by_me(l);
    if (!kept)
        hak_spin_lock(l);
    l->fork_kept = (l->fork_kept << 1) | kept;
}

/* fork_parent: release what the matching prepare took. */
static inline void hak_spin_fork_parent(hak_spinlock *l)
{
    uint32_t kept = l->fork_kept & 1;
    l->fork_kept >>= 1;
    if (!kept)
        hak_spin_unlock(l);
}

/* fork_child: the child has one thread. A lock the matching prepare took
 * is free; a kept one stays held for the interrupted code to release.
 * Waiter flags name threads that do not exist here, so they go. */
static inline void hak_spin_fork_child(hak_spinlock *l)
{
    uint32_t kept = l->fork_kept & 1;
    l->fork_kept >>= 1;
    atomic_store_explicit(&l->word, kept ? hak_thread_self() : 0, memory_order_relaxed);
}

/* A box's lock, made at instance creation: on the host's lock page
 * (host->lock_alloc: every fork handler's write lands on one page), or, on
 * a host older than that service, in metadata memory (zeroed: a free lock).
 * NULL when out of metadata memory. */
static inline hak_spinlock *hak_lock_new(const struct hak_host *host)
{
    if (HAK_HOST_HAS(host, lock_alloc))
        return (hak_spinlock *)host->lock_alloc();
    return (hak_spinlock *)host->meta_alloc(sizeof(hak_spinlock));
}

#endif
