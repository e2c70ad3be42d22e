/*
 * The shared stack behind the per-thread caches. Every function here is a
 * slow path: it runs once per tls_slots/2 cache operations, or on requests
 * the cache does not serve. The lock covers at most HOT_BATCH_MAX pushes or
 * pops and a sweep of as many spans; calls to the box below happen after it
 * is released.
 */
#include "page_hot.h"

static void publish_and_unlock(struct hot_inst *in)
{
    atomic_store_explicit(&in->shared_bytes, (uint64_t)in->ring.count * HAK_GRANULE,
                          memory_order_relaxed);
    hak_spin_unlock(in->lock);
}

/* Pop idle spans from the old end, at most `room`. */
static uint32_t sweep_locked(struct hot_inst *in, uint64_t now, void **out, uint32_t room)
{
    uint32_t n = 0;
    if (!in->idle_ns)
        return 0;
    while (n < room && span_ring_oldest_idle(&in->ring, now, in->idle_ns))
        out[n++] = span_ring_pop_oldest(&in->ring);
    atomic_store_explicit(&in->next_sweep_ns, now + in->idle_ns / 4, memory_order_relaxed);
    return n;
}

void hot_release_down(struct hot_tls *t, void *const *spans, uint32_t n)
{
    if (!n)
        return;
    struct hot_inst *in = hot_inst_of(t);
    void *below_tls = hak_link_tls(t, &in->below);
    for (uint32_t i = 0; i < n; i++)
        in->below.desc->ops.pages_free(below_tls, spans[i], HAK_GRANULE);
    t->st.drains += n;
    struct hak_event ev = {.type = HAK_EV_DRAIN, .bucket = HAK_BUCKET_OTHER,
                           .owner = in->owner, .addr = spans[0],
                           .bytes = (uint64_t)n * HAK_GRANULE, .count = n};
    in->host->event(&ev);
}

void hot_shared_put(struct hot_tls *t, void *const *spans, uint32_t n)
{
    struct hot_inst *in = hot_inst_of(t);
    void *down[2 * HOT_BATCH_MAX];
    uint32_t nd = 0;
    uint64_t now = in->host->now_ns();
    hak_spin_lock(in->lock);
    nd = sweep_locked(in, now, down, HOT_BATCH_MAX);
    for (uint32_t i = 0; i < n; i++) {
        if (!in->ring.cap) {
            down[nd++] = spans[i];
            continue;
        }
        if (in->ring.count == in->ring.cap) /* full: the oldest goes down */
            down[nd++] = span_ring_pop_oldest(&in->ring);
        span_ring_push(&in->ring, spans[i], now);
    }
    publish_and_unlock(in);
    hot_release_down(t, down, nd);
}

uint32_t hot_shared_get(struct hot_tls *t, void **out, uint32_t n)
{
    struct hot_inst *in = hot_inst_of(t);
    void *down[HOT_BATCH_MAX];
    uint32_t nd, got = 0;
    uint64_t now = in->host->now_ns();
    hak_spin_lock(in->lock);
    nd = sweep_locked(in, now, down, HOT_BATCH_MAX);
    /* the caller's stack pops from its end: the top goes last, so the most
     * recently freed span is the next one out */
    uint32_t avail = in->ring.count < n ? in->ring.count : n;
    for (uint32_t i = avail; i-- > 0;)
        out[i] = span_ring_pop(&in->ring);
    got = avail;
    publish_and_unlock(in);
    hot_release_down(t, down, nd);
    return got;
}

void hot_maybe_sweep(struct hot_tls *t)
{
    struct hot_inst *in = hot_inst_of(t);
    if (!in->idle_ns)
        return;
    uint64_t now = in->host->now_ns();
    if (now < atomic_load_explicit(&in->next_sweep_ns, memory_order_relaxed))
        return;
    void *down[HOT_BATCH_MAX];
    hak_spin_lock(in->lock);
    uint32_t nd = sweep_locked(in, now, down, HOT_BATCH_MAX);
    publish_and_unlock(in);
    hot_release_down(t, down, nd);
}

size_t hot_shared_flush(struct hot_tls *t)
{
    struct hot_inst *in = hot_inst_of(t);
    size_t released = 0;
    for (;;) {
        void *down[HOT_BATCH_MAX];
        uint32_t nd = 0;
        hak_spin_lock(in->lock);
        while (nd < HOT_BATCH_MAX && in->ring.count)
            down[nd++] = span_ring_pop_oldest(&in->ring);
        publish_and_unlock(in);
        if (!nd)
            return released;
        hot_release_down(t, down, nd);
        released += (size_t)nd * HAK_GRANULE;
    }
}
