/*
 * fork(): the pthread_atfork handlers. The child must find every allocator
 * structure consistent, so prepare takes every lock that guards shared
 * state and the child releases them. Three rules keep that from hanging:
 *
 * 1. stdio first. glibc's fork runs the prepare handlers, then takes the
 *    libio list lock, then its own malloc locks, because "the libio list
 *    lock has an indirect malloc dependency (via the getdelim function)".
 *    A thread in fflush(NULL) holds the list lock and waits for a FILE's
 *    lock; the FILE's holder (in getline) calls realloc. Had we taken our
 *    locks first, that realloc would wait for us and we for the list lock:
 *    a cycle. So prepare takes the list lock (recursive, exported by glibc)
 *    before any allocator lock: no thread can then hold the list lock and
 *    wait, directly or through a FILE, for a lock we hold.
 *
 * 2. Locks in the order calls nest. A call on the orphan block (a thread
 *    after its exit) holds the orphan lock while it calls boxes, and boxes
 *    call down their chain (fronts -> tiers -> page boxes) and into the
 *    host's services (metadata, region map) while holding their own: so
 *    orphan lock, boxes in chain order, thread lock, services. Nothing takes
 *    an earlier lock while holding a later one.
 *
 * 3. Never wait for a lock this thread holds. fork() from a signal handler
 *    that interrupted malloc or free finds the interrupted call's lock held
 *    by its own thread; hak_spin_fork_prepare skips such a lock (the lock
 *    word names its holder), and the interrupted call resumes after the
 *    handler and completes, in the parent and in the child alike. Locks of
 *    other threads are waited for as usual.
 *
 * What rule 3 cannot cover: while the handler runs, the interrupted call
 * cannot release its lock, so a handler that itself needs that lock (malloc
 * in the handler, or another thread blocked on it while holding a lock the
 * fork needs) would wait for ever. POSIX allows only async-signal-safe calls
 * in a signal handler, and malloc is not one; fork with _exit or exec in
 * the child is what programs do there, and that is guaranteed.
 */
#include "internal.h"

#include <sys/single_threaded.h>

/* glibc's libio list lock (exported since 2.2.5, no header declares it). */
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);

/* The lock page (internal.h). Its locks start free (zero). */
struct hak_lock_page hak_locks __attribute__((aligned(4096)));
_Static_assert(sizeof(struct hak_lock_page) == 4096, "the lock page is one page");

void *hak_lock_alloc(void)
{
    unsigned line = atomic_fetch_add_explicit(&hak_locks.fork.box_lines, 1, memory_order_relaxed);
    if (line < HAK_LOCK_PAGE_BOX_LINES)
        return &hak_locks.boxes[line].lock;
    return hak_meta_alloc(HAK_LOCK_LINE); /* zeroed, line-aligned */
}

/* One bit per fork in progress, innermost lowest: did its prepare take the
 * list lock? A stack, since a signal handler's fork may run inside this
 * thread's own fork. Changed only while holding the list lock, or in a
 * single-threaded process. On the lock page: the parent and child
 * handlers write it. */
#define stdio_taken (hak_locks.fork.stdio_taken)

void hak_fork_prepare(void)
{
    /* Single-threaded: no other thread can hold the list lock, and glibc
     * neither takes nor resets it in that case; leave it alone. */
    unsigned take = !__libc_single_threaded;
    if (take)
        _IO_list_lock();
    stdio_taken = (stdio_taken << 1) | take;
    hak_orphans_fork_prepare();
    const struct hak_plan *plan = hak_plan_active;
    for (int k = 0; k < plan->instance_count; k++) {
        const struct hak_instance *in = &plan->instances[plan->order[k]];
        if (in->desc->ops.fork_prepare)
            in->desc->ops.fork_prepare(in->inst);
    }
    hak_threads_fork_prepare();
    hak_services_fork_prepare();
}

void hak_fork_parent(void)
{
    const struct hak_plan *plan = hak_plan_active;
    hak_services_fork_parent();
    hak_threads_fork_parent();
    for (int k = plan->instance_count - 1; k >= 0; k--) {
        const struct hak_instance *in = &plan->instances[plan->order[k]];
        if (in->desc->ops.fork_parent)
            in->desc->ops.fork_parent(in->inst);
    }
    hak_orphans_fork_parent();
    unsigned taken = stdio_taken & 1;
    stdio_taken >>= 1;
    if (taken)
        _IO_list_unlock();
}

void hak_fork_child(void)
{
    const struct hak_plan *plan = hak_plan_active;
    hak_services_fork_child();
    hak_threads_fork_child();
    for (int k = plan->instance_count - 1; k >= 0; k--) {
        const struct hak_instance *in = &plan->instances[plan->order[k]];
        if (in->desc->ops.fork_child)
            in->desc->ops.fork_child(in->inst);
    }
    hak_orphans_fork_child();
    /* glibc resets the list lock in the child of a multi-threaded process
     * before the child handlers run; resetting it again is harmless, and
     * right should glibc's idea of "multi-threaded" differ from ours. */
    unsigned taken = stdio_taken & 1;
    stdio_taken >>= 1;
    if (taken)
        _IO_list_resetlock();
}
