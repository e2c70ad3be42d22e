/* l25 through the host's dispatch: granule classes, contents, best fit and
 * coalescing inside 2 MB runs, the thread cache and its bundles, purging
 * after the delay and over dirty_max, trim, realloc in place, misuse, and a
 * vm_mixed-like workload's footprint. */
#include "mid_test.h"

#include <string.h>

static size_t granules_of(size_t n) { return (n + 64 * KB - 1) / (64 * KB); }

static void case_classes(void)
{
    harness_open(mid_config("", "", ""));
    uint16_t l25 = harness_owner("l25");
    for (size_t g = 1; g <= 32; g++) {
        size_t sizes[] = { g * 64 * KB - 64 * KB + 1, g * 64 * KB - 1, g * 64 * KB };
        for (int k = 0; k < 3; k++) {
            size_t n = sizes[k];
            if (n <= 52 * KB)
                continue;
            unsigned char *p = harness_malloc(n);
            CHECK(p);
            CHECK_EQ(owner_of(p), l25);
            CHECK(((uintptr_t)p & (64 * KB - 1)) == 0);
            CHECK_EQ(harness_usable_size(p), granules_of(n) * 64 * KB);
            CHECK_EQ(owner_of(p + harness_usable_size(p) - 1), l25);
            fill(p, n, (uint32_t)(g * 3 + (size_t)k));
            CHECK(check_fill(p, n, (uint32_t)(g * 3 + (size_t)k)));
            harness_free(p);
        }
    }
    /* many blocks held at once keep their contents */
    enum { N = 60 };
    static unsigned char *b[N];
    static size_t sz[N];
    uint32_t rng = 12345;
    for (int i = 0; i < N; i++) {
        sz[i] = 53249 + rng_next(&rng) % (2 * MB - 53249 + 1);
        b[i] = harness_malloc(sz[i]);
        CHECK(b[i]);
        fill(b[i], sz[i], (uint32_t)i);
    }
    for (int i = 0; i < N; i++) {
        CHECK(check_fill(b[i], sz[i], (uint32_t)i));
        harness_free(b[i]);
    }
    struct hak_stats st = harness_stats("l25");
    CHECK_EQ(st.allocs, st.frees);
    CHECK_EQ(st.bytes_allocated, st.bytes_freed);
}

/* Freed granules coalesce: 32 blocks of 64 KB fill one run; once freed,
 * the run holds a 2 MB block. */
static void case_coalesce(void)
{
    harness_open(mid_config("", "", "cache_count = 0"));
    void *b[32];
    uintptr_t lo = UINTPTR_MAX;
    for (int i = 0; i < 32; i++) {
        b[i] = harness_malloc(64 * KB);
        CHECK(b[i]);
        if ((uintptr_t)b[i] < lo)
            lo = (uintptr_t)b[i];
    }
    CHECK_EQ(harness_bytes_mapped("l25"), 2 * MB);
    for (int i = 0; i < 32; i += 2)
        harness_free(b[i]);
    for (int i = 1; i < 32; i += 2)
        harness_free(b[i]);
    void *big = harness_malloc(2 * MB);
    CHECK_EQ((uintptr_t)big, lo);
    CHECK_EQ(harness_bytes_mapped("l25"), 2 * MB);
    harness_free(big);
}

/* A freed block's space serves smaller sizes before any new run. */
static void case_best_fit(void)
{
    harness_open(mid_config("", "", "cache_count = 0"));
    char *a = harness_malloc(1 * MB);
    char *b = harness_malloc(1 * MB);
    CHECK(a && b);
    CHECK_EQ(harness_bytes_mapped("l25"), 2 * MB);
    harness_free(a);
    char *c = harness_malloc(512 * KB);
    char *d = harness_malloc(300 * KB);
    CHECK(c >= a && c + 512 * KB <= a + MB);
    CHECK(d >= a && d + 320 * KB <= a + MB);
    CHECK_EQ(harness_bytes_mapped("l25"), 2 * MB);
    /* the smallest stretch that fits: a 2-granule hole beats the big one */
    char *e = harness_malloc(128 * KB);
    CHECK(e >= a && e < a + MB);
    harness_free(c);
    harness_free(d);
    harness_free(e);
    harness_free(b);
}

/* The thread cache: LIFO per class, refilled in bundles for small classes. */
static void case_cache(void)
{
    harness_open(mid_config("", "", "bundle = 4\ncache_count = 4\ncache_bytes = 1M"));
    void *p = harness_malloc(100 * KB);
    harness_free(p);
    CHECK(harness_malloc(128 * KB) == p); /* same class: 2 granules */
    harness_free(p);
    struct hak_stats before = harness_stats("l25");
    void *q[4];
    for (int i = 0; i < 4; i++)
        q[i] = harness_malloc(64 * KB);
    struct hak_stats after = harness_stats("l25");
    CHECK_EQ(after.refills - before.refills, 1); /* one bundle of 4 */
    for (int i = 0; i < 4; i++)
        harness_free(q[i]);
    CHECK(harness_stats("l25").cached_bytes > 0);
    /* a block that does not fit in cache_bytes goes back to the runs */
    void *big = harness_malloc(1 * MB);
    harness_free(big);
    before = harness_stats("l25");
    CHECK(harness_malloc(1 * MB) == big);
    after = harness_stats("l25");
    CHECK_EQ(after.refills - before.refills, 1);
}

/* Freed runs are decommitted after the delay, then returned. */
static void case_purge_after_delay(void)
{
    /* The delay outlasts the free loop even under TSan (see test_pool.c). */
    harness_open(mid_config("", "", "cache_count = 0\npurge_delay_ms = 500\ndirty_max = 1G"));
    enum { N = 40 };
    static char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = harness_malloc(1 * MB);
        CHECK(b[i]);
        memset(b[i], 1, MB);
    }
    uint64_t peak = harness_bytes_mapped("l25");
    CHECK(peak >= N * MB);
    for (int i = 0; i < N; i++)
        harness_free(b[i]);
    CHECK_EQ(harness_bytes_mapped("l25"), peak); /* hot: kept */
    int rounds = 0;
    for (; rounds < 200 && harness_bytes_mapped("l25") > 2 * MB; rounds++) {
        sleep_ms(25);
        harness_free(harness_malloc(64 * KB));
    }
    CHECK(harness_bytes_mapped("l25") <= 2 * MB);
    size_t res = 0;
    for (int i = 0; i < N; i++)
        res += resident_bytes(b[i], MB);
    CHECK(res <= 2 * MB);
}

static void case_dirty_max(void)
{
    harness_open(mid_config("", "", "cache_count = 0\npurge_delay_ms = 60000\ndirty_max = 1M"));
    enum { N = 10 };
    char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = harness_malloc(1 * MB);
        memset(b[i], 1, MB);
    }
    for (int i = 0; i < N; i++)
        harness_free(b[i]);
    CHECK_EQ(harness_bytes_mapped("l25"), 0);
}

/* n pairs of 1 MB blocks, interleaved so every run holds both kinds: the
 * live ones stamped (check_pages), the ones to free written. */
static void alloc_live_and_gone(char **live, char **gone, int n)
{
    for (int i = 0; i < n; i++) {
        live[i] = harness_malloc(1 * MB);
        gone[i] = harness_malloc(1 * MB);
        CHECK(live[i] && gone[i]);
        touch_pages(live[i], MB, (uint32_t)i);
        memset(gone[i], 1, MB);
    }
}

/* release = runs: free granules of runs in use stay committed, over
 * dirty_max and when another box grows alike (a decommit would split the
 * huge page under them); whole empty runs still go back, trim takes all. */
static void case_release_runs(void)
{
    harness_open(mid_config("", "", "cache_count = 0\npurge_delay_ms = 60000\ndirty_max = 1M\n"
                                    "release = runs"));
    enum { N = 8 };
    char *live[N], *gone[N];
    alloc_live_and_gone(live, gone, N);
    for (int i = 0; i < N; i++)
        harness_free(gone[i]);
    harness_free(harness_malloc(64 * KB)); /* over dirty_max: a tick now */
    char *big = harness_malloc(16 * MB);   /* another box grows */
    CHECK(big);
    size_t res = 0;
    for (int i = 0; i < N; i++)
        res += resident_bytes(gone[i], MB);
    CHECK_EQ(res, N * MB);
    harness_free(big);
    for (int i = 0; i < N; i++) {
        CHECK(check_pages(live[i], MB, (uint32_t)i));
        harness_free(live[i]);
    }
    harness_free(harness_malloc(64 * KB)); /* the runs are empty: returned */
    CHECK(harness_bytes_mapped("l25") <= 2 * MB);
    CHECK(harness_desc("l25")->ops.trim(harness_inst("l25"), harness_tls("l25")) > 0 ||
          harness_bytes_mapped("l25") == 0);
}

static void case_trim(void)
{
    harness_open(mid_config("", "", ""));
    enum { N = 30 };
    char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = harness_malloc(64 * KB + (size_t)i * 50 * KB);
        CHECK(b[i]);
        memset(b[i], 3, 64 * KB);
    }
    for (int i = 0; i < N; i++)
        harness_free(b[i]);
    CHECK(harness_bytes_mapped("l25") > 0);
    CHECK(box_trim("l25") > 0);
    CHECK_EQ(harness_bytes_mapped("l25"), 0);
    CHECK_EQ(harness_stats("l25").cached_bytes, 0);
    void *p = harness_malloc(70 * KB);
    CHECK_EQ(owner_of(p), harness_owner("l25"));
    harness_free(p);
}

static void case_realloc(void)
{
    harness_open(mid_config("", "", "cache_count = 0"));
    unsigned char *p = harness_malloc(100 * KB);
    fill(p, 100 * KB, 5);
    CHECK(harness_realloc(p, 120 * KB) == p); /* same granules */
    unsigned char *q = harness_realloc(p, 300 * KB); /* grows into free granules */
    CHECK(q == p);
    CHECK_EQ(harness_usable_size(q), 320 * KB);
    CHECK(check_fill(q, 100 * KB, 5));
    fill(q, 300 * KB, 6);
    unsigned char *r = harness_realloc(q, 70 * KB); /* shrinks in place */
    CHECK(r == q);
    CHECK_EQ(harness_usable_size(r), 128 * KB);
    CHECK(check_fill(r, 64 * KB, 6));
    /* the tail went back: the next block takes it */
    unsigned char *s = harness_malloc(192 * KB);
    CHECK(s == r + 128 * KB);
    /* blocked growth moves */
    unsigned char *t = harness_realloc(r, 1 * MB);
    CHECK(t && t != r);
    CHECK(check_fill(t, 64 * KB, 6));
    harness_free(s);
    harness_free(t);
}

static void case_aligned(void)
{
    harness_open(mid_config("", "", ""));
    void *p = harness_memalign(64 * KB, 100 * KB);
    CHECK(((uintptr_t)p & (64 * KB - 1)) == 0);
    CHECK_EQ(owner_of(p), harness_owner("l25"));
    harness_free(p);
    void *q = harness_memalign(1 * MB, 100 * KB);
    CHECK(((uintptr_t)q & (MB - 1)) == 0);
    harness_free(q);
}

/* vm_mixed's shape: 256 slots, sizes 64 KB .. 2 MB, every page touched. The
 * box's mapped bytes stay near the live bytes. */
static void case_mixed_footprint(void)
{
    harness_open(mid_config("", "", ""));
    enum { SLOTS = 256, ITER = 3000 };
    static char *slot[SLOTS];
    static size_t sz[SLOTS];
    uint32_t rng = 42;
    size_t live = 0, peak_live = 0;
    uint64_t peak_mapped = 0;
    for (int i = 0; i < ITER; i++) {
        int k = (int)(rng_next(&rng) % SLOTS);
        if (slot[k]) {
            CHECK(check_pages(slot[k], sz[k], (uint32_t)k));
            harness_free(slot[k]);
            live -= sz[k];
        }
        sz[k] = 64 * KB + rng_next(&rng) % (2 * MB - 64 * KB + 1);
        slot[k] = harness_malloc(sz[k]);
        CHECK(slot[k]);
        touch_pages(slot[k], sz[k], (uint32_t)k);
        live += sz[k];
        if (live > peak_live)
            peak_live = live;
        uint64_t m = harness_bytes_mapped("l25");
        if (m > peak_mapped)
            peak_mapped = m;
    }
    printf("mixed: peak live %zu MB, peak mapped %llu MB\n", peak_live >> 20,
           (unsigned long long)(peak_mapped >> 20));
    CHECK(peak_mapped <= peak_live + peak_live / 2);
    for (int k = 0; k < SLOTS; k++)
        if (slot[k])
            harness_free(slot[k]);
}

/* Another box faulting in fresh pages (large mapping 16 MB) takes back the
 * dirty granules beyond a quarter of the live ones (ops.reclaim), though
 * the purge delay is a minute away; the live blocks are untouched. */
static void case_reclaim_when_others_grow(void)
{
    harness_open(mid_config("", "", "cache_count = 0\npurge_delay_ms = 60000\ndirty_max = 1G"));
    enum { N = 8 };
    char *live[N], *gone[N];
    alloc_live_and_gone(live, gone, N);
    for (int i = 0; i < N; i++)
        harness_free(gone[i]);
    size_t before = 0, after = 0;
    for (int i = 0; i < N; i++)
        before += resident_bytes(gone[i], MB);
    CHECK_EQ(before, N * MB); /* kept committed: the delay has not passed */
    char *big = harness_malloc(16 * MB);
    CHECK(big);
    CHECK_EQ(owner_of(big), harness_owner("large"));
    for (int i = 0; i < N; i++)
        after += resident_bytes(gone[i], MB);
    printf("reclaim: %zu KB of the freed 8 MB resident after large mapped 16 MB\n", after >> 10);
    CHECK(after <= 2 * MB); /* a quarter of the 8 MB live stays dirty at most */
    CHECK(after >= 1 * MB); /* and that share is kept */
    for (int i = 0; i < N; i++)
        CHECK(check_pages(live[i], MB, (uint32_t)i));
    /* the decommitted granules serve new blocks again */
    for (int i = 0; i < N; i++) {
        gone[i] = harness_malloc(1 * MB);
        CHECK(gone[i]);
        fill(gone[i], MB, (uint32_t)(100 + i));
        CHECK(check_fill(gone[i], MB, (uint32_t)(100 + i)));
    }
    for (int i = 0; i < N; i++) {
        harness_free(gone[i]);
        harness_free(live[i]);
    }
    harness_free(big);
}

static void do_double_free(void)
{
    harness_open(mid_config("", "", "cache_count = 0"));
    void *p = harness_malloc(200 * KB);
    void *keep = harness_malloc(200 * KB);
    (void)keep;
    harness_free(p);
    harness_free(p);
}

static void do_double_free_cached(void)
{
    harness_open(mid_config("hardened = on", "", ""));
    void *p = harness_malloc(200 * KB);
    harness_free(p);
    harness_free(p);
}

static void do_bad_free_inside(void)
{
    harness_open(mid_config("", "", "cache_count = 0"));
    char *p = harness_malloc(300 * KB);
    harness_free(p + 128 * KB);
}

/* The box's own free with the tag an interior granule may carry (only a
 * block's first granule is tagged; the others keep older classes): the
 * cache path refuses it too when hardened. */
static void do_bad_free_inside_cached(void)
{
    harness_open(mid_config("hardened = on", "", ""));
    char *p = harness_malloc(300 * KB);
    harness_desc("l25")->ops.free(harness_tls("l25"), p + 64 * KB, 0);
}

int main(void)
{
    run_case("classes", case_classes);
    run_case("coalesce", case_coalesce);
    run_case("best_fit", case_best_fit);
    run_case("cache", case_cache);
    run_case("purge_after_delay", case_purge_after_delay);
    run_case("dirty_max", case_dirty_max);
    run_case("release = runs", case_release_runs);
    run_case("trim", case_trim);
    run_case("realloc", case_realloc);
    run_case("aligned", case_aligned);
    run_case("mixed_footprint", case_mixed_footprint);
    run_case("reclaim_when_others_grow", case_reclaim_when_others_grow);
    run_abort_case("double_free", do_double_free, "double free");
    run_abort_case("double_free_cached", do_double_free_cached, "double free");
    run_abort_case("bad_free_inside", do_bad_free_inside, "l25 block");
    run_abort_case("bad_free_inside_cached", do_bad_free_inside_cached, "not from an l25 block");
    return 0;
}
