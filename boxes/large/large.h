/*
 * large: internal declarations shared by large.c (the alloc role) and
 * large_cache.c (recently freed mappings kept for reuse).
 *
 * Layout of a block: one mapping per block. A header sits at the mapping's
 * base; the user pointer is base + offset, offset = max(64, align). The
 * region-map tag of every granule of the mapping is log2(offset), so free
 * finds the header as p - (1 << tag) with no search.
 */
#ifndef HAKBOX_LARGE_H
#define HAKBOX_LARGE_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdint.h>

#define LARGE_CACHE_MAX 64
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

struct large_cached {
    char *base;
    size_t bytes;
    uint64_t freed_ns;
};

struct large_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    uint32_t cache_slots;
    uint64_t cache_max_bytes;
    uint64_t cache_idle_ns; /* 0: never released for idleness */
    hak_spinlock lock;      /* guards the cache below */
    uint32_t cache_count;
    uint64_t cache_bytes;
    _Atomic uint64_t cached_bytes_seen; /* cache_bytes, for stats without the lock */
    struct large_cached cache[LARGE_CACHE_MAX];
};

struct large_tls {
    struct hak_tls_head head;
    struct hak_stats st;
};

void large_event(const struct large_inst *in, uint16_t type, const void *p, uint64_t bytes);

/* A cached mapping of at least `bytes` (at most twice that), with a base
 * aligned to `align`; NULL when none fits. */
char *large_cache_take(struct large_inst *in, struct large_tls *t, size_t bytes, size_t align, size_t *got);
/* Keep a freed mapping, or unmap it (and whatever the limits push out). */
void large_cache_put(struct large_inst *in, struct large_tls *t, char *base, size_t bytes);
/* Unmap every cached mapping; bytes released. */
size_t large_cache_flush(struct large_inst *in, struct large_tls *t);

#endif
