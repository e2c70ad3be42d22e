/* PA1 -> PA2 -> PA3 chained, and with one layer removed. */
#include "pages_test.h"

#include <string.h>

#define ROUTE "[route]\n1-max = large\n[box.large]\nplugin = large\n"

static const char *ini_full =
    ROUTE "[box.hot]\nplugin = page_hot\nbelow = warm\ntls_slots = 2\nhot_size = 2\nidle_ms = 50\n"
    "[box.warm]\nplugin = span_warm\nbelow = os\nidle_ms = 50\n"
    "[box.os]\nplugin = os_pages\nrelease = decommit\n";

static void case_full_chain(void)
{
    harness_open(ini_full);
    uint16_t me = harness_owner("large"), hot = harness_owner("hot"),
             warm = harness_owner("warm"), os = harness_owner("os");
    enum { N = 6 };
    char *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = pa_alloc("hot", 64 * KB, 0, me, 3);
        CHECK_EQ(harness_lookup(s[i]), entry(me, 3));
        memset(s[i], 0x11 * (i + 1), 64 * KB);
    }
    for (int i = 0; i < N; i++)
        pa_free("hot", s[i], 64 * KB);
    /* hot keeps 2 + 2; what it pushed out went down to warm, still committed */
    int in_hot = 0, in_warm = 0;
    for (int i = 0; i < N; i++) {
        uint32_t e = harness_lookup(s[i]);
        in_hot += e == entry(hot, 0);
        in_warm += e == entry(warm, 0);
    }
    CHECK_EQ(in_hot, 4);
    CHECK_EQ(in_warm, 2);
    CHECK_EQ(harness_lookup(s[0]), entry(warm, 0));
    CHECK_EQ(resident_pages(s[0], 64 * KB), page_count(64 * KB));

    /* 2 MB spans skip hot and are cached by warm */
    char *big = pa_alloc("hot", 2 * MB, 2 * MB, me, 4);
    CHECK_EQ(harness_lookup(big), entry(me, 4));
    pa_free("hot", big, 2 * MB);
    CHECK_EQ(harness_lookup(big), entry(warm, 2));
    CHECK(pa_alloc("hot", 2 * MB, 2 * MB, me, 5) == big);
    CHECK_EQ(harness_lookup(big), entry(me, 5));
    pa_free("hot", big, 2 * MB);

    /* idle: hot's shared spans go to warm, warm's to os (decommitted, kept) */
    sleep_ms(80);
    pa_free("hot", pa_alloc("hot", 192 * KB, 0, me, 0), 192 * KB);
    CHECK_EQ(harness_stats("hot").cached_bytes, 2 * 64 * KB); /* the thread's own 2 */
    sleep_ms(80);
    pa_free("hot", pa_alloc("hot", 192 * KB, 0, me, 0), 192 * KB);
    CHECK_EQ(harness_bytes_mapped("warm"), 0);
    CHECK_EQ(harness_lookup(s[0]), entry(os, 0));
    CHECK_EQ(resident_pages(s[0], 64 * KB), 0); /* back to the OS */
    CHECK_EQ(resident_pages(big, 2 * MB), 0);
    CHECK_EQ(harness_lookup(big), entry(os, 0));
}

static void case_without_pa1(void)
{
    harness_open(ROUTE "[box.warm]\nplugin = span_warm\nbelow = os\n[box.os]\nplugin = os_pages\n");
    uint16_t me = harness_owner("large"), warm = harness_owner("warm");
    char *p = pa_alloc("warm", 64 * KB, 0, me, 1);
    pa_free("warm", p, 64 * KB);
    CHECK_EQ(harness_lookup(p), entry(warm, 0));
    CHECK(pa_alloc("warm", 64 * KB, 0, me, 2) == p);
    CHECK_EQ(harness_lookup(p), entry(me, 2));
}

static void case_without_pa2(void)
{
    harness_open(ROUTE "[box.hot]\nplugin = page_hot\nbelow = os\n[box.os]\nplugin = os_pages\n");
    uint16_t me = harness_owner("large"), hot = harness_owner("hot");
    char *p = pa_alloc("hot", 64 * KB, 0, me, 1);
    pa_free("hot", p, 64 * KB);
    CHECK_EQ(harness_lookup(p), entry(hot, 0));
    CHECK(pa_alloc("hot", 64 * KB, 0, me, 2) == p);
    char *big = pa_alloc("hot", 2 * MB, 0, me, 2);
    pa_free("hot", big, 2 * MB);
    CHECK_EQ(harness_lookup(big), 0); /* nothing caches 2 MB here */
}

int main(void)
{
    run_case("hot -> warm -> os", case_full_chain);
    run_case("warm -> os (no PA1)", case_without_pa1);
    run_case("hot -> os (no PA2)", case_without_pa2);
    return 0;
}
