/* page_hot (PA1): LIFO reuse, slot limits, ownership, idle return. */
#include "pages_test.h"

#include <string.h>

#define ROUTE "[route]\n1-max = large\n[box.large]\nplugin = large\n[box.os]\nplugin = os_pages\n"

static const char *ini_small =
    ROUTE "[box.hot]\nplugin = page_hot\nbelow = os\ntls_slots = 4\nhot_size = 8\nidle_ms = 0\n";

static void case_lifo_and_ownership(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large"), hot = harness_owner("hot");
    char *a = pa_alloc("hot", 64 * KB, 0, me, 5);
    CHECK(a);
    CHECK_EQ(harness_lookup(a), entry(me, 5)); /* a miss comes from below, already the consumer's */
    memset(a, 0xc3, 64 * KB);
    pa_free("hot", a, 64 * KB);
    CHECK_EQ(harness_lookup(a), entry(hot, 0)); /* cached: ours */
    CHECK_EQ(harness_bytes_mapped("hot"), 64 * KB);

    char *b = pa_alloc("hot", 64 * KB, 0, me, 9);
    CHECK(b == a); /* LIFO: the same span back */
    CHECK_EQ(harness_lookup(b), entry(me, 9));
    /* still committed and not cleared: no page faults on reuse */
    CHECK_EQ(resident_pages(b, 64 * KB), page_count(64 * KB));
    CHECK(all_bytes(b, 64 * KB, 0xc3));

    /* LIFO order over several spans */
    char *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = pa_alloc("hot", 64 * KB, 0, me, 0);
    for (int i = 0; i < 3; i++)
        pa_free("hot", s[i], 64 * KB);
    for (int i = 2; i >= 0; i--)
        CHECK(pa_alloc("hot", 64 * KB, 0, me, 0) == s[i]);

    struct hak_stats st = harness_stats("hot");
    CHECK_EQ(st.allocs, 8);
    CHECK_EQ(st.refills, 4); /* a, s[0..2] from below; the rest were hits */
    CHECK_EQ(st.frees, 4);
    CHECK_EQ(st.drains, 0);
}

static void case_limits(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large"), hot = harness_owner("hot");
    enum { N = 20 };
    char *s[N];
    for (int i = 0; i < N; i++)
        s[i] = pa_alloc("hot", 64 * KB, 0, me, 0);
    for (int i = 0; i < N; i++)
        pa_free("hot", s[i], 64 * KB);
    /* 4 per thread + 8 shared kept, the 8 oldest given to os (unmapped) */
    struct hak_stats st = harness_stats("hot");
    CHECK_EQ(st.drains, 8);
    CHECK_EQ(st.cached_bytes, 12 * 64 * KB);
    CHECK_EQ(harness_bytes_mapped("hot"), 12 * 64 * KB);
    int kept = 0, gone = 0;
    for (int i = 0; i < N; i++) {
        uint32_t e = harness_lookup(s[i]);
        if (e == entry(hot, 0))
            kept++;
        else if (e == 0)
            gone++;
    }
    CHECK_EQ(kept, 12);
    CHECK_EQ(gone, 8);
    CHECK_EQ(harness_lookup(s[0]), 0); /* the oldest went first */
    CHECK_EQ(harness_lookup(s[N - 1]), entry(hot, 0));

    /* sizes it does not cache pass through */
    char *big = pa_alloc("hot", 128 * KB, 0, me, 2);
    CHECK(big);
    CHECK_EQ(harness_lookup(big + G64), entry(me, 2));
    pa_free("hot", big, 128 * KB);
    CHECK_EQ(harness_lookup(big), 0);
    /* so does an alignment above a granule */
    char *al = pa_alloc("hot", 64 * KB, 1 * MB, me, 2);
    CHECK(al && ((uintptr_t)al & (MB - 1)) == 0);

    /* trim: everything cached goes below */
    size_t released = harness_desc("hot")->ops.trim(harness_inst("hot"), harness_tls("hot"));
    CHECK_EQ(released, 12 * 64 * KB);
    CHECK_EQ(harness_bytes_mapped("hot"), 0);
    CHECK_EQ(harness_stats("hot").cached_bytes, 0);
}

static void case_thread_exit(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large");
    char *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = pa_alloc("hot", 64 * KB, 0, me, 0);
    for (int i = 0; i < 3; i++)
        pa_free("hot", s[i], 64 * KB);
    uint64_t refills = harness_stats("hot").refills;
    harness_thread_exit(); /* the thread's stack joins the shared one */
    CHECK_EQ(harness_stats("hot").cached_bytes, 3 * 64 * KB);
    CHECK_EQ(harness_bytes_mapped("hot"), 3 * 64 * KB);
    /* a new slice finds them there, most recent first */
    CHECK(pa_alloc("hot", 64 * KB, 0, me, 0) == s[2]);
    CHECK_EQ(harness_stats("hot").refills, refills);
}

static void case_disabled(void)
{
    harness_open(ROUTE "[box.hot]\nplugin = page_hot\nbelow = os\nenable = off\n");
    uint16_t me = harness_owner("large");
    char *a = pa_alloc("hot", 64 * KB, 0, me, 1);
    CHECK_EQ(harness_lookup(a), entry(me, 1));
    pa_free("hot", a, 64 * KB);
    CHECK_EQ(harness_lookup(a), 0); /* straight through to os: unmapped */
    CHECK_EQ(harness_stats("hot").cached_bytes, 0);
    CHECK_EQ(harness_stats("hot").drains, 1);
}

static void case_idle_return(void)
{
    harness_open(ROUTE "[box.hot]\nplugin = page_hot\nbelow = os\ntls_slots = 0\nidle_ms = 50\n");
    uint16_t me = harness_owner("large"), hot = harness_owner("hot");
    char *s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = pa_alloc("hot", 64 * KB, 0, me, 0);
        memset(s[i], 1, 64 * KB);
    }
    for (int i = 0; i < 4; i++)
        pa_free("hot", s[i], 64 * KB);
    CHECK_EQ(harness_bytes_mapped("hot"), 4 * 64 * KB);
    CHECK_EQ(harness_lookup(s[0]), entry(hot, 0));
    sleep_ms(80);
    /* any slow-path call sweeps: here a size passed through */
    pa_free("hot", pa_alloc("hot", 128 * KB, 0, me, 0), 128 * KB);
    CHECK_EQ(harness_bytes_mapped("hot"), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(harness_lookup(s[i]), 0); /* back to the OS through os_pages */
    CHECK_EQ(harness_stats("hot").cached_bytes, 0);
}

static void double_free(void)
{
    harness_open(ini_small);
    uint16_t me = harness_owner("large");
    char *a = pa_alloc("hot", 64 * KB, 0, me, 0);
    pa_free("hot", a, 64 * KB);
    pa_free("hot", a, 64 * KB);
}

int main(void)
{
    run_case("page_hot LIFO and ownership", case_lifo_and_ownership);
    run_case("page_hot slot limits and pass-through", case_limits);
    run_case("page_hot thread exit", case_thread_exit);
    run_case("page_hot enable = off", case_disabled);
    run_case("page_hot idle spans go back", case_idle_return);
    run_abort_case("page_hot double free", double_free, "span freed twice");
    return 0;
}
