/*
 * superslab: alloc and free, single blocks and batches.
 *
 * Fast path (no front above): the slice's current slab for the class, pop
 * its local free list. Everything else (carving, taking the remote stack,
 * changing slabs) is ss_take, shared by alloc and alloc_batch so that every
 * block address comes from one carve function and one stride.
 */
#include "superslab.h"

static __attribute__((noinline, cold)) void ss_bad(const struct ss_inst *in,
                                                   const char *problem, const void *p)
{
    in->host->bad_free(in->name, problem, p);
}

/* ---- taking blocks ---------------------------------------------------- */

static uint32_t ss_pop_local(const struct ss_inst *in, struct ss_slab *s, void **out,
                             uint32_t n)
{
    uint32_t k = 0;
    void *p = s->free;
    while (k < n && p) {
        out[k++] = p;
        p = ss_link_get(in, s, p);
    }
    s->free = p;
    s->used += k;
    return k;
}

/* Linear carving of never-used blocks: the only place block addresses are
 * made, from the slab's one stride (no per-block header exists). */
static uint32_t ss_carve(const struct ss_inst *in, struct ss_slab *s, void **out, uint32_t n)
{
    uint32_t carved = atomic_load_explicit(&s->carved, memory_order_relaxed);
    uint32_t end = s->capacity * s->stride;
    uint32_t room = (end - carved) / s->stride;
    uint32_t k = n < room ? n : room;
    char *p = s->base + carved;
    for (uint32_t i = 0; i < k; i++, p += s->stride)
        out[i] = p;
    uint32_t old = carved;
    carved += k * s->stride;
    atomic_store_explicit(&s->carved, carved, memory_order_relaxed);
    s->used += k;
    SS_ASSERT(in, s->used <= s->capacity && carved <= SS_SLAB_SIZE);
    /* Report fresh memory a page at a time, not per block: the pages left
     * behind, and the tail when the slab is wholly carved. */
    uint32_t from = old & ~4095u, to = carved == end ? end : carved & ~4095u;
    if (k && to > from)
        ss_event(in, HAK_EV_FRESH, ss_bucket(s->cls), s->base + from, to - from, 0);
    return k;
}

static bool ss_has_remote(const struct ss_slab *s)
{
    return ss_rw_count(atomic_load_explicit(&s->remote, memory_order_relaxed)) != 0;
}

/* Make cur a slab that may have blocks: an owned partial one, a full one
 * with remote frees waiting, else one from the instance (orphan or free). */
static struct ss_slab *ss_next_slab(struct ss_tls *t, uint32_t c)
{
    struct ss_class_tls *ct = &t->cls[c];
    struct ss_slab *s = ct->partial;
    if (s) {
        ss_list_remove(&ct->partial, s);
    } else {
        for (s = ct->full; s; s = s->next)
            if (ss_has_remote(s))
                break;
        if (s) {
            ss_list_remove(&ct->full, s);
        } else {
            s = ss_acquire_slab(t, c);
            if (!s)
                return NULL;
        }
    }
    s->list = LIST_CUR;
    ct->cur = s;
    return s;
}

/* ---- borrowed blocks: an idle owner's, reused by the freeing thread ----
 * Sending a block home helps only an owner that allocates again. One that
 * has not refilled for owner_idle_ms (larson's main thread, asleep once it
 * has handed its blocks to the workers) would hold every block sent to it
 * on its remote stacks while the freeing threads grow the heap. Its blocks
 * are kept by the freeing slice instead (at most SS_BORROW_MAX per class)
 * and handed out before its own slabs' blocks, as every tiny free was
 * before blocks went home. They stay counted as in use by their slab; when
 * the program frees them again they go home or are borrowed again. */
enum { SS_BORROW_MAX = 256 };

static void ss_borrow_push(const struct ss_inst *in, struct ss_class_tls *ct, void *p)
{
    ss_link_set(in, ss_slab_of(in, p), p, ct->borrowed);
    ct->borrowed = p;
    ct->borrowed_n++;
}

static uint32_t ss_borrow_pop(const struct ss_inst *in, struct ss_class_tls *ct, void **out, uint32_t n)
{
    uint32_t k = 0;
    while (k < n && ct->borrowed) {
        void *p = ct->borrowed;
        ct->borrowed = ss_link_get(in, ss_slab_of(in, p), p);
        out[k++] = p;
    }
    ct->borrowed_n -= k;
    return k;
}

/* Has s's owner not refilled for owner_idle_ns? What a pusher last saw of
 * it lives in the slab's remote line (which the push writes anyway):
 * the owner's take count, and when it was first seen unchanged (0: not
 * yet). The clock is read only for an owner whose count did not move,
 * once per call site (*now 0: not read yet). */
static bool ss_owner_idle(const struct ss_inst *in, struct ss_slab *s, uint64_t *now)
{
    struct ss_activity *o = atomic_load_explicit(&s->owner_activity, memory_order_relaxed);
    if (!in->owner_idle_ns || !o)
        return false;
    uint64_t takes = atomic_load_explicit(&o->takes, memory_order_relaxed);
    if (takes != atomic_load_explicit(&s->seen_takes, memory_order_relaxed)) {
        atomic_store_explicit(&s->seen_takes, takes, memory_order_relaxed);
        atomic_store_explicit(&s->seen_ns, 0, memory_order_relaxed);
        return false;
    }
    if (!*now)
        *now = in->host->now_ns();
    uint64_t since = atomic_load_explicit(&s->seen_ns, memory_order_relaxed);
    if (!since) {
        atomic_store_explicit(&s->seen_ns, *now, memory_order_relaxed);
        return false;
    }
    return *now - since >= in->owner_idle_ns;
}

/* s's owner sleeps: lend the slab (host->lend_slab), so the host pushes
 * every thread's frees of its blocks on the freeing thread's stacks (only
 * under remote_frees = live_home; elsewhere the host changes nothing and
 * says so). The caller holds blocks of s not yet pushed back, so s is not
 * released or re-formatted meanwhile. The mark first, then the flag: an
 * owner that clears the flag has seen the mark, and its own mark lands
 * after it (ss_unlend_slab), so a lent slab always has the flag up. */
static void ss_lend_slab(const struct ss_inst *in, struct ss_slab *s)
{
    if (!in->lends || atomic_load_explicit(&s->lent, memory_order_relaxed))
        return;
    if (in->host->lend_slab(s->base, SS_SLAB_SIZE))
        atomic_store_explicit(&s->lent, 1, memory_order_seq_cst);
}

/* The owner is back: its slab is its own again in the free path (again
 * if a lender marked it meanwhile). */
static void ss_unlend_slab(const struct ss_inst *in, struct ss_tls *t, struct ss_slab *s)
{
    while (atomic_exchange_explicit(&s->lent, 0, memory_order_seq_cst))
        in->host->set_thread_owner(t, s->base, SS_SLAB_SIZE);
}

/* Up to n blocks of class c for this slice; how many it found. */
static uint32_t ss_take(struct ss_tls *t, uint32_t c, void **out, uint32_t n)
{
    struct ss_inst *in = ss_inst_of(t);
    struct ss_class_tls *ct = &t->cls[c];
    /* Seen by threads deciding whether this slice is idle. */
    if (HAK_LIKELY(t->activity != NULL))
        atomic_store_explicit(&t->activity->takes,
                              atomic_load_explicit(&t->activity->takes, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    uint32_t got = ct->borrowed ? ss_borrow_pop(in, ct, out, n) : 0;
    while (got < n) {
        struct ss_slab *s = ct->cur;
        if (!s) {
            if (!ss_next_slab(t, c))
                break;
            continue;
        }
        got += ss_pop_local(in, s, out + got, n - got);
        if (got == n)
            break;
        /* Short of blocks here: a lent slab is taken back (not before: the
         * flag shares the line other threads push remote frees on). */
        if (HAK_UNLIKELY(atomic_load_explicit(&s->lent, memory_order_relaxed)))
            ss_unlend_slab(in, t, s);
        /* Blocks other threads sent home come before fresh ones: carving
         * first grew the heap while they waited (larson: 1.6x the RSS). */
        if (ss_has_remote(s)) {
            if (ss_drain_remote(in, s))
                t->drains++;
            continue;
        }
        got += ss_carve(in, s, out + got, n - got);
        if (got == n)
            break;
        /* Nothing left here: park it until its blocks come back. */
        s->list = LIST_FULL;
        ss_list_push(&ct->full, s);
        ct->cur = NULL;
    }
    return got;
}

static __attribute__((noinline)) void *ss_alloc_slow(struct ss_tls *t, size_t size)
{
    if (HAK_UNLIKELY(!t->id))
        ss_tls_init(t);
    struct ss_inst *in = ss_inst_of(t);
    uint32_t c = t->cls_of[(size + 7) >> 3];
    if (c >= in->nclasses)
        return NULL; /* larger than the largest class */
    void *p;
    if (!ss_take(t, c, &p, 1))
        return NULL;
    *(uintptr_t *)p = 0; /* clear the free marker */
    t->cls[c].allocs++;
    return p;
}

void *ss_alloc(void *tls, size_t size)
{
    struct ss_tls *t = tls;
    size_t i = (size + 7) >> 3;
    if (HAK_UNLIKELY(i > SS_SIZE_INDEX_MAX))
        return NULL;
    uint32_t c = t->cls_of[i];
    struct ss_slab *s = t->cls[c].cur;
    void *p;
    /* Hardened links are decoded (and checked) on the slow path. */
    if (HAK_UNLIKELY(!s || !(p = s->free) || ss_inst_of(t)->hardened))
        return ss_alloc_slow(t, size);
    s->free = *ss_link_addr(s, p);
    s->used++;
    *(uintptr_t *)p = 0;
    t->cls[c].allocs++;
    return p;
}

uint32_t ss_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n)
{
    struct ss_tls *t = tls;
    if (HAK_UNLIKELY(!t->id))
        ss_tls_init(t);
    if (cls >= ss_inst_of(t)->nclasses)
        return 0;
    /* Markers stay: whoever hands a block to the program clears them. */
    uint32_t got = ss_take(t, cls, out, n);
    t->cls[cls].allocs += got;
    return got;
}

/* ---- giving blocks back ----------------------------------------------- */

/* The owner freed into s and it became empty, or it was parked full. */
static __attribute__((noinline)) void ss_local_free_slow(struct ss_tls *t, struct ss_slab *s)
{
    struct ss_class_tls *ct = &t->cls[s->cls];
    if (s->used == 0 && s->list != LIST_CUR) {
        ss_list_remove(s->list == LIST_FULL ? &ct->full : &ct->partial, s);
        s->list = LIST_NONE;
        ss_release_slab(t, s);
    } else if (s->list == LIST_FULL) {
        ss_list_remove(&ct->full, s);
        s->list = LIST_PARTIAL;
        ss_list_push(&ct->partial, s);
    }
}

/* Push the chain first..last (linked through the slab's link word) onto the
 * slab's remote stack: one CAS for the whole chain. The push that brings an
 * armed orphan's last block home releases it (the remote word, superslab.h);
 * until then s may be touched by nobody else but pushers. */
static void ss_remote_push(struct ss_tls *t, struct ss_slab *s, void *first, void *last,
                           uint32_t n)
{
    const struct ss_inst *in = ss_inst_of(t);
    uint64_t old = atomic_load_explicit(&s->remote, memory_order_relaxed), nw;
    uint64_t head = (uint64_t)((char *)first - s->base);
    do {
        ss_link_set(in, s, last, ss_rw_first(s, old));
        nw = (old & ~SS_RW_LOW) | (uint64_t)(ss_rw_count(old) + n) << SS_RW_COUNT_SHIFT | head;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, nw, memory_order_release,
                                                    memory_order_relaxed));
    t->remote_frees += n;
    if (HAK_UNLIKELY(ss_rw_complete(nw)))
        ss_release_finished_orphan(t, s);
}

/* Is p a block start of a carved block of a slab serving class tag? */
static inline bool ss_block_ok(const struct ss_inst *in, const struct ss_slab *s,
                               const void *p, uint32_t tag)
{
    uint32_t off = (uint32_t)((uintptr_t)p & SS_SLAB_MASK);
    (void)in;
    (void)tag;
    SS_ASSERT(in, s->cls == tag);
    return off < atomic_load_explicit(&s->carved, memory_order_relaxed) &&
           ss_divisible(off, s->divmagic);
}

void ss_free(void *tls, void *p, uint16_t tag)
{
    struct ss_tls *t = tls;
    struct ss_inst *in = ss_inst_of(t);
    if (HAK_UNLIKELY(tag >= in->nclasses)) {
        ss_bad(in, "invalid pointer (not a block start)", p);
        return;
    }
    struct ss_slab *s = ss_slab_of(in, p);
    if (HAK_UNLIKELY(!ss_block_ok(in, s, p, tag))) {
        ss_bad(in, "invalid pointer (not a block start)", p);
        return;
    }
    uintptr_t mark = (uintptr_t)p ^ in->mark_secret;
    if (HAK_UNLIKELY(*(uintptr_t *)p == mark)) {
        ss_bad(in, "double free", p);
        return;
    }
    *(uintptr_t *)p = mark;
    t->cls[tag].frees++;
    uint64_t owner = atomic_load_explicit(&s->owner_id, memory_order_relaxed);
    if (HAK_LIKELY(owner == t->id) ||
        (owner == SS_ORPHAN_ID && ss_may_adopt(t) && ss_adopt_on_free(t, s))) {
        ss_link_set(in, s, p, s->free);
        s->free = p;
        SS_ASSERT(in, s->used > 0);
        /* The current slab stays even when empty (no release/acquire
         * ping-pong); others are released, or leave the full list. */
        if (HAK_UNLIKELY((--s->used == 0 && s->list != LIST_CUR) || s->list == LIST_FULL))
            ss_local_free_slow(t, s);
        return;
    }
    ss_remote_push(t, s, p, p, 1);
}

void ss_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n)
{
    struct ss_tls *t = tls;
    struct ss_inst *in = ss_inst_of(t);
    struct ss_slab *chain_slab = NULL;
    void *chain_first = NULL, *chain_last = NULL;
    uint32_t chain_n = 0, taken = 0;
    bool chain_borrow = false;
    uint64_t now = 0;

    if (HAK_UNLIKELY(cls >= in->nclasses)) {
        for (uint32_t i = 0; i < n; i++)
            ss_bad(in, "invalid pointer (not a block start)", blocks[i]);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        void *p = blocks[i];
        struct ss_slab *s = ss_slab_of(in, p);
        /* A batch comes from a front that checked each block; the class
         * check here catches a front handing back the wrong class. */
        if (HAK_UNLIKELY(ss_head_of(in, p)->magic != SS_HEAD_MAGIC || s->cls != cls ||
                         !ss_block_ok(in, s, p, cls))) {
            ss_bad(in, "invalid pointer (not a block start)", p);
            continue;
        }
        *(uintptr_t *)p = (uintptr_t)p ^ in->mark_secret;
        taken++;
        /* No adopt on free here: a batch is a front's drain or outbox,
         * and the thread freeing the blocks of many exited threads (a
         * main thread joining workers) took every orphan over and parked
         * them (rel_threads churn under remote_frees = home: 22 -> 75 MB
         * over 10,000 threads). Orphans are adopted by slab requests. */
        uint64_t owner = atomic_load_explicit(&s->owner_id, memory_order_relaxed);
        if (owner == t->id) {
            ss_link_set(in, s, p, s->free);
            s->free = p;
            SS_ASSERT(in, s->used > 0);
            if ((--s->used == 0 && s->list != LIST_CUR) || s->list == LIST_FULL)
                ss_local_free_slow(t, s);
            continue;
        }
        /* Remote: gather runs of the same slab, one CAS per run; whether
         * the owner sleeps (then the run is borrowed) is asked once per
         * run: asking per block cost xmalloc-test and rptest 11-15%. */
        if (s != chain_slab) {
            if (chain_n)
                ss_remote_push(t, chain_slab, chain_first, chain_last, chain_n);
            chain_slab = s;
            chain_n = 0;
            chain_borrow = owner != SS_ORPHAN_ID && ss_may_adopt(t) && ss_owner_idle(in, s, &now);
            if (chain_borrow)
                ss_lend_slab(in, s);
        }
        if (chain_borrow && t->cls[cls].borrowed_n < SS_BORROW_MAX) {
            ss_borrow_push(in, &t->cls[cls], p);
        } else if (chain_n == 0) {
            chain_first = chain_last = p;
            chain_n = 1;
        } else {
            ss_link_set(in, s, p, chain_first);
            chain_first = p;
            chain_n++;
        }
    }
    if (chain_n)
        ss_remote_push(t, chain_slab, chain_first, chain_last, chain_n);
    t->cls[cls].frees += taken;
}

/* Thread exit and trim: borrowed blocks go home (their owner may be
 * gone meanwhile: its slab is an orphan then, and its adopter gets them). */
void ss_return_borrowed(struct ss_tls *t)
{
    struct ss_inst *in = ss_inst_of(t);
    for (uint32_t c = 0; c < in->nclasses; c++) {
        struct ss_class_tls *ct = &t->cls[c];
        void *p;
        while (ss_borrow_pop(in, ct, &p, 1))
            ss_remote_push(t, ss_slab_of(in, p), p, p, 1);
    }
}

size_t ss_usable_size(void *tls, const void *p, uint16_t tag)
{
    const struct ss_inst *in = ss_inst_of(tls);
    (void)p;
    return tag < in->nclasses ? in->class_size[tag] : 0;
}
