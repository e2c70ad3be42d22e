/* large: any size and alignment, realloc by remap, the mapping cache,
 * bad frees. Driven through the host's dispatch (harness_malloc...). */
#include "pages_test.h"

#include <string.h>
#include <sys/prctl.h>

static const char *ini_large = "[route]\n1-max = large\n[box.large]\ncache_idle_ms = 0\n";

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 4096)
        p[i] = (unsigned char)(seed + i / 4096);
    p[n - 1] = (unsigned char)seed;
}

/* The first n bytes still hold what fill() wrote (one byte per page). */
static int filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 4096)
        if (p[i] != (unsigned char)(seed + i / 4096))
            return 0;
    return 1;
}

static void case_sizes(void)
{
    harness_open(ini_large);
    uint16_t large = harness_owner("large");
    static const size_t sizes[] = {1, 15, 4096, 64 * KB - 64, 64 * KB, 2 * MB + 1, 64 * MB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = harness_malloc(n);
        CHECK(p);
        CHECK(((uintptr_t)p & (HAK_MIN_ALIGN - 1)) == 0);
        CHECK_EQ(owner_of(p), large);
        CHECK_EQ(owner_of(p + n - 1), large);
        size_t u = harness_usable_size(p);
        CHECK(u >= n);
        memset(p, 0xee, u); /* all of the usable size is ours */
        harness_free(p);
    }
    struct hak_stats st = harness_stats("large");
    CHECK_EQ(st.allocs, 7);
    CHECK_EQ(st.frees, 7);
    CHECK_EQ(st.bytes_allocated, st.bytes_freed);
    /* size 0 is served as 1 */
    void *z = harness_malloc(0);
    CHECK(z);
    harness_free(z);
}

static void case_alignment(void)
{
    harness_open(ini_large);
    for (size_t align = 32; align <= 64 * MB; align *= 2) {
        size_t sizes[] = {1, 3 * MB};
        for (int k = 0; k < 2; k++) {
            unsigned char *p = harness_memalign(align, sizes[k]);
            CHECK(p);
            CHECK(((uintptr_t)p & (align - 1)) == 0);
            CHECK(harness_usable_size(p) >= sizes[k]);
            p[0] = 1;
            p[sizes[k] - 1] = 2;
            harness_free(p);
        }
    }
    /* 1 GB: only address space is reserved */
    unsigned char *g = harness_memalign((size_t)1 << 30, 100);
    CHECK(g && ((uintptr_t)g & (((size_t)1 << 30) - 1)) == 0);
    g[99] = 1;
    harness_free(g);
    CHECK_EQ(harness_stats("large").cached_bytes <= 64 * MB, 1);
}

static void case_realloc(void)
{
    harness_open(ini_large);
    uint16_t large = harness_owner("large");
    unsigned char *p = harness_malloc(3 * MB);
    fill(p, 3 * MB, 1);
    p = harness_realloc(p, 20 * MB); /* grow */
    CHECK(p && filled(p, 3 * MB, 1));
    CHECK(harness_usable_size(p) >= 20 * MB);
    CHECK_EQ(owner_of(p + 20 * MB - 1), large);
    fill(p, 20 * MB, 2);
    p = harness_realloc(p, 1 * MB); /* shrink: the tail goes back */
    CHECK(p && filled(p, 1 * MB, 2));
    size_t u = harness_usable_size(p);
    CHECK(u >= 1 * MB && u < 20 * MB);
    p = harness_realloc(p, 100 * MB); /* grow a lot */
    CHECK(p && filled(p, 1 * MB, 2));
    p[100 * MB - 1] = 9;
    CHECK_EQ(owner_of(p + 100 * MB - 1), large);
    /* small steps stay in place most of the time */
    for (size_t n = 100 * MB; n < 110 * MB; n += 64 * KB) {
        p = harness_realloc(p, n);
        CHECK(p);
        p[n - 1] = 3;
    }
    CHECK(filled(p, 1 * MB, 2));
    /* an aligned block reallocs too */
    unsigned char *a = harness_memalign(1 * MB, 2 * MB);
    fill(a, 2 * MB, 4);
    a = harness_realloc(a, 40 * MB);
    CHECK(a && filled(a, 2 * MB, 4));
    harness_free(a);
    harness_free(p);
}

static void case_cache_reuse(void)
{
    harness_open("[route]\n1-max = large\n[box.large]\ncache_slots = 2\ncache_idle_ms = 0\n");
    uint16_t large = harness_owner("large");
    unsigned char *p = harness_malloc(5 * MB);
    memset(p, 0xab, 5 * MB);
    harness_free(p);
    CHECK_EQ(owner_of(p), large); /* kept, still ours */
    CHECK_EQ(harness_stats("large").cached_bytes, harness_bytes_mapped("large"));
    unsigned char *q = harness_malloc(5 * MB);
    CHECK(q == p);
    CHECK_EQ(resident_pages(q - 64, 5 * MB), page_count(5 * MB)); /* no new faults */
    CHECK_EQ(harness_stats("large").refills, 1); /* mapped once */
    harness_free(q);
    /* calloc on a reused mapping must still read as zeros */
    unsigned char *c = harness_calloc(1, 5 * MB);
    CHECK(c && all_bytes(c, 5 * MB, 0));
    harness_free(c);
    /* a smaller request is carved from the cached extent */
    unsigned char *r = harness_malloc(3 * MB);
    CHECK(r == p);
    harness_free(r);
    /* however small: the rest stays cached */
    unsigned char *t = harness_malloc(1 * MB);
    CHECK(t == p);
    harness_free(t);
    /* an aligned request on a cached extent with another offset */
    unsigned char *al = harness_memalign(4096, 1 * MB);
    CHECK(al && ((uintptr_t)al & 4095) == 0);
    CHECK_EQ(harness_usable_size(al) >= 1 * MB, 1);
    harness_free(al);
    CHECK_EQ(harness_stats("large").refills, 1);
    /* cache_slots = 2: a third freed extent pushes the smallest out (unless
     * the kernel placed two of them side by side, when they join) */
    unsigned char *m[3];
    for (int i = 0; i < 3; i++)
        m[i] = harness_malloc(8 * MB + (size_t)i * 4 * MB);
    for (int i = 0; i < 3; i++)
        harness_free(m[i]);
    CHECK_EQ(owner_of(m[2]), large);
    CHECK(harness_stats("large").cached_bytes <= 36 * MB + 3 * 64 * KB);
    CHECK_EQ(harness_stats("large").cached_bytes, harness_bytes_mapped("large"));
    /* bigger than the budget (64M with nothing live): the head is kept */
    unsigned char *huge = harness_malloc(80 * MB);
    harness_free(huge);
    CHECK_EQ(owner_of(huge), large);
    CHECK_EQ(owner_of(huge + 79 * MB), 0);
    CHECK(harness_stats("large").cached_bytes <= 64 * MB);
    /* trim unmaps the cache */
    CHECK(harness_desc("large")->ops.trim(harness_inst("large"), harness_tls("large")) > 0);
    CHECK_EQ(harness_bytes_mapped("large"), 0);
}

static void case_idle(void)
{
    harness_open("[route]\n1-max = large\n[box.large]\ncache_idle_ms = 50\n");
    unsigned char *p = harness_malloc(4 * MB);
    harness_free(p);
    CHECK(harness_bytes_mapped("large") > 0);
    sleep_ms(80);
    unsigned char *q = harness_malloc(100); /* any call of the box sweeps */
    CHECK_EQ(owner_of(p), 0);
    CHECK_EQ(harness_bytes_mapped("large"), 64 * KB);
    harness_free(q);
}

/* huge = madvise: blocks of 2 MB and more are whole 2 MB pages at 2 MB
 * boundaries (fresh, carved, moved, shrunk or trimmed), so the cache never
 * cuts through a huge page; under THP `never` blocks are whole granules. */
static void huge_checks(int never)
{
    harness_open("[route]\n1-max = large\n[box.large]\ncache_idle_ms = 0\nhuge = madvise\n");
    CHECK_EQ(harness_host()->thp_mode() == HAK_THP_NEVER, never);
    size_t unit = never ? 64 * KB : 2 * MB;
    unsigned char *a = harness_malloc(5 * MB + 1);
    unsigned char *b = harness_malloc(5 * MB + 1);
    unsigned char *gap = harness_malloc(3 * MB); /* keeps a and b from joining */
    CHECK(a && b && gap);
    CHECK_EQ(harness_usable_size(a), (never ? 5 * MB + 64 * KB : 6 * MB) - 64);
    if (!never)
        CHECK((((uintptr_t)a - 64) & (2 * MB - 1)) == 0);
    fill(a, 5 * MB, 1);
    fill(b, 5 * MB, 2);
    harness_free(a);
    harness_free(b);
    CHECK_EQ(harness_stats("large").cached_bytes % unit, 0);
    /* no extent fits 11 MB: the two are moved into one fresh block, whole
     * huge pages to 2 MB boundaries */
    unsigned char *c = harness_malloc(11 * MB);
    CHECK(c);
    CHECK_EQ(harness_usable_size(c) + 64, never ? 11 * MB + 64 * KB : 12 * MB);
    CHECK_EQ(harness_bytes_mapped("large") % unit, 0);
    memset(c, 0x3c, 11 * MB);
    /* a shrink gives back whole huge pages only */
    c = harness_realloc(c, 1 * MB);
    CHECK(c && c[1 * MB - 1] == 0x3c);
    CHECK_EQ((harness_usable_size(c) + 64) % unit, 0);
    CHECK_EQ(harness_stats("large").cached_bytes % unit, 0);
    harness_free(c);
    harness_free(gap);
    CHECK_EQ(harness_stats("large").cached_bytes % unit, 0);
    CHECK(harness_desc("large")->ops.trim(harness_inst("large"), harness_tls("large")) > 0);
    CHECK_EQ(harness_bytes_mapped("large"), 0);
}

static void case_huge(void) { huge_checks(pages_thp_never()); }

static void case_huge_never(void)
{
    CHECK(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0);
    huge_checks(1);
}

static void bad_free_interior(void)
{
    harness_open(ini_large);
    char *p = harness_malloc(3 * MB);
    harness_free(p + 16);
}

static void bad_free_far_interior(void)
{
    harness_open(ini_large);
    char *p = harness_malloc(3 * MB);
    harness_free(p + 2 * G64); /* same offset in a later granule */
}

static void bad_free_double(void)
{
    harness_open(ini_large);
    char *p = harness_malloc(3 * MB);
    harness_free(p);
    harness_free(p);
}

int main(void)
{
    run_case("large sizes", case_sizes);
    run_case("large alignment", case_alignment);
    run_case("large realloc", case_realloc);
    run_case("large cache reuse", case_cache_reuse);
    run_case("large idle cache", case_idle);
    run_case("large huge = madvise: whole huge pages (this machine's THP mode)", case_huge);
    run_case("large huge = madvise under PR_SET_THP_DISABLE", case_huge_never);
    run_abort_case("large free of an interior pointer", bad_free_interior, "not allocated");
    run_abort_case("large free in a later granule", bad_free_far_interior, "not allocated");
    run_abort_case("large double free", bad_free_double, "double free");
    return 0;
}
