/*
 * Recently freed mappings, kept whole (still committed) so a program that
 * frees and allocates large blocks in a loop neither maps nor faults anew.
 * Bounded by cache_slots and cache_max_bytes; mappings idle longer than
 * cache_idle_ms are unmapped, checked lazily whenever large is called
 * (every large call is a slow path: there is no fast path to protect).
 * The lock covers a scan of at most LARGE_CACHE_MAX entries; munmap happens
 * after it is released.
 */
#include "large.h"

struct victims {
    uint32_t n;
    struct large_cached v[LARGE_CACHE_MAX + 1];
};

static void cache_remove_locked(struct large_inst *in, uint32_t i, struct victims *out)
{
    struct large_cached c = in->cache[i];
    in->cache[i] = in->cache[--in->cache_count];
    in->cache_bytes -= c.bytes;
    if (out)
        out->v[out->n++] = c;
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
    hak_spin_unlock(&in->lock);
    for (uint32_t i = 0; i < vs->n; i++) {
        in->host->unmap(vs->v[i].base, vs->v[i].bytes); /* the host reports HAK_EV_UNMAP */
        if (t)
            t->st.drains++;
    }
}

char *large_cache_take(struct large_inst *in, struct large_tls *t, size_t bytes,
                       size_t align, size_t *got)
{
    if (!in->cache_slots)
        return NULL;
    uint64_t now = in->host->now_ns();
    struct victims vs = {0};
    char *base = NULL;
    hak_spin_lock(&in->lock);
    cache_expire_locked(in, now, &vs);
    uint32_t best = UINT32_MAX;
    /* best fit, bounded waste: at most twice the bytes needed */
    for (uint32_t i = 0; i < in->cache_count; i++) {
        const struct large_cached *c = &in->cache[i];
        if (c->bytes < bytes || c->bytes / 2 > bytes || ((uintptr_t)c->base & (align - 1)))
            continue;
        if (best == UINT32_MAX || c->bytes < in->cache[best].bytes ||
            (c->bytes == in->cache[best].bytes && c->freed_ns > in->cache[best].freed_ns))
            best = i;
    }
    if (best != UINT32_MAX) {
        base = in->cache[best].base;
        *got = in->cache[best].bytes;
        cache_remove_locked(in, best, NULL);
    }
    cache_unlock_and_unmap(in, t, &vs);
    return base;
}

void large_cache_put(struct large_inst *in, struct large_tls *t, char *base, size_t bytes)
{
    uint64_t now = in->host->now_ns();
    struct victims vs = {0};
    hak_spin_lock(&in->lock);
    cache_expire_locked(in, now, &vs);
    if (in->cache_slots && bytes <= in->cache_max_bytes) {
        /* make room by dropping the oldest */
        while (in->cache_count >= in->cache_slots ||
               in->cache_bytes + bytes > in->cache_max_bytes) {
            uint32_t oldest = 0;
            for (uint32_t i = 1; i < in->cache_count; i++)
                if (in->cache[i].freed_ns < in->cache[oldest].freed_ns)
                    oldest = i;
            cache_remove_locked(in, oldest, &vs);
        }
        in->cache[in->cache_count++] = (struct large_cached){base, bytes, now};
        in->cache_bytes += bytes;
    } else {
        vs.v[vs.n++] = (struct large_cached){base, bytes, now};
    }
    cache_unlock_and_unmap(in, t, &vs);
}

size_t large_cache_flush(struct large_inst *in, struct large_tls *t)
{
    struct victims vs = {0};
    size_t released = 0;
    hak_spin_lock(&in->lock);
    while (in->cache_count)
        cache_remove_locked(in, in->cache_count - 1, &vs);
    for (uint32_t i = 0; i < vs.n; i++)
        released += vs.v[i].bytes;
    cache_unlock_and_unmap(in, t, &vs);
    return released;
}
