/*
 * superslab: slabs and SuperSlabs. Getting a slab for a class (adopt an
 * orphan, take a free slab, or get a new SuperSlab from the pages box),
 * giving an empty slab back, and giving empty SuperSlabs back under the
 * keep_empty_superslabs policy. The instance lock covers the shared lists
 * and is never held across a call into the pages box.
 */
#include "superslab.h"

#include <stddef.h>

/* ---- intrusive lists -------------------------------------------------- */

void ss_list_push(struct ss_slab **head, struct ss_slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

void ss_list_remove(struct ss_slab **head, struct ss_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

static void ss_head_push(struct ss_head **list, struct ss_head *h, uint32_t where)
{
    h->prev = NULL;
    h->next = *list;
    if (*list)
        (*list)->prev = h;
    *list = h;
    h->where = where;
}

static void ss_head_remove(struct ss_head **list, struct ss_head *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        *list = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->next = h->prev = NULL;
    h->where = SS_IN_NONE;
}

/* ---- remote frees ----------------------------------------------------- */

/* Take the slab's whole remote stack onto its local list (its owner, or
 * whoever took an orphan: never an armed one). Returns the blocks taken.
 * The stack's length is in the remote word, so with the local list empty
 * (the owner's refill, the common case) the stack becomes the list without
 * a walk over lines other threads wrote (xmalloc-test at 2 threads spent
 * 21-28% of its time in that walk). */
uint32_t ss_drain_remote(const struct ss_inst *in, struct ss_slab *s)
{
    if (!atomic_load_explicit(&s->remote, memory_order_relaxed))
        return 0;
    uint64_t w = atomic_exchange_explicit(&s->remote, 0, memory_order_acquire);
    SS_ASSERT(in, ss_rw_live(w) == 0);
    uint32_t n = ss_rw_count(w);
    if (!n)
        return 0;
    void *first = ss_rw_first(s, w);
    if (s->free) {
        void *last = first, *next;
        while ((next = ss_link_get(in, s, last)) != NULL)
            last = next;
        ss_link_set(in, s, last, s->free);
    }
    s->free = first;
    SS_ASSERT(in, n <= s->used);
    s->used = (uint16_t)(s->used - n);
    ss_event(in, HAK_EV_REMOTE_FREE, ss_bucket(s->cls), s->base, (uint64_t)n * s->stride, n);
    return n;
}

/* Arm an orphan (the remote word): from now on the push that brings its
 * last block home releases it. Its taker (retire, reclaim) still holds it,
 * so no push can be that one yet. False when every block is back already:
 * the caller releases it then. */
static bool ss_orphan_arm(struct ss_slab *s)
{
    uint64_t old = atomic_load_explicit(&s->remote, memory_order_relaxed), nw;
    do {
        if (ss_rw_count(old) == s->used)
            return false;
        nw = (old & SS_RW_LOW) | (uint64_t)s->used << SS_RW_LIVE_SHIFT;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

/* Disarm an orphan before taking it (adoption, reclaim; under the instance
 * lock). False when it is complete: its finisher is on the way to release
 * it, and it must be left alone. */
static bool ss_orphan_claim(struct ss_slab *s)
{
    uint64_t old = atomic_load_explicit(&s->remote, memory_order_relaxed);
    do {
        if (ss_rw_complete(old))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, old & SS_RW_LOW,
                                                    memory_order_acquire, memory_order_relaxed));
    return true;
}

/* ---- SuperSlabs ------------------------------------------------------- */

static void *ss_pages_tls(const struct ss_inst *in, void *my_tls)
{
    return hak_link_tls(my_tls, &in->pages);
}

static struct ss_head *ss_new_superslab(struct ss_inst *in, struct ss_tls *t)
{
    const struct hak_box_ops *pages = &in->pages.desc->ops;
    char *base = pages->pages_alloc(ss_pages_tls(in, t), in->ss_size, in->ss_size, in->owner,
                                    SS_TAG_NONE);
    if (!base)
        return NULL;
    if ((uintptr_t)base & ~in->ss_mask) {
        in->host->log(HAK_LOG_ERROR, in->name, "pages box returned %p, not %zu-aligned",
                      (void *)base, in->ss_size);
        pages->pages_free(ss_pages_tls(in, t), base, in->ss_size);
        return NULL;
    }
    /* The span may be recycled (not zero): set every field. */
    struct ss_head *h = (struct ss_head *)base;
    h->magic = SS_HEAD_MAGIC;
    h->inst = in;
    h->next = h->prev = NULL;
    h->free_slabs = NULL;
    h->nslabs = in->ss_granules;
    h->free_count = 0;
    h->where = SS_IN_NONE;
    for (uint32_t i = h->nslabs; i-- > 0;) {
        struct ss_slab *s = &h->slabs[i];
        s->free = NULL;
        s->base = base + ((size_t)i << HAK_GRANULE_SHIFT);
        s->used = s->capacity = s->stride = 0;
        s->cls = SS_TAG_NONE;
        s->state = SLAB_FREE;
        s->list = LIST_NONE;
        s->link_off = 0;
        s->divmagic = 0;
        s->next = s->prev = NULL;
        s->warm_next = s->warm_prev = NULL;
        s->committed = 0; /* fresh pages: nothing to purge, not on the warm list */
        atomic_store_explicit(&s->owner_activity, NULL, memory_order_relaxed);
        atomic_store_explicit(&s->owner_id, SS_ORPHAN_ID, memory_order_relaxed);
        atomic_store_explicit(&s->carved, 0, memory_order_relaxed);
        atomic_store_explicit(&s->remote, 0, memory_order_relaxed);
        if (i == 0) /* granule 0 is this metadata */
            continue;
        ss_list_push(&h->free_slabs, s); /* lowest address first */
        h->free_count++;
    }
    ss_event(in, HAK_EV_FRESH, HAK_BUCKET_SSM, base,
             offsetof(struct ss_head, slabs) + h->nslabs * sizeof(struct ss_slab), 0);
    return h;
}

/* ---- the warm list: free slabs still committed ------------------------
 * Every free slab whose pages may be resident is on it, newest first. A
 * slab request takes the newest (no page faults: an exiting thread's slabs
 * go to the next thread that needs one, of any class); the oldest are
 * decommitted when the list is over warm_max or idle past purge_delay. */

static void ss_warm_push(struct ss_inst *in, struct ss_slab *s, uint64_t now)
{
    s->committed = 1;
    s->freed_ns = now;
    s->warm_prev = NULL;
    s->warm_next = in->warm_head;
    if (in->warm_head) {
        in->warm_head->warm_prev = s;
    } else {
        in->warm_tail = s;
        atomic_store_explicit(&in->warm_oldest_ns, now, memory_order_relaxed);
    }
    in->warm_head = s;
    atomic_store_explicit(&in->warm_count, in->warm_count + 1, memory_order_relaxed);
}

static void ss_warm_remove(struct ss_inst *in, struct ss_slab *s)
{
    if (s->warm_prev)
        s->warm_prev->warm_next = s->warm_next;
    else
        in->warm_head = s->warm_next;
    if (s->warm_next) {
        s->warm_next->warm_prev = s->warm_prev;
    } else {
        in->warm_tail = s->warm_prev;
        atomic_store_explicit(&in->warm_oldest_ns, in->warm_tail ? in->warm_tail->freed_ns : 0,
                              memory_order_relaxed);
    }
    s->warm_next = s->warm_prev = NULL;
    s->committed = 0;
    atomic_store_explicit(&in->warm_count, in->warm_count - 1, memory_order_relaxed);
}

/* A SuperSlab leaving the instance takes its slabs off the warm list. */
static void ss_warm_forget_superslab(struct ss_inst *in, struct ss_head *h)
{
    for (uint32_t i = 1; i < h->nslabs; i++)
        if (h->slabs[i].committed)
            ss_warm_remove(in, &h->slabs[i]);
}

/* Give empty SuperSlabs beyond `keep` back to the pages box. */
size_t ss_release_superslabs(struct ss_inst *in, void *tls, uint32_t keep)
{
    struct ss_head *give = NULL;
    hak_spin_lock(in->lock);
    while (in->empty_count > keep) {
        struct ss_head *h = in->empty;
        ss_head_remove(&in->empty, h);
        in->empty_count--;
        in->superslabs--;
        in->free_slabs -= h->nslabs - 1;
        ss_warm_forget_superslab(in, h);
        h->next = give;
        give = h;
    }
    hak_spin_unlock(in->lock);
    size_t bytes = 0;
    while (give) {
        struct ss_head *h = give;
        give = h->next;
        h->magic = 0;
        in->pages.desc->ops.pages_free(ss_pages_tls(in, tls), h, in->ss_size);
        bytes += in->ss_size;
    }
    return bytes;
}

/* ---- slabs ------------------------------------------------------------ */

/* Ready a slab for class cls. The one stride of the class is its size:
 * blocks carry no header, every carve uses s->stride and s->capacity. */
static void ss_format(const struct ss_inst *in, struct ss_slab *s, uint32_t cls)
{
    uint32_t stride = in->class_size[cls];
    s->stride = (uint16_t)stride;
    s->capacity = (uint16_t)(SS_SLAB_SIZE / stride);
    s->divmagic = in->divmagic[cls];
    s->link_off = stride >= 2 * sizeof(void *) ? sizeof(void *) : 0;
    s->cls = (uint16_t)cls;
    s->free = NULL;
    s->used = 0;
    s->list = LIST_NONE;
    atomic_store_explicit(&s->carved, 0, memory_order_relaxed);
}

static bool ss_orphan_useful(const struct ss_slab *s)
{
    return s->free || ss_rw_count(atomic_load_explicit(&s->remote, memory_order_relaxed)) ||
           atomic_load_explicit(&s->carved, memory_order_relaxed) <
               (uint32_t)s->capacity * s->stride;
}

static struct ss_slab *ss_adopt_orphan_locked(struct ss_inst *in, uint32_t cls)
{
    uint32_t k = 0;
    for (struct ss_slab *s = in->orphans[cls]; s && k < in->orphan_scan; s = s->next, k++) {
        SS_ASSERT(in, s->state == SLAB_ORPHAN && s->cls == cls);
        if (ss_orphan_useful(s) && ss_orphan_claim(s)) {
            ss_list_remove(&in->orphans[cls], s);
            in->orphan_slabs--;
            s->state = SLAB_ACTIVE; /* under the lock: a finisher checks it */
            return s;
        }
    }
    return NULL;
}

/* A free into an orphan: the freeing thread takes the slab over (mimalloc
 * reclaims an abandoned segment on free the same way). The blocks of a
 * thread that exited are mostly freed by the thread that took over its
 * work (larson's respawned workers); once it owns the slab those frees are
 * local, and the slab is reused or released by a live thread instead of
 * waiting on the orphan list. Never waits: a busy lock leaves the free
 * remote. Returns true when t owns s now, on its partial list. */
bool ss_adopt_on_free(struct ss_tls *t, struct ss_slab *s)
{
    struct ss_inst *in = ss_inst_of(t);
    if (!hak_spin_trylock(in->lock))
        return false;
    /* A complete orphan cannot be here (the caller holds one of its
     * blocks), so the claim fails only if it was taken meanwhile. */
    if (s->state != SLAB_ORPHAN || !ss_orphan_claim(s)) {
        hak_spin_unlock(in->lock);
        return false;
    }
    ss_list_remove(&in->orphans[s->cls], s);
    in->orphan_slabs--;
    s->state = SLAB_ACTIVE;
    atomic_store_explicit(&s->owner_id, t->id, memory_order_relaxed);
    hak_spin_unlock(in->lock);
    ss_mark_thread(in, t, s);
    if (ss_drain_remote(in, s))
        t->drains++;
    s->list = LIST_PARTIAL;
    ss_list_push(&t->cls[s->cls].partial, s);
    return true;
}

/* Take one given free slab out of its SuperSlab (and off the warm list). */
static void ss_unfree_slab_locked(struct ss_inst *in, struct ss_slab *s)
{
    struct ss_head *h = ss_head_of_slab(in, s);
    if (h->where == SS_IN_EMPTY) {
        ss_head_remove(&in->empty, h);
        in->empty_count--;
        ss_head_push(&in->partial, h, SS_IN_PARTIAL);
    }
    ss_list_remove(&h->free_slabs, s);
    h->free_count--;
    in->free_slabs--;
    if (s->committed)
        ss_warm_remove(in, s);
    if (h->free_count == 0)
        ss_head_remove(&in->partial, h);
}

/* The newest committed free slab, else any free slab (its pages were
 * decommitted or never touched: carving faults them in either way). */
static struct ss_slab *ss_take_free_slab_locked(struct ss_inst *in)
{
    struct ss_slab *s = in->warm_head;
    if (!s) {
        struct ss_head *h = in->partial ? in->partial : in->empty;
        if (!h)
            return NULL;
        s = h->free_slabs;
    }
    ss_unfree_slab_locked(in, s);
    return s;
}

/* Put a slab on its SuperSlab's free list. Returns the SuperSlab when it
 * became wholly free and is to be given back (the caller does, unlocked);
 * with keep, such a SuperSlab stays on the empty list instead. */
static struct ss_head *ss_put_free_locked(struct ss_inst *in, struct ss_slab *s,
                                          bool committed, uint64_t now, bool keep)
{
    struct ss_head *h = ss_head_of_slab(in, s);
    ss_list_push(&h->free_slabs, s);
    h->free_count++;
    in->free_slabs++;
    s->committed = 0;
    if (committed)
        ss_warm_push(in, s, now);
    if (h->where == SS_IN_NONE)
        ss_head_push(&in->partial, h, SS_IN_PARTIAL);
    if (h->free_count < h->nslabs - 1)
        return NULL;
    ss_head_remove(&in->partial, h);
    if (keep || in->empty_count < in->keep_empty) {
        ss_head_push(&in->empty, h, SS_IN_EMPTY);
        in->empty_count++;
        return NULL;
    }
    in->superslabs--;
    in->free_slabs -= h->nslabs - 1;
    ss_warm_forget_superslab(in, h);
    return h;
}

static void ss_give_superslab(struct ss_inst *in, void *tls, struct ss_head *h)
{
    h->magic = 0;
    in->pages.desc->ops.pages_free(ss_pages_tls(in, tls), h, in->ss_size);
}

/* Decommit the oldest warm slabs: those over warm_max, and (all = false)
 * those idle past purge_delay; all = true empties the list (trim). The
 * slabs leave their SuperSlab while the lock is dropped, so no thread
 * carves one being decommitted and its SuperSlab cannot be given back
 * meanwhile; at most SS_PURGE_BATCH per round, so a lock holder never
 * makes system calls. Returns the bytes decommitted. */
enum { SS_PURGE_BATCH = 16 };

/* Decommit slabs taken off the warm list (unlocked), then put them back
 * on their SuperSlabs' free lists as not committed. A SuperSlab left wholly
 * free goes into give[] (counted in *ng) to be given back by the caller,
 * or with keep stays on the empty list. */
static void ss_decommit_batch(struct ss_inst *in, struct ss_slab **batch, uint32_t n,
                              uint64_t now, bool keep, struct ss_head **give, uint32_t *ng)
{
    for (uint32_t i = 0; i < n; i++)
        in->host->decommit(batch[i]->base, SS_SLAB_SIZE);
    hak_spin_lock(in->lock);
    for (uint32_t i = 0; i < n; i++) {
        struct ss_head *h = ss_put_free_locked(in, batch[i], false, now, keep);
        if (h)
            give[(*ng)++] = h;
    }
    if (keep && in->empty_count > in->keep_empty)
        atomic_store_explicit(&in->empty_over_keep, 1, memory_order_relaxed);
    hak_spin_unlock(in->lock);
}

static size_t ss_purge_warm(struct ss_inst *in, void *tls, uint64_t now, bool all)
{
    size_t bytes = 0;
    for (;;) {
        struct ss_slab *batch[SS_PURGE_BATCH];
        uint32_t n = 0;
        hak_spin_lock(in->lock);
        while (n < SS_PURGE_BATCH && in->warm_tail &&
               (all || in->warm_count > in->warm_max ||
                now - in->warm_tail->freed_ns >= in->purge_delay_ns)) {
            struct ss_slab *s = in->warm_tail;
            ss_unfree_slab_locked(in, s);
            batch[n++] = s;
        }
        hak_spin_unlock(in->lock);
        if (n == 0)
            return bytes;
        struct ss_head *give[SS_PURGE_BATCH];
        uint32_t ng = 0;
        ss_decommit_batch(in, batch, n, now, false, give, &ng);
        bytes += (size_t)n * SS_SLAB_SIZE;
        for (uint32_t i = 0; i < ng; i++)
            ss_give_superslab(in, tls, give[i]);
        if (n < SS_PURGE_BATCH)
            return bytes;
    }
}

/* Cheap check before taking the lock: anything to purge? The two atomics
 * may be a moment stale; a purge that finds nothing costs one lock round. */
static void ss_maybe_purge(struct ss_inst *in, void *tls, uint64_t now)
{
    if (HAK_UNLIKELY(atomic_load_explicit(&in->empty_over_keep, memory_order_relaxed))) {
        atomic_store_explicit(&in->empty_over_keep, 0, memory_order_relaxed);
        ss_release_superslabs(in, tls, in->keep_empty); /* what ss_reclaim kept */
    }
    uint64_t oldest = atomic_load_explicit(&in->warm_oldest_ns, memory_order_relaxed);
    if (oldest && (atomic_load_explicit(&in->warm_count, memory_order_relaxed) > in->warm_max ||
                   now - oldest >= in->purge_delay_ns))
        ss_purge_warm(in, tls, now, false);
}

/* ops.reclaim: another box is about to fault in fresh pages. The oldest
 * warm slabs beyond a quarter of the slabs in use are decommitted, up to
 * `bytes`. Trylocks, and no system call under the lock: the caller may be
 * inside another box's slow path. A SuperSlab this leaves wholly free is
 * kept on the empty list (decommitted but for its metadata granule):
 * giving it to the pages box needs a thread's slice, which a foreign
 * caller does not have; this box's own thread gives it back at its next
 * purge check (empty_over_keep). */
size_t ss_reclaim(void *inst, size_t bytes)
{
    struct ss_inst *in = inst;
    size_t released = 0;
    while (released < bytes && atomic_load_explicit(&in->warm_count, memory_order_relaxed)) {
        if (!hak_spin_trylock(in->lock))
            break;
        uint64_t in_use = in->superslabs * (in->ss_granules - 1) - in->free_slabs;
        struct ss_slab *batch[SS_PURGE_BATCH];
        uint32_t n = 0;
        while (n < SS_PURGE_BATCH && in->warm_tail && in->warm_count > in_use / 4 &&
               released + (size_t)n * SS_SLAB_SIZE < bytes) {
            struct ss_slab *s = in->warm_tail;
            ss_unfree_slab_locked(in, s);
            batch[n++] = s;
        }
        hak_spin_unlock(in->lock);
        if (!n)
            break;
        ss_decommit_batch(in, batch, n, in->host->now_ns(), true, NULL, NULL);
        released += (size_t)n * SS_SLAB_SIZE;
    }
    return released;
}

size_t ss_purge_all(struct ss_inst *in, void *tls)
{
    return ss_purge_warm(in, tls, in->host->now_ns(), true);
}

struct ss_slab *ss_acquire_slab(struct ss_tls *t, uint32_t cls)
{
    struct ss_inst *in = ss_inst_of(t);
    struct ss_slab *s;
    bool adopted, fresh = false;
    for (;;) {
        hak_spin_lock(in->lock);
        s = ss_adopt_orphan_locked(in, cls);
        adopted = s != NULL;
        if (!s) {
            fresh = in->warm_head == NULL; /* no committed free slab left */
            s = ss_take_free_slab_locked(in);
        }
        hak_spin_unlock(in->lock);
        if (s)
            break;
        struct ss_head *h = ss_new_superslab(in, t);
        if (!h)
            return NULL;
        hak_spin_lock(in->lock);
        in->superslabs++;
        in->free_slabs += h->free_count;
        ss_head_push(&in->partial, h, SS_IN_PARTIAL);
        hak_spin_unlock(in->lock);
    }
    t->refills++;
    ss_maybe_purge(in, t, in->host->now_ns());
    if (adopted) { /* marked active under the lock (ss_adopt_orphan_locked) */
        atomic_store_explicit(&s->owner_id, t->id, memory_order_relaxed);
        ss_mark_thread(in, t, s);
        if (ss_drain_remote(in, s))
            t->drains++;
        return s;
    }
    /* pages that carving will fault in: the other boxes give back what
     * they keep only in case */
    if (fresh && in->growing)
        in->growing(in->owner, SS_SLAB_SIZE);
    ss_format(in, s, cls);
    in->host->assign(s->base, SS_SLAB_SIZE, in->owner, (uint16_t)cls);
    s->state = SLAB_ACTIVE;
    atomic_store_explicit(&s->owner_id, t->id, memory_order_relaxed);
    ss_mark_thread(in, t, s);
    return s;
}

/* An empty slab (used == 0, on none of the owner's lists) goes back to its
 * SuperSlab, committed, at the head of the warm list; a SuperSlab left
 * wholly free is kept or given back. */
void ss_release_slab(struct ss_tls *t, struct ss_slab *s)
{
    struct ss_inst *in = ss_inst_of(t);

    SS_ASSERT(in, s->used == 0 && s->state != SLAB_FREE && !atomic_load(&s->remote));

    /* Retag first: from now on a stale free of one of its blocks is caught
     * (tag SS_TAG_NONE) instead of landing on a list. */
    in->host->assign(s->base, SS_SLAB_SIZE, in->owner, SS_TAG_NONE);
    atomic_store_explicit(&s->owner_id, SS_ORPHAN_ID, memory_order_relaxed);
    atomic_store_explicit(&s->owner_activity, NULL, memory_order_relaxed);
    s->state = SLAB_FREE;
    s->cls = SS_TAG_NONE;
    s->list = LIST_NONE;
    s->free = NULL;

    uint64_t now = in->host->now_ns();
    hak_spin_lock(in->lock);
    struct ss_head *give = ss_put_free_locked(in, s, true, now, false);
    hak_spin_unlock(in->lock);
    if (give)
        ss_give_superslab(in, t, give);
    ss_maybe_purge(in, t, now);
}

/* Hand a slab with live blocks to the orphan list, or release it if the
 * remote stack brought everything back. */
void ss_retire_slab(struct ss_tls *t, struct ss_slab *s)
{
    struct ss_inst *in = ss_inst_of(t);
    if (ss_drain_remote(in, s))
        t->drains++;
    s->list = LIST_NONE;
    if (s->used == 0) {
        ss_release_slab(t, s);
        return;
    }
    ss_mark_thread(in, NULL, s);
    hak_spin_lock(in->lock);
    atomic_store_explicit(&s->owner_id, SS_ORPHAN_ID, memory_order_relaxed);
    /* Armed under the lock, with it on the list: a finisher waits for the
     * lock and then finds it there. */
    bool armed = ss_orphan_arm(s);
    if (armed) {
        s->state = SLAB_ORPHAN;
        ss_list_push(&in->orphans[s->cls], s);
        in->orphan_slabs++;
    }
    hak_spin_unlock(in->lock);
    if (!armed) { /* every block came home meanwhile */
        ss_drain_remote(in, s);
        ss_release_slab(t, s);
    }
}

/* The push that brought an armed orphan's last block home (ss_remote_push):
 * nobody else takes a complete orphan, so s is this thread's to release. */
void ss_release_finished_orphan(struct ss_tls *t, struct ss_slab *s)
{
    struct ss_inst *in = ss_inst_of(t);
    hak_spin_lock(in->lock);
    SS_ASSERT(in, s->state == SLAB_ORPHAN);
    ss_list_remove(&in->orphans[s->cls], s);
    in->orphan_slabs--;
    /* Disarmed by hand: ss_orphan_claim refuses a complete orphan. */
    atomic_fetch_and_explicit(&s->remote, SS_RW_LOW, memory_order_acquire);
    hak_spin_unlock(in->lock);
    ss_drain_remote(in, s);
    SS_ASSERT(in, s->used == 0);
    ss_release_slab(t, s);
}

/* trim: orphans whose blocks all came back are released. */
size_t ss_reclaim_orphans(struct ss_tls *t)
{
    struct ss_inst *in = ss_inst_of(t);
    struct ss_slab *empty = NULL;
    size_t bytes = 0;
    hak_spin_lock(in->lock);
    for (uint32_t c = 0; c < in->nclasses; c++) {
        struct ss_slab *s = in->orphans[c];
        while (s) {
            struct ss_slab *next = s->next;
            /* A complete one is its finisher's; an other is disarmed,
             * drained, and armed again unless it came back whole. */
            if (ss_orphan_claim(s)) {
                ss_drain_remote(in, s);
                if (s->used == 0 || !ss_orphan_arm(s)) {
                    ss_drain_remote(in, s);
                    ss_list_remove(&in->orphans[c], s);
                    in->orphan_slabs--;
                    s->next = empty;
                    empty = s;
                }
            }
            s = next;
        }
    }
    hak_spin_unlock(in->lock);
    while (empty) {
        struct ss_slab *s = empty;
        empty = s->next;
        ss_release_slab(t, s);
        bytes += SS_SLAB_SIZE;
    }
    return bytes;
}
