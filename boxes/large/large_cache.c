/*
 * Freed ranges kept committed ("extents"), so a program that frees and
 * allocates big blocks neither maps nor faults anew, whatever the sizes:
 * a request is carved from the best-fitting extent (the rest stays
 * cached); when none is big enough, the biggest extents' pages are moved
 * (host->move, no copy) into a fresh mapping of the request's size; a
 * freed block is joined to the extents it touches; and a block growing in
 * place takes the extent after it.
 *
 * Bounds: at most cache_slots extents and a byte budget that follows what
 * the program has live (large_cache_budget). Over it, the smallest extents
 * go first (a small piece serves the fewest requests) and the last one only
 * as far as needed; extents idle longer than cache_idle_ms are unmapped,
 * checked lazily whenever large is called (every large call is a slow
 * path). The lock covers scans of at most LARGE_CACHE_MAX entries; munmap
 * happens after it is released.
 */
#include "large.h"

struct victims {
    uint32_t n;
    struct large_cached v[LARGE_CACHE_MAX + 2];
};

static void cache_remove_locked(struct large_inst *in, uint32_t i, struct victims *out)
{
    struct large_cached c = in->cache[i];
    in->cache[i] = in->cache[--in->cache_count];
    in->cache_bytes -= c.bytes;
    if (out)
        out->v[out->n++] = c;
}

static void cache_add_locked(struct large_inst *in, char *base, size_t bytes, uint64_t when,
                             struct victims *out)
{
    if (in->cache_count >= in->cache_slots) {
        out->v[out->n++] = (struct large_cached){base, bytes, when};
        return;
    }
    in->cache[in->cache_count++] = (struct large_cached){base, bytes, when};
    in->cache_bytes += bytes;
}

static void cache_expire_locked(struct large_inst *in, uint64_t now, struct victims *out)
{
    if (!in->cache_idle_ns)
        return;
    for (uint32_t i = in->cache_count; i-- > 0;)
        if (now - in->cache[i].freed_ns >= in->cache_idle_ns)
            cache_remove_locked(in, i, out);
}

static void cache_unlock_and_unmap(struct large_inst *in, struct large_tls *t,
                                   struct victims *vs)
{
    atomic_store_explicit(&in->cached_bytes_seen, in->cache_bytes, memory_order_relaxed);
    hak_spin_unlock(in->lock);
    for (uint32_t i = 0; i < vs->n; i++) {
        in->host->unmap(vs->v[i].base, vs->v[i].bytes); /* the host reports HAK_EV_UNMAP */
        if (t)
            t->st.drains++;
    }
}

uint64_t large_cache_budget(const struct large_inst *in)
{
    uint64_t live = atomic_load_explicit(&in->live_bytes, memory_order_relaxed);
    uint64_t b = live / 100 * in->cache_live_pct + live % 100 * in->cache_live_pct / 100;
    if (b < in->cache_min_bytes)
        b = in->cache_min_bytes;
    return b < in->cache_max_bytes ? b : in->cache_max_bytes;
}

char *large_cache_take(struct large_inst *in, struct large_tls *t, size_t bytes, size_t align)
{
    if (!in->cache_slots)
        return NULL;
    uint64_t now = in->host->now_ns();
    struct victims vs = {0};
    char *got = NULL;
    hak_spin_lock(in->lock);
    cache_expire_locked(in, now, &vs);
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < in->cache_count; i++) {
        const struct large_cached *c = &in->cache[i];
        uintptr_t start = hak_align_up((uintptr_t)c->base, align);
        if (start + bytes > (uintptr_t)c->base + c->bytes)
            continue;
        if (best == UINT32_MAX || c->bytes < in->cache[best].bytes ||
            (c->bytes == in->cache[best].bytes && c->freed_ns > in->cache[best].freed_ns))
            best = i;
    }
    if (best != UINT32_MAX) {
        struct large_cached c = in->cache[best];
        got = (char *)hak_align_up((uintptr_t)c.base, align);
        size_t head = (size_t)(got - c.base), tail = c.bytes - head - bytes;
        cache_remove_locked(in, best, NULL);
        if (head)
            cache_add_locked(in, c.base, head, c.freed_ns, &vs);
        if (tail)
            cache_add_locked(in, got + bytes, tail, c.freed_ns, &vs);
    }
    cache_unlock_and_unmap(in, t, &vs);
    return got;
}

uint32_t large_cache_take_pieces(struct large_inst *in, struct large_tls *t, size_t bytes,
                                 struct large_cached *out, uint32_t max)
{
    if (!in->cache_slots)
        return 0;
    uint64_t now = in->host->now_ns();
    struct victims vs = {0};
    uint32_t n = 0;
    hak_spin_lock(in->lock);
    cache_expire_locked(in, now, &vs);
    while (bytes && n < max && in->cache_count) {
        uint32_t big = 0;
        for (uint32_t i = 1; i < in->cache_count; i++)
            if (in->cache[i].bytes > in->cache[big].bytes)
                big = i;
        struct large_cached *c = &in->cache[big];
        if (c->bytes > bytes) { /* the head of the last piece; the rest stays */
            out[n++] = (struct large_cached){c->base, bytes, c->freed_ns};
            c->base += bytes;
            c->bytes -= bytes;
            in->cache_bytes -= bytes;
            break;
        }
        out[n++] = *c;
        bytes -= c->bytes;
        cache_remove_locked(in, big, NULL);
    }
    cache_unlock_and_unmap(in, t, &vs);
    return n;
}

size_t large_cache_take_at(struct large_inst *in, char *at, size_t min, size_t want)
{
    size_t took = 0;
    hak_spin_lock(in->lock);
    for (uint32_t i = 0; i < in->cache_count; i++) {
        struct large_cached *c = &in->cache[i];
        if (c->base != at)
            continue;
        if (c->bytes >= min) {
            took = c->bytes < want ? c->bytes : want;
            if (took == c->bytes) {
                cache_remove_locked(in, i, NULL);
            } else {
                c->base += took;
                c->bytes -= took;
                in->cache_bytes -= took;
            }
        }
        break;
    }
    atomic_store_explicit(&in->cached_bytes_seen, in->cache_bytes, memory_order_relaxed);
    hak_spin_unlock(in->lock);
    return took;
}

/* Over the slot count or the budget: drop the smallest extents, and trim
 * the tail of the last one only as far as the budget needs. */
static void cache_shrink_to_locked(struct large_inst *in, struct victims *vs, uint64_t budget)
{
    while (in->cache_count && (in->cache_count > in->cache_slots || in->cache_bytes > budget)) {
        uint32_t small = 0;
        for (uint32_t i = 1; i < in->cache_count; i++)
            if (in->cache[i].bytes < in->cache[small].bytes)
                small = i;
        uint64_t over = in->cache_bytes > budget ? in->cache_bytes - budget : 0;
        struct large_cached *c = &in->cache[small];
        if (in->cache_count > in->cache_slots || c->bytes <= over) {
            cache_remove_locked(in, small, vs);
            continue;
        }
        size_t cut = hak_align_up((size_t)over, in->huge ? HAK_HUGE_PAGE : HAK_GRANULE);
        if (cut >= c->bytes) {
            cache_remove_locked(in, small, vs);
            continue;
        }
        c->bytes -= cut;
        in->cache_bytes -= cut;
        vs->v[vs->n++] = (struct large_cached){c->base + c->bytes, cut, c->freed_ns};
        break;
    }
}

static void cache_shrink_locked(struct large_inst *in, struct victims *vs)
{
    cache_shrink_to_locked(in, vs, large_cache_budget(in));
}

/* Another box maps fresh memory: what the cache holds beyond the share of
 * the live bytes (what only cache_min_bytes keeps) goes, up to `bytes`.
 * A program that freed its one big buffer and now grows elsewhere (sort's
 * 8 MB buffer, then its merge buffers from l25) gets the pages back from
 * here instead of adding new ones; one that only reuses big blocks keeps
 * them. A trylock: the caller holds its own box's locks. */
size_t large_reclaim(void *inst, size_t bytes)
{
    struct large_inst *in = inst;
    if (!atomic_load_explicit(&in->cached_bytes_seen, memory_order_relaxed) || !hak_spin_trylock(in->lock))
        return 0;
    uint64_t live = atomic_load_explicit(&in->live_bytes, memory_order_relaxed);
    uint64_t share = live / 100 * in->cache_live_pct + live % 100 * in->cache_live_pct / 100;
    if (share > in->cache_max_bytes)
        share = in->cache_max_bytes;
    struct victims vs = {0};
    if (in->cache_bytes > share) {
        uint64_t over = in->cache_bytes - share;
        cache_shrink_to_locked(in, &vs, in->cache_bytes - (over < bytes ? over : bytes));
    }
    size_t released = 0;
    for (uint32_t i = 0; i < vs.n; i++)
        released += vs.v[i].bytes;
    cache_unlock_and_unmap(in, NULL, &vs);
    return released;
}

void large_cache_put(struct large_inst *in, struct large_tls *t, char *base, size_t bytes)
{
    uint64_t now = in->host->now_ns();
    struct victims vs = {0};
    hak_spin_lock(in->lock);
    cache_expire_locked(in, now, &vs);
    if (!in->cache_slots) {
        vs.v[vs.n++] = (struct large_cached){base, bytes, now};
    } else {
        /* join the extents just before and just after */
        for (uint32_t i = in->cache_count; i-- > 0;) {
            struct large_cached c = in->cache[i];
            if (c.base + c.bytes == base) {
                base = c.base;
                bytes += c.bytes;
                cache_remove_locked(in, i, NULL);
            } else if (base + bytes == c.base) {
                bytes += c.bytes;
                cache_remove_locked(in, i, NULL);
            }
        }
        cache_add_locked(in, base, bytes, now, &vs);
        cache_shrink_locked(in, &vs);
    }
    cache_unlock_and_unmap(in, t, &vs);
}

size_t large_cache_flush(struct large_inst *in, struct large_tls *t)
{
    struct victims vs = {0};
    size_t released = 0;
    hak_spin_lock(in->lock);
    while (in->cache_count)
        cache_remove_locked(in, in->cache_count - 1, &vs);
    for (uint32_t i = 0; i < vs.n; i++)
        released += vs.v[i].bytes;
    cache_unlock_and_unmap(in, t, &vs);
    return released;
}
