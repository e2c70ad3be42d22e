/*
 * The allocation paths: pop from the class's current slab, push onto the
 * block's slab (local) or its remote list (another thread's slab).
 */
#include "pool_internal.h"

static inline uint32_t pool_class_of(const struct pool_tls *t, size_t size)
{
    return t->class_of[(size - (size != 0)) >> 4];
}

static inline void *pool_alloc_class(struct pool_tls *t, uint32_t cls)
{
    struct pool_slab *s = t->cls[cls].cur;
    if (HAK_LIKELY(s != NULL)) {
        void *b = s->free;
        if (HAK_LIKELY(b != NULL)) {
            s->free = *(void **)b;
            s->used++;
            t->cls[cls].allocs++;
            return b;
        }
    }
    return pool_alloc_slow(t, cls);
}

void *pool_alloc(void *tls, size_t size)
{
    struct pool_tls *t = tls;
    if (HAK_UNLIKELY(size > t->max_size))
        return NULL;
    return pool_alloc_class(t, pool_class_of(t, size));
}

/* Blocks of class c are aligned to class_align[c] (the lowest set bit of
 * its size: slabs start on granules); take the first class that fits both
 * the size and the alignment, or let the next box serve it. */
void *pool_alloc_aligned(void *tls, size_t size, size_t align)
{
    struct pool_tls *t = tls;
    const struct pool_inst *in = pool_inst_of(t);
    if (HAK_UNLIKELY(size > t->max_size))
        return NULL;
    for (uint32_t c = pool_class_of(t, size); c < t->nclasses; c++)
        if (in->class_align[c] >= align)
            return pool_alloc_class(t, c);
    return NULL;
}

/* The current slab has nothing left: its remote frees, carve, move to
 * the next partial slab, or get a new slab. */
void *pool_alloc_slow(struct pool_tls *t, uint32_t cls)
{
    struct pool_inst *in = pool_inst_of(t);
    struct pool_class_state *cs = &t->cls[cls];
    struct pool_slab *s;
    void *b;
    for (;;) {
        s = cs->cur;
        if (s) {
            b = s->free;
            if (b) {
                s->free = *(void **)b;
                break;
            }
            /* Blocks other threads gave back before fresh ones: carving
             * first touched new pages while freed blocks waited. */
            if (atomic_load_explicit(&s->remote, memory_order_relaxed)) {
                uint32_t n = pool_slab_drain(s);
                if (n)
                    pool_event(in, HAK_EV_REMOTE_FREE, s, 0, n);
                continue;
            }
            if (s->bump < s->end) {
                /* linear carving: the block is not touched until the
                 * program touches it */
                b = s->bump;
                s->bump += s->size;
                break;
            }
            s->state = SLAB_FULL;
            cs->cur = NULL;
        }
        s = cs->partial;
        if (s) {
            pool_partial_remove(t, s);
            s->state = SLAB_CUR;
            cs->cur = s;
            continue;
        }
        if (pool_drain_pending(t) && (cs->partial || cs->cur))
            continue;
        s = pool_slab_acquire(t, cls);
        if (!s)
            return NULL;
        cs->cur = s;
    }
    s->used++;
    cs->allocs++;
    /* the block is counted in its slab: a tick cannot release it */
    if (HAK_UNLIKELY(--t->tick_countdown == 0))
        pool_tick_check(t);
    return b;
}

/* Misuse checks (hardened or debug builds). Any thread may read what stays
 * fixed while the slab lives; only the owner may read bump, used, free. */
static bool pool_free_check(struct pool_tls *t, const struct pool_slab *s, const void *p,
                            uint16_t tag)
{
    const struct pool_inst *in = pool_inst_of(t);
    const char *c = p;
    const char *problem = NULL;
    if (s->cls != tag || s->size != in->class_size[tag] || c < s->first || c >= s->end ||
        (size_t)(c - s->first) % s->size != 0)
        problem = "free of a pointer that is not a pool block";
    else if (atomic_load_explicit(&s->owner, memory_order_relaxed) == t) {
        if (c >= s->bump)
            problem = "free of a pointer that is not a pool block";
        else if (s->free == p || s->used == 0)
            problem = "double free";
    }
    if (!problem)
        return true;
    in->host->bad_free(in->name, problem, p);
    return false;
}

/* The free itself, once the pointer is known good. Everything but the
 * push is a tail call, so the fast path keeps nothing live across a call. */
static inline void pool_free_block(struct pool_tls *t, void *p, uint16_t tag)
{
    struct pool_chunk *ch = (struct pool_chunk *)((uintptr_t)p & t->chunk_mask);
    struct pool_slab *s = &ch->slab[ch->slab_of[((uintptr_t)p - (uintptr_t)ch) >> HAK_GRANULE_SHIFT]];
    t->cls[tag].frees++;
    if (HAK_LIKELY(atomic_load_explicit(&s->owner, memory_order_relaxed) == t)) {
        *(void **)p = s->free;
        s->free = p;
        s->used--;
        uint32_t left = --t->tick_countdown;
        if (HAK_UNLIKELY(left == 0 ||
                         (s->state != SLAB_CUR && (s->state == SLAB_FULL || s->used == 0))))
            pool_free_slow(t, s);
        return;
    }
    pool_free_remote(t, s, p);
}

/* Out of line: a tag that is no class, or a hardened/debug check first. */
static __attribute__((noinline)) void pool_free_checked(struct pool_tls *t, void *p,
                                                         uint16_t tag)
{
    if (tag >= t->nclasses) {
        const struct pool_inst *in = pool_inst_of(t);
        in->host->bad_free(in->name, "free of a pointer outside any pool block", p);
        return;
    }
    struct pool_chunk *ch = (struct pool_chunk *)((uintptr_t)p & t->chunk_mask);
    struct pool_slab *s = &ch->slab[ch->slab_of[((uintptr_t)p - (uintptr_t)ch) >> HAK_GRANULE_SHIFT]];
    if (pool_free_check(t, s, p, tag))
        pool_free_block(t, p, tag);
}

void pool_free(void *tls, void *p, uint16_t tag)
{
    struct pool_tls *t = tls;
    if (HAK_UNLIKELY(tag >= t->nclasses || t->check)) {
        pool_free_checked(t, p, tag);
        return;
    }
    pool_free_block(t, p, tag);
}

/* A free reached a full or emptied slab, or the tick countdown ran out. */
void pool_free_slow(struct pool_tls *t, struct pool_slab *s)
{
    pool_slab_settle(t, s);
    if (t->tick_countdown == 0)
        pool_tick_check(t);
}

/* Another thread's slab (or an orphan's): push onto its remote list; the
 * first push flags the slab in its chunk's pending set so the owner finds
 * it. The pending set is read before the push: once pushed, the block may
 * be drained, the slab released and the chunk unmapped at any time; the
 * pending set itself is never unmapped (a late flag is harmless). */
void pool_free_remote(struct pool_tls *t, struct pool_slab *s, void *p)
{
    struct pool_chunk *ch = pool_slab_chunk(s);
    struct pool_pending *pending = ch->pending;
    unsigned idx = pool_slab_index(ch, s);
    void *head = atomic_load_explicit(&s->remote, memory_order_relaxed);
    do {
        *(void **)p = head;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &head, p,
                                                    memory_order_release,
                                                    memory_order_relaxed));
    if (!head)
        atomic_fetch_or_explicit(&pending->bits[idx >> 6], 1ull << (idx & 63),
                                 memory_order_release);
    t->st.remote_frees++;
}

size_t pool_usable_size(void *tls, const void *p, uint16_t tag)
{
    const struct pool_inst *in = pool_inst_of(tls);
    (void)p;
    return tag < in->nclasses ? in->class_size[tag] : 0;
}

/* In place while the new size still fits the block and does not waste more
 * than half of it; otherwise the host moves the data. */
void *pool_realloc(void *tls, void *p, uint16_t tag, size_t size)
{
    const struct pool_inst *in = pool_inst_of(tls);
    if (tag >= in->nclasses)
        return NULL;
    size_t have = in->class_size[tag];
    if (size <= have && size * 2 >= have)
        return p;
    return NULL;
}

/* The class interface for a front box stacked on this one. */
uint32_t pool_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n)
{
    struct pool_tls *t = tls;
    if (cls >= t->nclasses)
        return 0;
    uint32_t i = 0;
    for (; i < n; i++) {
        out[i] = pool_alloc_class(t, cls);
        if (!out[i])
            break;
    }
    return i;
}

void pool_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        pool_free(tls, blocks[i], (uint16_t)cls);
}
