/*
 * huge_span (the hugepage-aware span cache) and os_pages' huge = madvise:
 * spans packed into 2 MB pages, the densest partly used page first, wholly
 * free pages kept or returned by policy, THP mode `never` respected.
 * Placement checks hold in every THP mode (the filler works on addresses);
 * huge-page backing itself is checked by huge_coverage.py.
 */
#include "pages_test.h"

#include <string.h>
#include <sys/prctl.h>

#define HUGE ((size_t)2 << 20)

static const char *ini_huge =
    "[host]\non_bad_free = warn\n"
    "[route]\n1-max = large\n"
    "[box.large]\nplugin = large\n"
    "[box.huge]\nplugin = huge_span\nbelow = os\nkeep_free = 1\nidle_ms = 0\n"
    "[box.os]\nplugin = os_pages\nhuge = madvise\n";

static const char *ini_os_huge =
    "[route]\n1-max = large\n"
    "[box.large]\nplugin = large\n"
    "[box.os]\nplugin = os_pages\nhuge = madvise\n";

static uintptr_t page_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(HUGE - 1); }

/* Small spans share one huge page; a 2 MB span gets its own, aligned. */
static void case_packing(void)
{
    harness_open(ini_huge);
    uint16_t me = harness_owner("large"), hs = harness_owner("huge");
    char *s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = pa_alloc("huge", 64 * KB, 0, me, (uint16_t)i);
        CHECK(s[i] && ((uintptr_t)s[i] & (G64 - 1)) == 0);
        CHECK(page_of(s[i]) == page_of(s[0]));
        CHECK_EQ(harness_lookup(s[i]), entry(me, (uint16_t)i));
        memset(s[i], 0x11, 64 * KB);
    }
    CHECK_EQ(harness_stats("huge").refills, 1); /* one huge page from below */
    char *a = pa_alloc("huge", 300 * KB, 256 * KB, me, 9); /* 5 granules, aligned */
    CHECK(a && ((uintptr_t)a & (256 * KB - 1)) == 0 && page_of(a) == page_of(s[0]));
    char *w = pa_alloc("huge", HUGE, HUGE, me, 1);
    CHECK(w && ((uintptr_t)w & (HUGE - 1)) == 0 && page_of(w) != page_of(s[0]));
    CHECK_EQ(harness_stats("huge").refills, 2);
    /* free granules of a partly used page belong to huge_span */
    CHECK_EQ(harness_lookup(s[0] + 5 * 64 * KB + 256 * KB), entry(hs, 0));
    pa_free("huge", w, HUGE);
    pa_free("huge", a, 300 * KB);
    for (int i = 0; i < 4; i++)
        pa_free("huge", s[i], 64 * KB);
    struct hak_stats st = harness_stats("huge");
    CHECK_EQ(st.allocs, 6);
    CHECK_EQ(st.frees, 6);
}

/* Never a free page broken while a partly used one has room; the densest
 * partly used page first (Temeraire's HugeFiller order). */
static void case_densest_first(void)
{
    harness_open(ini_huge);
    uint16_t me = harness_owner("large");
    /* page A: 30 granules used; page B: 2 used; one free page kept */
    char *a = pa_alloc("huge", 30 * 64 * KB, 0, me, 0);
    char *b = pa_alloc("huge", HUGE, HUGE, me, 0);    /* B whole for now */
    char *f = pa_alloc("huge", HUGE, HUGE, me, 0);    /* to become the kept free page */
    CHECK(a && b && f && page_of(a) != page_of(b) && page_of(b) != page_of(f));
    pa_free("huge", f, HUGE);                         /* kept: keep_free = 1 */
    CHECK_EQ(owner_of(f), harness_owner("huge"));
    pa_free("huge", b + 2 * 64 * KB, HUGE - 2 * 64 * KB); /* B keeps 2 granules */
    uint64_t refills = harness_stats("huge").refills;
    char *x = pa_alloc("huge", 64 * KB, 0, me, 0);
    CHECK(page_of(x) == page_of(a)); /* A (30 used) before B (2 used) and the free page */
    char *y = pa_alloc("huge", 64 * KB, 0, me, 0);
    CHECK(page_of(y) == page_of(a)); /* A full now */
    char *z = pa_alloc("huge", 128 * KB, 0, me, 0);
    CHECK(page_of(z) == page_of(b)); /* B has room: the free page stays whole */
    CHECK_EQ(owner_of(f), harness_owner("huge"));
    CHECK_EQ(harness_stats("huge").refills, refills);
    char *big = pa_alloc("huge", 29 * 64 * KB, 0, me, 0); /* B has 28 free: the free page */
    CHECK(page_of(big) == page_of(f));
    CHECK_EQ(harness_stats("huge").refills, refills);
}

/* Wholly free pages: keep_free of them stay (committed, owned by the box),
 * the rest go to below (unmapped); trim gives back the kept ones. */
static void case_release(void)
{
    harness_open(ini_huge);
    uint16_t me = harness_owner("large"), hs = harness_owner("huge");
    char *p[2][4];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) {
            p[k][i] = pa_alloc("huge", 512 * KB, 0, me, 0);
            memset(p[k][i], 0x22, 512 * KB);
        }
    CHECK(page_of(p[0][0]) == page_of(p[0][3]) && page_of(p[1][0]) == page_of(p[1][3]));
    CHECK(page_of(p[0][0]) != page_of(p[1][0]));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++)
            pa_free("huge", p[k][i], 512 * KB);
    /* the newest free page is kept, the older one went down and out */
    CHECK_EQ(harness_lookup(p[1][0]), entry(hs, 0));
    CHECK_EQ(resident_pages(p[1][0], HUGE), page_count(HUGE));
    CHECK_EQ(harness_lookup(p[0][0]), 0);
    CHECK_EQ(harness_stats("huge").drains, 1);
    CHECK_EQ(harness_stats("huge").cached_bytes, HUGE);
    CHECK_EQ(harness_bytes_mapped("huge"), HUGE);
    /* reuse: a request takes the kept page, no refill */
    char *q = pa_alloc("huge", 64 * KB, 0, me, 0);
    CHECK(page_of(q) == page_of(p[1][0]));
    CHECK_EQ(harness_stats("huge").refills, 2);
    pa_free("huge", q, 64 * KB);
    size_t released = harness_desc("huge")->ops.trim(harness_inst("huge"), harness_tls("huge"));
    CHECK_EQ(released, HUGE);
    CHECK_EQ(harness_lookup(p[1][0]), 0);
    CHECK_EQ(harness_bytes_mapped("huge"), 0);
    CHECK_EQ(harness_stats("huge").cached_bytes, 0);
}

/* A span freed twice is refused (reported) and changes nothing. */
static void case_double_free(void)
{
    harness_open(ini_huge);
    uint16_t me = harness_owner("large");
    char *a = pa_alloc("huge", 64 * KB, 0, me, 0);
    char *b = pa_alloc("huge", 64 * KB, 0, me, 0);
    pa_free("huge", a, 64 * KB);
    pa_free("huge", a, 64 * KB); /* warned, dropped */
    char *c = pa_alloc("huge", 64 * KB, 0, me, 0);
    CHECK(c == a);
    char *d = pa_alloc("huge", 64 * KB, 0, me, 0);
    CHECK(d != a && d != b && d != c); /* a was not handed out twice */
}

/* os_pages alone in huge mode: spans below 2 MB carved from one 2 MB page,
 * zeroed on reuse, the page unmapped once wholly free; bigger spans 2 MB
 * aligned. Under THP `never` it is plain os_pages. */
static void os_huge_checks(int never)
{
    harness_open(ini_os_huge);
    uint16_t me = harness_owner("large");
    CHECK_EQ(harness_host()->thp_mode() == HAK_THP_NEVER, never);
    char *a = pa_alloc("os", 64 * KB, 0, me, 1);
    char *b = pa_alloc("os", 128 * KB, 0, me, 2);
    CHECK(a && b && all_bytes(a, 64 * KB, 0) && all_bytes(b, 128 * KB, 0));
    CHECK_EQ(harness_lookup(b + G64), entry(me, 2));
    memset(a, 0x5a, 64 * KB);
    if (!never)
        CHECK(page_of(a) == page_of(b)); /* carved from one page */
    CHECK_EQ(harness_stats("os").refills, never ? 2 : 1);
    pa_free("os", a, 64 * KB);
    char *c = pa_alloc("os", 64 * KB, 0, me, 3);
    CHECK(all_bytes(c, 64 * KB, 0)); /* reused or fresh, it reads as zeros */
    pa_free("os", c, 64 * KB);
    pa_free("os", b, 128 * KB);
    CHECK_EQ(harness_lookup(b), 0); /* wholly free: unmapped */
    CHECK_EQ(harness_bytes_mapped("os"), 0);
    char *w = pa_alloc("os", 3 * MB, 0, me, 0);
    CHECK(w);
    if (!never)
        CHECK(((uintptr_t)w & (HUGE - 1)) == 0);
    pa_free("os", w, 3 * MB);
    CHECK_EQ(harness_bytes_mapped("os"), 0);
}

static void case_os_huge(void) { os_huge_checks(pages_thp_never()); }

static void case_os_huge_never(void)
{
    CHECK(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0);
    os_huge_checks(1);
}

int main(void)
{
    run_case("huge_span packs small spans into one huge page", case_packing);
    run_case("huge_span fills the densest partly used page first", case_densest_first);
    run_case("huge_span keeps keep_free free pages, returns the rest", case_release);
    run_case("huge_span refuses a double free", case_double_free);
    run_case("os_pages huge = madvise (this machine's THP mode)", case_os_huge);
    run_case("os_pages huge = madvise under PR_SET_THP_DISABLE", case_os_huge_never);
    return 0;
}
