/*
 * pool_tls_arena: per-thread arenas for mid sizes (default 1025 B .. 52 KB).
 *
 * Layout, from big to small:
 *   chunk  a span from the `pages =` box, owned by one thread, 1 MB growing
 *          to 8 MB (chunk_min << chunks owned, capped at chunk_max), aligned
 *          to chunk_max so that any address finds its chunk by masking. The
 *          chunk's first granule is its header: the chunk descriptor and one
 *          slab header per granule. Blocks carry no header at all.
 *   slab   k granules (k = 1..8, per class: little left over) anywhere in a
 *          chunk, serving one size class. Every granule of a slab carries
 *          the class index as its region-map tag, so free(p) knows the
 *          class; the chunk header maps each granule to its slab's first
 *          granule, where the slab's header is indexed. Blocks are carved
 *          linearly from the slab start (never touched before they are
 *          handed out), so a class whose size is a multiple of 4 KB gets
 *          page-aligned blocks. Slabs need no alignment, so the granules a
 *          freed slab leaves serve the next slab of any class.
 *   block  handed to the program; on a free list its first word links it.
 *
 * Ownership: a slab's owner is the slice of the thread whose chunk holds it.
 * The owner pops and pushes its slabs' local free lists without atomics;
 * other threads push onto the slab's `remote` list and, when the list was
 * empty, flag the slab in the chunk's pending bits, which the owner drains
 * on its slow path. The pending bits live in metadata memory (never
 * unmapped): the flag is set after the push, when the chunk may already be
 * gone. At thread exit, chunks with live blocks become orphans (owner
 * NULL): their blocks stay freeable (remote pushes) and another thread
 * adopts the chunk when it needs a slab, or a tick or trim returns it once
 * every block came back.
 *
 * Freed slabs give their granules back to the chunk as "dirty" (committed);
 * slabs are carved from dirty granules first. Dirty granules idle for a
 * purge delay are decommitted (two generations per chunk: a tick purges the
 * old generation and ages the new one), and a chunk with no slab left for a
 * whole tick goes back to the pages box.
 */
#ifndef POOL_INTERNAL_H
#define POOL_INTERNAL_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_MAX_CLASSES HAK_PARAM_LIST_MAX
#define POOL_MAX_SLAB_GRANULES 8u       /* slabs up to 512 KB */
#define POOL_SLAB_MIN_BLOCKS 8u         /* blocks a slab should hold */
#define POOL_CHUNK_WORDS 4u             /* chunks up to 256 granules (16 MB) */
#define POOL_CHUNK_MAX_GRANULES (POOL_CHUNK_WORDS * 64u)
#define POOL_TAG_NONE 0xFFFFu           /* granules of a chunk in no slab */
#define POOL_TICK_EVERY 1024u           /* frees between two clock checks */
#define POOL_TICK_PENDING 64u           /* the same while a tick is scheduled */
#define POOL_ORPHANS_PER_TICK 2u        /* orphan chunks a tick looks at */
#define POOL_PLACE_SCAN 16u             /* chunks with room a new slab looks at */
#define POOL_IDLE_CLASS_NS 5000000u     /* a class idle this long gives its empty slab
                                           to the thread's next growth */

enum pool_param_index {
    P_SIZES,
    P_CHUNK_MIN,
    P_CHUNK_MAX,
    P_PURGE_DELAY,
    P_DIRTY_MAX,
    P_COUNT
};

enum pool_slab_state {
    SLAB_CUR = 1, /* its class's allocation slab */
    SLAB_PARTIAL, /* on its class's partial list: free or uncarved blocks */
    SLAB_FULL,    /* every block handed out, on no list */
    SLAB_ORPHAN,  /* in an orphan chunk */
};

/* One slab's header, in its chunk's header granule. The first cache line
 * is what other threads touch: `remote` and the fields fixed while the
 * slab lives; the second is the owner's (`owner` is written only by the
 * owning or adopting thread, read by every freeing thread). */
struct pool_slab {
    _Atomic(void *) remote; /* blocks freed by other threads */
    char *first;            /* first block: the slab's first granule */
    char *end;              /* end of the carvable area */
    uint32_t size;          /* block size */
    uint16_t cls;
    uint8_t granules;       /* slab size in granules */
    _Alignas(64) _Atomic(void *) owner; /* owning slice, NULL when orphaned */
    void *free;             /* local free list */
    char *bump;             /* next block never handed out */
    uint32_t used;          /* blocks out: not on the free list, not uncarved */
    uint32_t capacity;
    uint8_t state;          /* enum pool_slab_state */
    struct pool_slab *next, *prev; /* partial list */
};

/* Slabs of a chunk with remote frees waiting, one bit per first granule.
 * Metadata memory, recycled, never unmapped. */
struct pool_pending {
    _Atomic uint64_t bits[POOL_CHUNK_WORDS];
    struct pool_pending *next_free;
};

/* The chunk's first granule. */
struct pool_chunk {
    size_t bytes;
    uint32_t granules;
    uint32_t slabs;                           /* live slabs */
    struct pool_pending *pending;
    uint64_t used[POOL_CHUNK_WORDS];          /* granules in slabs (and the header) */
    uint64_t slab_start[POOL_CHUNK_WORDS];    /* first granule of each slab */
    uint64_t dirty_new[POOL_CHUNK_WORDS];     /* free, committed, recent */
    uint64_t dirty_old[POOL_CHUNK_WORDS];     /* free, committed, a tick old */
    struct pool_chunk *next, *prev;           /* thread's list or orphans */
    struct pool_chunk *avail_next, *avail_prev; /* thread's chunks with room */
    uint32_t free_granules;
    bool avail;                               /* on the thread's avail list */
    bool adopted;                             /* taken over from an exited
                                                 thread (pool_honour_reclaim) */
    uint64_t orphan_dirty;                    /* its dirty bytes counted in
                                                 pool_inst.orphan_dirty */
    uint64_t orphaned_ns;                     /* when its thread left it */
    uint8_t slab_of[POOL_CHUNK_MAX_GRANULES]; /* granule -> its slab's first */
    _Alignas(64) struct pool_slab slab[];     /* indexed by first granule */
};

_Static_assert(sizeof(struct pool_slab) == 128, "slab header: two cache lines");
_Static_assert(sizeof(struct pool_chunk) + POOL_CHUNK_MAX_GRANULES * sizeof(struct pool_slab) <=
                   HAK_GRANULE,
               "chunk header must fit its first granule");

struct pool_inst {
    const struct hak_host *host;
    struct hak_link pages;
    uint16_t owner;
    int hardened;
    uint32_t nclasses;
    size_t max_size;                  /* the largest class */
    size_t chunk_min, chunk_max;
    uintptr_t chunk_mask;             /* ~(chunk_max - 1) */
    uint64_t purge_delay_ns;
    size_t dirty_max;
    uint32_t class_size[POOL_MAX_CLASSES];
    uint32_t class_align[POOL_MAX_CLASSES]; /* every block's alignment */
    uint32_t class_cap[POOL_MAX_CLASSES];   /* blocks per slab */
    uint8_t class_granules[POOL_MAX_CLASSES]; /* slab size */
    const uint8_t *class_of;          /* [(size - 1) >> 4] -> class */

    hak_spinlock *lock;                /* orphans and free pending sets */
    struct pool_chunk *orphans, *orphans_tail; /* FIFO through next */
    _Atomic uint32_t orphan_count;
    /* Committed free bytes, process-wide: owned_dirty sums the threads'
     * dirty_bytes, orphan_dirty what orphan chunks keep for the threads that
     * adopt them. dirty_max bounds their sum: a thread that finds it over
     * purges its own, and an exiting thread's chunks are decommitted rather
     * than kept. So RSS held in free memory does not grow with the number of
     * threads, and it decays: idle granules go after purge_delay. */
    _Atomic int64_t owned_dirty;
    _Atomic uint64_t orphan_dirty;
    void (*growing)(uint16_t owner, size_t bytes); /* host->growing, or NULL */
    /* ops.reclaim's request (pool_reclaim): the thread that grew elsewhere
     * and the bytes asked since its last check; that thread decommits as
     * much of its dirty granules at its next tick check. */
    _Atomic uintptr_t reclaim_thread;
    _Atomic size_t reclaim_bytes;
    struct pool_pending *free_pending;
    char name[64];
};

/* Per class: the allocation slab, the partial slabs (FIFO: a slab joins
 * at the tail when a free reaches it full, so the head has had the longest
 * to gather free blocks), and counters (bytes = count * size at stats). */
struct pool_class_state {
    struct pool_slab *cur;
    struct pool_slab *partial, *partial_tail;
    uint32_t size;             /* the class's block size (copied) */
    uint32_t allocs_at_mark;   /* allocs (low bits) at the thread's idle mark */
    uint64_t allocs, frees;
};

/* The slice. The instance's hot constants are copied in at thread_init so
 * the fast paths need no load through head.inst. */
struct pool_tls {
    struct hak_tls_head head;
    uintptr_t chunk_mask;
    const uint8_t *class_of;
    size_t max_size;
    uint32_t nclasses;
    uint32_t tick_countdown;
    bool check;                /* hardened or debug: validate frees */
    bool force_purge;          /* over dirty_max: purge all at the next check */
    struct hak_stats st;       /* refills, drains, remote_frees (allocs and
                                  frees are counted per class) */
    struct pool_class_state cls[POOL_MAX_CLASSES];
    struct pool_chunk *chunks; /* owned chunks, newest first */
    struct pool_chunk *avail;  /* owned chunks with free granules, most
                                  recently given some first */
    uint32_t chunk_count;
    uint64_t next_tick_ns;     /* 0 when nothing waits for a tick */
    uint64_t idle_mark_ns;     /* when the classes' allocs_at_mark were taken */
    size_t dirty_bytes;        /* dirty granules in owned chunks */
    size_t chunk_bytes;        /* bytes of owned chunks */
};

static inline struct pool_inst *pool_inst_of(const struct pool_tls *t)
{
    return (struct pool_inst *)t->head.inst;
}

/* The thread's dirty bytes changed (slow paths only: slab release, purge). */
static inline void pool_dirty_add(struct pool_tls *t, int64_t delta)
{
    t->dirty_bytes += (size_t)delta;
    atomic_fetch_add_explicit(&pool_inst_of(t)->owned_dirty, delta, memory_order_relaxed);
}

/* Committed free bytes of the whole instance: every thread and orphan. */
static inline uint64_t pool_process_dirty(struct pool_inst *in)
{
    int64_t owned = atomic_load_explicit(&in->owned_dirty, memory_order_relaxed);
    return (uint64_t)(owned > 0 ? owned : 0) +
           atomic_load_explicit(&in->orphan_dirty, memory_order_relaxed);
}

static inline void pool_event(const struct pool_inst *in, uint16_t type, const void *addr,
                              uint64_t bytes, uint64_t count)
{
    struct hak_event ev = { .type = type, .bucket = HAK_BUCKET_MID, .owner = in->owner,
                            .addr = addr, .bytes = bytes, .count = count };
    in->host->event(&ev);
}

/* bit helpers over the chunk's granule words */
static inline uint64_t pool_bits(unsigned n) { return n >= 64 ? ~0ull : ((1ull << n) - 1); }

/* Ranges of at most 64 granules in a chunk's bitmaps (any position). */
static inline uint64_t pool_bm_get(const uint64_t *bm, unsigned pos, unsigned k)
{
    unsigned w = pos >> 6, sh = pos & 63;
    uint64_t v = bm[w] >> sh;
    if (sh && sh + k > 64)
        v |= bm[w + 1] << (64 - sh);
    return v & pool_bits(k);
}

static inline void pool_bm_set(uint64_t *bm, unsigned pos, unsigned k)
{
    for (unsigned i = pos; i < pos + k; i++)
        bm[i >> 6] |= 1ull << (i & 63);
}

static inline void pool_bm_clear(uint64_t *bm, unsigned pos, unsigned k)
{
    for (unsigned i = pos; i < pos + k; i++)
        bm[i >> 6] &= ~(1ull << (i & 63));
}

static inline struct pool_chunk *pool_chunk_of(const struct pool_inst *in, const void *p)
{
    return (struct pool_chunk *)((uintptr_t)p & in->chunk_mask);
}

/* The header of the slab holding block p. */
static inline struct pool_slab *pool_slab_of(const struct pool_inst *in, const void *p)
{
    struct pool_chunk *ch = pool_chunk_of(in, p);
    size_t g = ((uintptr_t)p - (uintptr_t)ch) >> HAK_GRANULE_SHIFT;
    return &ch->slab[ch->slab_of[g]];
}

/* Slab headers live in their chunk's first granule. */
static inline struct pool_chunk *pool_slab_chunk(const struct pool_slab *s)
{
    return (struct pool_chunk *)((uintptr_t)s & ~(uintptr_t)(HAK_GRANULE - 1));
}

static inline char *pool_slab_base(const struct pool_chunk *ch, const struct pool_slab *s)
{
    return (char *)ch + ((size_t)(s - ch->slab) << HAK_GRANULE_SHIFT);
}

static inline unsigned pool_slab_index(const struct pool_chunk *ch, const struct pool_slab *s)
{
    return (unsigned)(s - ch->slab);
}

/* pool_slab.c: slabs inside chunks */
struct pool_slab *pool_slab_acquire(struct pool_tls *t, uint32_t cls);
void pool_slab_release(struct pool_inst *in, struct pool_chunk *ch, struct pool_slab *s);
unsigned pool_release_empty_current(struct pool_tls *t);
unsigned pool_release_idle_current(struct pool_tls *t);
uint32_t pool_slab_drain(struct pool_slab *s);
void pool_slab_settle(struct pool_tls *t, struct pool_slab *s);
void pool_partial_push(struct pool_tls *t, struct pool_slab *s);
void pool_partial_remove(struct pool_tls *t, struct pool_slab *s);
bool pool_drain_pending(struct pool_tls *t);

/* pool_chunk.c: chunks, orphans, purging */
struct pool_chunk *pool_chunk_new(struct pool_tls *t);
void pool_avail_touch(struct pool_tls *t, struct pool_chunk *ch);
void pool_avail_remove(struct pool_tls *t, struct pool_chunk *ch);
bool pool_adopt_orphan(struct pool_tls *t);
void pool_tick_check(struct pool_tls *t);
void pool_note_dirty(struct pool_tls *t);
size_t pool_purge_all(struct pool_tls *t);
size_t pool_reclaim(void *inst, size_t bytes);
size_t pool_reclaim_orphans(struct pool_tls *t, unsigned max, uint64_t now, bool force);
void pool_thread_exit(void *inst, void *tls);
size_t pool_chunk_dirty_granules(const struct pool_chunk *ch);

/* pool_alloc.c */
void *pool_alloc_slow(struct pool_tls *t, uint32_t cls);
void pool_free_slow(struct pool_tls *t, struct pool_slab *s);
void pool_free_remote(struct pool_tls *t, struct pool_slab *s, void *p);
void *pool_alloc(void *tls, size_t size);
void *pool_alloc_aligned(void *tls, size_t size, size_t align);
void pool_free(void *tls, void *p, uint16_t tag);
size_t pool_usable_size(void *tls, const void *p, uint16_t tag);
void *pool_realloc(void *tls, void *p, uint16_t tag, size_t size);
uint32_t pool_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n);
void pool_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n);

#endif
