/*
 * superslab: the tiny backend. Internal types shared by the box's files.
 *
 * Layout. A SuperSlab is `superslab_size` bytes (2 MB by default) aligned to
 * its size, obtained from the `pages =` box. Its first 64 KB granule holds
 * the metadata (struct ss_head and one struct ss_slab per granule) and is
 * tagged SS_TAG_NONE, so a stray free into it reaches this box and is
 * refused. Every other granule is one slab: while it serves class c its
 * region-map tag is c (free needs no header); while it is free its tag is
 * SS_TAG_NONE again. Blocks of a slab start at multiples of the class size
 * from the granule base, which is what lets a front check block starts.
 *
 * Ownership. A slab in use belongs to one thread's slice (owner_id). Only
 * that slice touches its local free list; other threads push frees onto the
 * slab's remote stack (atomic) and the owner takes the whole stack when its
 * local list runs dry. A thread leaving hands slabs with live blocks to a
 * per-class orphan list, from which any thread adopts them.
 */
#ifndef SUPERSLAB_H
#define SUPERSLAB_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>
#include <stdatomic.h>
#include <stdbool.h>

#define SS_MAX_CLASSES 16
#define SS_SLAB_SIZE HAK_GRANULE
#define SS_SLAB_MASK (HAK_GRANULE - 1)
#define SS_TAG_NONE 0xFFFFu     /* metadata granule, slabs not in use */
#define SS_SIZE_INDEX_MAX 128u  /* (1024 + 7) >> 3: sizes the table covers */
#define SS_ORPHAN_ID UINT64_MAX /* owner_id of free and orphaned slabs */
#define SS_HEAD_MAGIC 0x68616b53536c6162ull

enum ss_slab_state { SLAB_FREE, SLAB_ACTIVE, SLAB_ORPHAN };
/* Which of the owner's lists holds an active slab. */
enum ss_slab_list { LIST_NONE, LIST_CUR, LIST_PARTIAL, LIST_FULL };

struct ss_head;
struct ss_inst;

/* A slice's take count, read by threads asking whether its owner is idle.
 * It lives in the instance, not in the slice: a pusher may still hold a
 * slab's cell after the owner exited, and the host clears a recycled thread
 * block with a plain memset, while a cell is only ever written atomically
 * (a stale reader sees another slice's count: a wrong guess, not a race). */
#define SS_ACTIVITY_CELLS 1024
struct ss_activity {
    _Atomic uint64_t takes;
} __attribute__((aligned(64)));

struct ss_slab {
    /* Owner-only fields (or under the instance lock while orphaned). */
    void *free;              /* local free list, linked through link_off */
    char *base;              /* granule base = first block */
    uint64_t divmagic;       /* ceil(2^64 / stride): block-start test */
    struct ss_slab *next, *prev; /* owner's class list / orphan / free list */
    /* Read by other threads. */
    _Atomic uint64_t owner_id; /* the owning slice's id, SS_ORPHAN_ID */
    _Atomic uint32_t carved;   /* bytes carved from base: beyond is unused */
    uint16_t used;           /* blocks out: handed out, not back on `free` */
    uint16_t capacity;       /* SS_SLAB_SIZE / stride */
    uint16_t stride;         /* == class size: the one stride, see ss_format */
    uint16_t cls;            /* class index, SS_TAG_NONE while free */
    uint8_t state;           /* enum ss_slab_state */
    uint8_t list;            /* enum ss_slab_list */
    uint8_t link_off;        /* where the free-list link lives in a block */
    uint8_t pad;
    /* Remote frees: own cache line, pushed by any thread. The remote word
     * (ss_rw_*, below): the stack's first block, its length and, while the
     * slab is an orphan, its blocks out, all changed by one CAS. */
    _Atomic uint64_t remote __attribute__((aligned(64)));
    /* While free and committed (under the instance lock): on the instance's
     * warm list, newest first, since freed_ns. No thread pushes remote
     * frees onto a free slab, so sharing the line costs nothing. */
    struct ss_slab *warm_next, *warm_prev;
    uint64_t freed_ns;
    /* Is the owner idle (ss_owner_idle)? Its slice's activity cell, and
     * what a pusher saw of it last: the take count and when it changed. */
    struct ss_activity *_Atomic owner_activity;
    _Atomic uint64_t seen_takes, seen_ns;
    uint8_t committed;       /* its pages are (or may be) resident */
    /* Marked as nobody's while its owner sleeps (ss_lend_slab), so every
     * thread's frees of its blocks are reused where they are freed; the
     * owner takes the mark back when it next takes blocks from it. */
    _Atomic uint8_t lent;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct ss_slab) == 128, "slab metadata: two cache lines");

struct ss_head {
    uint64_t magic;
    struct ss_inst *inst;
    struct ss_head *next, *prev; /* instance's partial or empty list */
    struct ss_slab *free_slabs;  /* slabs of this SuperSlab not in use (next/prev) */
    uint32_t nslabs;             /* granules; slab 0 is this metadata */
    uint32_t free_count;
    uint32_t where;              /* enum ss_head_list */
    uint32_t pad;
    struct ss_slab slabs[] __attribute__((aligned(64)));
};

enum ss_head_list { SS_IN_NONE, SS_IN_PARTIAL, SS_IN_EMPTY };

struct ss_inst {
    const struct hak_host *host;
    void (*growing)(uint16_t owner, size_t bytes); /* host->growing, or NULL */
    struct hak_link pages;
    uint16_t owner;
    bool hardened;
    bool marks_threads;                /* the host has set_thread_owner */
    bool lends;                        /* and lend_slab */
    char name[48];
    uint32_t nclasses;
    uint32_t max_size;                 /* largest class */
    uint32_t class_size[SS_MAX_CLASSES];
    uint64_t divmagic[SS_MAX_CLASSES];
    uint8_t cls_of[SS_SIZE_INDEX_MAX + 8]; /* (size + 7) >> 3 -> class */
    size_t ss_size;
    uintptr_t ss_mask;                 /* ~(ss_size - 1) */
    uint32_t ss_granules;
    uintptr_t granule_index_mask;      /* ss_granules - 1 */
    uint32_t keep_empty;               /* empty SuperSlabs kept for reuse */
    uint32_t orphan_scan;              /* orphans looked at per acquire */
    uint64_t warm_max;                 /* free slabs kept committed */
    uint64_t purge_delay_ns;           /* a free slab idle this long is decommitted */
    uint64_t owner_idle_ns;            /* an owner idle this long is sent nothing home; 0: always sent */
    uint64_t mark_secret;              /* free marker: p ^ secret */
    uint64_t list_key;                 /* hardened: free-list link key */
    _Atomic uint64_t next_slice_id;

    /* Everything below is under `lock`. */
    hak_spinlock *lock;
    struct ss_head *partial;           /* SuperSlabs with free slabs */
    struct ss_head *empty;             /* wholly free SuperSlabs kept */
    uint32_t empty_count;
    struct ss_slab *orphans[SS_MAX_CLASSES];
    uint64_t superslabs;               /* held now */
    uint64_t free_slabs;               /* slabs not in use, in held SuperSlabs */
    struct ss_slab *warm_head, *warm_tail; /* free committed slabs, newest first */
    /* Written under the lock, read without it by ss_maybe_purge: the list
     * length and the oldest slab's freed_ns (0: empty), so the check never
     * touches a slab record another thread may be giving back. */
    _Atomic uint64_t warm_count;
    _Atomic uint32_t empty_over_keep;  /* ss_reclaim left empties beyond keep_empty */
    _Atomic uint64_t warm_oldest_ns;
    uint64_t orphan_slabs;
    /* Activity cells: [0, activity_used) handed out at least once; the
     * ones given back since are on activity_free. A slice that finds none
     * (over SS_ACTIVITY_CELLS threads at once) is never taken for idle. */
    uint32_t activity_used, activity_free_n;
    uint16_t activity_free[SS_ACTIVITY_CELLS];
    struct ss_activity activity[SS_ACTIVITY_CELLS];
};

struct ss_class_tls {
    struct ss_slab *cur;     /* allocating from this one */
    struct ss_slab *partial; /* owned, with blocks on the local list */
    struct ss_slab *full;    /* owned, nothing local known */
    uint64_t allocs, frees;  /* blocks handed out / taken back by this slice */
    /* Blocks of an idle owner's slabs this slice freed and reuses itself
     * (ss_owner_idle), handed out before its own slabs. */
    void *borrowed;
    uint32_t borrowed_n;
};

struct ss_tls {
    struct hak_tls_head head;
    uint64_t id;             /* 0 until initialised; never SS_ORPHAN_ID */
    uint64_t refills;        /* slabs this slice took for a class */
    uint64_t drains;         /* remote stacks this slice took */
    uint64_t remote_frees;   /* blocks this slice pushed to other owners */
    struct ss_activity *activity; /* its take count (refills), or NULL */
    uint8_t cls_of[SS_SIZE_INDEX_MAX + 8];
    struct ss_class_tls cls[SS_MAX_CLASSES + 1]; /* +1: "no class" sentinel */
};

/* ---- the remote word ---------------------------------------------------
 * bits  0-15  the first block of the remote stack, as its offset in the slab
 * bits 16-31  blocks on the stack (0: empty)
 * bits 32-47  "armed": the orphan's blocks out (its used), else 0
 * The length lets the owner take the stack without walking it (its local
 * list is empty then: it becomes the stack). Arming lets the push that
 * returns an orphan's last block see it in the same CAS: that thread, the
 * finisher, releases the slab, so an orphan whose blocks all came back is
 * reused at once (larson: 282 of 418 orphans were such, 17 MB, at the end
 * of a 5-second run) instead of waiting for a trim. Only the finisher may
 * take a complete armed orphan; adopters disarm first (ss_orphan_claim),
 * which fails on a complete one. Offsets and counts fit 16 bits: a slab is
 * 64 KB and holds at most 8192 blocks. */
#define SS_RW_COUNT_SHIFT 16
#define SS_RW_LIVE_SHIFT 32
#define SS_RW_LOW 0xFFFFFFFFull /* the stack: offset and count */

static inline uint32_t ss_rw_count(uint64_t w) { return (uint32_t)(w >> SS_RW_COUNT_SHIFT) & 0xFFFFu; }
static inline uint32_t ss_rw_live(uint64_t w) { return (uint32_t)(w >> SS_RW_LIVE_SHIFT) & 0xFFFFu; }
static inline void *ss_rw_first(const struct ss_slab *s, uint64_t w)
{
    return ss_rw_count(w) ? s->base + (w & 0xFFFFu) : NULL;
}
static inline bool ss_rw_complete(uint64_t w)
{
    return ss_rw_live(w) != 0 && ss_rw_count(w) == ss_rw_live(w);
}

/* Invariant checks of debug builds (HAKMEM_DEBUG=1); nothing in release. */
#ifdef HAKMEM_DEBUG
#include <stdlib.h>
#define SS_ASSERT(in, cond) do { if (!(cond)) { \
    (in)->host->log(HAK_LOG_ERROR, (in)->name, "invariant failed: %s (%s:%d)", \
                    #cond, __FILE__, __LINE__); abort(); } } while (0)
#else
#define SS_ASSERT(in, cond) ((void)0)
#endif

static inline struct ss_inst *ss_inst_of(const struct ss_tls *t)
{
    return (struct ss_inst *)t->head.inst;
}

static inline struct ss_head *ss_head_of(const struct ss_inst *in, const void *p)
{
    return (struct ss_head *)((uintptr_t)p & in->ss_mask);
}

static inline struct ss_head *ss_head_of_slab(const struct ss_inst *in,
                                             const struct ss_slab *s)
{
    return (struct ss_head *)((uintptr_t)s & in->ss_mask);
}

static inline struct ss_slab *ss_slab_of(const struct ss_inst *in, const void *p)
{
    struct ss_head *h = ss_head_of(in, p);
    return &h->slabs[((uintptr_t)p >> HAK_GRANULE_SHIFT) & in->granule_index_mask];
}

/* Tell the host's free path whose slab this is (t: the slice that now
 * allocates from it; NULL: nobody's), so that only that thread's frees are
 * pushed on its fast stacks and every other thread's come to ss_free, which
 * sends them to the slab's remote stack. */
static inline void ss_mark_thread(const struct ss_inst *in, struct ss_tls *t,
                                  struct ss_slab *s)
{
    atomic_store_explicit(&s->owner_activity, t ? t->activity : NULL, memory_order_relaxed);
    atomic_store_explicit(&s->lent, 0, memory_order_relaxed);
    if (in->marks_threads)
        in->host->set_thread_owner(t, s->base, SS_SLAB_SIZE);
}

/* May a free through this slice adopt an orphan (ss_adopt_on_free)? Not
 * before the slice has an id, and not for the host's shared block of
 * exited threads (thread_index 0), which no live thread allocates from. */
static inline bool ss_may_adopt(const struct ss_tls *t)
{
    return t->id != 0 && t->head.thread_index != 0;
}

/* Lemire's divisibility test: off % d == 0 for 32-bit off, with
 * magic = UINT64_MAX / d + 1. */
static inline uint64_t ss_divmagic(uint32_t d) { return UINT64_MAX / d + 1; }
static inline bool ss_divisible(uint32_t off, uint64_t magic)
{
    return (uint64_t)off * magic <= magic - 1;
}

/* ---- the free marker and the free-list links ---------------------------
 * A free block's first word holds p ^ mark_secret (the tiny free-marker
 * convention shared with the tiny fronts: see README.md). Free lists link
 * through the second word, so the marker survives on lists; an 8-byte
 * block has one word and links through it (no marker on lists). */

static inline void **ss_link_addr(const struct ss_slab *s, void *p)
{
    return (void **)((char *)p + s->link_off);
}

static inline uintptr_t ss_link_code(const struct ss_inst *in, void **at)
{
    return in->list_key ^ ((uintptr_t)at >> 4);
}

static inline void ss_link_set(const struct ss_inst *in, const struct ss_slab *s,
                               void *p, void *next)
{
    void **at = ss_link_addr(s, p);
    if (HAK_UNLIKELY(in->hardened))
        *(uintptr_t *)at = (uintptr_t)next ^ ss_link_code(in, at);
    else
        *at = next;
}

void *ss_link_get_hardened(const struct ss_inst *in, const struct ss_slab *s, void *p);

static inline void *ss_link_get(const struct ss_inst *in, const struct ss_slab *s,
                                void *p)
{
    if (HAK_UNLIKELY(in->hardened))
        return ss_link_get_hardened(in, s, p);
    return *ss_link_addr(s, p);
}

/* ---- functions across files ----------------------------------------- */

/* ss_box.c */
void ss_event(const struct ss_inst *in, uint16_t type, uint32_t bucket,
              const void *addr, uint64_t bytes, uint64_t count);
static inline uint32_t ss_bucket(uint32_t cls)
{
    return HAK_BUCKET_C0 + (cls < 7 ? cls : 7);
}

/* ss_thread.c */
void ss_tls_init(struct ss_tls *t);
void ss_thread_init(void *inst, void *tls);
void ss_thread_exit(void *inst, void *tls);
size_t ss_trim(void *inst, void *tls);

/* ss_slab.c */
void ss_list_push(struct ss_slab **head, struct ss_slab *s);
void ss_list_remove(struct ss_slab **head, struct ss_slab *s);
struct ss_slab *ss_acquire_slab(struct ss_tls *t, uint32_t cls);
void ss_release_slab(struct ss_tls *t, struct ss_slab *s);
void ss_retire_slab(struct ss_tls *t, struct ss_slab *s);
bool ss_adopt_on_free(struct ss_tls *t, struct ss_slab *s);
size_t ss_reclaim_orphans(struct ss_tls *t);
uint32_t ss_drain_remote(const struct ss_inst *in, struct ss_slab *s);
void ss_release_finished_orphan(struct ss_tls *t, struct ss_slab *s);
size_t ss_release_superslabs(struct ss_inst *in, void *tls, uint32_t keep);
size_t ss_purge_all(struct ss_inst *in, void *tls);
size_t ss_reclaim(void *inst, size_t bytes);

/* ss_alloc.c */
void *ss_alloc(void *tls, size_t size);
void ss_free(void *tls, void *p, uint16_t tag);
void ss_return_borrowed(struct ss_tls *t);
size_t ss_usable_size(void *tls, const void *p, uint16_t tag);
uint32_t ss_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n);
void ss_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n);

#endif
