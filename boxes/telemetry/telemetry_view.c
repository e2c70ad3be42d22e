/*
 * From raw counters to what the report shows, at exit.
 *
 * Buckets. Events that name a bucket count there. Events with bucket OTHER
 * (the host's MAP/UNMAP, page boxes' REUSE/DRAIN) carry only an owner; they
 * count in the bucket that owner serves when it named exactly one bucket in
 * its own events (large -> LARGE, pool -> MID, l25 -> L25), else in OTHER.
 * SSM does not count as a bucket served: a SuperSlab box's metadata lives in
 * the mappings of its classes.
 *
 * Allocations per bucket. The ABI has per-box counters only (ctx->boxes),
 * no per-class ones. A box's allocations count for a bucket when the box
 * serves that one bucket. When several boxes do (a front stacked on its
 * tier sees the same blocks twice) the largest count is taken: the front's,
 * which are the program's calls. Where no box serves one bucket only (the
 * tiny classes behind one SuperSlab), touches per page fall back to blocks
 * refilled per fresh page, a lower bound (reuse inside the front's cache is
 * not seen), or are left unknown.
 */
#include "telemetry.h"

#include <string.h>

static uint64_t get(const struct tel_counters *c, int type, int field)
{
    return atomic_load_explicit(&c->v[type][field], memory_order_relaxed);
}

static void row_add(struct tel_row *r, const struct tel_counters *c)
{
    r->fresh_bytes += get(c, HAK_EV_FRESH, TEL_BYTES);
    r->fresh_events += get(c, HAK_EV_FRESH, TEL_EVENTS);
    r->mapped_bytes += get(c, HAK_EV_MAP, TEL_BYTES);
    r->map_events += get(c, HAK_EV_MAP, TEL_EVENTS);
    r->unmapped_bytes += get(c, HAK_EV_UNMAP, TEL_BYTES);
    r->unmap_events += get(c, HAK_EV_UNMAP, TEL_EVENTS);
    r->reuse_bytes += get(c, HAK_EV_REUSE, TEL_BYTES);
    r->reuse_events += get(c, HAK_EV_REUSE, TEL_EVENTS);
    r->refills += get(c, HAK_EV_REFILL, TEL_EVENTS);
    r->refill_blocks += get(c, HAK_EV_REFILL, TEL_BLOCKS);
    r->drains += get(c, HAK_EV_DRAIN, TEL_EVENTS);
    r->drain_blocks += get(c, HAK_EV_DRAIN, TEL_BLOCKS);
    r->remote_frees += get(c, HAK_EV_REMOTE_FREE, TEL_BLOCKS);
}

/* The one bucket an owner serves, or -1. */
static int served_bucket(uint32_t mask)
{
    mask &= ~((1u << HAK_BUCKET_SSM) | (1u << HAK_BUCKET_OTHER));
    if (!mask || (mask & (mask - 1)))
        return -1;
    return __builtin_ctz(mask);
}

static uint64_t per_page_milli(uint64_t touches, uint64_t fresh_bytes)
{
    uint64_t pages = tel_pages(fresh_bytes);
    return pages ? (uint64_t)((long double)touches * 1000 / pages + 0.5L) : 0;
}

/* A box's resident bytes go to the bucket it serves; a tier serving tiny
 * classes only (C0..C7, and SSM for its metadata) is split by granule tag,
 * which the ABI makes the class index for a tier with a class interface:
 * classes from 7 up share C7 as they do in the events, tags past the
 * classes (metadata) are SSM. Anything else stays in OTHER. */
static void attribute_resident(struct tel_view *view, uint32_t i, const struct hak_resident *r)
{
    struct tel_box_view *bv = &view->boxes[i];
    bv->resident = r->bytes;
    const uint32_t tiny = ((1u << (HAK_BUCKET_C7 + 1)) - 1) << HAK_BUCKET_C0;
    uint32_t classes = bv->bucket_mask & ~(1u << HAK_BUCKET_SSM);
    if (bv->bucket >= 0) {
        view->buckets[bv->bucket].resident += r->bytes;
    } else if (classes && !(classes & ~tiny)) {
        for (int t = 0; t < HAK_RESIDENT_TAGS; t++)
            view->buckets[HAK_BUCKET_C0 + (t < 7 ? t : 7)].resident += r->by_tag[t];
        view->buckets[HAK_BUCKET_SSM].resident += r->other_tags;
    } else {
        view->buckets[HAK_BUCKET_OTHER].resident += r->bytes;
    }
}

void tel_view_build(const struct tel_inst *in, const struct hak_report_ctx *ctx,
                    struct tel_view *view)
{
    memset(view, 0, sizeof *view);
    for (int b = 0; b < HAK_BUCKET_COUNT; b++) {
        row_add(&view->buckets[b].row, &in->bucket[b]);
        view->buckets[b].alloc_box = -1;
    }
    for (unsigned o = 0; o < TEL_MAX_OWNERS; o++) {
        int b = o ? served_bucket(atomic_load_explicit(&in->owner_buckets[o],
                                                       memory_order_relaxed))
                  : -1;
        row_add(&view->buckets[b >= 0 ? b : HAK_BUCKET_OTHER].row, &in->loose[o]);
    }

    view->box_count = ctx->box_count < TEL_MAX_OWNERS ? ctx->box_count : TEL_MAX_OWNERS;
    for (uint32_t i = 0; i < view->box_count; i++) {
        const struct hak_report_box *rb = &ctx->boxes[i];
        struct tel_box_view *bv = &view->boxes[i];
        unsigned slot = tel_owner_slot(rb->owner);
        bv->bucket = -1;
        if (!slot)
            continue; /* owner id beyond what is kept apart */
        row_add(&bv->row, &in->by_owner[slot]);
        bv->bucket_mask = atomic_load_explicit(&in->owner_buckets[slot], memory_order_relaxed);
        bv->bucket = served_bucket(bv->bucket_mask);
        if (bv->row.fresh_bytes) {
            bv->has_touch = true;
            bv->touch_milli = per_page_milli(rb->stats.allocs, bv->row.fresh_bytes);
        }
        struct tel_bucket_view *bk = bv->bucket >= 0 ? &view->buckets[bv->bucket] : NULL;
        if (bk && (bk->alloc_box < 0 || rb->stats.allocs > bk->allocs)) {
            bk->alloc_box = (int)i;
            bk->allocs = rb->stats.allocs;
        }
    }

    view->has_resident = ctx->resident != NULL;
    for (uint32_t i = 0; view->has_resident && i < view->box_count; i++)
        attribute_resident(view, i, &ctx->resident[i]);

    for (int b = 0; b < HAK_BUCKET_COUNT; b++) {
        struct tel_bucket_view *bk = &view->buckets[b];
        if (!bk->row.fresh_bytes)
            continue;
        if (bk->alloc_box >= 0) {
            bk->touch_source = TOUCH_ALLOCS;
            bk->touch_milli = per_page_milli(bk->allocs, bk->row.fresh_bytes);
        } else if (bk->row.refill_blocks) {
            bk->touch_source = TOUCH_REFILLS;
            bk->touch_milli = per_page_milli(bk->row.refill_blocks, bk->row.fresh_bytes);
        }
    }
}
