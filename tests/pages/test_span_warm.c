/* span_warm (PA2): per-size caches, limits, alignment, idle return. */
#include "pages_test.h"

#include <string.h>

#define ROUTE "[route]\n1-max = large\n[box.large]\nplugin = large\n[box.os]\nplugin = os_pages\n"

static const char *ini_small =
    ROUTE "[box.warm]\nplugin = span_warm\nbelow = os\n"
    "warm_64k = 2\nwarm_128k = 2\nwarm_2m = 1\nidle_ms = 0\n";

static void case_buckets(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large"), warm = harness_owner("warm");
    static const size_t sizes[3] = {64 * KB, 128 * KB, 2 * MB};
    for (int b = 0; b < 3; b++) {
        size_t n = sizes[b];
        char *p = pa_alloc("warm", n, 0, me, 11);
        CHECK(p);
        CHECK_EQ(harness_lookup(p + n - 1), entry(me, 11));
        memset(p, 0x40 + b, n);
        pa_free("warm", p, n);
        CHECK_EQ(harness_lookup(p), entry(warm, b)); /* cached: ours, tag = bucket */
        CHECK_EQ(harness_lookup(p + n - 1), entry(warm, b));
        char *q = pa_alloc("warm", n, 0, me, 12);
        CHECK(q == p);
        CHECK_EQ(harness_lookup(q + n - 1), entry(me, 12));
        CHECK_EQ(resident_pages(q, n), page_count(n)); /* reused committed */
        CHECK(all_bytes(q, n, (unsigned char)(0x40 + b)));
        pa_free("warm", q, n);
    }
    CHECK_EQ(harness_stats("warm").cached_bytes, 64 * KB + 128 * KB + 2 * MB);
    CHECK_EQ(harness_bytes_mapped("warm"), 64 * KB + 128 * KB + 2 * MB);

    /* other sizes pass through */
    char *odd = pa_alloc("warm", 192 * KB, 0, me, 1);
    CHECK_EQ(harness_lookup(odd), entry(me, 1));
    pa_free("warm", odd, 192 * KB);
    CHECK_EQ(harness_lookup(odd), 0);
}

static void case_slot_limit(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large"), warm = harness_owner("warm");
    char *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = pa_alloc("warm", 64 * KB, 0, me, 0);
    for (int i = 0; i < 3; i++)
        pa_free("warm", s[i], 64 * KB);
    /* warm_64k = 2: the oldest went down to os and was unmapped */
    CHECK_EQ(harness_lookup(s[0]), 0);
    CHECK_EQ(harness_lookup(s[1]), entry(warm, 0));
    CHECK_EQ(harness_lookup(s[2]), entry(warm, 0));
    CHECK_EQ(harness_stats("warm").drains, 1);
    /* LIFO within the bucket */
    CHECK(pa_alloc("warm", 64 * KB, 0, me, 0) == s[2]);
    CHECK(pa_alloc("warm", 64 * KB, 0, me, 0) == s[1]);
    CHECK_EQ(harness_stats("warm").cached_bytes, 0);
}

static void case_alignment(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large");
    char *p = pa_alloc("warm", 2 * MB, 2 * MB, me, 0);
    CHECK(p && ((uintptr_t)p & (2 * MB - 1)) == 0);
    pa_free("warm", p, 2 * MB);
    CHECK(pa_alloc("warm", 2 * MB, 2 * MB, me, 0) == p);
    pa_free("warm", p, 2 * MB);
    /* a stricter alignment than the cached span has: served anyway, aligned */
    for (size_t align = 4 * MB; align <= 64 * MB; align *= 2) {
        char *q = pa_alloc("warm", 2 * MB, align, me, 0);
        CHECK(q && ((uintptr_t)q & (align - 1)) == 0);
        pa_free("warm", q, 2 * MB);
    }
}

static void case_max_cached(void)
{
    harness_open(ROUTE "[box.warm]\nplugin = span_warm\nbelow = os\nmax_cached = 256K\nidle_ms = 0\n");
    uint16_t me = harness_owner("large"), warm = harness_owner("warm");
    /* a 2 MB span is bigger than max_cached: straight down */
    char *big = pa_alloc("warm", 2 * MB, 0, me, 0);
    pa_free("warm", big, 2 * MB);
    CHECK_EQ(harness_lookup(big), 0);
    char *s[5];
    for (int i = 0; i < 5; i++)
        s[i] = pa_alloc("warm", 64 * KB, 0, me, 0);
    for (int i = 0; i < 5; i++)
        pa_free("warm", s[i], 64 * KB);
    CHECK_EQ(harness_stats("warm").cached_bytes, 256 * KB);
    CHECK_EQ(harness_lookup(s[0]), 0);
    CHECK_EQ(harness_lookup(s[4]), entry(warm, 0));
    /* a 128 KB span pushes out the two oldest 64 KB ones */
    char *m = pa_alloc("warm", 128 * KB, 0, me, 0);
    pa_free("warm", m, 128 * KB);
    CHECK_EQ(harness_lookup(s[1]), 0);
    CHECK_EQ(harness_lookup(s[2]), 0);
    CHECK_EQ(harness_lookup(s[3]), entry(warm, 0));
    CHECK_EQ(harness_lookup(m), entry(warm, 1));
    CHECK_EQ(harness_bytes_mapped("warm"), 256 * KB);
}

static void case_idle_return(void)
{
    harness_open(ROUTE "[box.warm]\nplugin = span_warm\nbelow = os\nidle_ms = 50\n");
    uint16_t me = harness_owner("large");
    char *p = pa_alloc("warm", 2 * MB, 0, me, 0);
    char *q = pa_alloc("warm", 128 * KB, 0, me, 0);
    memset(p, 1, 2 * MB);
    pa_free("warm", p, 2 * MB);
    pa_free("warm", q, 128 * KB);
    CHECK_EQ(harness_bytes_mapped("warm"), 2 * MB + 128 * KB);
    sleep_ms(80);
    /* the next call of any kind sweeps */
    char *r = pa_alloc("warm", 64 * KB, 0, me, 0);
    CHECK_EQ(harness_bytes_mapped("warm"), 0);
    CHECK_EQ(harness_lookup(p), 0);
    CHECK_EQ(harness_lookup(q), 0);
    CHECK_EQ(harness_stats("warm").drains, 2);
    pa_free("warm", r, 64 * KB);
}

static void case_disabled(void)
{
    harness_open(ROUTE "[box.warm]\nplugin = span_warm\nbelow = os\nenable = off\n");
    uint16_t me = harness_owner("large");
    char *p = pa_alloc("warm", 2 * MB, 0, me, 0);
    pa_free("warm", p, 2 * MB);
    CHECK_EQ(harness_lookup(p), 0);
    CHECK_EQ(harness_stats("warm").refills, 1);
    CHECK_EQ(harness_stats("warm").drains, 1);
}

static void double_free(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large");
    char *a = pa_alloc("warm", 128 * KB, 0, me, 0);
    pa_free("warm", a, 128 * KB);
    pa_free("warm", a, 128 * KB);
}

int main(void)
{
    run_case("span_warm buckets and reuse", case_buckets);
    run_case("span_warm slot limit", case_slot_limit);
    run_case("span_warm alignment", case_alignment);
    run_case("span_warm max_cached", case_max_cached);
    run_case("span_warm idle spans go back", case_idle_return);
    run_case("span_warm enable = off", case_disabled);
    run_abort_case("span_warm double free", double_free, "span freed twice");
    return 0;
}
