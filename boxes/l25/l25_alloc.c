/*
 * The thread side: a small LIFO cache per class in the slice, refills in
 * bundles from the shared runs, frees beyond the cache back to the runs.
 */
#include "l25_internal.h"

static inline unsigned l25_granules(size_t size)
{
    size_t n = (size + HAK_GRANULE - 1) >> HAK_GRANULE_SHIFT;
    return n ? (unsigned)n : 1u;
}

/* Blocks a refill takes: the small classes get a bundle (at most a quarter
 * of the cache's bytes); from 256 KB up with the defaults, one at a time. */
static uint32_t l25_refill_count(const struct l25_tls *t, const struct l25_inst *in,
                                 unsigned c)
{
    size_t bytes = (size_t)(c + 1) << HAK_GRANULE_SHIFT;
    size_t k = in->cache_bytes / 4 / bytes;
    if (k > in->bundle)
        k = in->bundle;
    if (k <= 1)
        return 1;
    size_t room = in->cache_count - t->count[c];
    size_t byte_room = (in->cache_bytes - t->cached_bytes) / bytes;
    if (room > byte_room)
        room = byte_room;
    if (k - 1 > room)
        k = room + 1;
    return (uint32_t)k;
}

static void l25_note_dirty_locked(struct l25_inst *in, uint64_t now)
{
    if (in->dirty_bytes > in->dirty_max || in->purge_delay_ns == 0) {
        in->force_purge = true;
        atomic_store_explicit(&in->next_tick_ns, now ? now : 1, memory_order_relaxed);
    } else if (!atomic_load_explicit(&in->next_tick_ns, memory_order_relaxed)) {
        atomic_store_explicit(&in->next_tick_ns, now + in->purge_delay_ns,
                              memory_order_relaxed);
    }
}

static inline bool l25_tick_due(const struct l25_inst *in, uint64_t now)
{
    uint64_t due = atomic_load_explicit(&in->next_tick_ns, memory_order_relaxed);
    return due && now >= due;
}

void l25_tick_check(struct l25_tls *t)
{
    struct l25_inst *in = l25_inst_of(t);
    t->tick_countdown = L25_TICK_EVERY;
    if (!atomic_load_explicit(&in->next_tick_ns, memory_order_relaxed))
        return;
    uint64_t now = in->host->now_ns();
    if (l25_tick_due(in, now))
        l25_tick(in, hak_link_tls(t, &in->pages), now, false);
}

static void *l25_alloc_slow(struct l25_tls *t, unsigned c)
{
    struct l25_inst *in = l25_inst_of(t);
    unsigned n = c + 1;
    uint32_t want = l25_refill_count(t, in, c);
    void *out[L25_CACHE_MAX + 1];
    uint64_t fresh = 0;
    uint32_t got = 0, retag = 0;
    uint64_t now = in->host->now_ns();
    void *ptls = hak_link_tls(t, &in->pages);
    for (int attempt = 0; attempt < 8; attempt++) {
        hak_spin_lock(in->lock);
        got = l25_carve(in, n, out, want, &fresh, &retag);
        hak_spin_unlock(in->lock);
        if (got)
            break;
        /* a new run may be taken by another thread before we carve it */
        if (!l25_run_new(in, ptls))
            break;
    }
    if (!got)
        return NULL;
    size_t bytes = (size_t)n << HAK_GRANULE_SHIFT;
    for (uint32_t i = 0; i < got; i++)
        if (retag & (1u << i))
            in->host->assign(out[i], HAK_GRANULE, in->owner, (uint16_t)c);
    for (uint32_t i = 1; i < got; i++) {
        t->slot[c][t->count[c]++] = out[i];
        t->cached_bytes += bytes;
    }
    if (fresh) {
        l25_event(in, HAK_EV_FRESH, out[0], fresh, got);
        /* the process grows by `fresh`: the other boxes give back what
         * they keep only in case */
        if (in->growing)
            in->growing(in->owner, fresh);
    }
    if (fresh < (uint64_t)got * bytes)
        l25_event(in, HAK_EV_REUSE, out[0], (uint64_t)got * bytes - fresh, got);
    if (got > 1)
        l25_event(in, HAK_EV_REFILL, out[0], (uint64_t)got * bytes, got);
    t->st.refills++;
    t->st.allocs++;
    t->st.bytes_allocated += bytes;
    if (l25_tick_due(in, now))
        l25_tick(in, ptls, now, false);
    return out[0];
}

void *l25_alloc(void *tls, size_t size)
{
    struct l25_tls *t = tls;
    if (HAK_UNLIKELY(size > L25_RUN_BYTES))
        return NULL;
    unsigned c = l25_granules(size) - 1;
    if (t->count[c]) {
        size_t bytes = (size_t)(c + 1) << HAK_GRANULE_SHIFT;
        void *b = t->slot[c][--t->count[c]];
        t->cached_bytes -= bytes;
        t->st.allocs++;
        t->st.bytes_allocated += bytes;
        if (HAK_UNLIKELY(--t->tick_countdown == 0))
            l25_tick_check(t);
        return b;
    }
    return l25_alloc_slow(t, c);
}

/* Every block is granule aligned. */
void *l25_alloc_aligned(void *tls, size_t size, size_t align)
{
    if (align > HAK_GRANULE)
        return NULL;
    return l25_alloc(tls, size);
}

static void l25_free_shared(struct l25_tls *t, void *p, unsigned n)
{
    struct l25_inst *in = l25_inst_of(t);
    uint64_t now = in->host->now_ns();
    hak_spin_lock(in->lock);
    bool ok = l25_free_locked(in, p, n);
    if (ok)
        l25_note_dirty_locked(in, now);
    hak_spin_unlock(in->lock);
    if (!ok) {
        in->host->bad_free(in->name, "double free or pointer not from an l25 block", p);
        return;
    }
    if (l25_tick_due(in, now))
        l25_tick(in, hak_link_tls(t, &in->pages), now, false);
}

/* Hardened/debug: a block entering the cache must be a live block start
 * of that size and not cached already (the shared path checks the same). */
static bool l25_cache_check(struct l25_tls *t, void *p, unsigned n)
{
    struct l25_inst *in = l25_inst_of(t);
    unsigned c = n - 1, pos;
    for (unsigned i = 0; i < t->count[c]; i++) {
        if (t->slot[c][i] == p) {
            in->host->bad_free(in->name, "double free", p);
            return false;
        }
    }
    hak_spin_lock(in->lock);
    bool live = l25_block_run(in, p, n, &pos) != NULL;
    hak_spin_unlock(in->lock);
    if (!live)
        in->host->bad_free(in->name, "double free or pointer not from an l25 block", p);
    return live;
}

void l25_free(void *tls, void *p, uint16_t tag)
{
    struct l25_tls *t = tls;
    const struct l25_inst *in = l25_inst_of(t);
    if (HAK_UNLIKELY(tag >= L25_CLASSES || ((uintptr_t)p & (HAK_GRANULE - 1)))) {
        in->host->bad_free(in->name, "free of a pointer that is not an l25 block", p);
        return;
    }
    unsigned n = (unsigned)tag + 1;
    size_t bytes = (size_t)n << HAK_GRANULE_SHIFT;
    t->st.frees++;
    t->st.bytes_freed += bytes;
    if (t->count[tag] < in->cache_count && t->cached_bytes + bytes <= in->cache_bytes) {
#if HAKMEM_DEBUG
        const bool check = true;
#else
        const bool check = in->hardened;
#endif
        if (check && !l25_cache_check(t, p, n))
            return;
        t->slot[tag][t->count[tag]++] = p;
        t->cached_bytes += bytes;
        if (HAK_UNLIKELY(--t->tick_countdown == 0))
            l25_tick_check(t);
        return;
    }
    l25_free_shared(t, p, n);
}

size_t l25_usable_size(void *tls, const void *p, uint16_t tag)
{
    (void)tls;
    (void)p;
    return tag < L25_CLASSES ? (size_t)(tag + 1) << HAK_GRANULE_SHIFT : 0;
}

/* Same granule count, or fewer but at least half: in place, kept (room a
 * growing buffer will need again). Fewer: the tail goes back to the run.
 * More: in place when the granules after the block are free. Else the host
 * moves it, with room to double (a step-grown buffer is copied at most
 * once per doubling). */
void *l25_realloc(void *tls, void *p, uint16_t tag, size_t size)
{
    struct l25_inst *in = l25_inst_of(tls);
    if (tag >= L25_CLASSES || size > L25_RUN_BYTES)
        return NULL;
    unsigned n_old = (unsigned)tag + 1, n_new = l25_granules(size);
    if (n_new == 1 && size < HAK_GRANULE / 2)
        return NULL; /* a small block belongs to a smaller box: let the host move it */
    if (n_new <= n_old && n_new * 2 >= n_old)
        return p;
    uint64_t now = in->host->now_ns();
    hak_spin_lock(in->lock);
    bool ok = l25_resize_locked(in, p, n_old, n_new);
    if (ok && n_new < n_old)
        l25_note_dirty_locked(in, now);
    hak_spin_unlock(in->lock);
    if (!ok)
        return NULL;
    struct l25_tls *t = tls;
    t->st.bytes_freed += (size_t)n_old << HAK_GRANULE_SHIFT;
    t->st.bytes_allocated += (size_t)n_new << HAK_GRANULE_SHIFT;
    return p;
}

/* Every cached block back to the runs, under one lock. */
void l25_flush_cache(struct l25_tls *t)
{
    struct l25_inst *in = l25_inst_of(t);
    if (!t->cached_bytes)
        return;
    uint64_t now = in->host->now_ns();
    uint64_t count = 0;
    hak_spin_lock(in->lock);
    for (unsigned c = 0; c < L25_CLASSES; c++) {
        for (unsigned i = 0; i < t->count[c]; i++) {
            l25_free_locked(in, t->slot[c][i], c + 1);
            count++;
        }
        t->count[c] = 0;
    }
    l25_note_dirty_locked(in, now);
    hak_spin_unlock(in->lock);
    t->cached_bytes = 0;
    t->st.drains++;
    l25_event(in, HAK_EV_DRAIN, NULL, 0, count);
}

uint32_t l25_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n)
{
    if (cls >= L25_CLASSES)
        return 0;
    uint32_t i = 0;
    for (; i < n; i++) {
        out[i] = l25_alloc(tls, (size_t)(cls + 1) << HAK_GRANULE_SHIFT);
        if (!out[i])
            break;
    }
    return i;
}

void l25_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        l25_free(tls, blocks[i], (uint16_t)cls);
}
