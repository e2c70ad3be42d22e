/*
 * hakmem boxtest, the child side: the host and the box under test, failures
 * and summaries, random sizes and fill patterns, blocks and their checks,
 * threads and batches: what every case builds on (see boxtest.c).
 */
#include "boxtest.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FULL_FILL (16 * KB)         /* blocks above this are sampled */

/* ---- child side: the host, the box, and failures ------------------------------ */

struct hak_plan bt_plan;
static struct hak_cfg_raw bt_raw;
const struct hak_instance *box;       /* the box under test */
const struct hak_instance *terminal_in;
const struct hak_instance *class_in;  /* whose tags are class indexes */
static int owner_ok[HAK_MAX_INSTANCES + 1];  /* owners the box may hand out */
int owner_after_free[HAK_MAX_INSTANCES + 1]; /* pages: owners of a freed span */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 1, 2), noreturn)) void fail(const char *fmt, ...)
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

/* A line the parent shows next to PASS. */
__attribute__((format(printf, 1, 2))) void summary(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("@summary ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

const char *owner_name(uint16_t owner)
{
    if (owner == 0)
        return "nobody (glibc's or unmapped)";
    if (owner > bt_plan.instance_count)
        return "an unknown owner";
    return bt_plan.instances[owner - 1].name;
}

void host_start(void)
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

uint64_t rnd_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t rnd_seed(uint64_t stream)
{
    uint64_t s = (opt.seed + 1) * 0x9E3779B97F4A7C15ULL + stream * 0xBF58476D1CE4E5B9ULL;
    return s ? s : 1;
}

uint64_t hi_capped(void)
{
    return opt.hi > SIZE_CAP ? SIZE_CAP : opt.hi;
}

/* A size in the range, log-uniform up to `cap`, so small sizes get their share. */
size_t rnd_size(uint64_t *s, size_t cap)
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
void fill(void *p, size_t n, uint32_t seed)
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
long check_prefix(const void *p, size_t keep, uint32_t seed, size_t written)
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

long check(const void *p, size_t n, uint32_t seed) { return check_prefix(p, n, seed, n); }

/* ---- blocks ---------------------------------------------------------------------- */

void *box_tls(char *block) { return block + box->tls_offset; }

/* The box's own alloc on this thread's slice, as the host's first try is. */
void *box_alloc(size_t size)
{
    char *block = hak_thread_acquire();
    void *p = box->desc->ops.alloc(box_tls(block), size);
    hak_thread_release(block);
    return p;
}

void *box_alloc_aligned(size_t size, size_t align)
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
struct blk take_block(const char *what, void *p, size_t size, size_t align, uint32_t seed, int may_fall_back)
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

void verify_block(const char *what, const struct blk *b)
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

void free_block(const char *what, const struct blk *b)
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
void expect_no_overlap(const char *what, const struct blk *blocks, size_t n)
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
size_t size_list(size_t *out, size_t cap)
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

void run_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, fn, arg) == 0, "pthread_create failed");
    pthread_join(t, NULL);
}

/* Allocate n blocks of random sizes in the range, bytes capped. */
void batch_alloc(struct batch *bt, const char *what, size_t n, uint32_t seed_base)
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

void batch_free(struct batch *bt, const char *what, size_t from, size_t step)
{
    for (size_t i = from; i < bt->n; i += step) {
        free_block(what, &bt->b[i]);
        bt->b[i].p = NULL;
    }
}

void batch_free_rest(struct batch *bt, const char *what)
{
    for (size_t i = 0; i < bt->n; i++)
        if (bt->b[i].p)
            free_block(what, &bt->b[i]);
    bt->n = 0;
}
