/*
 * large: internal declarations shared by large.c (the alloc role) and
 * large_cache.c (freed ranges kept committed for reuse at any size).
 *
 * Layout of a block: a range of whole granules this box owns (a mapping of
 * its own, or a piece carved from a freed one). A header sits at the
 * range's base; the user pointer is base + offset, offset = max(64, align).
 * The region-map tag of the granule holding the user pointer is
 * log2(offset), so free finds the header as p - (1 << tag) with no search.
 */
#ifndef HAKBOX_LARGE_H
#define HAKBOX_LARGE_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdint.h>

#define LARGE_CACHE_MAX 64
#define LARGE_LIVE_PCT_MAX 1000
#define LARGE_PIECES_MAX 8 /* extents moved into one new block at most */
#define LARGE_MIN_OFFSET_SHIFT 6 /* 64 bytes: header room, cache-line aligned data */
#define LARGE_MAX_ALIGN_SHIFT 40 /* 1 TB: beyond what any mapping can satisfy */

/* magic ^ base: a live block; freed magic ^ base: a cached mapping. Mixing
 * in the base makes stale or user data unlikely to pass for a header. */
#define LARGE_LIVE 0x4c617267654c6976ull
#define LARGE_FREED 0x4c61726765467265ull

struct large_hdr {
    uint64_t magic;
    uint64_t map_bytes; /* the whole mapping, a multiple of HAK_GRANULE */
    uint64_t offset;    /* user pointer - base */
    uint64_t reserved;
};

/* A free extent: whole granules this box owns and keeps committed (every
 * byte may hold old data). Extents never overlap; two that touch are
 * joined when the second one is put. */
struct large_cached {
    char *base;
    size_t bytes;
    uint64_t freed_ns; /* last put: idle expiry counts from here */
};

struct large_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    uint32_t cache_slots;
    uint64_t cache_min_bytes; /* kept whatever the program has live */
    uint64_t cache_max_bytes; /* never more */
    uint32_t cache_live_pct;  /* budget: this share of the live bytes */
    uint64_t cache_idle_ns;   /* 0: never released for idleness */
    int huge;                 /* huge = madvise (and THP not never): 2 MB-aligned, advised */
    _Atomic uint64_t live_bytes; /* bytes of live blocks (their mappings) */
    hak_spinlock *lock;        /* guards the cache below */
    uint32_t cache_count;
    uint64_t cache_bytes;
    _Atomic uint64_t cached_bytes_seen; /* cache_bytes, for stats without the lock */
    struct large_cached cache[LARGE_CACHE_MAX];
};

struct large_tls {
    struct hak_tls_head head;
    struct hak_stats st;
};

/* The bytes a block's range takes: whole granules, and with `huge` whole
 * 2 MB pages once it reaches one. Then every range and extent is whole huge
 * pages at 2 MB boundaries (fresh ones are mapped 2 MB-aligned), so no
 * carve, move or trim of the cache cuts through a huge page: a cut splits
 * it into 4 KB pages for good (big_buffers kept 10% of its heap on huge
 * pages with granule-sized blocks, 99% with this; README). The cost is
 * the slack of the last page, resident once the program touches it. */
static inline size_t large_round(const struct large_inst *in, size_t bytes)
{
    size_t g = hak_align_up(bytes, HAK_GRANULE);
    return in->huge && g >= HAK_HUGE_PAGE ? hak_align_up(g, HAK_HUGE_PAGE) : g;
}

void large_event(const struct large_inst *in, uint16_t type, const void *p, uint64_t bytes);

/* The bytes the cache may hold now: cache_live_pct of the live bytes,
 * within [cache_min_bytes, cache_max_bytes]. */
uint64_t large_cache_budget(const struct large_inst *in);

/* `bytes` at an `align`-aligned address carved from the best-fitting free
 * extent (what is left on either side stays cached); NULL when none fits. */
char *large_cache_take(struct large_inst *in, struct large_tls *t, size_t bytes, size_t align);
/* For a request no extent fits: the biggest extents, biggest first, up to
 * `bytes` in all (the last one split), at most `max` of them; returns how
 * many. Their pages are to be moved into a fresh mapping. */
uint32_t large_cache_take_pieces(struct large_inst *in, struct large_tls *t, size_t bytes,
                                 struct large_cached *out, uint32_t max);
/* Take `min`..`want` bytes of the free extent that starts at `at` (the end
 * of a live block growing in place); returns the bytes taken, 0 if none. */
size_t large_cache_take_at(struct large_inst *in, char *at, size_t min, size_t want);
/* Keep a freed range (joined to the extents it touches), then bring the
 * cache within its slots and budget: the smallest extents go first, the
 * last one only as far as needed (its tail is unmapped). */
void large_cache_put(struct large_inst *in, struct large_tls *t, char *base, size_t bytes);
/* ops.reclaim: another box maps `bytes` fresh; drop up to that much of
 * what the cache holds beyond its share of the live bytes (never waits). */
size_t large_reclaim(void *inst, size_t bytes);
/* Unmap every cached extent; bytes released. */
size_t large_cache_flush(struct large_inst *in, struct large_tls *t);

#endif
