/*
 * Part of the box kit (header-only, no state): the set-up of a front box,
 * a per-thread cache per class stacked on the box linked as `below`, which
 * has the class interface (tiny_unified_cache and tiny_hot_ring over
 * superslab). create() checks below's classes, sizes each class's cache
 * and batches from the front's parameters, and builds the table its alloc
 * path maps a request size to a class with. Only create() runs this code:
 * the fast paths read the tables it fills.
 *
 * No stdio: errors are joined by hand (hak_front_error), as the tiny
 * fronts include no stdio at all.
 */
#ifndef HAKMEM_FRONT_H
#define HAKMEM_FRONT_H

#include <box_api/hakmem_box.h>
#include <stddef.h>
#include <stdint.h>

#define HAK_FRONT_MAX_CLASSES 16       /* also the "no class" index of cls_of */
#define HAK_FRONT_SIZE_INDEX_MAX 128u  /* (1024 + 7) >> 3: classes of at most 1 KB */

/* err = a then b, cut to len. */
static inline void hak_front_error(char *err, size_t len, const char *a, const char *b)
{
    size_t at = 0;
    if (!err || !len)
        return;
    for (const char *s = a; *s && at + 1 < len; s++)
        err[at++] = *s;
    for (const char *s = b; *s && at + 1 < len; s++)
        err[at++] = *s;
    err[at] = 0;
}

/* below's class count; 0 and the reason in err if below has no class
 * interface or not 1..HAK_FRONT_MAX_CLASSES classes. */
static inline uint32_t hak_front_class_count(const struct hak_link *below, char *err, size_t err_len)
{
    const struct hak_box_ops *b = below->desc ? &below->desc->ops : NULL;
    if (!b || !b->class_count || !b->class_size || !b->alloc_batch || !b->free_batch) {
        hak_front_error(err, err_len, "below: the linked box has no class interface ",
                        "(class_count/class_size/alloc_batch/free_batch)");
        return 0;
    }
    uint32_t n = b->class_count(below->inst);
    if (n == 0 || n > HAK_FRONT_MAX_CLASSES) {
        hak_front_error(err, err_len, "below: ", "between 1 and 16 classes are supported");
        return 0;
    }
    return n;
}

/* Where a front's schema keeps the parameters of its caches. */
struct hak_front_params {
    int cache;              /* blocks a class's cache holds per thread */
    int cache_c0;           /* the same for classes 0..7, 0: `cache` */
    int refill;             /* blocks asked from below at once, at most the cache */
    int drain;              /* blocks given below when full, at most the cache; 0: half */
    int check_block_start;  /* bool: the block-start test on free */
    int drain_rounds_up;    /* the default drain is (cache + drain_rounds_up) / 2 */
};

/* The instance's per-class tables hak_front_setup fills: arrays of
 * HAK_FRONT_MAX_CLASSES, cls_of and cls_off of HAK_FRONT_SIZE_INDEX_MAX + 1
 * or more. */
struct hak_front_tables {
    uint32_t *class_size;
    uint32_t *cache, *refill, *drain;
    uint32_t *slot_off;     /* the class's first slot in a slice's buffer */
    uint64_t *magic;        /* the block-start test: UINT64_MAX / size + 1, 0: off */
    uint8_t *cls_of;        /* (size + 7) >> 3 -> class, HAK_FRONT_MAX_CLASSES: none */
    uint16_t *cls_off;      /* the same as a byte offset: class * class_stride */
    uint32_t *buf_slots;    /* one: the slots of all classes, a slice's buffer */
};

/* Reads below's n classes (hak_front_class_count) and fills the tables; 0,
 * or -1 and the reason in err if the class sizes do not increase, are not
 * multiples of 8 or exceed 1 KB. class_stride: the size of the front's
 * per-class entry in its slice. */
static inline int hak_front_setup(const struct hak_link *below, uint32_t n, const struct hak_value *v,
                                  const struct hak_front_params *p, size_t class_stride,
                                  const struct hak_front_tables *t, char *err, size_t err_len)
{
    const struct hak_box_ops *b = &below->desc->ops;
    uint32_t slots = 0;
    for (uint32_t c = 0; c < n; c++) {
        size_t size = b->class_size(below->inst, c);
        if (size < 8 || size > HAK_FRONT_SIZE_INDEX_MAX * 8 || size % 8 ||
            (c && size <= t->class_size[c - 1])) {
            hak_front_error(err, err_len, "below: ",
                            "class sizes must increase, be multiples of 8 and at most 1024");
            return -1;
        }
        t->class_size[c] = (uint32_t)size;
        int64_t cache = c < 8 && v[p->cache_c0 + c].i ? v[p->cache_c0 + c].i : v[p->cache].i;
        t->cache[c] = (uint32_t)cache;
        t->refill[c] = v[p->refill].i < cache ? (uint32_t)v[p->refill].i : (uint32_t)cache;
        int64_t drain = v[p->drain].i ? v[p->drain].i : (cache + p->drain_rounds_up) / 2;
        /* A full cache must give back at least one block on a free: with a
         * 1-slot cache the default rounded down to 0, and the ring front
         * overwrote (leaked) its only block on every free. */
        if (drain == 0 && cache > 0)
            drain = 1;
        t->drain[c] = drain < cache ? (uint32_t)drain : (uint32_t)cache;
        t->slot_off[c] = slots;
        slots += (uint32_t)cache;
        t->magic[c] = v[p->check_block_start].i ? UINT64_MAX / size + 1 : 0;
    }
    *t->buf_slots = slots;
    uint32_t c = 0; /* sizes ascend: resume from the last class */
    for (uint32_t i = 0; i <= HAK_FRONT_SIZE_INDEX_MAX; i++) {
        while (c < n && t->class_size[c] < i * 8)
            c++;
        t->cls_of[i] = (uint8_t)(c < n ? c : HAK_FRONT_MAX_CLASSES);
        t->cls_off[i] = (uint16_t)(t->cls_of[i] * class_stride);
    }
    return 0;
}

/* ---- the outbox: other threads' blocks on their way home ----------------
 * A front's free_remote gets blocks of slabs other threads own. It keeps
 * them here, not in its cache (where this thread would reuse them and the
 * blocks of many threads would stay mixed), and hands them below in one
 * batch: the box below sends each run of one slab home with one atomic
 * push. Flushed when full, on the thread's next refill of the class, at
 * thread exit and on trim, so a block waits at most 32 frees or one
 * refill. Blocks here carry the free marker (a second free is caught). */
#define HAK_FRONT_OUTBOX 32u

struct hak_front_outbox {
    uint32_t count;
    uint32_t pad;
    void *blocks[HAK_FRONT_OUTBOX];
};

/* Hand the outbox of class cls below: its free_batch, or, when below is a
 * front too, its free_remote one block at a time (markers cleared first:
 * they are the lower front's double-free test). */
static inline void hak_front_outbox_flush(const struct hak_box_ops *below, void *below_tls, uint32_t cls,
                                          struct hak_front_outbox *ob)
{
    uint32_t n = ob->count;
    if (!n)
        return;
    ob->count = 0;
    if (below->free_remote) {
        for (uint32_t i = 0; i < n; i++) {
            *(uintptr_t *)ob->blocks[i] = 0;
            below->free_remote(below_tls, ob->blocks[i], (uint16_t)cls);
        }
    } else {
        below->free_batch(below_tls, cls, ob->blocks, n);
    }
}

/* Keep p (marked already) in the outbox of class cls; a full outbox goes
 * below. */
static inline void hak_front_outbox_push(const struct hak_box_ops *below, void *below_tls, uint32_t cls,
                                         struct hak_front_outbox *ob, void *p)
{
    ob->blocks[ob->count++] = p;
    if (HAK_UNLIKELY(ob->count == HAK_FRONT_OUTBOX))
        hak_front_outbox_flush(below, below_tls, cls, ob);
}

/* An event about `count` blocks of class cls: bucket C0..C7 (classes above
 * 7 in C7), bytes = count * class size. Slow paths only. */
static inline void hak_front_event(const struct hak_host *host, uint16_t owner, uint16_t type, uint32_t cls,
                                   uint32_t class_size, uint64_t count)
{
    struct hak_event ev = {
        .type = type,
        .bucket = (uint16_t)(HAK_BUCKET_C0 + (cls < 7 ? cls : 7)),
        .owner = owner,
        .bytes = count * class_size,
        .count = count,
    };
    host->event(&ev);
}

#endif
