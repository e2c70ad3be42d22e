/* large: freed extents serve any size (carved, joined, or moved into a new
 * mapping), the cache budget follows the live bytes and decays by time,
 * calloc clears only reused memory, realloc grows in place or by remap
 * without copying. Driven through the host's dispatch. */
#include "pages_test.h"

#include <string.h>
#include <unistd.h>

#define ROUTE "[route]\n1-max = large\n[box.large]\n"

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 4096)
        p[i] = (unsigned char)(seed + i / 4096);
}

static int filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 4096)
        if (p[i] != (unsigned char)(seed + i / 4096))
            return 0;
    return 1;
}

/* The extent a block sits in starts 64 bytes before the user pointer. */
static const unsigned char *base_of(const void *p) { return (const unsigned char *)p - 64; }

/* A big freed extent serves smaller requests side by side, with no new
 * mapping and no page faults; freed again they join into one. */
static void case_cross_size(void)
{
    harness_open(ROUTE "cache_idle_ms = 0\n");
    unsigned char *a = harness_malloc(20 * MB);
    memset(a, 0x5a, 20 * MB);
    harness_free(a);
    unsigned char *b = harness_malloc(6 * MB);
    CHECK(b == a);
    unsigned char *c = harness_malloc(10 * MB);
    CHECK(c == a + 6 * MB + 64 * KB); /* right after b's granules */
    CHECK_EQ(resident_pages(base_of(c), 10 * MB), page_count(10 * MB));
    CHECK_EQ(harness_stats("large").refills, 1);
    fill(b, 6 * MB, 1);
    fill(c, 10 * MB, 2);
    CHECK(filled(b, 6 * MB, 1) && filled(c, 10 * MB, 2));
    harness_free(b);
    harness_free(c);
    unsigned char *d = harness_malloc(20 * MB); /* the pieces joined again */
    CHECK(d == a);
    CHECK_EQ(harness_stats("large").refills, 1);
    harness_free(d);
}

/* No extent is big enough: a fresh mapping gets the cached pages moved in
 * (no copy: they stay resident, with their data). */
static void case_pieces_moved(void)
{
    harness_open(ROUTE "cache_idle_ms = 0\n");
    unsigned char *x = harness_malloc(6 * MB), *y = harness_malloc(5 * MB);
    unsigned char *keep = harness_malloc(3 * MB); /* stays live */
    memset(x, 0x11, 6 * MB);
    memset(y, 0x22, 5 * MB);
    harness_free(x);
    harness_free(y);
    uint64_t cached = harness_stats("large").cached_bytes;
    CHECK(cached >= 11 * MB);
    unsigned char *z = harness_malloc(30 * MB);
    CHECK(z);
    CHECK_EQ(harness_stats("large").cached_bytes, 0); /* both moved in */
    CHECK_EQ(owner_of(x), 0);                         /* their old places are gone */
    /* the head holds the moved pages (resident), the rest is untouched */
    CHECK(resident_pages(base_of(z), cached) >= page_count(11 * MB)); /* what was written */
    CHECK_EQ(resident_pages(base_of(z) + cached, 30 * MB - cached), 0);
    harness_free(z);
    harness_free(keep);
}

/* The budget: cache_live_pct of the live bytes, at least cache_min_bytes;
 * over it the smallest extents go and the last one is trimmed to fit. */
static void case_budget(void)
{
    harness_open(ROUTE "cache_idle_ms = 0\ncache_min_bytes = 8M\ncache_live_pct = 50\n");
    /* nothing live: the floor; a freed 20 MB keeps its first 8 MB */
    unsigned char *a = harness_malloc(20 * MB);
    memset(a, 1, 20 * MB);
    harness_free(a);
    CHECK_EQ(harness_stats("large").cached_bytes, 8 * MB);
    CHECK_EQ(harness_bytes_mapped("large"), 8 * MB);
    CHECK_EQ(owner_of(a), harness_owner("large"));
    CHECK_EQ(owner_of(a + 10 * MB), 0);
    CHECK_EQ(resident_pages(base_of(a), 8 * MB), page_count(8 * MB));
    CHECK(harness_desc("large")->ops.trim(harness_inst("large"), harness_tls("large")) > 0);
    /* 60 MB live: up to 30 MB kept */
    unsigned char *live[6];
    for (int i = 0; i < 6; i++)
        live[i] = harness_malloc(10 * MB - 64);
    unsigned char *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = harness_malloc(12 * MB - 64);
    for (int i = 0; i < 3; i++)
        harness_free(f[i]);
    uint64_t c = harness_stats("large").cached_bytes;
    CHECK(c <= 30 * MB && c >= 24 * MB);
    /* the program frees most of it: the budget falls with it */
    for (int i = 0; i < 5; i++)
        harness_free(live[i]);
    CHECK(harness_stats("large").cached_bytes <= 8 * MB);
    CHECK_EQ(harness_bytes_mapped("large"), harness_stats("large").cached_bytes + 10 * MB);
    harness_free(live[5]);
    CHECK(harness_stats("large").cached_bytes <= 8 * MB);
}

/* Idle extents are unmapped after cache_idle_ms, on the next call. */
static void case_decay(void)
{
    harness_open(ROUTE "cache_idle_ms = 50\ncache_live_pct = 1000\n");
    unsigned char *keep = harness_malloc(40 * MB);
    unsigned char *a = harness_malloc(30 * MB);
    memset(a, 3, 30 * MB);
    harness_free(a);
    CHECK(harness_stats("large").cached_bytes >= 30 * MB);
    sleep_ms(80);
    unsigned char *q = harness_malloc(100);
    CHECK_EQ(harness_stats("large").cached_bytes, 0);
    CHECK_EQ(harness_bytes_mapped("large"), 40 * MB + 64 * KB + 64 * KB);
    harness_free(q);
    harness_free(keep);
}

/* calloc: a reused extent is cleared, a fresh mapping is not touched. */
static void case_calloc(void)
{
    harness_open(ROUTE "cache_idle_ms = 0\n");
    unsigned char *a = harness_malloc(12 * MB);
    memset(a, 0xab, 12 * MB);
    harness_free(a);
    unsigned char *c = harness_calloc(1, 8 * MB);
    CHECK(c == a);
    CHECK(all_bytes(c, 8 * MB, 0));
    unsigned char *d = harness_calloc(2, 2 * MB); /* the rest of the extent */
    CHECK(d && all_bytes(d, 4 * MB, 0));
    harness_free(c);
    harness_free(d);
    /* bigger than the cache: old pages moved in, then cleared; the rest
     * of the block is never touched (no faults) */
    unsigned char *e = harness_calloc(1, 40 * MB);
    CHECK(e && all_bytes(e, 40 * MB, 0));
    harness_free(e);
    CHECK(harness_desc("large")->ops.trim(harness_inst("large"), harness_tls("large")) > 0);
    /* a fresh mapping: calloc writes nothing into it */
    unsigned char *f = harness_calloc(1, 32 * MB);
    CHECK(f);
    CHECK(resident_pages(base_of(f), 32 * MB) <= 1); /* the header's page */
    CHECK(all_bytes(f, 32 * MB, 0));
    harness_free(f);
}

/* realloc: growth takes the cached extent after the block (same pointer,
 * no new mapping), then remaps; the contents come along, nothing copied
 * by a new allocation. */
static void case_realloc_grow(void)
{
    harness_open(ROUTE "cache_idle_ms = 0\n");
    unsigned char *a = harness_malloc(20 * MB);
    harness_free(a);
    unsigned char *b = harness_malloc(4 * MB);
    CHECK(b == a);
    fill(b, 4 * MB, 7);
    unsigned char *g = harness_realloc(b, 12 * MB);
    CHECK(g == b);
    CHECK(filled(g, 4 * MB, 7));
    CHECK(harness_usable_size(g) >= 12 * MB);
    fill(g, 12 * MB, 8);
    unsigned char *h = harness_realloc(g, 100 * MB); /* remap */
    CHECK(h && filled(h, 12 * MB, 8));
    h[100 * MB - 1] = 1;
    struct hak_stats st = harness_stats("large");
    CHECK_EQ(st.allocs, 2); /* a, b: growth allocated nothing */
    CHECK_EQ(st.refills, 1);
    /* shrink below half: the tail is cached, the block keeps its place */
    unsigned char *s = harness_realloc(h, 10 * MB);
    CHECK(s == h && filled(s, 10 * MB, 8));
    CHECK_EQ(harness_stats("large").cached_bytes, 64 * MB); /* the budget's floor */
    harness_free(s);
}

/* Another box mapping fresh memory takes back what only the floor keeps
 * (ops.reclaim), up to what it mapped; the share of the live bytes stays. */
static void case_reclaim(void)
{
    harness_open("[route]\n1-4M = other\n4194305-max = large\n[box.large]\ncache_idle_ms = 0\n"
                 "[box.other]\nplugin = large\ncache_idle_ms = 0\n");
    unsigned char *a = harness_malloc(20 * MB);
    memset(a, 0x5a, 20 * MB);
    harness_free(a);
    CHECK_EQ(harness_stats("large").cached_bytes, 20 * MB + 64 * KB); /* the floor keeps it */
    unsigned char *b = harness_malloc(3 * MB); /* other maps 3 MB + a granule */
    uint64_t cached = harness_stats("large").cached_bytes;
    CHECK(cached <= 17 * MB && cached >= 16 * MB);
    CHECK_EQ(owner_of(a + 18 * MB), 0); /* the tail went back to the OS */
    CHECK(owner_of(a) != 0);             /* the head stays cached */
    harness_free(b);
    /* With 40 MB live the share (50%) covers the cache: nothing is taken. */
    unsigned char *live1 = harness_malloc(20 * MB), *live2 = harness_malloc(20 * MB);
    unsigned char *c = harness_malloc(8 * MB);
    harness_free(c);
    cached = harness_stats("large").cached_bytes;
    unsigned char *d = harness_malloc(3 * MB); /* other reuses its cached block: no map */
    unsigned char *e = harness_malloc(3 * MB); /* a fresh map: reclaim asked */
    CHECK_EQ(harness_stats("large").cached_bytes, cached);
    harness_free(d);
    harness_free(e);
    harness_free(live1);
    harness_free(live2);
}

int main(void)
{
    alarm(120); /* watchdog: a hang fails the suite */
    run_case("large reuse across sizes", case_cross_size);
    run_case("large pieces moved into a new mapping", case_pieces_moved);
    run_case("large budget follows live bytes", case_budget);
    run_case("large budget decays when idle", case_decay);
    run_case("large calloc clears reused memory only", case_calloc);
    run_case("large realloc grows in place and by remap", case_realloc_grow);
    run_case("large gives back the floor's pages when another box maps", case_reclaim);
    return 0;
}
