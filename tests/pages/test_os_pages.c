/* os_pages (PA3): spans straight from the host, unmapped or decommitted. */
#include "pages_test.h"

#include <string.h>

static const char *ini_unmap =
    "[route]\n1-max = large\n"
    "[box.large]\nplugin = large\n"
    "[box.os]\nplugin = os_pages\n";

static const char *ini_decommit =
    "[route]\n1-max = large\n"
    "[box.large]\nplugin = large\n"
    "[box.os]\nplugin = os_pages\nrelease = decommit\nkeep_slots = 2\n";

static void case_map_unmap(void)
{
    harness_open(ini_unmap);
    uint16_t me = harness_owner("large"); /* any real owner will do as consumer */
    char *p = pa_alloc("os", 100 * KB, 0, me, 7);
    CHECK(p);
    CHECK(((uintptr_t)p & (G64 - 1)) == 0);
    /* rounded to two granules, both recorded to the consumer */
    CHECK_EQ(harness_lookup(p), entry(me, 7));
    CHECK_EQ(harness_lookup(p + G64), entry(me, 7));
    CHECK(all_bytes(p, 128 * KB, 0));
    memset(p, 0x5a, 128 * KB);
    pa_free("os", p, 100 * KB);
    CHECK_EQ(harness_lookup(p), 0);
    CHECK_EQ(harness_lookup(p + G64), 0);

    char *a = pa_alloc("os", 2 * MB, 2 * MB, me, 1);
    CHECK(a && ((uintptr_t)a & (2 * MB - 1)) == 0);
    pa_free("os", a, 2 * MB);

    struct hak_stats s = harness_stats("os");
    CHECK_EQ(s.allocs, 2);
    CHECK_EQ(s.frees, 2);
    CHECK_EQ(s.refills, 2); /* two host->map calls */
    CHECK_EQ(s.drains, 2);  /* two host->unmap calls */
    CHECK_EQ(s.bytes_allocated, 128 * KB + 2 * MB);
    CHECK_EQ(s.bytes_freed, 128 * KB + 2 * MB);
    CHECK_EQ(s.cached_bytes, 0);
}

static void case_decommit_keep(void)
{
    harness_open(ini_decommit);
    uint16_t me = harness_owner("large"), os = harness_owner("os");
    char *p = pa_alloc("os", 128 * KB, 0, me, 3);
    CHECK(p);
    memset(p, 0x77, 128 * KB);
    CHECK_EQ(resident_pages(p, 128 * KB), page_count(128 * KB));
    pa_free("os", p, 128 * KB);
    /* kept: owned by os_pages, physical pages gone */
    CHECK_EQ(harness_lookup(p), entry(os, 0));
    CHECK_EQ(harness_bytes_mapped("os"), 128 * KB);
    CHECK_EQ(resident_pages(p, 128 * KB), 0);
    CHECK_EQ(harness_stats("os").cached_bytes, 128 * KB);

    /* same size again: the kept range, zeroed, handed to the consumer */
    char *q = pa_alloc("os", 128 * KB, 0, me, 4);
    CHECK(q == p);
    CHECK_EQ(harness_lookup(q + G64), entry(me, 4));
    CHECK(all_bytes(q, 128 * KB, 0));
    CHECK_EQ(harness_stats("os").refills, 1); /* no second map */

    /* keep_slots = 2: the third span freed is unmapped */
    char *s[3];
    pa_free("os", q, 128 * KB);
    s[0] = pa_alloc("os", 64 * KB, 0, me, 0);
    s[1] = pa_alloc("os", 64 * KB, 0, me, 0);
    s[2] = pa_alloc("os", 64 * KB, 0, me, 0);
    for (int i = 0; i < 3; i++)
        pa_free("os", s[i], 64 * KB);
    CHECK_EQ(harness_lookup(s[0]), entry(os, 0));
    CHECK_EQ(harness_lookup(s[1]), 0);
    CHECK_EQ(harness_lookup(s[2]), 0);
    CHECK_EQ(harness_bytes_mapped("os"), 128 * KB + 64 * KB);

    /* trim unmaps what is kept */
    size_t released = harness_desc("os")->ops.trim(harness_inst("os"), harness_tls("os"));
    CHECK_EQ(released, 192 * KB);
    CHECK_EQ(harness_lookup(p), 0);
    CHECK_EQ(harness_bytes_mapped("os"), 0);
}

int main(void)
{
    run_case("os_pages map/unmap", case_map_unmap);
    run_case("os_pages decommit and keep", case_decommit_keep);
    return 0;
}
