/*
 * hakmem boxtest PATH.so|PLUGIN [-s key=value]... [--range LO-HI] ...
 *
 * The conformance suite for one box, run in-process on the host core (the
 * same code as libhakmem.so, like tests/support/box_harness.c). It writes a
 * config naming the box by path, routes the box's size range to it and the
 * rest to a terminal box, links what the box declares (an os_pages box for
 * `pages`, a class box for a front's `below`), then runs each case in a
 * forked child with a fresh host: a crash, an abort from host->bad_free or a
 * hang fails that case and the others still run. Exit 0 only if all pass.
 *
 * alloc role: sizes, alignment, the malloc API through the host, frees from
 * another thread, thread exit, fork, a seeded randomized stress; every block
 * is checked for alignment, usable_size >= request, region-map ownership
 * (the box's owner, or the owner below a front) and against overlap.
 * pages role: spans of 1..N granules, alignment, ownership handed over and
 * back, reuse, other threads, stress. observer role: events and the report.
 */
#include "cli.h"

#include <box_api/hakmem_util.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)
#define SIZE_CAP ((size_t)64 << 20) /* biggest block a case asks for */
#define LIVE_BYTES_CAP ((size_t)128 << 20)
#define FULL_FILL (16 * KB)         /* blocks above this are sampled */

/* ---- options --------------------------------------------------------------- */

struct link_choice {
    char name[HAK_NAME_MAX];
    char plugin[PATH_MAX];
};

static struct {
    char box[PATH_MAX];      /* absolute path, or a plugin name */
    char params[4096];       /* "key = value" lines for [box.test] */
    char overrides[4096];    /* dotted -s items (box.X.k=v, host.k=v) */
    struct link_choice links[HAK_MAX_LINKS];
    int link_count;
    char terminal[PATH_MAX];
    uint64_t lo, hi;         /* inclusive; hi = UINT64_MAX for max */
    int range_given;
    char range_note[128];
    uint64_t seed;
    long ops;                /* stress operations per thread */
    int threads;
    unsigned max_granules;
    unsigned timeout;
    int verbose;
    int no_fork;
    int foreign_ok;
    const char *only;
    char command_line[4096]; /* the arguments, for the rerun hint */
} opt;

static char config_text[32768];

/* ---- child side: the host, the box, and failures ------------------------------ */

static struct hak_plan bt_plan;
static struct hak_cfg_raw bt_raw;
static const struct hak_instance *box;       /* the box under test */
static const struct hak_instance *terminal_in;
static const struct hak_instance *class_in;  /* whose tags are class indexes */
static int owner_ok[HAK_MAX_INSTANCES + 1];  /* owners the box may hand out */
static int owner_after_free[HAK_MAX_INSTANCES + 1]; /* pages: owners of a freed span */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    pthread_mutex_lock(&fail_lock);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    _exit(1);
}

#define EXPECT(cond, ...) do { if (HAK_UNLIKELY(!(cond))) fail(__VA_ARGS__); } while (0)

/* A line the parent shows next to PASS. */
__attribute__((format(printf, 1, 2))) static void summary(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("@summary ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static const char *owner_name(uint16_t owner)
{
    if (owner == 0)
        return "nobody (glibc's or unmapped)";
    if (owner > bt_plan.instance_count)
        return "an unknown owner";
    return bt_plan.instances[owner - 1].name;
}

static void host_start(void)
{
    struct hak_error err = { "" };
    if (hak_plan_load(&bt_plan, &bt_raw, config_text, strlen(config_text), "(boxtest config)",
                      opt.overrides[0] ? opt.overrides : NULL, cli_lib_dir(), &err) ||
        hak_runtime_start(&bt_plan, &err))
        fail("the host did not start: %s", err.msg);
    int t = hak_instance_find(&bt_plan, "test");
    EXPECT(t >= 0, "no [box.test] in the config");
    box = &bt_plan.instances[t];
    terminal_in = &bt_plan.instances[bt_plan.terminal];
    owner_ok[box->owner] = 1;
    owner_ok[0] = opt.foreign_ok;
    owner_after_free[0] = 1;
    owner_after_free[box->owner] = 1;
    /* Memory of a front belongs to the box below it; a box may also hand out
     * memory of an alloc box it links to (the free goes to that owner). A page
     * box's freed spans may go to any page box below it. */
    int stack[HAK_MAX_INSTANCES], n = 0;
    stack[n++] = t;
    while (n) {
        const struct hak_instance *in = &bt_plan.instances[stack[--n]];
        for (uint32_t l = 0; l < in->desc->link_count; l++) {
            int target = in->link_target[l];
            if (target < 0)
                continue;
            const struct hak_instance *to = &bt_plan.instances[target];
            int *set = in->desc->links[l].role == HAK_ROLE_PAGES ? owner_after_free : owner_ok;
            if (!set[to->owner] && to != terminal_in) {
                set[to->owner] = 1;
                stack[n++] = target;
            }
        }
    }
    class_in = box;
    if (box->desc->flags & HAK_BOX_FLAG_FRONT)
        for (uint32_t l = 0; l < box->desc->link_count; l++)
            if (!strcmp(box->desc->links[l].name, "below") && box->link_target[l] >= 0)
                class_in = &bt_plan.instances[box->link_target[l]];
    if (!class_in->desc->ops.class_count || !class_in->desc->ops.class_size)
        class_in = NULL;
}

/* ---- random numbers and patterns ---------------------------------------------- */

static uint64_t rnd_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_seed(uint64_t stream)
{
    uint64_t s = (opt.seed + 1) * 0x9E3779B97F4A7C15ULL + stream * 0xBF58476D1CE4E5B9ULL;
    return s ? s : 1;
}

static uint64_t hi_capped(void)
{
    return opt.hi > SIZE_CAP ? SIZE_CAP : opt.hi;
}

/* A size in the range, log-uniform up to `cap`, so small sizes get their share. */
static size_t rnd_size(uint64_t *s, size_t cap)
{
    uint64_t hi = hi_capped() < cap ? hi_capped() : cap;
    if (hi < opt.lo)
        hi = opt.lo;
    unsigned lo_bits = hak_log2(opt.lo), hi_bits = hak_log2(hi);
    unsigned bits = lo_bits + (unsigned)(rnd_next(s) % (hi_bits - lo_bits + 1));
    uint64_t base = (uint64_t)1 << bits, span = base;
    uint64_t size = base + rnd_next(s) % span;
    if (size < opt.lo)
        size = opt.lo + rnd_next(s) % (hi - opt.lo + 1);
    if (size > hi)
        size = hi;
    return (size_t)size;
}

static inline unsigned char pattern(uint32_t seed, size_t i)
{
    return (unsigned char)(seed * 167u + i * 131u + (i >> 8) + 1u);
}

/* Write the pattern over [0, n): every byte of small blocks; the ends and
 * one byte per page of big ones. */
static void fill(void *p, size_t n, uint32_t seed)
{
    unsigned char *b = p;
    if (n <= FULL_FILL) {
        for (size_t i = 0; i < n; i++)
            b[i] = pattern(seed, i);
        return;
    }
    for (size_t i = 0; i < 512; i++) {
        b[i] = pattern(seed, i);
        b[n - 1 - i] = pattern(seed, n - 1 - i);
    }
    for (size_t i = 512; i < n - 512; i += 4096)
        b[i] = pattern(seed, i);
}

/* Offset of the first byte below `keep` that fill(p, written, seed) wrote
 * and that differs now, or -1. */
static long check_prefix(const void *p, size_t keep, uint32_t seed, size_t written)
{
    const unsigned char *b = p;
    if (keep > written)
        keep = written;
    if (written <= FULL_FILL) {
        for (size_t i = 0; i < keep; i++)
            if (b[i] != pattern(seed, i))
                return (long)i;
        return -1;
    }
    for (size_t i = 0; i < 512 && i < keep; i++)
        if (b[i] != pattern(seed, i))
            return (long)i;
    for (size_t i = written - 512; i < keep; i++)
        if (b[i] != pattern(seed, i))
            return (long)i;
    for (size_t i = 512; i < written - 512 && i < keep; i += 4096)
        if (b[i] != pattern(seed, i))
            return (long)i;
    return -1;
}

static long check(const void *p, size_t n, uint32_t seed) { return check_prefix(p, n, seed, n); }

/* ---- blocks ---------------------------------------------------------------------- */

struct blk {
    char *p;
    size_t size, usable;
    uint32_t seed;
    uint32_t entry; /* region map (owner, tag) when handed out */
};

static void *box_tls(char *block) { return block + box->tls_offset; }

/* The box's own alloc on this thread's slice, as the host's first try is. */
static void *box_alloc(size_t size)
{
    char *block = hak_thread_acquire();
    void *p = box->desc->ops.alloc(box_tls(block), size);
    hak_thread_release(block);
    return p;
}

static void *box_alloc_aligned(size_t size, size_t align)
{
    char *block = hak_thread_acquire();
    void *p = box->desc->ops.alloc_aligned(box_tls(block), size, align);
    hak_thread_release(block);
    return p;
}

/* p..p+size-1 is the box's in the region map; the tag is a valid class
 * index big enough for the request when the owner has a class interface. */
static void expect_owned(const char *what, const void *p, size_t size)
{
    uint32_t e = hak_region_lookup(p);
    uint16_t owner = (uint16_t)(e >> 16), tag = (uint16_t)e;
    EXPECT(owner_ok[owner], "%s: block %p (%zu bytes) is owned by %s in the region map, expected %s", what, p,
           size, owner_name(owner), box->name);
    uint32_t last = hak_region_lookup((const char *)p + size - 1);
    EXPECT(last >> 16 == owner, "%s: block %p (%zu bytes) starts in memory of %s but ends in memory of %s", what,
           p, size, owner_name(owner), owner_name((uint16_t)(last >> 16)));
    if (class_in && owner == class_in->owner) {
        uint32_t count = class_in->desc->ops.class_count(class_in->inst);
        EXPECT(tag < count, "%s: block %p has region-map tag %u, but %s has %u classes (the tag must be the class index)",
               what, p, tag, class_in->name, count);
        size_t cs = class_in->desc->ops.class_size(class_in->inst, tag);
        EXPECT(cs >= size, "%s: block %p of %zu bytes is tagged class %u of %s, whose size is %zu", what, p, size,
               tag, class_in->name, cs);
    }
}

/* Checks every block gets: alignment, ownership, usable_size; then fill. */
static struct blk take_block(const char *what, void *p, size_t size, size_t align, uint32_t seed, int may_fall_back)
{
    EXPECT(((uintptr_t)p & (align - 1)) == 0, "%s(%zu): %p is not %zu-byte aligned", what, size, p, align);
    uint16_t owner = (uint16_t)(hak_region_lookup(p) >> 16);
    if (!(may_fall_back && owner == terminal_in->owner))
        expect_owned(what, p, size);
    size_t usable = hak_usable_size(p);
    EXPECT(usable >= size, "%s(%zu): usable_size(%p) = %zu, less than the request", what, size, p, usable);
    struct blk b = { p, size, usable, seed, hak_region_lookup(p) };
    fill(p, usable, seed);
    return b;
}

static void verify_block(const char *what, const struct blk *b)
{
    /* The owner (and a class box's tag) of a live block never changes: free
     * finds the block through them. */
    uint32_t e = hak_region_lookup(b->p);
    int tag_matters = class_in && (e >> 16) == class_in->owner;
    EXPECT((e >> 16) == (b->entry >> 16) && (!tag_matters || e == b->entry), "%s: live block %p (%zu bytes) changed hands in the region map: it was (%s, tag %u), now "
           "(%s, tag %u)", what, b->p, b->size, owner_name((uint16_t)(b->entry >> 16)), b->entry & 0xffff,
           owner_name((uint16_t)(e >> 16)), e & 0xffff);
    long bad = check(b->p, b->usable, b->seed);
    EXPECT(bad < 0, "%s: block %p (%zu bytes, usable %zu) was overwritten at offset %ld: another block or the "
           "box's own metadata shares its memory", what, b->p, b->size, b->usable, bad);
}

static void free_block(const char *what, const struct blk *b)
{
    verify_block(what, b);
    hak_free(b->p);
}

static int by_address(const void *a, const void *b)
{
    const struct blk *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* No two live blocks' usable regions overlap. Sorts a copy. */
static void expect_no_overlap(const char *what, const struct blk *blocks, size_t n)
{
    if (n < 2)
        return;
    struct blk *sorted = malloc(n * sizeof *sorted);
    EXPECT(sorted, "out of memory");
    memcpy(sorted, blocks, n * sizeof *blocks);
    qsort(sorted, n, sizeof *sorted, by_address);
    for (size_t i = 1; i < n; i++)
        EXPECT(sorted[i - 1].p + sorted[i - 1].usable <= sorted[i].p,
               "%s: live blocks overlap: %p (usable %zu) and %p (usable %zu)", what, sorted[i - 1].p,
               sorted[i - 1].usable, sorted[i].p, sorted[i].usable);
    free(sorted);
}

/* The sizes the size case walks: every size of the first KB of the range,
 * then each power of two, its neighbours and 3/4 points, and the top. */
static size_t size_list(size_t *out, size_t cap)
{
    size_t n = 0;
    uint64_t hi = hi_capped();
    for (uint64_t s = opt.lo; s <= hi && s < opt.lo + 1100 && n < cap; s++)
        out[n++] = (size_t)s;
    for (uint64_t p2 = 16; p2 <= hi && n + 5 < cap; p2 *= 2) {
        uint64_t c[] = { p2 - 1, p2, p2 + 1, p2 + p2 / 2, p2 + p2 / 2 + 8 };
        for (size_t i = 0; i < sizeof c / sizeof *c; i++)
            if (c[i] >= opt.lo + 1100 && c[i] <= hi)
                out[n++] = (size_t)c[i];
    }
    if (hi >= opt.lo + 1100 && n < cap)
        out[n++] = (size_t)hi;
    return n;
}

/* ---- threads ------------------------------------------------------------------ */

static void run_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, fn, arg) == 0, "pthread_create failed");
    pthread_join(t, NULL);
}

struct batch {
    struct blk b[4096];
    size_t n;
    uint64_t rnd;
};

/* Allocate n blocks of random sizes in the range, bytes capped. */
static void batch_alloc(struct batch *bt, const char *what, size_t n, uint32_t seed_base)
{
    size_t bytes = 0;
    bt->n = 0;
    for (size_t i = 0; i < n && i < sizeof bt->b / sizeof *bt->b && bytes < LIVE_BYTES_CAP / 2; i++) {
        size_t size = rnd_size(&bt->rnd, 64 * KB);
        void *p = box_alloc(size);
        EXPECT(p, "%s: alloc(%zu) returned NULL (%zu blocks live)", what, size, bt->n);
        bt->b[bt->n++] = take_block(what, p, size, HAK_MIN_ALIGN, seed_base + (uint32_t)i, 0);
        bytes += bt->b[bt->n - 1].usable;
    }
}

static void batch_free(struct batch *bt, const char *what, size_t from, size_t step)
{
    for (size_t i = from; i < bt->n; i += step) {
        free_block(what, &bt->b[i]);
        bt->b[i].p = NULL;
    }
}

static void batch_free_rest(struct batch *bt, const char *what)
{
    for (size_t i = 0; i < bt->n; i++)
        if (bt->b[i].p)
            free_block(what, &bt->b[i]);
    bt->n = 0;
}

/* ================================================================================
 * alloc role
 * ================================================================================ */

static void case_start(void)
{
    const struct hak_box_desc *d = box->desc;
    char *block = hak_thread_acquire();
    struct hak_stats st = { 0 };
    if (d->ops.stats) {
        d->ops.stats(box->inst, box_tls(block), &st);
        d->ops.stats(box->inst, NULL, &st);
    }
    hak_thread_release(block);
    for (uint32_t p = 0; p < d->param_count; p++)
        EXPECT(d->params[p].name && d->params[p].doc, "parameter %u has no name or no doc line", p);
    for (uint32_t l = 0; l < d->link_count; l++)
        EXPECT(d->links[l].name && d->links[l].role, "link %u has no name or no role", l);
    if (d->roles & HAK_ROLE_ALLOC) {
        EXPECT(!(d->flags & HAK_BOX_FLAG_FRONT) || class_in, "a front box needs a class box below it");
        if (!opt.range_given) {
            /* The box's own classes say which sizes it serves. */
            if (class_in) {
                uint32_t n = class_in->desc->ops.class_count(class_in->inst);
                EXPECT(n > 0, "class_count() is 0");
                printf("@range 1 %zu class interface of %s\n", class_in->desc->ops.class_size(class_in->inst, n - 1),
                       class_in->name);
            } else if (d->flags & HAK_BOX_FLAG_TERMINAL) {
                printf("@range 1 max terminal box\n");
            } else {
                printf("@range 1 1024 default: pass --range LO-HI\n");
            }
        }
    }
    summary("create()%s ran; %u parameters, %u links, %u bytes per thread",
            d->ops.thread_init ? " and thread_init()" : "", d->param_count, d->link_count, d->tls_size);
}

static void case_sizes(void)
{
    static size_t sizes[4096];
    static struct blk ring[256];
    size_t n = size_list(sizes, sizeof sizes / sizeof *sizes);
    size_t head = 0, count = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        while (count && (count == 256 || bytes + sizes[i] > LIVE_BYTES_CAP)) {
            struct blk *b = &ring[(head + 256 - count) % 256];
            bytes -= b->usable;
            free_block("sizes", b);
            count--;
        }
        void *p = box_alloc(sizes[i]);
        EXPECT(p, "sizes: alloc(%zu) returned NULL for a size in the box's range", sizes[i]);
        ring[head] = take_block("sizes", p, sizes[i], HAK_MIN_ALIGN, (uint32_t)i, 0);
        bytes += ring[head].usable;
        head = (head + 1) % 256;
        count++;
        if (i % 128 == 127 || i == n - 1) {
            struct blk live[256];
            for (size_t k = 0; k < count; k++) {
                live[k] = ring[(head + 256 - count + k) % 256];
                verify_block("sizes", &live[k]);
            }
            expect_no_overlap("sizes", live, count);
        }
    }
    while (count) {
        free_block("sizes", &ring[(head + 256 - count) % 256]);
        count--;
    }
    summary("%zu sizes from %zu to %zu: 16-byte aligned, owned, usable_size >= request, no overlap", n, sizes[0],
            sizes[n - 1]);
}

static void case_alignment(void)
{
    static const size_t aligns[] = { 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536 };
    uint64_t hi = hi_capped();
    size_t sizes[6] = { (size_t)opt.lo, (size_t)(opt.lo + 40 < hi ? opt.lo + 40 : hi),
                        (size_t)(opt.lo + (hi - opt.lo) / 3), (size_t)(hi > 4096 && opt.lo <= 4096 ? 4096 : hi),
                        (size_t)(hi - (hi - opt.lo) / 8), (size_t)hi };
    unsigned served = 0, asked = 0, host = 0;
    for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++) {
        for (size_t s = 0; s < 6; s++) {
            size_t size = sizes[s], align = aligns[a];
            if (box->desc->ops.alloc_aligned) {
                asked++;
                void *p = box_alloc_aligned(size, align);
                if (p) {
                    served++;
                    struct blk b = take_block("alloc_aligned", p, size, align, (uint32_t)(a * 8 + s), 0);
                    free_block("alloc_aligned", &b);
                }
            }
            /* memalign through the host: the box, or its fallback */
            void *q = hak_memalign(align, size);
            EXPECT(q, "memalign(%zu, %zu) through the host returned NULL", align, size);
            struct blk b = take_block("memalign", q, size, align, (uint32_t)(a * 8 + s), 1);
            if ((hak_region_lookup(q) >> 16) != terminal_in->owner)
                host++;
            free_block("memalign", &b);
        }
    }
    EXPECT(!asked || served, "alloc_aligned is present but returned NULL for all %u requests "
           "(alignments 32..64K): leave it NULL if the box cannot align", asked);
    if (box->desc->ops.alloc_aligned)
        summary("alloc_aligned served %u of %u (size, alignment 32..64K) requests; host memalign: %u of %u by the box",
                served, asked, host, (unsigned)(6 * sizeof aligns / sizeof *aligns));
    else
        summary("no alloc_aligned: host memalign served %u of %u (size, alignment) requests through the box, "
                "the rest by %s", host, (unsigned)(6 * sizeof aligns / sizeof *aligns), terminal_in->name);
}

static void case_malloc_api(void)
{
    static size_t sizes[4096];
    static struct blk blocks[512];
    size_t n = size_list(sizes, sizeof sizes / sizeof *sizes);
    size_t step = n / 400 + 1, count = 0, by_box = 0, bytes = 0;
    /* malloc through the host's route table: it must reach the box */
    for (size_t i = 0; i < n; i += step) {
        void *p = hak_malloc(sizes[i]);
        EXPECT(p, "malloc(%zu) returned NULL", sizes[i]);
        blocks[count] = take_block("malloc", p, sizes[i], HAK_MIN_ALIGN, (uint32_t)i, 1);
        bytes += blocks[count].usable;
        if (hak_region_lookup(p) >> 16 != terminal_in->owner)
            by_box++;
        memset(p, 0xA5, blocks[count].usable < 64 * KB ? blocks[count].usable : 64 * KB);
        blocks[count].seed = 0; /* garbage now, not the pattern */
        if (++count == 512 || bytes > LIVE_BYTES_CAP / 2 || i + step >= n) {
            while (count)
                hak_free(blocks[--count].p);
            bytes = 0;
        }
    }
    EXPECT(by_box, "malloc: every request in the range fell back to %s: the box returned NULL for all",
           terminal_in->name);
    /* calloc after the box got garbage back: zeros */
    for (size_t i = 0; i < n; i += step) {
        unsigned char *p = hak_calloc(1, sizes[i]);
        EXPECT(p, "calloc(1, %zu) returned NULL", sizes[i]);
        size_t limit = sizes[i] < 256 * KB ? sizes[i] : 256 * KB;
        for (size_t k = 0; k < limit; k++)
            EXPECT(p[k] == 0, "calloc(1, %zu) = %p: byte %zu is 0x%02x, not zero", sizes[i], (void *)p, k, p[k]);
        hak_free(p);
    }
    /* realloc through the host: grow from the bottom of the range past its top,
     * then shrink back; contents kept at every step */
    uint64_t hi = hi_capped();
    size_t size = (size_t)opt.lo, steps = 0;
    char *p = hak_malloc(size);
    EXPECT(p, "malloc(%zu) returned NULL", size);
    fill(p, size, 7);
    for (int dir = 0; dir < 2; dir++) {
        for (;;) {
            size_t next = dir == 0 ? size + size / 2 + 16 : size - size / 3 - 1;
            if (dir == 0 && (next > hi + hi / 4 + 64 || next > SIZE_CAP + SIZE_CAP / 4))
                break;
            if (dir == 1 && (next < opt.lo || next > size))
                break;
            char *q = hak_realloc(p, next);
            EXPECT(q, "realloc(%p, %zu) returned NULL", (void *)p, next);
            long bad = check_prefix(q, next, 7, size);
            EXPECT(bad < 0, "realloc from %zu to %zu bytes lost the contents at offset %ld", size, next, bad);
            EXPECT(hak_usable_size(q) >= next, "realloc to %zu: usable_size %zu", next, hak_usable_size(q));
            fill(q, next, 7);
            p = q;
            size = next;
            steps++;
        }
    }
    hak_free(p);
    /* the box's own realloc, when it has one */
    unsigned direct = 0;
    if (box->desc->ops.realloc) {
        uint64_t rnd = rnd_seed(3);
        for (int i = 0; i < 200; i++) {
            size_t from = rnd_size(&rnd, 256 * KB), to = rnd_size(&rnd, 256 * KB);
            char *a = box_alloc(from);
            EXPECT(a, "alloc(%zu) returned NULL", from);
            fill(a, from, 9);
            uint32_t e = hak_region_lookup(a);
            char *block = hak_thread_acquire();
            char *b = box->desc->ops.realloc(box_tls(block), a, (uint16_t)e, to);
            hak_thread_release(block);
            if (!b) {
                EXPECT(check(a, from, 9) < 0, "realloc(%zu -> %zu) returned NULL but changed the block", from, to);
                hak_free(a);
                continue;
            }
            direct++;
            EXPECT(check_prefix(b, to, 9, from) < 0, "the box's realloc(%zu -> %zu) lost the contents", from, to);
            struct blk blk = take_block("realloc", b, to, HAK_MIN_ALIGN, 11, 0);
            free_block("realloc", &blk);
        }
    }
    summary("malloc: %zu of %zu sizes served by the box; calloc zeroed; realloc kept contents over %zu steps%s",
            by_box, (n + step - 1) / step, steps,
            box->desc->ops.realloc ? (direct ? "; the box's realloc checked" : "; the box's realloc always declined")
                                   : "");
}

/* ---- frees from another thread ----------------------------------------------------- */

static struct batch shared_batch;
static pthread_barrier_t barrier;

static void *free_all_thread(void *arg)
{
    (void)arg;
    batch_free_rest(&shared_batch, "remote free");
    return NULL;
}

static void *alloc_then_reuse_thread(void *arg)
{
    (void)arg;
    batch_alloc(&shared_batch, "remote free", 1000, 5000);
    pthread_barrier_wait(&barrier); /* main frees them */
    pthread_barrier_wait(&barrier);
    static struct batch again;
    again.rnd = rnd_seed(21);
    batch_alloc(&again, "alloc after remote frees", 1000, 7000);
    batch_free_rest(&again, "alloc after remote frees");
    return NULL;
}

static void case_remote_free(void)
{
    shared_batch.rnd = rnd_seed(11);
    batch_alloc(&shared_batch, "remote free", 1000, 1000);
    size_t n1 = shared_batch.n;
    run_thread(free_all_thread, NULL);
    /* the other way: a thread allocates, main frees while it is alive */
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, alloc_then_reuse_thread, NULL) == 0, "pthread_create failed");
    pthread_barrier_wait(&barrier);
    size_t n2 = shared_batch.n;
    batch_free_rest(&shared_batch, "remote free");
    pthread_barrier_wait(&barrier);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&barrier);
    static struct batch again;
    again.rnd = rnd_seed(12);
    batch_alloc(&again, "alloc after remote frees", 1000, 9000);
    batch_free_rest(&again, "alloc after remote frees");
    summary("%zu blocks freed by another thread, %zu freed by main while their thread ran; both sides allocate again",
            n1, n2);
}

/* ---- thread exit -------------------------------------------------------------------- */

static struct batch leftovers[9];

static void *leave_blocks_thread(void *arg)
{
    struct batch *bt = arg;
    batch_alloc(bt, "thread exit", 600, 100);
    batch_free(bt, "thread exit", 0, 2); /* half freed: caches filled */
    return NULL;                         /* exits with the other half live */
}

static void case_thread_exit(void)
{
    size_t left = 0;
    for (int i = 0; i < 9; i++) {
        leftovers[i].rnd = rnd_seed(40 + (uint64_t)i);
        run_thread(leave_blocks_thread, &leftovers[i]);
    }
    for (int i = 0; i < 9; i++)
        for (size_t k = 0; k < leftovers[i].n; k++)
            if (leftovers[i].b[k].p) {
                free_block("free after the allocating thread exited", &leftovers[i].b[k]);
                left++;
            }
    /* the host's own exit path on this thread, then carry on */
    static struct batch mine;
    mine.rnd = rnd_seed(50);
    batch_alloc(&mine, "thread exit", 500, 200);
    hak_thread_exit_now();
    batch_free_rest(&mine, "free after thread_exit on the same thread");
    batch_alloc(&mine, "alloc after thread_exit", 500, 300);
    batch_free_rest(&mine, "alloc after thread_exit");
    size_t trimmed = 0;
    if (box->desc->ops.trim) {
        char *block = hak_thread_acquire();
        trimmed = box->desc->ops.trim(box->inst, box_tls(block));
        hak_thread_release(block);
        batch_alloc(&mine, "alloc after trim", 200, 400);
        batch_free_rest(&mine, "alloc after trim");
    }
    summary("9 threads exited with %zu blocks live, freed later; thread_exit on a live thread%s", left,
            box->desc->ops.trim ? "; trim, then alloc again" : "");
    (void)trimmed;
}

/* ---- fork ------------------------------------------------------------------------------ */

static _Atomic int stop_churn;

static void *churn_thread(void *arg)
{
    uint64_t rnd = rnd_seed((uint64_t)(uintptr_t)arg);
    while (!atomic_load(&stop_churn)) {
        size_t size = rnd_size(&rnd, 64 * KB);
        void *p = box_alloc(size);
        if (p)
            hak_free(p);
    }
    return NULL;
}

static void case_fork(void)
{
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, churn_thread, (void *)(uintptr_t)60) == 0, "pthread_create failed");
    static struct batch mine;
    mine.rnd = rnd_seed(61);
    for (int round = 0; round < 10; round++) {
        batch_alloc(&mine, "fork", 50, (uint32_t)round * 100);
        fflush(stdout);
        pid_t pid = fork();
        EXPECT(pid >= 0, "fork failed: %s", strerror(errno));
        if (pid == 0) {
            alarm(20);
            batch_free_rest(&mine, "free in the fork child");
            batch_alloc(&mine, "alloc in the fork child", 100, 9000);
            batch_free_rest(&mine, "alloc in the fork child");
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "fork round %d: the child %s %d (deadlock on a box lock after fork? see fork_prepare/child)", round,
               WIFSIGNALED(status) ? "was killed by signal" : "exited with", WIFSIGNALED(status) ? WTERMSIG(status)
                                                                                              : WEXITSTATUS(status));
        batch_free_rest(&mine, "free in the fork parent");
    }
    atomic_store(&stop_churn, 1);
    pthread_join(t, NULL);
    summary("10 forks while another thread allocates: the children free the parent's blocks and allocate");
}

/* ---- randomized stress ------------------------------------------------------------------ */

#define SLOTS 1024
#define MAILBOX 2048

struct mailbox {
    pthread_mutex_t lock;
    struct blk items[MAILBOX];
    size_t n;
};

struct stress_thread {
    int index;
    uint64_t rnd;
    struct blk slots[SLOTS];
    struct blk live[SLOTS];
    struct mailbox inbox;
    long allocs, remote, fallback, reallocs;
};

static struct stress_thread *stress;

static void drain_inbox(struct stress_thread *me)
{
    pthread_mutex_lock(&me->inbox.lock);
    for (size_t i = 0; i < me->inbox.n; i++)
        free_block("stress: free of another thread's block", &me->inbox.items[i]);
    me->inbox.n = 0;
    pthread_mutex_unlock(&me->inbox.lock);
}

static void *stress_thread_main(void *arg)
{
    struct stress_thread *me = arg;
    struct stress_thread *peer = &stress[(me->index + 1) % opt.threads];
    size_t cap = hi_capped() > 1 * MB ? 1 * MB : (size_t)hi_capped();
    for (long op = 0; op < opt.ops; op++) {
        struct blk *s = &me->slots[rnd_next(&me->rnd) % SLOTS];
        uint64_t r = rnd_next(&me->rnd);
        if (s->p) {
            if (r % 64 == 0) {
                /* realloc within the range */
                size_t to = rnd_size(&me->rnd, cap);
                verify_block("stress: before realloc", s);
                char *q = hak_realloc(s->p, to);
                EXPECT(q, "stress: realloc(%zu -> %zu) returned NULL", s->size, to);
                EXPECT(check_prefix(q, to, s->seed, s->usable) < 0, "stress: realloc(%zu -> %zu) lost the contents",
                       s->size, to);
                *s = take_block("stress: realloc", q, to, HAK_MIN_ALIGN, s->seed, 1);
                me->reallocs++;
            } else if (r % 8 == 0 && opt.threads > 1) {
                int sent = 0;
                pthread_mutex_lock(&peer->inbox.lock);
                if (peer->inbox.n < MAILBOX) {
                    peer->inbox.items[peer->inbox.n++] = *s;
                    sent = 1;
                }
                pthread_mutex_unlock(&peer->inbox.lock);
                if (!sent)
                    free_block("stress: free", s);
                me->remote += sent;
                s->p = NULL;
            } else {
                free_block("stress: free", s);
                s->p = NULL;
            }
        } else {
            size_t size = rnd_size(&me->rnd, cap);
            void *p = hak_malloc(size);
            EXPECT(p, "stress: malloc(%zu) returned NULL", size);
            *s = take_block("stress: malloc", p, size, HAK_MIN_ALIGN, (uint32_t)(op * 4 + me->index), 1);
            if (hak_region_lookup(p) >> 16 == terminal_in->owner)
                me->fallback++;
            me->allocs++;
        }
        if (op % 256 == 0)
            drain_inbox(me);
        if (op % 32768 == 0) {
            size_t n = 0;
            for (size_t i = 0; i < SLOTS; i++)
                if (me->slots[i].p)
                    me->live[n++] = me->slots[i];
            expect_no_overlap("stress", me->live, n);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (me->slots[i].p)
            free_block("stress: final free", &me->slots[i]);
    return NULL;
}

static void case_stress(void)
{
    stress = calloc((size_t)opt.threads, sizeof *stress);
    EXPECT(stress, "out of memory");
    pthread_t t[64];
    for (int i = 0; i < opt.threads; i++) {
        stress[i].index = i;
        stress[i].rnd = rnd_seed(100 + (uint64_t)i);
        pthread_mutex_init(&stress[i].inbox.lock, NULL);
    }
    for (int i = 0; i < opt.threads; i++)
        EXPECT(pthread_create(&t[i], NULL, stress_thread_main, &stress[i]) == 0, "pthread_create failed");
    for (int i = 0; i < opt.threads; i++)
        pthread_join(t[i], NULL);
    long allocs = 0, remote = 0, fallback = 0, reallocs = 0;
    for (int i = 0; i < opt.threads; i++) {
        drain_inbox(&stress[i]); /* what arrived after its thread finished */
        allocs += stress[i].allocs;
        remote += stress[i].remote;
        fallback += stress[i].fallback;
        reallocs += stress[i].reallocs;
    }
    EXPECT(fallback < allocs, "stress: every malloc fell back to %s", terminal_in->name);
    summary("seed %llu, %d threads x %ld ops: %ld mallocs (%ld fell back to %s), %ld remote frees, %ld reallocs",
            (unsigned long long)opt.seed, opt.threads, opt.ops, allocs, fallback, terminal_in->name, remote, reallocs);
}

/* ================================================================================
 * pages role
 * ================================================================================ */

#define G HAK_GRANULE

static uint16_t consumer; /* the owner spans are handed to: the terminal box */

struct span {
    char *p;
    size_t bytes;
    uint16_t tag;
    uint32_t seed;
};

static void pages_start(void)
{
    consumer = terminal_in->owner;
}

static void *pa_alloc(size_t bytes, size_t align, uint16_t tag)
{
    char *block = hak_thread_acquire();
    void *p = box->desc->ops.pages_alloc(box_tls(block), bytes, align, consumer, tag);
    hak_thread_release(block);
    return p;
}

static void pa_free(void *p, size_t bytes)
{
    char *block = hak_thread_acquire();
    box->desc->ops.pages_free(box_tls(block), p, bytes);
    hak_thread_release(block);
}

/* Every granule of the span is the consumer's with this tag; mark each page. */
static struct span take_span(const char *what, void *p, size_t bytes, size_t align, uint16_t tag, uint32_t seed)
{
    EXPECT(p, "%s: pages_alloc(%zu bytes, align %zu) returned NULL", what, bytes, align);
    size_t want = align > G ? align : G;
    EXPECT(((uintptr_t)p & (want - 1)) == 0, "%s: span %p (%zu bytes) is not aligned to %zu", what, p, bytes, want);
    for (size_t off = 0; off < bytes; off += G) {
        uint32_t e = hak_region_lookup((char *)p + off);
        EXPECT(e == ((uint32_t)consumer << 16 | tag),
               "%s: granule %zu of span %p (%zu bytes) is recorded as (%s, tag %u), expected (%s, tag %u): "
               "pages_alloc must assign the span to the consumer", what, off / G, p, bytes,
               owner_name((uint16_t)(e >> 16)), e & 0xffff, owner_name(consumer), tag);
    }
    for (size_t off = 0; off < bytes; off += 4096)
        *(uint64_t *)((char *)p + off) = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + off;
    return (struct span){ p, bytes, tag, seed };
}

static void verify_span(const char *what, const struct span *s)
{
    for (size_t off = 0; off < s->bytes; off += 4096)
        EXPECT(*(uint64_t *)(s->p + off) == (uint64_t)s->seed * 0x9E3779B97F4A7C15ULL + off,
               "%s: span %p (%zu bytes) was overwritten at offset %zu: handed out twice?", what, s->p, s->bytes, off);
    uint32_t e = hak_region_lookup(s->p);
    EXPECT(e == ((uint32_t)consumer << 16 | s->tag), "%s: span %p changed owner while in use: now %s tag %u", what,
           s->p, owner_name((uint16_t)(e >> 16)), e & 0xffff);
}

/* After pages_free: the consumer owns none of it any more. */
static void expect_handed_back(const char *what, const struct span *s)
{
    for (size_t off = 0; off < s->bytes; off += G) {
        uint16_t owner = (uint16_t)(hak_region_lookup(s->p + off) >> 16);
        EXPECT(owner_after_free[owner] && owner != consumer,
               "%s: after pages_free(%p, %zu), granule %zu is still owned by %s (expected the page box, one below "
               "it, or nobody)", what, s->p, s->bytes, off / G, owner_name(owner));
    }
}

static int span_by_address(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

static void expect_spans_disjoint(const char *what, struct span *spans, size_t n)
{
    if (n < 2)
        return;
    struct span *sorted = malloc(n * sizeof *sorted);
    EXPECT(sorted, "out of memory");
    memcpy(sorted, spans, n * sizeof *spans);
    qsort(sorted, n, sizeof *sorted, span_by_address);
    for (size_t i = 1; i < n; i++)
        EXPECT(sorted[i - 1].p + sorted[i - 1].bytes <= sorted[i].p, "%s: live spans overlap: %p (%zu) and %p (%zu)",
               what, sorted[i - 1].p, sorted[i - 1].bytes, sorted[i].p, sorted[i].bytes);
    free(sorted);
}

static void case_pages_spans(void)
{
    pages_start();
    static struct span live[1024];
    size_t n = 0;
    for (unsigned g = 1; g <= opt.max_granules; g++) {
        void *p = pa_alloc(g * G, 0, (uint16_t)g);
        live[n] = take_span("spans", p, g * G, 0, (uint16_t)g, g);
        n++;
    }
    expect_spans_disjoint("spans", live, n);
    for (size_t i = 0; i < n; i++)
        verify_span("spans", &live[i]);
    for (size_t i = n; i-- > 0;) {
        pa_free(live[i].p, live[i].bytes);
        expect_handed_back("spans", &live[i]);
    }
    summary("spans of 1..%u granules: granule aligned, every granule assigned to the consumer with its tag, "
            "disjoint, handed back on pages_free", opt.max_granules);
}

static void case_pages_alignment(void)
{
    pages_start();
    static const size_t aligns[] = { 2 * G, 4 * G, 8 * G, 16 * G, 32 * G, 64 * G };
    static const size_t grans[] = { 1, 2, 5, 33 };
    unsigned n = 0;
    for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++)
        for (size_t g = 0; g < sizeof grans / sizeof *grans; g++) {
            void *p = pa_alloc(grans[g] * G, aligns[a], 3);
            struct span s = take_span("alignment", p, grans[g] * G, aligns[a], 3, (uint32_t)(a * 16 + g));
            verify_span("alignment", &s);
            pa_free(s.p, s.bytes);
            expect_handed_back("alignment", &s);
            n++;
        }
    summary("%u spans aligned to 128K..4M", n);
}

static uint64_t total_mapped(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < bt_plan.instance_count; i++)
        sum += atomic_load(&bt_plan.instances[i].bytes_mapped);
    return sum;
}

static void case_pages_reuse(void)
{
    pages_start();
    /* one span freed and asked again, retagged: either reused (then the new
     * tag must show) or fresh */
    void *p = pa_alloc(2 * G, 0, 5);
    struct span a = take_span("reuse", p, 2 * G, 0, 5, 1);
    pa_free(a.p, a.bytes);
    expect_handed_back("reuse", &a);
    void *q = pa_alloc(2 * G, 0, 9);
    struct span b = take_span("reuse", q, 2 * G, 0, 9, 2);
    int same = q == p;
    pa_free(b.p, b.bytes);
    /* a loop of alloc/free must not keep mapping: spans are reused or returned */
    uint64_t before = total_mapped();
    const unsigned loops = 2000;
    for (unsigned i = 0; i < loops; i++) {
        size_t bytes = (size_t)(1 + i % 3) * G;
        void *r = pa_alloc(bytes, 0, (uint16_t)(i & 0xff));
        struct span s = take_span("reuse loop", r, bytes, 0, (uint16_t)(i & 0xff), i);
        pa_free(s.p, s.bytes);
    }
    uint64_t after = total_mapped();
    EXPECT(after < before + (uint64_t)loops / 2 * G,
           "reuse: %u alloc/free pairs grew the mapped bytes from %llu to %llu: freed spans are neither reused nor "
           "returned", loops, (unsigned long long)before, (unsigned long long)after);
    summary("a freed span %s; %u alloc/free pairs keep mapped memory bounded (%llu KB held after)",
            same ? "came back retagged for the next request" : "was not reused at once (fresh span given)", loops,
            (unsigned long long)(after / KB));
}

static struct span thread_spans[64];

static void *pages_alloc_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 64; i++) {
        size_t bytes = (size_t)(1 + i % 4) * G;
        thread_spans[i] = take_span("threads", pa_alloc(bytes, 0, 4), bytes, 0, 4, (uint32_t)i);
    }
    /* a few freed here: whatever the box caches per thread stays behind */
    for (int i = 0; i < 16; i++) {
        pa_free(thread_spans[i].p, thread_spans[i].bytes);
        thread_spans[i].p = NULL;
    }
    return NULL;
}

static void *pages_free_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 64; i++)
        if (thread_spans[i].p) {
            verify_span("free from another thread", &thread_spans[i]);
            pa_free(thread_spans[i].p, thread_spans[i].bytes);
            thread_spans[i].p = NULL;
        }
    return NULL;
}

static void case_pages_threads(void)
{
    pages_start();
    run_thread(pages_alloc_thread, NULL); /* exits with 48 spans live */
    for (int i = 16; i < 40; i++) {
        verify_span("free after the allocating thread exited", &thread_spans[i]);
        pa_free(thread_spans[i].p, thread_spans[i].bytes);
        expect_handed_back("free after the allocating thread exited", &thread_spans[i]);
        thread_spans[i].p = NULL;
    }
    run_thread(pages_free_thread, NULL);
    hak_thread_exit_now();
    run_thread(pages_alloc_thread, NULL);
    run_thread(pages_free_thread, NULL);
    summary("spans freed after their thread exited, and by another thread; thread_exit then reuse");
}

struct pages_stress_thread {
    int index;
    uint64_t rnd;
    struct span slots[128];
    long allocs;
};

static void *pages_stress_main(void *arg)
{
    struct pages_stress_thread *me = arg;
    static const size_t aligns[] = { 0, 0, 0, 2 * G, 32 * G };
    long ops = opt.ops / 10 + 1;
    for (long op = 0; op < ops; op++) {
        struct span *s = &me->slots[rnd_next(&me->rnd) % 128];
        if (s->p) {
            verify_span("stress", s);
            pa_free(s->p, s->bytes);
            s->p = NULL;
            continue;
        }
        size_t bytes = (size_t)(1 + rnd_next(&me->rnd) % 8) * G;
        size_t align = aligns[rnd_next(&me->rnd) % 5];
        uint16_t tag = (uint16_t)(me->index * 1000 + op % 1000);
        *s = take_span("stress", pa_alloc(bytes, align, tag), bytes, align, tag, (uint32_t)(op * 8 + me->index));
        me->allocs++;
    }
    for (int i = 0; i < 128; i++)
        if (me->slots[i].p) {
            verify_span("stress", &me->slots[i]);
            pa_free(me->slots[i].p, me->slots[i].bytes);
        }
    return NULL;
}

static void case_pages_stress(void)
{
    pages_start();
    struct pages_stress_thread *th = calloc((size_t)opt.threads, sizeof *th);
    EXPECT(th, "out of memory");
    pthread_t t[64];
    for (int i = 0; i < opt.threads; i++) {
        th[i].index = i;
        th[i].rnd = rnd_seed(200 + (uint64_t)i);
        EXPECT(pthread_create(&t[i], NULL, pages_stress_main, &th[i]) == 0, "pthread_create failed");
    }
    long allocs = 0;
    for (int i = 0; i < opt.threads; i++) {
        pthread_join(t[i], NULL);
        allocs += th[i].allocs;
    }
    summary("seed %llu, %d threads: %ld spans of 1..8 granules, some aligned to 128K or 2M",
            (unsigned long long)opt.seed, opt.threads, allocs);
}

static void case_pages_fork(void)
{
    pages_start();
    for (int round = 0; round < 5; round++) {
        struct span s = take_span("fork", pa_alloc(2 * G, 0, 1), 2 * G, 0, 1, (uint32_t)round);
        fflush(stdout);
        pid_t pid = fork();
        EXPECT(pid >= 0, "fork failed");
        if (pid == 0) {
            alarm(20);
            verify_span("fork child", &s);
            pa_free(s.p, s.bytes);
            struct span c = take_span("fork child", pa_alloc(3 * G, 0, 2), 3 * G, 0, 2, 99);
            pa_free(c.p, c.bytes);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork round %d: the child failed (status 0x%x)", round,
               status);
        pa_free(s.p, s.bytes);
    }
    summary("5 forks: the child frees the parent's span and allocates");
}

/* ================================================================================
 * observer role
 * ================================================================================ */

static void *observer_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        void *p = hak_malloc((size_t)(i + 1) * 100 * KB);
        EXPECT(p, "malloc returned NULL");
        hak_free(p);
    }
    return NULL;
}

static void case_observer(void)
{
    for (int i = 0; i < 4; i++)
        run_thread(observer_thread, NULL);
    for (int i = 0; i < 200; i++) {
        void *p = hak_malloc((size_t)(i % 40 + 1) * 64 * KB);
        EXPECT(p, "malloc returned NULL");
        hak_free(p);
    }
    hak_observers_report(&bt_plan, "hakmem boxtest");
    summary("on_event took the events of 400 big mallocs over 5 threads; report() ran");
}

/* ================================================================================
 * the driver (parent side)
 * ================================================================================ */

struct bt_case {
    const char *name;
    uint32_t role;
    void (*fn)(void);
};

static const struct bt_case cases[] = {
    { "start", 0, case_start },
    { "sizes", HAK_ROLE_ALLOC, case_sizes },
    { "alignment", HAK_ROLE_ALLOC, case_alignment },
    { "malloc api", HAK_ROLE_ALLOC, case_malloc_api },
    { "remote free", HAK_ROLE_ALLOC, case_remote_free },
    { "thread exit", HAK_ROLE_ALLOC, case_thread_exit },
    { "fork", HAK_ROLE_ALLOC, case_fork },
    { "stress", HAK_ROLE_ALLOC, case_stress },
    { "spans", HAK_ROLE_PAGES, case_pages_spans },
    { "span alignment", HAK_ROLE_PAGES, case_pages_alignment },
    { "span reuse", HAK_ROLE_PAGES, case_pages_reuse },
    { "span threads", HAK_ROLE_PAGES, case_pages_threads },
    { "span stress", HAK_ROLE_PAGES, case_pages_stress },
    { "span fork", HAK_ROLE_PAGES, case_pages_fork },
    { "events", HAK_ROLE_OBSERVER, case_observer },
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hakmem boxtest PATH.so|PLUGIN [options]\n"
            "  -s key=value         a parameter of the box (key.with.dots: any config override)\n"
            "  --range LO-HI        sizes the box serves (K/M/G, HI may be max; default: its classes, or 1-1K)\n"
            "  --link NAME=PLUGIN   the box linked as NAME (default: os_pages for pages links,\n"
            "                       superslab for a front's below)\n"
            "  --terminal PLUGIN    the terminal box for sizes outside the range (default large)\n"
            "  --seed N             stress seed (default 1)\n"
            "  --ops N              stress operations per thread (default 100000)\n"
            "  --threads N          stress threads (default 2)\n"
            "  --granules N         pages: largest span in granules (default 32)\n"
            "  --timeout S          seconds per case (default 120)\n"
            "  --case NAME          run only this case (and start)\n"
            "  --foreign            accept blocks the region map does not know (glibc's: the system box)\n"
            "  --no-fork            run the cases in this process (for a debugger; stops at the first failure)\n"
            "  -v                   show the config and every case's output\n"
            "exit status: 0 every case passed, 1 a case failed, 2 bad arguments or a config the host refused\n");
}

/* Append to config_text. */
__attribute__((format(printf, 1, 2))) static int cat(const char *fmt, ...)
{
    size_t used = strlen(config_text);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(config_text + used, sizeof config_text - used, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= sizeof config_text - used) ? -1 : 0;
}

static void format_size(char *out, size_t len, uint64_t v)
{
    if (v == UINT64_MAX)
        snprintf(out, len, "max");
    else
        snprintf(out, len, "%llu", (unsigned long long)v);
}

/* Helper instances, one per plugin: bt_<plugin>. */
struct helper {
    char plugin[PATH_MAX];
    char name[HAK_NAME_MAX];
};
static struct helper helpers[HAK_MAX_INSTANCES];
static int helper_count;

static const char *plugin_default(const struct hak_link_decl *l, uint32_t roles, uint32_t flags)
{
    if (l->role == HAK_ROLE_PAGES)
        return "os_pages";
    if ((flags & HAK_BOX_FLAG_FRONT) && !strcmp(l->name, "below"))
        return "superslab";
    (void)roles;
    return l->required ? opt.terminal : NULL;
}

static const char *helper_for(const char *plugin, char *err, size_t err_len);

/* The `key = INSTANCE` lines of a box's links; user choices first for the box
 * under test, defaults for the rest (required links only for helpers). */
static int link_lines(const struct hak_box_desc *d, int is_test, char *out, size_t cap, char *err, size_t err_len)
{
    out[0] = '\0';
    for (uint32_t l = 0; l < d->link_count; l++) {
        const char *plugin = NULL;
        if (is_test)
            for (int k = 0; k < opt.link_count; k++)
                if (!strcmp(opt.links[k].name, d->links[l].name))
                    plugin = opt.links[k].plugin;
        if (!plugin && (is_test || d->links[l].required))
            plugin = plugin_default(&d->links[l], d->roles, d->flags);
        if (!plugin)
            continue;
        const char *inst = helper_for(plugin, err, err_len);
        if (!inst)
            return -1;
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s = %s\n", d->links[l].name, inst);
    }
    return 0;
}

static const char *helper_for(const char *plugin, char *err, size_t err_len)
{
    if (!strcmp(plugin, opt.terminal))
        return "bt_terminal";
    for (int i = 0; i < helper_count; i++)
        if (!strcmp(helpers[i].plugin, plugin))
            return helpers[i].name;
    if (helper_count == HAK_MAX_INSTANCES - 2) {
        snprintf(err, err_len, "too many helper boxes");
        return NULL;
    }
    struct helper *h = &helpers[helper_count++];
    snprintf(h->plugin, sizeof h->plugin, "%s", plugin);
    const char *base = strrchr(plugin, '/') ? strrchr(plugin, '/') + 1 : plugin;
    snprintf(h->name, sizeof h->name, "bt_%s", base);
    for (char *c = h->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            *c = '_';
    struct hak_error e = { "" };
    char path[PATH_MAX];
    const struct hak_box_desc *d = hak_plugin_load(plugin, NULL, NULL, cli_lib_dir(), path, sizeof path, &e,
                                                   NULL, 0);
    if (!d) {
        snprintf(err, err_len, "%s", e.msg);
        return NULL;
    }
    static char lines[HAK_MAX_INSTANCES][1024];
    int me = helper_count - 1;
    if (link_lines(d, 0, lines[me], sizeof lines[me], err, err_len))
        return NULL;
    if (cat("\n[box.%s]\nplugin = %s\n%s", h->name, plugin, lines[me])) {
        snprintf(err, err_len, "config too long");
        return NULL;
    }
    return h->name;
}

static int build_config(const struct hak_box_desc *d, char *err, size_t err_len)
{
    config_text[0] = '\0';
    helper_count = 0;
    /* A box file is named through box_dir and its plugin name: a plugin
     * value is at most HAK_NAME_MAX - 1 characters, too short for paths. */
    char plugin[PATH_MAX], box_dir[PATH_MAX] = "";
    snprintf(plugin, sizeof plugin, "%s", opt.box);
    const char *slash = strrchr(opt.box, '/');
    size_t len = strlen(opt.box);
    if (slash && !strncmp(slash + 1, "hakbox_", 7) && len > 3 && !strcmp(opt.box + len - 3, ".so")) {
        snprintf(box_dir, sizeof box_dir, "%.*s", (int)(slash - opt.box), opt.box);
        snprintf(plugin, sizeof plugin, "%.*s", (int)(opt.box + len - 3 - (slash + 8)), slash + 8);
    } else if (slash && len >= HAK_NAME_MAX) {
        snprintf(err, err_len, "%s: a box file outside the box folders must be named hakbox_NAME.so "
                 "(or its path be shorter than %d characters)", opt.box, HAK_NAME_MAX);
        return -1;
    }
    cat("; written by hakmem boxtest\n[host]\nterminal = bt_terminal\non_bad_free = abort\n");
    if (box_dir[0])
        cat("box_dir = %s\n", box_dir);
    cat("\n[box.bt_terminal]\nplugin = %s\n", opt.terminal);
    char links[2048];
    if (link_lines(d, 1, links, sizeof links, err, err_len))
        return -1;
    if (cat("\n[box.test]\nplugin = %s\n%s%s", plugin, links, opt.params)) {
        snprintf(err, err_len, "config too long");
        return -1;
    }
    cat("\n[route]\n");
    if (d->roles & HAK_ROLE_ALLOC) {
        char lo[32], hi[32], after[32];
        format_size(lo, sizeof lo, opt.lo);
        format_size(hi, sizeof hi, opt.hi);
        if (opt.lo > 1)
            cat("1-%llu = bt_terminal\n", (unsigned long long)opt.lo - 1);
        cat("%s-%s = test\n", lo, hi);
        if (opt.hi != UINT64_MAX) {
            format_size(after, sizeof after, opt.hi + 1);
            cat("%s-max = bt_terminal\n", after);
        }
    } else {
        cat("1-max = bt_terminal\n");
    }
    return 0;
}

struct case_result {
    int passed;
    char summary[512];
    char output[16384];
    char range_line[256];
};

/* Run one case in a child; collect its output. */
static void run_case(const struct bt_case *c, struct case_result *res)
{
    int fds[2];
    memset(res, 0, sizeof *res);
    if (pipe(fds)) {
        snprintf(res->output, sizeof res->output, "pipe: %s\n", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    if (opt.no_fork) {
        /* For a debugger: the case runs here, a failure ends the process. */
        close(fds[0]);
        close(fds[1]);
        static int started;
        if (!started++)
            host_start();
        c->fn();
        res->passed = 1;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->output, sizeof res->output, "fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        alarm(opt.timeout);
        host_start();
        c->fn();
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    size_t used = 0;
    char buf[4096];
    static char all[1 << 16];
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t take = (size_t)n < sizeof all - 1 - used ? (size_t)n : sizeof all - 1 - used;
        memcpy(all + used, buf, take);
        used += take;
    }
    all[used] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* protocol lines (@summary, @range) apart from free text */
    size_t out_used = 0;
    for (char *line = all, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "@summary ", 9))
            snprintf(res->summary, sizeof res->summary, "%s", line + 9);
        else if (!strncmp(line, "@range ", 7))
            snprintf(res->range_line, sizeof res->range_line, "%s", line + 7);
        else if (out_used < sizeof res->output - 1) {
            int w = snprintf(res->output + out_used, sizeof res->output - out_used, "%s\n", line);
            if (w > 0)
                out_used += (size_t)w < sizeof res->output - out_used ? (size_t)w : sizeof res->output - out_used - 1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res->passed = 1;
        return;
    }
    char why[128];
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(why, sizeof why, "killed by signal %d (%s)%s", sig, strsignal(sig),
                 sig == SIGALRM ? ": timed out (a deadlock or a very slow box?)"
                 : sig == SIGABRT ? ": an abort, e.g. host->bad_free or an assertion"
                 : sig == SIGSEGV ? ": a crash" : "");
    } else if (WEXITSTATUS(status) == 1) {
        return; /* a failed check: its message says it all */
    } else {
        snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
    }
    size_t len = strlen(res->output);
    snprintf(res->output + len, sizeof res->output - len, "%s\n", why);
}

static void print_indented(const char *text)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        int n = end ? (int)(end - line) : (int)strlen(line);
        printf("        %.*s\n", n, line);
        line += n + (end ? 1 : 0);
    }
}

static int parse_range(const char *text)
{
    char lo[64];
    const char *dash = strchr(text, '-');
    if (!dash || dash == text || (size_t)(dash - text) >= sizeof lo)
        return -1;
    snprintf(lo, sizeof lo, "%.*s", (int)(dash - text), text);
    if (hak_parse_size(lo, &opt.lo))
        return -1;
    if (!strcasecmp(dash + 1, "max"))
        opt.hi = UINT64_MAX;
    else if (hak_parse_size(dash + 1, &opt.hi))
        return -1;
    if (opt.lo == 0)
        opt.lo = 1;
    return opt.hi < opt.lo ? -1 : 0;
}

static int parse_args(int argc, char **argv)
{
    memset(&opt, 0, sizeof opt);
    snprintf(opt.terminal, sizeof opt.terminal, "large");
    opt.lo = 1;
    opt.hi = 1024;
    opt.seed = 1;
    opt.ops = 100000;
    opt.threads = 2;
    opt.max_granules = 32;
    opt.timeout = 120;
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-v")) {
            opt.verbose = 1;
        } else if (!strcmp(a, "--no-fork")) {
            opt.no_fork = 1;
        } else if (!strcmp(a, "--foreign")) {
            opt.foreign_ok = 1;
        } else if (!strcmp(a, "-s") && v) {
            const char *eq = strchr(v, '=');
            const char *dot = strchr(v, '.');
            if (!eq || eq == v) {
                fprintf(stderr, "hakmem boxtest: -s %s: expected key=value\n", v);
                return -1;
            }
            char *buf = dot && dot < eq ? opt.overrides : opt.params;
            size_t cap = sizeof opt.params, used = strlen(buf);
            if (dot && dot < eq)
                snprintf(buf + used, cap - used, "%s%s", used ? "," : "", v);
            else
                snprintf(buf + used, cap - used, "%.*s = %s\n", (int)(eq - v), v, eq + 1);
            i++;
        } else if (!strcmp(a, "--range") && v) {
            if (parse_range(v)) {
                fprintf(stderr, "hakmem boxtest: --range %s: expected LO-HI such as 1-1K or 64K-max\n", v);
                return -1;
            }
            opt.range_given = 1;
            i++;
        } else if (!strcmp(a, "--link") && v) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1] || opt.link_count == HAK_MAX_LINKS) {
                fprintf(stderr, "hakmem boxtest: --link %s: expected NAME=PLUGIN\n", v);
                return -1;
            }
            struct link_choice *l = &opt.links[opt.link_count++];
            snprintf(l->name, sizeof l->name, "%.*s", (int)(eq - v), v);
            snprintf(l->plugin, sizeof l->plugin, "%s", eq + 1);
            i++;
        } else if (!strcmp(a, "--terminal") && v) {
            snprintf(opt.terminal, sizeof opt.terminal, "%s", v);
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            opt.seed = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--ops") && v) {
            opt.ops = strtol(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            opt.threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--granules") && v) {
            opt.max_granules = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(a, "--timeout") && v) {
            opt.timeout = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(a, "--case") && v) {
            opt.only = v;
            i++;
        } else if (a[0] != '-' && !target) {
            target = a;
        } else {
            fprintf(stderr, "hakmem boxtest: unknown or incomplete option %s\n", a);
            return -1;
        }
    }
    if (!target) {
        usage(stderr);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--case") || !strcmp(argv[i], "-v") || !strcmp(argv[i], "--no-fork")) {
            i += !strcmp(argv[i], "--case");
            continue;
        }
        size_t used = strlen(opt.command_line);
        int quote = strpbrk(argv[i], " \t'\"$") != NULL;
        snprintf(opt.command_line + used, sizeof opt.command_line - used, "%s%s%s%s", used ? " " : "",
                 quote ? "'" : "", argv[i], quote ? "'" : "");
    }
    if (opt.threads < 1 || opt.threads > 64 || opt.ops < 1 || opt.max_granules < 1 || opt.max_granules > 1000 ||
        opt.timeout < 1) {
        fprintf(stderr, "hakmem boxtest: --threads 1..64, --ops >= 1, --granules 1..1000, --timeout >= 1\n");
        return -1;
    }
    /* A file is named by its absolute path in the config; anything else is a
     * plugin name looked up like the host does. */
    if (strchr(target, '/') || access(target, R_OK) == 0) {
        if (!realpath(target, opt.box)) {
            fprintf(stderr, "hakmem boxtest: %s: %s\n", target, strerror(errno));
            return -1;
        }
    } else {
        snprintf(opt.box, sizeof opt.box, "%s", target);
    }
    return 0;
}

static int run_suite(const struct hak_box_desc *d)
{
    char err[1024];
    int passed = 0, failed = 0, skipped = 0;
    if (opt.only) {
        int known = 0;
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            known |= (!cases[i].role || (d->roles & cases[i].role)) && !strcmp(cases[i].name, opt.only);
        if (!known) {
            fprintf(stderr, "hakmem boxtest: --case %s: no such case for this box; its cases:", opt.only);
            for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
                if (!cases[i].role || (d->roles & cases[i].role))
                    fprintf(stderr, " '%s'", cases[i].name);
            fprintf(stderr, "\n");
            return 2;
        }
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct bt_case *c = &cases[i];
        if (c->role && !(d->roles & c->role))
            continue;
        if (opt.only && c->role && strcmp(opt.only, c->name)) {
            skipped++;
            continue;
        }
        if (c->role && failed && !passed) /* start failed: nothing else can run */
            break;
        static struct case_result res;
        run_case(c, &res);
        if (res.passed)
            passed++;
        else
            failed++;
        printf("%s  %-15s %s\n", res.passed ? "PASS" : "FAIL", c->name, res.passed ? res.summary : "");
        if (!res.passed || opt.verbose)
            print_indented(res.output);
        if (!strcmp(c->name, "start") && res.range_line[0] && res.passed) {
            /* the range the box declared, for every later case */
            char lo[32], hi[32];
            int off = 0;
            if (sscanf(res.range_line, "%31s %31s %n", lo, hi, &off) == 2) {
                char text[80];
                snprintf(text, sizeof text, "%s-%s", lo, hi);
                if (parse_range(text) == 0) {
                    snprintf(opt.range_note, sizeof opt.range_note, "%s", res.range_line + off);
                    if (build_config(d, err, sizeof err)) {
                        printf("FAIL  config: %s\n", err);
                        return 1;
                    }
                }
            }
        }
        if (!strcmp(c->name, "start") && (d->roles & HAK_ROLE_ALLOC)) {
            char lo[32], hi[32];
            format_size(lo, sizeof lo, opt.lo);
            format_size(hi, sizeof hi, opt.hi);
            printf("      range %s-%s%s%s%s\n", lo, hi, opt.range_note[0] ? " (" : "", opt.range_note,
                   opt.range_note[0] ? ")" : "");
        }
        fflush(stdout);
    }
    printf("%s: %d passed, %d failed", failed ? "FAILED" : "ok", passed, failed);
    printf(skipped ? ", %d skipped (--case)\n" : "\n", skipped);
    if (failed)
        printf("rerun one case with: hakmem boxtest %s --case NAME -v   (under gdb: add --no-fork)\n",
               opt.command_line);
    return failed ? 1 : 0;
}

int cmd_boxtest(int argc, char **argv)
{
    if (parse_args(argc, argv))
        return 2;
    /* The descriptor first: roles and links decide the config. */
    struct hak_error e = { "" };
    char path[PATH_MAX];
    const struct hak_box_desc *d = hak_plugin_load(opt.box, NULL, NULL, cli_lib_dir(), path, sizeof path, &e,
                                                   NULL, 0);
    if (!d) {
        fprintf(stderr, "hakmem boxtest: %s\n", e.msg);
        return 2;
    }
    if (!(d->roles & (HAK_ROLE_ALLOC | HAK_ROLE_PAGES | HAK_ROLE_OBSERVER))) {
        fprintf(stderr, "hakmem boxtest: %s has no role this suite knows\n", path);
        return 2;
    }
    char err[1024];
    if (build_config(d, err, sizeof err)) {
        fprintf(stderr, "hakmem boxtest: %s\n", err);
        return 2;
    }
    /* The config must resolve before any case runs (a bad -s, say). */
    {
        static struct hak_plan plan;
        static struct hak_cfg_raw raw;
        if (hak_plan_load(&plan, &raw, config_text, strlen(config_text), "(boxtest config)",
                          opt.overrides[0] ? opt.overrides : NULL, cli_lib_dir(), &e)) {
            fprintf(stderr, "hakmem boxtest: %s\n", e.msg);
            if (opt.verbose)
                fprintf(stderr, "%s", config_text);
            return 2;
        }
    }
    char roles[32];
    printf("hakmem boxtest: %s\n", path);
    printf("box %s [%s%s%s]: %s\n", d->name, hak_role_names(d->roles, roles, sizeof roles),
           d->flags & HAK_BOX_FLAG_FRONT ? ", front" : "", d->flags & HAK_BOX_FLAG_TERMINAL ? ", terminal" : "",
           d->summary ? d->summary : "");
    if (opt.verbose)
        printf("config:\n%s\n", config_text);
    fflush(stdout);
    return run_suite(d);
}
