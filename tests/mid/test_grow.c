/* Buffers grown in steps through l25 and large: l25 grows in place into
 * free granules and keeps a block shrunk by less than half; a block that
 * must move gets room to double, and a mapping grows by remap, so a buffer
 * grown by fixed steps or by doubling is copied at most once per doubling
 * of its size. Copies are counted as new blocks (each move is one). */
#include "mid_test.h"

#include <string.h>
#include <unistd.h>

static uint64_t blocks_made(void)
{
    return harness_stats("l25").allocs + harness_stats("large").allocs +
           harness_stats("pool").allocs;
}

/* Grow from `first` by `step` (0: doubling) up to `last`, writing each new
 * part; returns the number of copies, checking each one happened at a
 * size at least twice the previous copy's. */
static unsigned grow(size_t first, size_t step, size_t last)
{
    unsigned char *p = harness_malloc(first);
    CHECK(p);
    memset(p, 1, first);
    size_t size = first, copied_at = 0;
    unsigned copies = 0;
    uint64_t made = blocks_made();
    while (size < last) {
        size_t next = step ? size + step : size * 2;
        unsigned char *q = harness_realloc(p, next);
        CHECK(q);
        if (blocks_made() != made) { /* moved to a new block: a copy */
            made = blocks_made();
            CHECK(copied_at == 0 || size >= 2 * copied_at);
            copied_at = size;
            copies++;
        }
        CHECK(q[0] == 1 && q[size - 1] == (unsigned char)(step ? size / step : 1));
        memset(q + size, (int)(unsigned char)(step ? next / step : 1), next - size);
        p = q;
        size = next;
    }
    for (size_t off = 0; off < size; off += 4096)
        CHECK(p[off] == (unsigned char)(step ? off / step + 1 : 1));
    harness_free(p);
    return copies;
}

static void case_fixed_steps(void)
{
    harness_open(mid_config("", "", ""));
    /* 800 KB steps to 200 MB: 8 doublings from the first step */
    unsigned copies = grow(800 * KB, 800 * KB, 200 * MB);
    CHECK(copies <= 8);
    CHECK(copies <= 3); /* in fact: into a doubled l25 block, into large, then remaps */
    CHECK_EQ(harness_stats("large").allocs, 1);
}

static void case_doubling(void)
{
    harness_open(mid_config("", "", ""));
    /* 64 KB doubling to 128 MB: 11 doublings; large never copies */
    unsigned copies = grow(64 * KB, 0, 128 * MB);
    CHECK(copies <= 11);
    CHECK_EQ(harness_stats("large").allocs, 1);
}

static void case_l25_in_place(void)
{
    harness_open(mid_config("", "", "cache_count = 0"));
    unsigned char *p = harness_malloc(640 * KB);
    memset(p, 9, 640 * KB);
    unsigned char *q = harness_realloc(p, 1200 * KB); /* the granules after are free */
    CHECK(q == p);
    CHECK_EQ(harness_usable_size(q), 1216 * KB);
    unsigned char *r = harness_realloc(q, 700 * KB); /* more than half: kept whole */
    CHECK(r == q);
    CHECK_EQ(harness_usable_size(r), 1216 * KB);
    CHECK(r[0] == 9 && r[640 * KB - 1] == 9);
    harness_free(r);
}

int main(void)
{
    alarm(120); /* watchdog: a hang fails the suite */
    run_case("stepped growth copies once per doubling", case_fixed_steps);
    run_case("doubling growth: large never copies", case_doubling);
    run_case("l25 grows and keeps in place", case_l25_in_place);
    return 0;
}
