/*
 * bench_replay: re-issues a trace's calls through whatever allocator is
 * preloaded (docs/replay.md). One thread per recorded thread, started when
 * the threads that had ended before it in the recording have ended; a call
 * on a block another thread touched last waits until that thread's call is
 * done (per-block event counts, no global lockstep unless --ordered); one
 * byte written per page of every new block.
 *
 * The replayer's own memory (the trace, mapped read-only and dropped from
 * RSS after validation; the block table) comes from mmap, never from the
 * allocator under test, and is reported as replayer_rss_kb. Under
 * callgrind, collection is on only around the allocator calls, so the
 * instruction count is the allocator's alone.
 *
 * Prints one RESULT line like the bench workloads: ops = calls issued.
 */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

struct rslot {
    void *ptr;              /* the live block, NULL when freed */
    void *stale;            /* the block it last was: what a recorded double free frees */
    uint64_t size;
    _Atomic uint32_t count; /* events done on the block: the converter's numbering */
    uint32_t pad;
};

struct rthread {
    unsigned index;
    pthread_t handle;
    int started, joined;
    _Atomic int done;
    uint64_t calls[TK_COUNT], bytes, extra_frees, diverged;
};

static struct trace trace;
static struct rslot *slots;
static struct rthread *threads;
static int ordered, replay_bad, under_callgrind, calibrate;
static _Atomic uint64_t done_seq;     /* --ordered: events done, in trace order */
static _Atomic int failed;
static _Atomic int64_t live_bytes, peak_live;
static _Alignas(64) char foreign_block[64]; /* what a free of a foreign address frees */

#define CG_TOGGLE()                      \
    do {                                 \
        if (under_callgrind)             \
            CALLGRIND_TOGGLE_COLLECT;    \
    } while (0)

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof msg - 2)
        n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    ssize_t w = write(2, msg, (size_t)n);
    (void)w;
    _exit(3);
}

static void wait_until(_Atomic uint32_t *word, uint32_t value)
{
    for (unsigned spins = 0; atomic_load_explicit(word, memory_order_acquire) < value; spins++) {
        if (atomic_load_explicit(&failed, memory_order_relaxed))
            pthread_exit(NULL);
        if (spins > 64)
            sched_yield();
    }
}

static void wait_seq(uint64_t seq)
{
    for (unsigned spins = 0; atomic_load_explicit(&done_seq, memory_order_acquire) != seq; spins++)
        if (spins > 64)
            sched_yield();
}

static void live_add(int64_t d)
{
    int64_t now = atomic_fetch_add_explicit(&live_bytes, d, memory_order_relaxed) + d;
    int64_t peak = atomic_load_explicit(&peak_live, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak(&peak_live, &peak, now))
        ;
}

/* The program wrote its blocks; a byte per page makes the faults and RSS
 * of a replay mean something. */
static void touch(char *p, uint64_t from, uint64_t to)
{
    if (!p || to <= from)
        return;
    ((volatile char *)p)[from] = 1;
    for (uintptr_t a = ((uintptr_t)(p + from) + 4096) & ~(uintptr_t)4095; a < (uintptr_t)(p + to); a += 4096)
        *(volatile char *)a = 1;
}

static const char *kind_name(unsigned k) { return k < TK_COUNT ? trace_kind_names[k] : "?"; }

static void lost_block(const struct trace_event *ev, unsigned thread)
{
    atomic_store(&failed, 1);
    die("hakmem replay: call %llu (thread %u, %s of %llu bytes, byte offset %llu): the allocator returned NULL "
        "where the recording had a block",
        (unsigned long long)ev->seq, thread, kind_name(ev->kind), (unsigned long long)ev->size,
        (unsigned long long)ev->offset);
}

/* The pointer a call on the block takes; a misbehaving call's stale or
 * foreign pointer (only with --replay-bad-frees: checked before the replay). */
static void *taken_ptr(const struct trace_event *ev)
{
    if (ev->flags & TF_BAD)
        return ev->old_slot >= 0 ? slots[ev->old_slot].stale : foreign_block + 16;
    return ev->old_slot >= 0 ? slots[ev->old_slot].ptr : NULL;
}

static void new_block(struct rthread *r, const struct trace_event *ev, void *p)
{
    if (ev->flags & TF_NULL) {
        if (p) {
            /* It failed in the recording: the program never had this block. */
            r->diverged++;
            r->extra_frees++;
            free(p);
        }
        return;
    }
    if (!p)
        lost_block(ev, r->index);
    slots[ev->slot].ptr = p;
    slots[ev->slot].size = ev->size;
    live_add((int64_t)ev->size);
    touch(p, 0, ev->size);
}

static void do_realloc(struct rthread *r, const struct trace_event *ev)
{
    void *old = taken_ptr(ev);
    int good_old = ev->old_slot >= 0 && !(ev->flags & TF_BAD);
    uint64_t old_size = good_old ? slots[ev->old_slot].size : 0;
    CG_TOGGLE();
    void *q = ev->kind == TK_REALLOCARRAY ? reallocarray(old, ev->n, ev->unit) : realloc(old, ev->size);
    CG_TOGGLE();
    if (!(ev->flags & TF_NULL)) {
        if (!q && ev->size)
            lost_block(ev, r->index);
        if (!q) {
            r->diverged++; /* realloc(p, 0): a block in the recording, freed here */
            slots[ev->slot].stale = old;
        }
        slots[ev->slot].ptr = q;
        slots[ev->slot].size = ev->size;
        live_add((int64_t)ev->size - (int64_t)old_size);
        if (q)
            touch(q, good_old ? old_size : 0, ev->size);
        return;
    }
    if (ev->size == 0 && good_old) {
        /* realloc(p, 0) freed p in the recording. */
        live_add(-(int64_t)old_size);
        slots[ev->old_slot].stale = old;
        slots[ev->old_slot].ptr = NULL;
        if (q) {
            r->diverged++;
            r->extra_frees++;
            free(q);
        }
    } else if (q && good_old) {
        /* It failed in the recording and not here: q is the block now. */
        r->diverged++;
        slots[ev->old_slot].ptr = q;
        live_add((int64_t)ev->size - (int64_t)old_size);
        slots[ev->old_slot].size = ev->size;
    } else if (q) {
        r->diverged++;
        r->extra_frees++;
        free(q);
    }
}

static void issue(struct rthread *r, const struct trace_event *ev)
{
    void *p = NULL;
    switch (ev->kind) {
    case TK_MALLOC:
        CG_TOGGLE();
        p = malloc(ev->size);
        CG_TOGGLE();
        new_block(r, ev, p);
        break;
    case TK_CALLOC:
        CG_TOGGLE();
        p = calloc(ev->n, ev->unit);
        CG_TOGGLE();
        new_block(r, ev, p);
        break;
    case TK_MEMALIGN:
        CG_TOGGLE();
        p = memalign(ev->align, ev->size);
        CG_TOGGLE();
        new_block(r, ev, p);
        break;
    case TK_ALIGNED_ALLOC:
        CG_TOGGLE();
        p = aligned_alloc(ev->align, ev->size);
        CG_TOGGLE();
        new_block(r, ev, p);
        break;
    case TK_POSIX_MEMALIGN: {
        CG_TOGGLE();
        int rc = posix_memalign(&p, ev->align, ev->size);
        CG_TOGGLE();
        new_block(r, ev, rc == 0 ? p : NULL);
        break;
    }
    case TK_VALLOC:
        CG_TOGGLE();
        p = valloc(ev->size);
        CG_TOGGLE();
        new_block(r, ev, p);
        break;
    case TK_PVALLOC:
        CG_TOGGLE();
        p = pvalloc(ev->size);
        CG_TOGGLE();
        new_block(r, ev, p);
        break;
    case TK_REALLOC:
    case TK_REALLOCARRAY:
        do_realloc(r, ev);
        break;
    case TK_FREE:
        p = taken_ptr(ev);
        if (ev->old_slot >= 0 && !(ev->flags & TF_BAD)) {
            live_add(-(int64_t)slots[ev->old_slot].size);
            slots[ev->old_slot].stale = p;
            slots[ev->old_slot].ptr = NULL;
        }
        CG_TOGGLE();
        free(p);
        CG_TOGGLE();
        break;
    case TK_USABLE_SIZE: {
        p = taken_ptr(ev);
        CG_TOGGLE();
        size_t n = malloc_usable_size(p);
        CG_TOGGLE();
        (void)n;
        break;
    }
    }
    r->calls[ev->kind]++;
    if (trace_kind_allocates(ev->kind))
        r->bytes += ev->size;
}

static void run_thread(struct rthread *r)
{
    struct trace_cursor c;
    struct trace_event ev;
    char err[TRACE_ERR_MAX];
    trace_cursor_init(&c, &trace, r->index);
    int got;
    while ((got = trace_next(&c, &ev, err)) == 1) {
        if (calibrate) {
            /* What collection toggled around a call costs, with no call. */
            CG_TOGGLE();
            CG_TOGGLE();
            r->calls[ev.kind]++;
            continue;
        }
        if (ordered)
            wait_seq(ev.seq);
        if ((ev.flags & TF_WAIT) && ev.old_slot >= 0)
            wait_until(&slots[ev.old_slot].count, (uint32_t)ev.wait);
        issue(r, &ev);
        if (ev.old_slot >= 0)
            atomic_fetch_add_explicit(&slots[ev.old_slot].count, 1, memory_order_release);
        if (ev.slot >= 0 && ev.slot != ev.old_slot)
            atomic_fetch_add_explicit(&slots[ev.slot].count, 1, memory_order_release);
        if (ordered)
            atomic_store_explicit(&done_seq, ev.seq + 1, memory_order_release);
    }
    if (got < 0) {
        atomic_store(&failed, 1);
        die("hakmem replay: %s", err);
    }
    trace_cursor_release(&c);
    atomic_store_explicit(&r->done, 1, memory_order_release);
}

static void *thread_main(void *arg)
{
    /* Collection starts on in every new thread (callgrind's default, per
     * thread): off, so that only the calls count; on again at the end,
     * because callgrind keeps the state of a thread id for the next thread
     * that gets it. */
    CG_TOGGLE();
    run_thread(arg);
    CG_TOGGLE();
    return NULL;
}

static void start_thread(struct rthread *r)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 << 10);
    int e = pthread_create(&r->handle, &a, thread_main, r);
    pthread_attr_destroy(&a);
    if (e)
        die("hakmem replay: cannot start thread %u: %s", r->index, strerror(e));
    r->started = 1;
}

static void finish(struct rthread *r)
{
    if (r->joined)
        return;
    if (r->index == 0) {
        while (!atomic_load_explicit(&r->done, memory_order_acquire))
            sched_yield();
    } else {
        pthread_join(r->handle, NULL);
    }
    r->joined = 1;
}

/* Threads start in the order they did (the table is in order of first
 * event), each once every thread that had ended before its first event
 * has ended: at most as many at once as in the recording. */
static void *launcher(void *arg)
{
    (void)arg;
    CG_TOGGLE();
    for (uint32_t i = 1; i < trace.threads; i++) {
        for (uint32_t j = 0; j < i; j++)
            if (trace.thread[j].last_seq < trace.thread[i].first_seq)
                finish(&threads[j]);
        start_thread(&threads[i]);
    }
    for (uint32_t j = 1; j < trace.threads; j++)
        finish(&threads[j]);
    CG_TOGGLE();
    return NULL;
}

/* Stops before the replay at the first misbehaving call (in trace order),
 * unless --replay-bad-frees. */
static void check_bad_calls(const char *path)
{
    struct trace_event first;
    unsigned first_thread = 0;
    int found = 0;
    char err[TRACE_ERR_MAX];
    for (uint32_t i = 0; i < trace.threads; i++) {
        struct trace_cursor c;
        struct trace_event ev;
        trace_cursor_init(&c, &trace, i);
        while (trace_next(&c, &ev, err) == 1)
            if ((ev.flags & TF_BAD) && (!found || ev.seq < first.seq)) {
                first = ev;
                first_thread = i;
                found = 1;
                break;
            }
        trace_cursor_release(&c);
    }
    if (!found)
        return;
    char what[160];
    if (first.old_slot >= 0)
        snprintf(what, sizeof what, "already freed (block %lld)", (long long)first.old_slot);
    else
        snprintf(what, sizeof what, "never allocated in the trace");
    die("hakmem replay: %s: call %llu (thread %u, %s of 0x%llx, byte offset %llu): the program passed an address "
        "%s; stopping before the replay (--replay-bad-frees re-issues it)",
        path, (unsigned long long)first.seq, first_thread, kind_name(first.kind),
        (unsigned long long)first.bad_addr, (unsigned long long)first.offset, what);
}

/* Resident KB from /proc/self/statm, read with read(2): stdio would
 * allocate through the allocator under test. */
static long rss_kb(void)
{
    char buf[128] = "";
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *space = strchr(buf, ' ');
    return space ? strtol(space + 1, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024) : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* After a pass, before the next: the blocks still live are freed (not
 * counted, not under callgrind) and the table starts again. */
static void reset_blocks(uint64_t *leftover)
{
    for (uint32_t i = 0; i < trace.slots; i++) {
        if (slots[i].ptr) {
            free(slots[i].ptr);
            (*leftover)++;
        }
        slots[i].ptr = slots[i].stale = NULL;
        slots[i].size = 0;
        atomic_store(&slots[i].count, 0);
    }
    memset(threads, 0, trace.threads * sizeof *threads);
    for (uint32_t i = 0; i < trace.threads; i++)
        threads[i].index = i;
    atomic_store(&done_seq, 0);
    atomic_store(&live_bytes, 0);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_replay --trace=FILE [--passes=N] [--ordered] [--replay-bad-frees]\n"
                 "  re-issues FILE's calls through the preloaded allocator (docs/replay.md)\n"
                 "  --passes=N          replay N times, freeing the blocks left live between passes\n"
                 "  --ordered           one call at a time in the recorded order (exact peak of live bytes)\n"
                 "  --replay-bad-frees  re-issue recorded double or foreign frees instead of stopping\n"
                 "  --calibrate         no calls: only the callgrind toggles around them (their cost)\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long passes = 1;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--trace=", 8))
            path = argv[i] + 8;
        else if (!strncmp(argv[i], "--passes=", 9))
            passes = strtol(argv[i] + 9, NULL, 10);
        else if (!strcmp(argv[i], "--ordered"))
            ordered = 1;
        else if (!strcmp(argv[i], "--replay-bad-frees"))
            replay_bad = 1;
        else if (!strcmp(argv[i], "--calibrate"))
            calibrate = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_replay: unknown argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!path || passes < 1) {
        usage(stderr);
        return 2;
    }
    under_callgrind = RUNNING_ON_VALGRIND ? 1 : 0;
    CG_TOGGLE(); /* off in the main thread: loading is not the allocator's */
    char err[TRACE_ERR_MAX];
    if (trace_open(path, &trace, err))
        die("hakmem replay: %s", err);
    if (trace_validate(&trace, err))
        die("hakmem replay: %s: %s", path, err);
    if (!replay_bad)
        check_bad_calls(path);
    /* Validation read every page: give them back, the replay reads them
     * again as it goes. */
    madvise((void *)trace.base, trace.size, MADV_DONTNEED);
    size_t slot_bytes = ((size_t)trace.slots + 1) * sizeof *slots;
    slots = mmap(NULL, slot_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    threads = mmap(NULL, ((size_t)trace.threads + 1) * sizeof *threads, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED || threads == MAP_FAILED)
        die("hakmem replay: cannot map the block table (%u blocks)", trace.slots);
    long replayer_kb = rss_kb();
    double seconds = 0;
    uint64_t leftover = 0;
    uint64_t calls[TK_COUNT] = { 0 }, bytes = 0, extra = 0, diverged = 0;
    for (long pass = 0; pass < passes; pass++) {
        reset_blocks(&leftover);
        double t0 = now_s();
        pthread_t launch;
        if (trace.threads > 1 && pthread_create(&launch, NULL, launcher, NULL))
            die("hakmem replay: cannot start the launcher thread");
        if (trace.threads > 0)
            run_thread(&threads[0]);
        if (trace.threads > 1)
            pthread_join(launch, NULL);
        seconds += now_s() - t0;
        for (uint32_t i = 0; i < trace.threads; i++) {
            for (int k = 0; k < TK_COUNT; k++)
                calls[k] += threads[i].calls[k];
            bytes += threads[i].bytes;
            extra += threads[i].extra_frees;
            diverged += threads[i].diverged;
        }
    }
    uint64_t ops = 0, sum = 1469598103934665603ull;
    for (int k = 0; k < TK_COUNT; k++) {
        ops += calls[k];
        sum = (sum ^ calls[k]) * 1099511628211ull;
    }
    sum = (sum ^ bytes) * 1099511628211ull;
    int exact_peak = ordered || trace.threads <= 1;
    if (exact_peak)
        sum = (sum ^ (uint64_t)atomic_load(&peak_live)) * 1099511628211ull;
    char line[2048];
    int n = snprintf(line, sizeof line, "RESULT workload=replay ops=%llu seconds=%.6f ops_per_sec=%.0f checksum=%016llx",
                     (unsigned long long)(ops ? ops : 1), seconds > 0 ? seconds : 1e-9,
                     (double)ops / (seconds > 0 ? seconds : 1e-9), (unsigned long long)sum);
    for (int k = 1; k < TK_COUNT; k++)
        n += snprintf(line + n, sizeof line - (size_t)n, " calls_%s=%llu", trace_kind_names[k],
                      (unsigned long long)calls[k]);
    n += snprintf(line + n, sizeof line - (size_t)n,
                  " bytes=%llu peak_live_bytes=%lld peak_exact=%d threads=%u passes=%ld diverged=%llu "
                  "extra_frees=%llu leftover_blocks=%llu trace_events=%llu replayer_rss_kb=%ld\n",
                  (unsigned long long)bytes, (long long)atomic_load(&peak_live), exact_peak, trace.threads, passes,
                  (unsigned long long)diverged, (unsigned long long)extra, (unsigned long long)leftover,
                  (unsigned long long)trace.events, replayer_kb);
    ssize_t w = write(1, line, (size_t)n);
    (void)w;
    return 0;
}
