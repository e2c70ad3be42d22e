/*
 * The tiny fronts (tiny_unified_cache, tiny_hot_ring) through the host and
 * through their ops: boundaries, the class interface they forward, exact
 * refill/drain counts, per-class capacities, misuse detected through a
 * front (also after a block went below), threads exiting with full caches.
 */
#include "tiny_test.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint16_t owner_of(const void *p) { return (uint16_t)(harness_lookup(p) >> 16); }
static uint16_t tag_of(const void *p) { return (uint16_t)harness_lookup(p); }

static const size_t edge_sizes[] = {0, 1, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128,
                                    129, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024};
#define EDGES (sizeof edge_sizes / sizeof edge_sizes[0])

static void case_boundaries(void)
{
    void *blocks[EDGES];
    tiny_open(tiny_stack_now, NULL, NULL, NULL);
    uint16_t ss = harness_owner("ss");
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < EDGES; i++) {
            size_t n = edge_sizes[i];
            void *p = harness_malloc(n);
            CHECK(p != NULL);
            CHECK_EQ((uintptr_t)p & 15, 0);
            unsigned cls = tiny_class_of(n ? n : 1);
            CHECK_EQ(harness_usable_size(p), tiny_class_size(cls));
            CHECK_EQ(owner_of(p), ss);
            CHECK_EQ(tag_of(p), cls);
            fill_block(p, tiny_class_size(cls), (unsigned)i);
            blocks[i] = p;
        }
        for (size_t i = 0; i < EDGES; i++) {
            CHECK(block_intact(blocks[i], harness_usable_size(blocks[i]), (unsigned)i));
            harness_free(blocks[i]);
        }
    }
    /* The front's usable_size (the host asks the owner) agrees. */
    void *p = harness_malloc(100);
    CHECK_EQ(OPS("tiny").usable_size(harness_tls("tiny"), p, tag_of(p)), 128);
    harness_free(p);
}

/* The class interface a front forwards, so fronts stack. */
static void case_class_interface(void)
{
    static void *out[500];
    tiny_open(tiny_stack_now, NULL, NULL, NULL);
    void *inst = harness_inst("tiny"), *tls = harness_tls("tiny");
    CHECK_EQ(OPS("tiny").class_count(inst), TINY_CLASSES);
    for (unsigned c = 0; c < TINY_CLASSES; c++)
        CHECK_EQ(OPS("tiny").class_size(inst, c), tiny_class_size(c));
    /* Some blocks in the front first, so a batch is served from both. */
    void *warm = harness_malloc(64);
    harness_free(warm);
    uint32_t got = OPS("tiny").alloc_batch(tls, 2, out, 500);
    CHECK_EQ(got, 500);
    for (uint32_t i = 0; i < got; i++) {
        CHECK_EQ(tag_of(out[i]), 2);
        fill_block(out[i], 64, 7);
    }
    for (uint32_t i = 0; i < got; i++)
        CHECK(block_intact(out[i], 64, 7));
    OPS("tiny").free_batch(tls, 2, out, got);
    /* Everything is reusable through the host afterwards. */
    for (uint32_t i = 0; i < got; i++)
        out[i] = harness_malloc(64);
    for (uint32_t i = 0; i < got; i++)
        harness_free(out[i]);
}

/* capacity 8, refill 4, drain 4: a sequence with known counts. */
static void case_refill_drain_exact(void)
{
    void *b[10];
    const char *params = tiny_stack_now == STACK_UC ? "capacity = 8\nrefill = 4\ndrain = 4"
                                                    : "ring = 8\nrefill = 4\ndrain = 4";
    tiny_open(tiny_stack_now, NULL, NULL, params);
    void *p = harness_malloc(64); /* refill 4, pop 1: 3 cached */
    struct hak_stats f = harness_stats("tiny"), s = harness_stats("ss");
    CHECK_EQ(f.allocs, 1);
    CHECK_EQ(f.refills, 1);
    CHECK_EQ(f.cached_bytes, 3 * 64);
    CHECK_EQ(s.allocs, 4);
    harness_free(p); /* 4 cached */
    for (int i = 0; i < 10; i++)
        b[i] = harness_malloc(64); /* 4 pops, refill, 4, refill, 2: 2 cached */
    f = harness_stats("tiny");
    CHECK_EQ(f.refills, 3);
    CHECK_EQ(f.cached_bytes, 2 * 64);
    CHECK_EQ(harness_stats("ss").allocs, 12);
    for (int i = 0; i < 10; i++)
        harness_free(b[i]); /* full at the 6th; the 7th drains 4: 8 cached */
    f = harness_stats("tiny");
    s = harness_stats("ss");
    CHECK_EQ(f.allocs, 11);
    CHECK_EQ(f.frees, 11);
    CHECK_EQ(f.bytes_allocated, 11 * 64);
    CHECK_EQ(f.drains, 1);
    CHECK_EQ(f.cached_bytes, 8 * 64);
    CHECK_EQ(s.frees, 4);
    /* Thread exit drains everything below. */
    harness_thread_exit();
    f = harness_stats("tiny");
    s = harness_stats("ss");
    CHECK_EQ(f.cached_bytes, 0);
    CHECK_EQ(s.frees, 12);
    CHECK_EQ(s.allocs, 12);
}

/* capacity_c2 / ring_c2 override: class 2 holds 4, class 3 the default. */
static void case_class_capacity(void)
{
    void *b[40];
    const char *params = tiny_stack_now == STACK_UC ? "capacity = 32\ncapacity_c2 = 4\nrefill = 2"
                                                    : "ring = 32\nring_c2 = 4\nrefill = 2";
    tiny_open(tiny_stack_now, NULL, NULL, params);
    for (int i = 0; i < 40; i++)
        b[i] = harness_malloc(64);
    for (int i = 0; i < 40; i++)
        harness_free(b[i]);
    CHECK(harness_stats("tiny").cached_bytes <= 4 * 64);
    for (int i = 0; i < 40; i++)
        b[i] = harness_malloc(128);
    for (int i = 0; i < 40; i++)
        harness_free(b[i]);
    uint64_t cached = harness_stats("tiny").cached_bytes;
    CHECK(cached > 4 * 64 + 4 * 128 && cached <= 4 * 64 + 32 * 128);
}

/* A 1-slot cache with the default drain: every block freed comes back to
 * the backend (the default drain once rounded down to 0, and the ring
 * overwrote its only block on each free). */
static void case_one_slot(void)
{
    void *b[16];
    const char *params = tiny_stack_now == STACK_UC ? "capacity_c2 = 1" : "ring_c2 = 1";
    tiny_open(tiny_stack_now, NULL, NULL, params);
    for (int i = 0; i < 16; i++)
        b[i] = harness_malloc(64);
    for (int i = 0; i < 16; i++)
        harness_free(b[i]);
    struct hak_stats f = harness_stats("tiny"), s = harness_stats("ss");
    CHECK(f.cached_bytes <= 64);
    /* what the backend handed out is back, but what the front holds */
    CHECK_EQ(s.allocs - s.frees, f.cached_bytes / 64);
}

static void case_bad_ring(void)
{
    char err[1024];
    static const char text[] =
        "[route]\n1-1K = tiny\n1025-max = large\n"
        "[box.tiny]\nplugin = tiny_hot_ring\nbelow = ss\nring = 48\n"
        "[box.ss]\nplugin = superslab\npages = os\n"
        "[box.os]\nplugin = os_pages\n[box.large]\nplugin = large\n";
    CHECK(harness_try_open(text, err, sizeof err) != 0);
    if (!strstr(err, "powers of two"))
        fprintf(stderr, "unexpected error: %s\n", err);
    CHECK(strstr(err, "powers of two"));
}

/* ---- misuse through a front ------------------------------------------- */

static void double_free_cached(void)
{
    tiny_open(tiny_stack_now, NULL, NULL, NULL);
    void *p = harness_malloc(64);
    harness_free(p);
    harness_free(p);
}

/* The block has left the front for superslab's lists: still caught. */
static void double_free_drained(void)
{
    void *b[16];
    tiny_open(tiny_stack_now, NULL, NULL, tiny_stack_now == STACK_UC ? "capacity = 4" : "ring = 4");
    void *p = harness_malloc(64);
    for (int i = 0; i < 16; i++)
        b[i] = harness_malloc(64);
    harness_free(p); /* the oldest in the cache */
    for (int i = 0; i < 16; i++)
        harness_free(b[i]);
    harness_free(p);
}

static void interior_free(void)
{
    tiny_open(tiny_stack_now, NULL, NULL, NULL);
    char *p = harness_malloc(256);
    harness_free(p + 128);
}

static void case_warn_mode(void)
{
    tiny_open(tiny_stack_now, "on_bad_free = warn", NULL, NULL);
    void *p = harness_malloc(64);
    harness_free(p);
    harness_free(p);
    harness_free((char *)p + 32);
    void *a = harness_malloc(64), *b = harness_malloc(64);
    CHECK(a != b);
    CHECK_EQ(harness_stats("tiny").frees, 1);
    harness_free(a);
    harness_free(b);
}

/* A front with the block-start check off accepts what superslab would not
 * place (the check exists for below boxes with other layouts). */
static void case_check_off(void)
{
    tiny_open(tiny_stack_now, NULL, NULL, "check_block_start = off");
    void *p = harness_malloc(64);
    harness_free(p);
    CHECK(harness_malloc(64) == p);
    harness_free(p);
}

/* fork: the child frees the parent's blocks and allocates; the front's and
 * superslab's locks were taken and released around the fork. */
static void case_fork(void)
{
    void *p[200];
    tiny_open(tiny_stack_now, NULL, NULL, NULL);
    for (int i = 0; i < 200; i++)
        p[i] = harness_malloc((size_t)(i % 64) * 16 + 1);
    for (int i = 0; i < 100; i++)
        harness_free(p[i]); /* some cached in the front */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int i = 100; i < 200; i++)
            harness_free(p[i]);
        for (int i = 0; i < 2000; i++)
            harness_free(harness_malloc((size_t)(i % 64) * 16 + 1));
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 100; i < 200; i++)
        harness_free(p[i]);
}

/* ---- threads exiting with full caches ---------------------------------- */

#define EXIT_N 2000

static void *fill_caches_and_exit(void *arg)
{
    static void *mine[EXIT_N];
    (void)arg;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < EXIT_N; i++) {
            size_t size = (size_t)16 << (i % TINY_CLASSES);
            mine[i] = harness_malloc(size);
            fill_block(mine[i], size, 8);
        }
        for (int i = 0; i < EXIT_N; i++) {
            CHECK(block_intact(mine[i], (size_t)16 << (i % TINY_CLASSES), 8));
            harness_free(mine[i]);
        }
    }
    return NULL; /* every cache holds blocks */
}

static void case_thread_exit_full(void)
{
    tiny_open(tiny_stack_now, NULL, NULL, NULL);
    run_thread(fill_caches_and_exit, NULL);
    uint64_t mapped = harness_bytes_mapped("ss");
    CHECK(mapped > 0);
    for (int i = 0; i < 30; i++)
        run_thread(fill_caches_and_exit, NULL);
    CHECK_EQ(harness_bytes_mapped("ss"), mapped);
    struct hak_stats f = harness_stats("tiny"), s = harness_stats("ss");
    CHECK_EQ(f.allocs, 31 * 2 * EXIT_N);
    CHECK_EQ(f.frees, f.allocs);
    CHECK_EQ(f.cached_bytes, 0);
    CHECK_EQ(s.allocs, s.frees); /* every block went back down */
}

int main(void)
{
    for (enum tiny_stack st = STACK_UC; st < STACK_COUNT; st++) {
        tiny_stack_now = st;
        run_case("boundaries", case_boundaries);
        run_case("class_interface", case_class_interface);
        if (st != STACK_RING_UC)
            run_case("one_slot", case_one_slot);
        if (st != STACK_RING_UC) {
            run_case("refill_drain_exact", case_refill_drain_exact);
            run_case("class_capacity", case_class_capacity);
            run_abort_case("double_free_drained", double_free_drained, "double free");
        }
        run_abort_case("double_free_cached", double_free_cached, "double free");
        run_abort_case("interior_free", interior_free, "invalid pointer (not a block start)");
        run_case("warn_mode", case_warn_mode);
        run_case("check_off", case_check_off);
        run_case("thread_exit_full", case_thread_exit_full);
        run_case("fork", case_fork);
    }
    tiny_stack_now = STACK_RING;
    run_case("bad_ring", case_bad_ring);
    return 0;
}
