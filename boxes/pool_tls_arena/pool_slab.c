/*
 * Slabs: 2^k granules of a chunk serving one class. Placing, initialising,
 * releasing, draining remote frees, and the per-class partial lists.
 */
#include "pool_internal.h"

void pool_partial_push(struct pool_tls *t, struct pool_slab *s)
{
    struct pool_class_state *cs = &t->cls[s->cls];
    s->state = SLAB_PARTIAL;
    s->next = NULL;
    s->prev = cs->partial_tail;
    if (cs->partial_tail)
        cs->partial_tail->next = s;
    else
        cs->partial = s;
    cs->partial_tail = s;
}

void pool_partial_remove(struct pool_tls *t, struct pool_slab *s)
{
    struct pool_class_state *cs = &t->cls[s->cls];
    if (s->prev)
        s->prev->next = s->next;
    else
        cs->partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        cs->partial_tail = s->prev;
    s->next = s->prev = NULL;
}

static struct pool_slab *pool_slab_init(struct pool_tls *t, struct pool_chunk *ch,
                                        unsigned pos, uint32_t cls)
{
    struct pool_inst *in = pool_inst_of(t);
    unsigned k = in->class_granules[cls];
    char *base = (char *)ch + ((size_t)pos << HAK_GRANULE_SHIFT);
    size_t bytes = (size_t)k << HAK_GRANULE_SHIFT;
    unsigned dirty = (unsigned)__builtin_popcountll(pool_bm_get(ch->dirty_new, pos, k) |
                                                    pool_bm_get(ch->dirty_old, pos, k));

    pool_bm_set(ch->used, pos, k);
    pool_bm_clear(ch->dirty_new, pos, k);
    pool_bm_clear(ch->dirty_old, pos, k);
    ch->slab_start[pos >> 6] |= 1ull << (pos & 63);
    for (unsigned g = pos; g < pos + k; g++)
        ch->slab_of[g] = (uint8_t)pos;
    ch->slabs++;
    ch->free_granules -= k;
    if (!ch->free_granules)
        pool_avail_remove(t, ch);
    pool_dirty_add(t, -(int64_t)((size_t)dirty << HAK_GRANULE_SHIFT));
    in->host->assign(base, bytes, in->owner, (uint16_t)cls);

    struct pool_slab *s = &ch->slab[pos];
    s->free = NULL;
    s->first = base;
    s->bump = base;
    s->size = in->class_size[cls];
    s->capacity = in->class_cap[cls];
    s->end = base + (size_t)s->capacity * s->size;
    s->used = 0;
    s->cls = (uint16_t)cls;
    s->state = SLAB_CUR;
    s->granules = (uint8_t)k;
    s->next = s->prev = NULL;
    atomic_store_explicit(&s->remote, NULL, memory_order_relaxed);
    atomic_store_explicit(&s->owner, (void *)t, memory_order_relaxed);
    t->st.refills++;

    if (dirty < k) {
        size_t fresh = (size_t)(k - dirty) << HAK_GRANULE_SHIFT;
        pool_event(in, HAK_EV_FRESH, base, fresh, 1);
        /* the process grows: the other boxes give back what they keep
         * only in case */
        if (in->growing)
            in->growing(in->owner, fresh);
    }
    if (dirty)
        pool_event(in, HAK_EV_REUSE, base, (uint64_t)dirty << HAK_GRANULE_SHIFT, 1);
    return s;
}

/* The first position at or after `from` whose bit is `one` (or limit). */
static unsigned pool_bm_next(const uint64_t *bm, unsigned from, unsigned limit, bool one)
{
    while (from < limit) {
        unsigned w = from >> 6;
        uint64_t v = (one ? bm[w] : ~bm[w]) & (~0ull << (from & 63));
        if (v) {
            unsigned r = w * 64 + (unsigned)__builtin_ctzll(v);
            return r < limit ? r : limit;
        }
        from = (w + 1) * 64;
    }
    return limit;
}

struct pool_place {
    struct pool_chunk *ch;
    unsigned pos;
    unsigned dirty; /* committed granules it reuses */
    unsigned run;   /* length of the free run it comes from */
};

/* k free granules in one of the thread's chunks with room (the first
 * POOL_PLACE_SCAN with enough, most recently given granules first): the
 * place reusing the most committed (dirty) granules, so a new slab costs no
 * page faults; among equals the shortest free run (best fit). Only the two
 * ends of each free run are looked at, so the rest of the run stays in one
 * piece. */
static bool pool_find_place(struct pool_tls *t, unsigned k, struct pool_place *best)
{
    best->ch = NULL;
    unsigned looked = 0;
    for (struct pool_chunk *ch = t->avail; ch && looked < POOL_PLACE_SCAN; ch = ch->avail_next) {
        if (ch->free_granules < k)
            continue;
        looked++;
        unsigned limit = ch->granules;
        unsigned pos = 1; /* granule 0 is the header */
        while (pos < limit) {
            pos = pool_bm_next(ch->used, pos, limit, false);
            if (pos >= limit)
                break;
            unsigned end = pool_bm_next(ch->used, pos, limit, true);
            unsigned run = end - pos;
            if (run >= k) {
                unsigned ends[2] = { pos, end - k };
                for (int e = 0; e < 2; e++) {
                    unsigned at = ends[e];
                    unsigned dirty = (unsigned)__builtin_popcountll(
                        pool_bm_get(ch->dirty_new, at, k) | pool_bm_get(ch->dirty_old, at, k));
                    if (!best->ch || dirty > best->dirty ||
                        (dirty == best->dirty && run < best->run)) {
                        *best = (struct pool_place){ ch, at, dirty, run };
                        if (dirty == k && run == k)
                            return true;
                    }
                }
            }
            pos = end;
        }
    }
    return best->ch != NULL;
}

/* A slab for class cls, in state SLAB_CUR: a new one in the thread's chunks,
 * else a partial one from an adopted orphan chunk, else from a new chunk. */
struct pool_slab *pool_slab_acquire(struct pool_tls *t, uint32_t cls)
{
    struct pool_inst *in = pool_inst_of(t);
    unsigned k = in->class_granules[cls];
    bool adopted = false, gave_back = false;
    for (;;) {
        struct pool_place place;
        bool found = pool_find_place(t, k, &place);
        /* About to touch fresh pages: first the empty current slabs of
         * idle classes give their committed granules back. A buffer grown
         * step by step passes through every class and left one slab in
         * each, never reused by the next (mawk building a 150 KB string:
         * 1 MB resident here for 250 KB in use). */
        if ((!found || place.dirty < k) && !gave_back) {
            gave_back = true;
            if (pool_release_idle_current(t))
                continue;
        }
        if (found)
            return pool_slab_init(t, place.ch, place.pos, cls);
        if (!adopted && pool_adopt_orphan(t)) {
            adopted = true;
            struct pool_slab *s = t->cls[cls].partial;
            if (s) {
                pool_partial_remove(t, s);
                s->state = SLAB_CUR;
                return s;
            }
            continue;
        }
        if (!pool_chunk_new(t))
            return NULL;
    }
}

/* Give an empty slab's granules back to its chunk, committed (dirty). */
void pool_slab_release(struct pool_inst *in, struct pool_chunk *ch, struct pool_slab *s)
{
    unsigned pos = pool_slab_index(ch, s);
    unsigned k = s->granules;
#if HAKMEM_DEBUG
    if (s->used != 0 || !(ch->slab_start[pos >> 6] & (1ull << (pos & 63))))
        in->host->log(HAK_LOG_ERROR, in->name, "releasing a live slab %p", (void *)s);
#endif
    in->host->assign(pool_slab_base(ch, s), (size_t)k << HAK_GRANULE_SHIFT, in->owner,
                     POOL_TAG_NONE);
    pool_bm_clear(ch->used, pos, k);
    pool_bm_set(ch->dirty_new, pos, k);
    ch->slab_start[pos >> 6] &= ~(1ull << (pos & 63));
    ch->slabs--;
    ch->free_granules += k;
}

static void pool_release_current(struct pool_tls *t, uint32_t c)
{
    struct pool_inst *in = pool_inst_of(t);
    struct pool_slab *s = t->cls[c].cur;
    t->cls[c].cur = NULL;
    pool_dirty_add(t, (int64_t)s->granules << HAK_GRANULE_SHIFT);
    pool_slab_release(in, pool_slab_chunk(s), s);
    pool_avail_touch(t, pool_slab_chunk(s));
}

/* Release every class's current slab that holds no live block; its
 * granules stay committed for the next slab. How many were released. */
unsigned pool_release_empty_current(struct pool_tls *t)
{
    unsigned released = 0;
    for (uint32_t c = 0; c < t->nclasses; c++) {
        struct pool_slab *s = t->cls[c].cur;
        if (s && s->used == 0) {
            pool_release_current(t, c);
            released++;
        }
    }
    return released;
}

/* The same for the classes that allocated nothing since the idle mark,
 * once the mark is POOL_IDLE_CLASS_NS old; then a new mark. Called when
 * the thread is about to grow. Classes in use keep their slabs: releasing
 * every empty one at each growth made the classes that came back fault
 * in new slabs (git's zlib buffers, allocated and freed per object: peak
 * RSS +0.7 MB). */
unsigned pool_release_idle_current(struct pool_tls *t)
{
    struct pool_inst *in = pool_inst_of(t);
    uint64_t now = in->host->now_ns();
    if (now - t->idle_mark_ns < POOL_IDLE_CLASS_NS)
        return 0;
    t->idle_mark_ns = now;
    unsigned released = 0;
    for (uint32_t c = 0; c < t->nclasses; c++) {
        struct pool_class_state *cs = &t->cls[c];
        bool idle = cs->allocs_at_mark == (uint32_t)cs->allocs;
        cs->allocs_at_mark = (uint32_t)cs->allocs;
        if (idle && cs->cur && cs->cur->used == 0) {
            pool_release_current(t, c);
            released++;
        }
    }
    return released;
}

/* Take the slab's remote frees onto its local list. Owner only. */
uint32_t pool_slab_drain(struct pool_slab *s)
{
    void *list = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
    if (!list)
        return 0;
    uint32_t n = 1;
    void *tail = list;
    while (*(void **)tail) {
        tail = *(void **)tail;
        n++;
    }
    *(void **)tail = s->free;
    s->free = list;
    s->used -= n;
    return n;
}

/* After frees reached a slab that is not its class's current one: a full
 * slab with room goes back on the partial list; an empty one is released. */
void pool_slab_settle(struct pool_tls *t, struct pool_slab *s)
{
    if (s->state == SLAB_CUR)
        return;
    if (s->used == 0) {
        if (s->state == SLAB_PARTIAL)
            pool_partial_remove(t, s);
        unsigned k = s->granules;
        pool_slab_release(pool_inst_of(t), pool_slab_chunk(s), s);
        pool_avail_touch(t, pool_slab_chunk(s));
        pool_dirty_add(t, (int64_t)((size_t)k << HAK_GRANULE_SHIFT));
        pool_note_dirty(t);
        return;
    }
    if (s->state == SLAB_FULL && (s->free || s->bump < s->end))
        pool_partial_push(t, s);
}

/* Drain every slab of the thread's chunks that other threads flagged.
 * Returns whether any block came back. */
bool pool_drain_pending(struct pool_tls *t)
{
    uint64_t total = 0;
    for (struct pool_chunk *ch = t->chunks; ch; ch = ch->next) {
        unsigned words = (ch->granules + 63) >> 6;
        for (unsigned w = 0; w < words; w++) {
            _Atomic uint64_t *pending = &ch->pending->bits[w];
            if (!atomic_load_explicit(pending, memory_order_relaxed))
                continue;
            uint64_t bits = atomic_exchange_explicit(pending, 0, memory_order_acquire);
            /* a late flag may name a slab released since: skip it */
            bits &= ch->slab_start[w];
            while (bits) {
                unsigned sh = (unsigned)__builtin_ctzll(bits);
                bits &= bits - 1;
                struct pool_slab *s = &ch->slab[w * 64 + sh];
                uint32_t n = pool_slab_drain(s);
                if (n) {
                    total += n;
                    pool_slab_settle(t, s);
                }
            }
        }
    }
    if (total) {
        t->st.drains++;
        pool_event(pool_inst_of(t), HAK_EV_REMOTE_FREE, NULL, 0, total);
    }
    return total != 0;
}
