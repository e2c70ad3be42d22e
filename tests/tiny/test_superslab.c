/*
 * superslab driven directly (its ops) and through the host's dispatch with
 * no front: classes, carving, batches, exact stats, remote frees, orphans,
 * SuperSlab release, misuse detection, hardened lists, the 8-byte class.
 */
#include "tiny_test.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SS_BYTES ((size_t)2 << 20)
#define MB_BYTES ((size_t)1 << 20)

static void *ss_tls(void) { return harness_tls("ss"); }

static uint16_t owner_of(const void *p) { return (uint16_t)(harness_lookup(p) >> 16); }
static uint16_t tag_of(const void *p) { return (uint16_t)harness_lookup(p); }

/* ---- classes and boundaries ------------------------------------------- */

static void case_classes(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    void *inst = harness_inst("ss");
    CHECK_EQ(OPS("ss").class_count(inst), TINY_CLASSES);
    for (unsigned c = 0; c < TINY_CLASSES; c++)
        CHECK_EQ(OPS("ss").class_size(inst, c), tiny_class_size(c));
    CHECK_EQ(OPS("ss").class_size(inst, TINY_CLASSES), 0);
    /* Above the largest class: NULL, so the host tries the next box. */
    CHECK(OPS("ss").alloc(ss_tls(), 1025) == NULL);
    CHECK(OPS("ss").alloc(ss_tls(), (size_t)1 << 40) == NULL);
    void *p = OPS("ss").alloc(ss_tls(), 0);
    CHECK(p && tag_of(p) == 0);
    OPS("ss").free(ss_tls(), p, tag_of(p));
}

static const size_t edge_sizes[] = {0, 1, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128,
                                    129, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024};
#define EDGES (sizeof edge_sizes / sizeof edge_sizes[0])

/* Every edge size through the host: 16-aligned, usable >= request (the
 * class size), region map = (superslab, class), whole blocks writable
 * without touching their neighbours. */
static void check_boundaries(void)
{
    void *blocks[EDGES];
    uint16_t ss = harness_owner("ss");
    for (size_t i = 0; i < EDGES; i++) {
        size_t n = edge_sizes[i];
        void *p = harness_malloc(n);
        CHECK(p != NULL);
        CHECK_EQ((uintptr_t)p & 15, 0);
        unsigned cls = tiny_class_of(n ? n : 1);
        size_t usable = harness_usable_size(p);
        CHECK(usable >= n);
        CHECK_EQ(usable, tiny_class_size(cls));
        CHECK_EQ(owner_of(p), ss);
        CHECK_EQ(tag_of(p), cls);
        /* Blocks start at multiples of the class size in their granule. */
        CHECK_EQ(((uintptr_t)p & (HAK_GRANULE - 1)) % usable, 0);
        fill_block(p, usable, (unsigned)i);
        blocks[i] = p;
    }
    for (size_t i = 0; i < EDGES; i++)
        CHECK(block_intact(blocks[i], harness_usable_size(blocks[i]), (unsigned)i));
    for (size_t i = 0; i < EDGES; i++)
        harness_free(blocks[i]);
    /* 1025 and up belong to the next route. */
    void *big = harness_malloc(1025);
    CHECK(big && owner_of(big) == harness_owner("large"));
    harness_free(big);
}

static void case_boundaries(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    check_boundaries();
    check_boundaries(); /* again, from free lists */
}

/* ---- carving, reuse, batches ------------------------------------------ */

#define MANY 800 /* 256-byte blocks: a bit more than three slabs */

static void case_carve_and_reuse(void)
{
    static void *b[MANY];
    tiny_open(STACK_SS, NULL, NULL, NULL);
    for (int i = 0; i < MANY; i++) {
        b[i] = harness_malloc(256);
        CHECK(b[i]);
        CHECK_EQ(owner_of(b[i]), harness_owner("ss"));
        CHECK_EQ(tag_of(b[i]), 4);
        fill_block(b[i], 256, 1);
    }
    for (int i = 0; i < MANY; i++)
        CHECK(block_intact(b[i], 256, 1));
    uint64_t mapped = harness_bytes_mapped("ss");
    CHECK_EQ(mapped, SS_BYTES);
    for (int i = 0; i < MANY; i += 2)
        harness_free(b[i]);
    for (int i = 1; i < MANY; i += 2)
        CHECK(block_intact(b[i], 256, 1));
    for (int i = 1; i < MANY; i += 2)
        harness_free(b[i]);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < MANY; i++) {
            b[i] = harness_malloc(256);
            fill_block(b[i], 256, 2);
        }
        for (int i = 0; i < MANY; i++) {
            CHECK(block_intact(b[i], 256, 2));
            harness_free(b[i]);
        }
    }
    CHECK_EQ(harness_bytes_mapped("ss"), mapped);
}

static void case_batches(void)
{
    static void *out[3000];
    tiny_open(STACK_SS, NULL, NULL, NULL);
    /* Class 2 (64 bytes): 1024 per slab, so this spans three slabs. */
    uint32_t got = OPS("ss").alloc_batch(ss_tls(), 2, out, 3000);
    CHECK_EQ(got, 3000);
    for (uint32_t i = 0; i < got; i++) {
        CHECK_EQ(tag_of(out[i]), 2);
        CHECK_EQ((uintptr_t)out[i] & 63, 0);
        fill_block(out[i], 64, 3);
    }
    for (uint32_t i = 0; i < got; i++)
        CHECK(block_intact(out[i], 64, 3));
    CHECK_EQ(OPS("ss").alloc_batch(ss_tls(), TINY_CLASSES, out, 10), 0);
    OPS("ss").free_batch(ss_tls(), 2, out, got);
    struct hak_stats s = harness_stats("ss");
    CHECK_EQ(s.allocs, 3000);
    CHECK_EQ(s.frees, 3000);
    CHECK_EQ(s.bytes_allocated, 3000 * 64);
    /* The same blocks come back. */
    uint32_t again = OPS("ss").alloc_batch(ss_tls(), 2, out, 3000);
    CHECK_EQ(again, 3000);
    CHECK_EQ(harness_bytes_mapped("ss"), SS_BYTES);
    OPS("ss").free_batch(ss_tls(), 2, out, again);
}

/* ---- exact stats -------------------------------------------------------- */

static void case_stats_exact(void)
{
    void *a[10], *b[3];
    tiny_open(STACK_SS, NULL, NULL, NULL);
    for (int i = 0; i < 10; i++)
        a[i] = harness_malloc(100); /* class 3: 128 */
    for (int i = 0; i < 3; i++)
        b[i] = harness_malloc(1000); /* class 6: 1024 */
    for (int i = 0; i < 5; i++)
        harness_free(a[i]);
    for (int i = 0; i < 3; i++)
        harness_free(b[i]);
    struct hak_stats s = harness_stats("ss");
    CHECK_EQ(s.allocs, 13);
    CHECK_EQ(s.frees, 8);
    CHECK_EQ(s.bytes_allocated, 10 * 128 + 3 * 1024);
    CHECK_EQ(s.bytes_freed, 5 * 128 + 3 * 1024);
    CHECK_EQ(s.refills, 2); /* one slab per class */
    CHECK_EQ(s.remote_frees, 0);
    CHECK_EQ(s.drains, 0);
    /* One SuperSlab: 31 slabs, 2 in use, the rest free and cached. */
    CHECK_EQ(s.cached_bytes, 29 * HAK_GRANULE);
}

/* ---- remote frees, orphans ---------------------------------------------- */

#define REMOTE_N 5000
static void *remote_blocks[REMOTE_N];

static void *free_all_remote(void *arg)
{
    (void)arg;
    for (int i = 0; i < REMOTE_N; i++) {
        CHECK(block_intact(remote_blocks[i], 64, 4));
        harness_free(remote_blocks[i]);
    }
    return NULL;
}

static void case_remote_free(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    for (int i = 0; i < REMOTE_N; i++) {
        remote_blocks[i] = harness_malloc(64);
        fill_block(remote_blocks[i], 64, 4);
    }
    uint64_t mapped = harness_bytes_mapped("ss");
    run_thread(free_all_remote, NULL);
    struct hak_stats s = harness_stats("ss");
    CHECK_EQ(s.remote_frees, REMOTE_N);
    CHECK_EQ(s.frees, REMOTE_N);
    CHECK_EQ(s.drains, 0);
    /* The owner takes its remote stacks back when its lists run dry. */
    for (int i = 0; i < REMOTE_N; i++)
        remote_blocks[i] = harness_malloc(64);
    CHECK_EQ(harness_bytes_mapped("ss"), mapped);
    s = harness_stats("ss");
    CHECK(s.drains >= 1);
    for (int i = 0; i < REMOTE_N; i++)
        harness_free(remote_blocks[i]);
}

#define ORPHAN_N 3000
static void *orphan_blocks[ORPHAN_N];

static void *alloc_and_exit(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    for (int i = 0; i < ORPHAN_N; i++) {
        orphan_blocks[i] = harness_malloc(size);
        fill_block(orphan_blocks[i], size, 5);
    }
    return NULL; /* exits holding every block: its slabs become orphans */
}

static void *alloc_free_exit(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    static void *mine[ORPHAN_N];
    for (int i = 0; i < ORPHAN_N; i++)
        mine[i] = harness_malloc(size);
    for (int i = 0; i < ORPHAN_N; i++)
        harness_free(mine[i]);
    for (int i = 0; i < ORPHAN_N / 2; i++)
        mine[i] = harness_malloc(size); /* leave some live */
    for (int i = 0; i < ORPHAN_N / 2; i++)
        harness_free(mine[i]);
    return NULL;
}

static void case_orphans(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    run_thread(alloc_and_exit, (void *)(uintptr_t)32);
    uint64_t mapped = harness_bytes_mapped("ss");
    /* The dead thread's blocks are still intact and freeable. */
    for (int i = 0; i < ORPHAN_N; i++) {
        CHECK(block_intact(orphan_blocks[i], 32, 5));
        harness_free(orphan_blocks[i]);
    }
    /* ...and reused by later threads: memory does not grow. */
    for (int round = 0; round < 20; round++) {
        run_thread(alloc_free_exit, (void *)(uintptr_t)32);
        run_thread(alloc_and_exit, (void *)(uintptr_t)32);
        for (int i = 0; i < ORPHAN_N; i++)
            harness_free(orphan_blocks[i]);
    }
    CHECK_EQ(harness_bytes_mapped("ss"), mapped);
    struct hak_stats s = harness_stats("ss");
    CHECK_EQ(s.allocs, s.frees);
}

/* How many 64 KB slabs blocks[0..n) lie in. */
static uint64_t slabs_spanned(void *const *blocks, int n)
{
    uint64_t count = 0;
    for (int i = 0; i < n; i++) {
        uintptr_t slab = (uintptr_t)blocks[i] & ~(uintptr_t)(HAK_GRANULE - 1);
        int seen = 0;
        for (int k = 0; k < i && !seen; k++)
            seen = ((uintptr_t)blocks[k] & ~(uintptr_t)(HAK_GRANULE - 1)) == slab;
        count += !seen;
    }
    return count;
}

/* A thread exits holding blocks; another frees them all in batches (a
 * front's drain: remote pushes, no adoption). The push that brings an
 * orphan's last block home releases the slab then and there: its 64 KB
 * counts as free (cached) without a trim, and a new thread of another
 * class reuses it instead of mapping. Before, such orphans waited for a
 * trim or an adopter (larson: 282 of 418 orphans empty after 5 s). */
static void case_orphans_come_home(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    run_thread(alloc_and_exit, (void *)(uintptr_t)64);
    uint64_t slabs = slabs_spanned(orphan_blocks, ORPHAN_N);
    CHECK(slabs >= 3);
    struct hak_stats before = harness_stats("ss");
    uint64_t mapped = harness_bytes_mapped("ss");
    for (int i = 0; i < ORPHAN_N; i += 32) {
        int n = ORPHAN_N - i < 32 ? ORPHAN_N - i : 32;
        for (int k = 0; k < n; k++)
            CHECK(block_intact(orphan_blocks[i + k], 64, 5));
        OPS("ss").free_batch(ss_tls(), tiny_class_of(64), &orphan_blocks[i], (uint32_t)n);
    }
    struct hak_stats after = harness_stats("ss");
    CHECK_EQ(after.remote_frees - before.remote_frees, ORPHAN_N);
    CHECK_EQ(after.cached_bytes - before.cached_bytes, slabs * HAK_GRANULE);
    CHECK_EQ(after.allocs, after.frees);
    /* Reused at once, for another class. */
    run_thread(alloc_and_exit, (void *)(uintptr_t)512);
    CHECK_EQ(harness_bytes_mapped("ss"), mapped);
    for (int i = 0; i < ORPHAN_N; i++)
        harness_free(orphan_blocks[i]);
}

/* Half the blocks come back before the thread exits, the rest after:
 * the orphan is armed with what is out, and released by the last push.
 * Under hardened too (its links are encoded). */
static void *alloc_half_back_exit(void *arg)
{
    alloc_and_exit(arg);
    size_t size = (size_t)(uintptr_t)arg;
    OPS("ss").free_batch(ss_tls(), tiny_class_of(size), orphan_blocks, ORPHAN_N / 2);
    return NULL;
}

static void orphans_come_home_half(const char *host_extra)
{
    tiny_open(STACK_SS, host_extra, NULL, NULL);
    run_thread(alloc_half_back_exit, (void *)(uintptr_t)128);
    uint64_t slabs = slabs_spanned(&orphan_blocks[ORPHAN_N / 2], ORPHAN_N / 2);
    CHECK(slabs >= 3);
    struct hak_stats before = harness_stats("ss");
    OPS("ss").free_batch(ss_tls(), tiny_class_of(128), &orphan_blocks[ORPHAN_N / 2], ORPHAN_N / 2);
    struct hak_stats after = harness_stats("ss");
    CHECK_EQ(after.cached_bytes - before.cached_bytes, slabs * HAK_GRANULE);
    CHECK_EQ(after.allocs, after.frees);
}

static void case_orphans_come_home_half(void) { orphans_come_home_half(NULL); }
static void case_orphans_come_home_hardened(void) { orphans_come_home_half("hardened = on"); }

/* ---- SuperSlabs back to the pages box ------------------------------------ */

#define BIG_N 6000 /* 1024-byte blocks: 1984 per SuperSlab, so 4 of them */

static void case_release(void)
{
    static void *b[BIG_N];
    tiny_open(STACK_SS, NULL, "keep_empty_superslabs = 1", NULL);
    for (int i = 0; i < BIG_N; i++)
        b[i] = harness_malloc(1024);
    CHECK_EQ(harness_bytes_mapped("ss"), 4 * SS_BYTES);
    for (int i = 0; i < BIG_N; i++)
        harness_free(b[i]);
    /* The current slab stays (its SuperSlab too); one empty one is kept. */
    CHECK(harness_bytes_mapped("ss") <= 2 * SS_BYTES);
    CHECK(OPS("ss").trim(harness_inst("ss"), ss_tls()) > 0);
    CHECK_EQ(harness_bytes_mapped("ss"), 0);
    /* And it all works again. */
    for (int i = 0; i < BIG_N; i++)
        b[i] = harness_malloc(1024);
    for (int i = 0; i < BIG_N; i++)
        harness_free(b[i]);
}

/* Bytes of [p, p + n) resident (mincore). */
static size_t resident_of(const void *p, size_t n)
{
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)4095, hi = ((uintptr_t)p + n + 4095) & ~(uintptr_t)4095;
    static unsigned char vec[4096];
    size_t pages = (hi - lo) / 4096, res = 0;
    CHECK(pages <= sizeof vec);
    if (mincore((void *)lo, hi - lo, vec) != 0)
        return 0;
    for (size_t i = 0; i < pages; i++)
        res += (vec[i] & 1) * 4096;
    return res;
}

/* Another box faulting in fresh pages (large mapping 16 MB) takes back the
 * warm slabs beyond a quarter of those in use (ops.reclaim), though they
 * would otherwise stay committed for a minute. */
static void case_reclaim_when_others_grow(void)
{
    tiny_open(STACK_SS, NULL, "purge_delay_ms = 60000\nfree_slabs_committed = 100000\nkeep_empty_superslabs = 8", NULL);
    enum { N = 8192 }; /* 8 MB of 1 KB blocks: 128 slabs */
    static char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = harness_malloc(1024);
        CHECK(b[i]);
        memset(b[i], 1, 1024);
    }
    char *keep = harness_malloc(1024); /* the current slab stays in use */
    for (int i = 0; i < N; i++)
        harness_free(b[i]);
    size_t before = 0, after = 0;
    for (int i = 0; i < N; i += 64)
        before += resident_of(b[i], 64 * 1024);
    CHECK(before >= 7 * MB_BYTES); /* warm: committed */
    char *big = harness_malloc(16 * MB_BYTES);
    CHECK(big);
    for (int i = 0; i < N; i += 64)
        after += resident_of(b[i], 64 * 1024);
    printf("reclaim: %zu KB of 8 MB of free slabs resident after large mapped 16 MB\n", after >> 10);
    CHECK(after <= 512 * 1024);
    /* the decommitted slabs serve blocks again */
    for (int i = 0; i < N; i++) {
        b[i] = harness_malloc(1024);
        fill_block(b[i], 1024, (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        CHECK(block_intact(b[i], 1024, (unsigned)i));
        harness_free(b[i]);
    }
    harness_free(keep);
    harness_free(big);
}

/* ---- misuse -------------------------------------------------------------- */

static void double_free(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    void *p = harness_malloc(64);
    harness_free(p);
    harness_free(p);
}

static void interior_free(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    char *p = harness_malloc(64);
    harness_free(p + 16);
}

static void metadata_free(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    char *p = harness_malloc(64);
    harness_free((void *)(((uintptr_t)p & ~(SS_BYTES - 1)) + 256));
}

static void case_warn_mode(void)
{
    tiny_open(STACK_SS, "on_bad_free = warn", NULL, NULL);
    void *p = harness_malloc(64);
    harness_free(p);
    harness_free(p); /* reported, dropped */
    harness_free((char *)p + 8);
    void *a = harness_malloc(64), *b = harness_malloc(64);
    CHECK(a != b);
    CHECK_EQ(harness_stats("ss").frees, 1);
    harness_free(a);
    harness_free(b);
}

/* ---- hardened free lists ------------------------------------------------- */

static void case_hardened(void)
{
    tiny_open(STACK_SS, "hardened = on", NULL, NULL);
    check_boundaries();
    check_boundaries();
    static void *b[MANY];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < MANY; i++)
            b[i] = harness_malloc(48);
        for (int i = MANY; i-- > 0;)
            harness_free(b[i]);
    }
}

static void corrupt_link(void)
{
    tiny_open(STACK_SS, "hardened = on", NULL, NULL);
    void **p = harness_malloc(64), **q = harness_malloc(64);
    harness_free(p);
    harness_free(q);
    q[1] = (void *)0x12345678; /* a use after free over the link word */
    harness_malloc(64);        /* pops q, decodes its link */
    harness_malloc(64);
}

/* ---- the 8-byte class ---------------------------------------------------- */

static void case_class8(void)
{
    tiny_open(STACK_SS, NULL, "classes = 8,16,32,64,128,256,512,1024", NULL);
    CHECK_EQ(OPS("ss").class_count(harness_inst("ss")), 8);
    void *small[64];
    for (int i = 0; i < 64; i++) {
        small[i] = harness_malloc((size_t)(i % 8) + 1);
        CHECK_EQ(tag_of(small[i]), 0);
        CHECK_EQ(harness_usable_size(small[i]), 8);
        CHECK_EQ((uintptr_t)small[i] & 7, 0);
        memset(small[i], i, 8);
    }
    for (int i = 0; i < 64; i++) {
        CHECK_EQ(*(unsigned char *)small[i], i);
        harness_free(small[i]);
    }
    void *p = harness_malloc(9);
    CHECK_EQ(tag_of(p), 1);
    CHECK_EQ(harness_usable_size(p), 16);
    CHECK_EQ((uintptr_t)p & 15, 0);
    harness_free(p);
    p = harness_malloc(1024);
    CHECK_EQ(tag_of(p), 7);
    harness_free(p);
}

static void case_bad_classes(void)
{
    char err[1024];
    const char *bad[] = {"classes = 16,24,32", "classes = 16,8", "classes = 16,2048",
                         "superslab_size = 3M"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "[route]\n1-max = ss\n[box.ss]\nplugin = superslab\npages = os\n%s\n"
                 "[box.os]\nplugin = os_pages\n[box.large]\nplugin = large\n",
                 bad[i]);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(harness_try_open(text, err, sizeof err) == 0 ? 1 : 0);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

/* ---- fork ------------------------------------------------------------------ */

static void case_fork(void)
{
    tiny_open(STACK_SS, NULL, NULL, NULL);
    void *p[100];
    for (int i = 0; i < 100; i++)
        p[i] = harness_malloc(128);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 100; i++)
            harness_free(p[i]);
        for (int i = 0; i < 1000; i++)
            harness_free(harness_malloc(128));
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 100; i++)
        harness_free(p[i]);
}

int main(void)
{
    tiny_stack_now = STACK_SS;
    run_case("classes", case_classes);
    run_case("boundaries", case_boundaries);
    run_case("carve_and_reuse", case_carve_and_reuse);
    run_case("batches", case_batches);
    run_case("stats_exact", case_stats_exact);
    run_case("remote_free", case_remote_free);
    run_case("orphans", case_orphans);
    run_case("orphans_come_home", case_orphans_come_home);
    run_case("orphans_come_home_half", case_orphans_come_home_half);
    run_case("orphans_come_home_hardened", case_orphans_come_home_hardened);
    run_case("release", case_release);
    run_case("reclaim_when_others_grow", case_reclaim_when_others_grow);
    run_abort_case("double_free", double_free, "double free");
    run_abort_case("interior_free", interior_free, "invalid pointer (not a block start)");
    run_abort_case("metadata_free", metadata_free, "invalid pointer (not a block start)");
    run_case("warn_mode", case_warn_mode);
    run_case("hardened", case_hardened);
    run_abort_case("corrupt_link", corrupt_link, "corrupted free list");
    run_case("class8", case_class8);
    run_case("bad_classes", case_bad_classes);
    run_case("fork", case_fork);
    return 0;
}
