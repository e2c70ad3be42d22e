/* Threads: a pool thread's exit returns its empty chunks and orphans the
 * rest, whose blocks stay freeable and are reused by the next thread;
 * frees from other threads; l25's thread cache goes back at exit; mixed
 * multi-threaded traffic on both boxes with contents checked. */
#include "mid_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void join(pthread_t th) { CHECK(pthread_join(th, NULL) == 0); }

/* ---- pool: thread exit ----------------------------------------------- */

static void *alloc_free_4k(void *arg)
{
    (void)arg;
    enum { N = 5000 };
    static void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = harness_malloc(4000);
        CHECK(b[i]);
        fill(b[i], 4000, (uint32_t)i);
    }
    for (int i = 0; i < N; i++) {
        CHECK(check_fill(b[i], 4000, (uint32_t)i));
        harness_free(b[i]);
    }
    CHECK(harness_bytes_mapped("pool") > 0);
    return NULL;
}

static void case_pool_exit_returns_chunks(void)
{
    harness_open(mid_config("", "", ""));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, alloc_free_4k, NULL) == 0);
    join(th);
    CHECK_EQ(harness_bytes_mapped("pool"), 0);
}

enum { ORPHAN_N = 2000 };
static void *orphan_blocks[ORPHAN_N];

static void *alloc_keep_8k(void *arg)
{
    (void)arg;
    for (int i = 0; i < ORPHAN_N; i++) {
        orphan_blocks[i] = harness_malloc(8000);
        CHECK(orphan_blocks[i]);
        fill(orphan_blocks[i], 8000, (uint32_t)i);
    }
    return NULL;
}

static void *alloc_reuse_8k(void *arg)
{
    uint64_t mapped = *(uint64_t *)arg; /* what the first thread left mapped */
    static void *b[ORPHAN_N];
    for (int i = 0; i < ORPHAN_N; i++) {
        b[i] = harness_malloc(8000);
        CHECK(b[i]);
        fill(b[i], 8000, (uint32_t)i + 1);
    }
    CHECK(harness_bytes_mapped("pool") <= mapped);
    for (int i = 0; i < ORPHAN_N; i++) {
        CHECK(check_fill(b[i], 8000, (uint32_t)i + 1));
        harness_free(b[i]);
    }
    return NULL;
}

static void case_pool_orphans_reused(void)
{
    harness_open(mid_config("", "", ""));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, alloc_keep_8k, NULL) == 0);
    join(th);
    uint64_t mapped = harness_bytes_mapped("pool");
    CHECK(mapped >= ORPHAN_N * 8000ull);
    for (int i = 0; i < ORPHAN_N; i++)
        CHECK(check_fill(orphan_blocks[i], 8000, (uint32_t)i));
    /* the owner is gone: these are remote frees into orphan chunks */
    for (int i = 0; i < ORPHAN_N; i++)
        harness_free(orphan_blocks[i]);
    CHECK(harness_stats("pool").remote_frees >= ORPHAN_N);
    CHECK_EQ(harness_bytes_mapped("pool"), mapped);
    /* the next thread adopts them instead of mapping more */
    CHECK(pthread_create(&th, NULL, alloc_reuse_8k, &mapped) == 0);
    join(th);
    /* what it adopted went back at its exit; orphans it did not need wait
     * for a tick or a trim */
    CHECK(harness_bytes_mapped("pool") < mapped);
    box_trim("pool");
    CHECK_EQ(harness_bytes_mapped("pool"), 0);
}

/* ---- pool: producer / consumer --------------------------------------- */

enum { RING = 256, XFER = 20000 };
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *ring[RING];
    size_t size[RING];
    unsigned head, tail;
    uint64_t peak_mapped;
} xfer = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, { 0 }, 0, 0, 0 };

static void *producer(void *arg)
{
    (void)arg;
    uint32_t rng = 7;
    for (unsigned i = 0; i < XFER; i++) {
        size_t n = 1025 + rng_next(&rng) % (52 * KB - 1025 + 1);
        unsigned char *p = harness_malloc(n);
        CHECK(p);
        touch_pages(p, n, i);
        uint64_t m = harness_bytes_mapped("pool");
        pthread_mutex_lock(&xfer.lock);
        if (m > xfer.peak_mapped)
            xfer.peak_mapped = m;
        while (xfer.head - xfer.tail == RING)
            pthread_cond_wait(&xfer.cond, &xfer.lock);
        xfer.ring[xfer.head % RING] = p;
        xfer.size[xfer.head % RING] = n;
        xfer.head++;
        pthread_cond_broadcast(&xfer.cond);
        pthread_mutex_unlock(&xfer.lock);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < XFER; i++) {
        pthread_mutex_lock(&xfer.lock);
        while (xfer.head == xfer.tail)
            pthread_cond_wait(&xfer.cond, &xfer.lock);
        void *p = xfer.ring[xfer.tail % RING];
        size_t n = xfer.size[xfer.tail % RING];
        xfer.tail++;
        pthread_cond_broadcast(&xfer.cond);
        pthread_mutex_unlock(&xfer.lock);
        CHECK(check_pages(p, n, i));
        harness_free(p);
    }
    return NULL;
}

/* Every block freed by another thread; the producer reuses the memory
 * (mapped stays far below the 500 MB it allocates in all), and once both
 * are gone, trim reclaims the orphaned chunks. */
static void case_pool_cross_thread(void)
{
    harness_open(mid_config("", "", ""));
    pthread_t p, c;
    CHECK(pthread_create(&c, NULL, consumer, NULL) == 0);
    CHECK(pthread_create(&p, NULL, producer, NULL) == 0);
    join(p);
    join(c);
    CHECK(harness_stats("pool").remote_frees >= XFER);
    printf("cross_thread: peak mapped %llu MB\n", (unsigned long long)(xfer.peak_mapped >> 20));
    CHECK(xfer.peak_mapped <= 64 * MB);
    box_trim("pool");
    CHECK_EQ(harness_bytes_mapped("pool"), 0);
}

/* A block another thread freed comes back before the current slab carves
 * a fresh one: carving first touched new pages while freed blocks waited
 * on the slab's remote list. */
static void *free_one(void *arg)
{
    harness_free(arg);
    return NULL;
}

static void case_pool_remote_before_carve(void)
{
    harness_open(mid_config("", "", ""));
    char *a = harness_malloc(3000); /* the class's current slab, carved */
    CHECK(a);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, free_one, a) == 0);
    join(th);
    CHECK_EQ(harness_stats("pool").remote_frees, 1);
    CHECK(harness_malloc(3000) == a);
    harness_free(a);
}

/* ---- mixed traffic on both boxes --------------------------------------- */

enum { SHARED = 64 };
static _Atomic(uintptr_t) shared_slot[SHARED];

struct mixed_arg {
    uint32_t seed;
    size_t lo, hi;
    int ops;
};

/* A block holds its size and a seed in its first 16 bytes, and one byte
 * per page after. */
static void *mixed_new(uint32_t *rng, size_t lo, size_t hi)
{
    size_t n = lo + rng_next(rng) % (hi - lo + 1);
    unsigned char *p = harness_malloc(n);
    CHECK(p);
    CHECK(((uintptr_t)p & 15) == 0);
    CHECK(harness_usable_size(p) >= n);
    uint64_t hdr[2] = { n, rng_next(rng) };
    memcpy(p, hdr, sizeof hdr);
    for (size_t i = 4096; i < n; i += 4096)
        p[i] = (unsigned char)(hdr[1] + i);
    return p;
}

static void mixed_check_free(void *q)
{
    unsigned char *p = q;
    uint64_t hdr[2];
    memcpy(hdr, p, sizeof hdr);
    for (size_t i = 4096; i < hdr[0]; i += 4096)
        CHECK(p[i] == (unsigned char)(hdr[1] + i));
    harness_free(p);
}

static void *mixed_worker(void *arg)
{
    struct mixed_arg *a = arg;
    enum { LOCAL = 64 };
    void *local[LOCAL] = { 0 };
    uint32_t rng = a->seed;
    for (int i = 0; i < a->ops; i++) {
        uint32_t r = rng_next(&rng);
        int k = (int)(r % LOCAL);
        if (local[k]) {
            if (r & 0x100) {
                /* hand it to whoever takes the shared slot next */
                uintptr_t old = atomic_exchange(&shared_slot[(r >> 9) % SHARED],
                                                (uintptr_t)local[k]);
                if (old)
                    mixed_check_free((void *)old);
            } else {
                mixed_check_free(local[k]);
            }
            local[k] = NULL;
        } else {
            local[k] = mixed_new(&rng, a->lo, a->hi);
        }
    }
    for (int k = 0; k < LOCAL; k++)
        if (local[k])
            mixed_check_free(local[k]);
    return NULL;
}

static void run_mixed(size_t lo, size_t hi, int ops)
{
    enum { T = 4 };
    pthread_t th[T];
    struct mixed_arg args[T];
    for (int t = 0; t < T; t++) {
        args[t] = (struct mixed_arg){ (uint32_t)(t + 1) * 2654435761u, lo, hi, ops };
        CHECK(pthread_create(&th[t], NULL, mixed_worker, &args[t]) == 0);
    }
    for (int t = 0; t < T; t++)
        join(th[t]);
    for (int s = 0; s < SHARED; s++) {
        uintptr_t p = atomic_exchange(&shared_slot[s], 0);
        if (p)
            mixed_check_free((void *)p);
    }
}

static void case_pool_mixed_threads(void)
{
    harness_open(mid_config("", "", ""));
    run_mixed(1025, 52 * KB, 20000);
    struct hak_stats st = harness_stats("pool");
    CHECK_EQ(st.allocs, st.frees);
    CHECK(st.remote_frees > 0);
    box_trim("pool");
    CHECK_EQ(harness_bytes_mapped("pool"), 0);
}

static void case_l25_mixed_threads(void)
{
    harness_open(mid_config("", "", ""));
    run_mixed(53249, 2 * MB, 2000);
    struct hak_stats st = harness_stats("l25");
    CHECK_EQ(st.allocs, st.frees);
    box_trim("l25");
    CHECK_EQ(harness_bytes_mapped("l25"), 0);
}

/* ---- l25: a thread's cache goes back at its exit ------------------------ */

static void *l25_cache_some(void *arg)
{
    (void)arg;
    void *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = harness_malloc(64 * KB);
    for (int i = 0; i < 4; i++)
        harness_free(p[i]);
    CHECK(harness_stats("l25").cached_bytes >= 4 * 64 * KB);
    return NULL;
}

static void case_l25_exit_flushes_cache(void)
{
    harness_open(mid_config("", "", ""));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, l25_cache_some, NULL) == 0);
    join(th);
    CHECK_EQ(harness_bytes_mapped("l25"), 2 * MB);
    box_trim("l25"); /* only the runs' free space is left to give back */
    CHECK_EQ(harness_bytes_mapped("l25"), 0);
}

/* ---- fork while other threads allocate --------------------------------- */

static atomic_int fork_stop;

static void *fork_churn(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg;
    void *held[16] = { 0 };
    while (!atomic_load(&fork_stop)) {
        int k = (int)(rng_next(&rng) % 16);
        if (held[k]) {
            harness_free(held[k]);
            held[k] = NULL;
        } else {
            size_t n = (rng & 1) ? 1025 + rng % (52 * KB - 1025) : 53249 + rng % (2 * MB - 53249);
            held[k] = harness_malloc(n);
            CHECK(held[k]);
            memset(held[k], 1, 64);
        }
    }
    for (int k = 0; k < 16; k++)
        if (held[k])
            harness_free(held[k]);
    return NULL;
}

/* The boxes' fork hooks take their locks: a child forked while other
 * threads allocate can allocate, free and trim. */
static void case_fork_under_load(void)
{
    harness_open(mid_config("", "", ""));
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        CHECK(pthread_create(&th[t], NULL, fork_churn, (void *)(uintptr_t)(t + 11)) == 0);
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            void *a = harness_malloc(3000), *b = harness_malloc(300 * KB);
            if (!a || !b)
                _exit(1);
            memset(a, 2, 3000);
            memset(b, 3, 300 * KB);
            harness_free(a);
            harness_free(b);
            box_trim("pool");
            box_trim("l25");
            _exit(0);
        }
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&fork_stop, 1);
    for (int t = 0; t < 2; t++)
        join(th[t]);
}

int main(void)
{
    run_case("pool_exit_returns_chunks", case_pool_exit_returns_chunks);
    run_case("pool_orphans_reused", case_pool_orphans_reused);
    run_case("pool_cross_thread", case_pool_cross_thread);
    run_case("pool_remote_before_carve", case_pool_remote_before_carve);
    run_case("pool_mixed_threads", case_pool_mixed_threads);
    run_case("l25_mixed_threads", case_l25_mixed_threads);
    run_case("l25_exit_flushes_cache", case_l25_exit_flushes_cache);
    run_case("fork_under_load", case_fork_under_load);
    return 0;
}
