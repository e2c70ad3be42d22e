/*
 * l25: blocks of 64 KB .. 2 MB, in whole granules.
 *
 * Runs are 2 MB spans from the `pages =` box (aligned to 2 MB, found from
 * a block by a radix table over run addresses). A block is any n of a
 * run's 32 granules (n = 1..32, class n - 1), placed best fit: the run whose
 * longest free stretch is the smallest that fits, then the smallest stretch
 * of that run, at the end of the stretch that reuses more committed
 * granules. Freed granules
 * coalesce at once in the run's bitmap, so any freed space serves any later
 * size. Why not power-of-two or 4-per-doubling classes: a 64 KB step wastes
 * under 64 KB per block (about 3% at the mean of 64 KB .. 2 MB, against
 * 12-25%), and segregated free lists would each hold their own peak of
 * freed blocks, which a workload of mixed sizes pays in RSS and page faults.
 *
 * Region-map tags: the block's first granule carries its class; free,
 * usable_size and realloc only ever look up a block's own address. The
 * other granules keep whatever class they had (a run remembers what the map
 * holds, so a block reusing its place costs no host->assign). A pointer
 * into a block's interior is refused by the run's block-start bits.
 *
 * Shared state (runs, bins, purge) sits under one spinlock held for
 * bounded work: a bin lookup and a few mask operations per block; decommit
 * and page-box calls happen outside it. Each thread keeps a small LIFO cache
 * per class (cache_count blocks, cache_bytes in all), refilled with a
 * bundle of blocks on a miss for the small classes.
 *
 * Return of memory: freed granules stay committed ("dirty"). A tick every
 * purge delay decommits the granules that stayed free for a whole tick
 * (two generations per run) and gives runs that stayed empty for a whole
 * tick back to the pages box; over dirty_max it purges at once.
 */
#ifndef L25_INTERNAL_H
#define L25_INTERNAL_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define L25_RUN_SHIFT 21
#define L25_RUN_BYTES ((size_t)1 << L25_RUN_SHIFT)
#define L25_RUN_GRANULES 32u
#define L25_CLASSES 32u              /* class c = c + 1 granules */
#define L25_CACHE_MAX 8u             /* per class, per thread */
#define L25_TAG_NONE 0xFFFFu         /* granules of a run in no block */
#define L25_TAG_BYTE_NONE 0xFFu      /* the same in a run's tag record */
#define L25_TICK_EVERY 256u          /* cache hits between clock checks */
#define L25_PURGE_BATCH 16u          /* runs one tick handles outside the lock */
#define L25_RADIX_TOP_BITS 15u       /* address bits 33..47 */
#define L25_RADIX_LEAF_BITS 12u      /* address bits 21..32 */
#define L25_RECLAIM_KEEP_SHIFT 2u    /* reclaim keeps dirty up to live / 4 */

enum l25_param_index {
    P_BUNDLE,
    P_CACHE_COUNT,
    P_CACHE_BYTES,
    P_PURGE_DELAY,
    P_DIRTY_MAX,
    P_RELEASE,
    P_COUNT
};

/* A run's descriptor (metadata memory, recycled). Masks have one bit per
 * granule. Every granule is exactly one of: used (in a block, or busy being
 * decommitted), dirty_new, dirty_old (free, committed), or clean (free,
 * reads as zero or never touched). */
struct l25_run {
    char *base;
    uint32_t used;
    uint32_t starts;    /* first granule of each block */
    uint32_t dirty_new; /* freed since the last tick */
    uint32_t dirty_old; /* free for at least a whole tick */
    uint32_t busy;      /* being decommitted outside the lock (also in used) */
    uint8_t max_free;   /* longest free stretch, its bin */
    uint8_t tag[L25_RUN_GRANULES]; /* the class the region map holds per
                                      granule (L25_TAG_BYTE_NONE: none) */
    struct l25_run *next, *prev;         /* bin list, most recently changed first */
    struct l25_run *all_next, *all_prev; /* every run */
};

struct l25_inst {
    const struct hak_host *host;
    void (*growing)(uint16_t owner, size_t bytes); /* host->growing, or NULL */
    struct hak_link pages;
    uint16_t owner;
    int hardened;
    uint32_t bundle, cache_count;
    size_t cache_bytes;
    uint64_t purge_delay_ns;
    size_t dirty_max;
    /* release = runs: free granules of a run in use are never decommitted
     * (on a huge page each decommit splits it into 4 KB pages for good);
     * only whole empty runs go back, and malloc_trim still takes all. */
    bool release_granules;
    char name[64];

    hak_spinlock *lock;
    struct l25_run *bins[L25_RUN_GRANULES + 1];
    uint64_t bin_mask;               /* bit b: bins[b] not empty */
    struct l25_run *runs;            /* every run */
    struct l25_run *free_descs;
    uint32_t run_count;
    size_t dirty_bytes;
    size_t live_bytes;               /* granules in blocks (cached ones too) */
    bool force_purge;
    _Atomic uint64_t next_tick_ns;   /* 0: no tick pending */
    struct l25_run **radix[1u << L25_RADIX_TOP_BITS]; /* run base -> run */
};

struct l25_tls {
    struct hak_tls_head head;
    uint8_t count[L25_CLASSES];
    uint32_t tick_countdown;
    size_t cached_bytes;
    struct hak_stats st;
    void *slot[L25_CLASSES][L25_CACHE_MAX];
};

static inline struct l25_inst *l25_inst_of(const void *tls)
{
    return (struct l25_inst *)((const struct hak_tls_head *)tls)->inst;
}

static inline void l25_event(const struct l25_inst *in, uint16_t type, const void *addr,
                             uint64_t bytes, uint64_t count)
{
    struct hak_event ev = { .type = type, .bucket = HAK_BUCKET_L25, .owner = in->owner,
                            .addr = addr, .bytes = bytes, .count = count };
    in->host->event(&ev);
}

static inline uint32_t l25_bits(unsigned n) { return n >= 32 ? ~0u : ((1u << n) - 1); }

/* l25_runs.c: the shared state (caller holds the lock unless noted) */
struct l25_run *l25_run_of(const struct l25_inst *in, const void *p);
void l25_run_insert(struct l25_inst *in, struct l25_run *r);
uint32_t l25_carve(struct l25_inst *in, unsigned n, void **out, uint32_t want,
                   uint64_t *fresh_bytes, uint32_t *retag);
bool l25_free_locked(struct l25_inst *in, void *p, unsigned n);
struct l25_run *l25_block_run(struct l25_inst *in, const void *p, unsigned n, unsigned *pos);
bool l25_resize_locked(struct l25_inst *in, void *p, unsigned n_old, unsigned n_new);
struct l25_run *l25_run_new(struct l25_inst *in, void *ptls); /* unlocked */
size_t l25_tick(struct l25_inst *in, void *ptls, uint64_t now, bool force); /* unlocked */
void l25_tick_check(struct l25_tls *t);
size_t l25_release_dirty(struct l25_inst *in, size_t limit); /* unlocked */
size_t l25_reclaim(void *inst, size_t bytes);

/* l25_alloc.c */
void *l25_alloc(void *tls, size_t size);
void *l25_alloc_aligned(void *tls, size_t size, size_t align);
void l25_free(void *tls, void *p, uint16_t tag);
size_t l25_usable_size(void *tls, const void *p, uint16_t tag);
void *l25_realloc(void *tls, void *p, uint16_t tag, size_t size);
void l25_flush_cache(struct l25_tls *t);
uint32_t l25_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n);
void l25_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n);

#endif
