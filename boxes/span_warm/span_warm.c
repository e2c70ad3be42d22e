/*
 * span_warm (PA2): size-bucketed caches of freed spans, 64 KB, 128 KB and
 * 2 MB (the sizes pools and l25 runs come in), in front of another page
 * box. A cached span stays committed, so reusing it costs no page faults.
 * Other sizes pass straight through to `below`.
 *
 * One lock guards the three rings; every call here is a slow path of its
 * consumer (a pool chunk or a run), and the lock covers bounded work: a
 * pop, a push, and a sweep/eviction of at most WARM_DOWN_MAX spans. Spans
 * go down to `below` after the lock is released.
 *
 * Cached spans are owned by this box in the region map (tag = bucket);
 * pages_alloc hands one out assigned to the consumer, holding old data: a
 * consumer must not assume zeroed memory.
 */
#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdio.h>

#include <box_api/hakmem_span_ring.h>

#define WARM_BUCKETS 3
#define WARM_DOWN_MAX 128 /* spans released per call, at most */
#define WARM_ALIGN_DEPTH 4 /* cached spans searched for a stricter alignment */

static const size_t warm_size[WARM_BUCKETS] = {64u << 10, 128u << 10, 2u << 20};

enum { P_ENABLE, P_WARM_64K, P_WARM_128K, P_WARM_2M, P_MAX_CACHED, P_IDLE_MS, P_COUNT };

static const struct hak_param warm_params[P_COUNT] = {
    [P_ENABLE] = {"enable", HAK_PARAM_BOOL, "on", 0, 1, NULL,
                  "off: pass every request through to below"},
    [P_WARM_64K] = {"warm_64k", HAK_PARAM_INT, "256", 0, 65536, NULL, "64 KB spans kept"},
    [P_WARM_128K] = {"warm_128k", HAK_PARAM_INT, "128", 0, 65536, NULL, "128 KB spans kept"},
    [P_WARM_2M] = {"warm_2m", HAK_PARAM_INT, "64", 0, 65536, NULL, "2 MB spans kept"},
    [P_MAX_CACHED] = {"max_cached", HAK_PARAM_SIZE, "64M", 0, (int64_t)1 << 40, NULL,
                      "bytes kept over all sizes; the oldest spans go to below"},
    [P_IDLE_MS] = {"idle_ms", HAK_PARAM_INT, "1000", 0, 3600000, NULL,
                   "spans idle this long go to below (0: never); checked lazily"},
};

static const struct hak_link_decl warm_links[] = {
    {"below", HAK_ROLE_PAGES, 1, "the page box behind the cache"},
};

struct warm_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    int enabled;
    uint64_t max_cached;
    uint64_t idle_ns;
    struct hak_link below;
    hak_spinlock *lock; /* guards rings and cached */
    uint64_t cached;
    struct span_ring ring[WARM_BUCKETS];
    _Atomic uint64_t cached_seen; /* cached, for stats without the lock */
};

/* allocs/frees and bytes count every call; refills counts spans taken from
 * below, drains spans given to it. */
struct warm_tls {
    struct hak_tls_head head;
    struct hak_stats st;
};

struct warm_span {
    void *p;
    size_t bytes;
};

struct warm_down {
    uint32_t n;
    struct warm_span s[WARM_DOWN_MAX];
};

static inline struct warm_inst *warm_inst_of(void *tls)
{
    return ((struct hak_tls_head *)tls)->inst;
}

static inline int warm_bucket(size_t bytes)
{
    for (int b = 0; b < WARM_BUCKETS; b++)
        if (bytes == warm_size[b])
            return b;
    return -1;
}

static void *warm_create(const struct hak_host *host, const struct hak_box_config *cfg,
                         char *err, size_t err_len)
{
    struct warm_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host))) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->enabled = (int)cfg->values[P_ENABLE].i;
    in->max_cached = (uint64_t)cfg->values[P_MAX_CACHED].i;
    in->idle_ns = (uint64_t)cfg->values[P_IDLE_MS].i * 1000000u;
    in->below = cfg->links[0];
    if (!in->below.desc || !in->below.desc->ops.pages_alloc || !in->below.desc->ops.pages_free) {
        snprintf(err, err_len, "below: needs a page box");
        return NULL;
    }
    for (int b = 0; b < WARM_BUCKETS; b++) {
        uint32_t cap = (uint32_t)cfg->values[P_WARM_64K + b].i;
        in->ring[b].cap = cap;
        if (cap && !(in->ring[b].e = host->meta_alloc(cap * sizeof(struct span_entry)))) {
            snprintf(err, err_len, "out of metadata memory for %u slots", cap);
            return NULL;
        }
    }
    return in;
}

static void warm_destroy(void *inst) { (void)inst; }
static void warm_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }
static void warm_thread_exit(void *inst, void *tls) { (void)inst; (void)tls; }

static void down_add_oldest(struct warm_inst *in, int b, struct warm_down *d)
{
    d->s[d->n++] = (struct warm_span){span_ring_pop_oldest(&in->ring[b]), warm_size[b]};
    in->cached -= warm_size[b];
}

/* Idle spans, oldest first in each bucket; leaves room in d for the
 * evictions of one push (2 MB / 64 KB + 1). */
static void sweep_locked(struct warm_inst *in, uint64_t now, struct warm_down *d)
{
    if (!in->idle_ns)
        return;
    for (int b = 0; b < WARM_BUCKETS; b++)
        while (d->n < WARM_DOWN_MAX / 2 && span_ring_oldest_idle(&in->ring[b], now, in->idle_ns))
            down_add_oldest(in, b, d);
}

/* The bucket whose oldest span is the oldest of all, -1 when empty. */
static int oldest_bucket_locked(const struct warm_inst *in)
{
    int best = -1;
    uint64_t t = UINT64_MAX;
    for (int b = 0; b < WARM_BUCKETS; b++) {
        const struct span_ring *r = &in->ring[b];
        if (r->count && r->e[r->bottom].freed_ns < t) {
            t = r->e[r->bottom].freed_ns;
            best = b;
        }
    }
    return best;
}

static void unlock_and_release(struct warm_inst *in, struct warm_tls *t, struct warm_down *d)
{
    atomic_store_explicit(&in->cached_seen, in->cached, memory_order_relaxed);
    hak_spin_unlock(in->lock);
    if (!d->n)
        return;
    void *below_tls = hak_link_tls(t, &in->below);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < d->n; i++) {
        in->below.desc->ops.pages_free(below_tls, d->s[i].p, d->s[i].bytes);
        bytes += d->s[i].bytes;
    }
    t->st.drains += d->n;
    struct hak_event ev = {.type = HAK_EV_DRAIN, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,
                           .addr = d->s[0].p, .bytes = bytes, .count = d->n};
    in->host->event(&ev);
}

static void *warm_pages_alloc(void *tls, size_t bytes, size_t align, uint16_t owner,
                              uint16_t tag)
{
    struct warm_tls *t = tls;
    struct warm_inst *in = warm_inst_of(tls);
    size_t span = hak_align_up(bytes, HAK_GRANULE);
    int b = in->enabled && bytes ? warm_bucket(span) : -1;
    if (in->enabled) {
        struct warm_down d = {0};
        void *p = NULL;
        uint64_t now = in->host->now_ns();
        hak_spin_lock(in->lock);
        sweep_locked(in, now, &d);
        if (b >= 0) {
            p = span_ring_take_aligned(&in->ring[b], align > HAK_GRANULE ? align : HAK_GRANULE,
                                       WARM_ALIGN_DEPTH);
            if (p)
                in->cached -= span;
        }
        unlock_and_release(in, t, &d);
        if (p) {
            in->host->assign(p, span, owner, tag);
            t->st.allocs++;
            t->st.bytes_allocated += span;
            struct hak_event ev = {.type = HAK_EV_REUSE, .bucket = HAK_BUCKET_OTHER,
                                   .owner = in->owner, .addr = p, .bytes = span, .count = 1};
            in->host->event(&ev);
            return p;
        }
    }
    void *p = in->below.desc->ops.pages_alloc(hak_link_tls(t, &in->below), bytes, align,
                                              owner, tag);
    if (p) {
        t->st.allocs++;
        t->st.bytes_allocated += span;
        t->st.refills++;
    }
    return p;
}

static void warm_pages_free(void *tls, void *p, size_t bytes)
{
    struct warm_tls *t = tls;
    struct warm_inst *in = warm_inst_of(tls);
    size_t span = hak_align_up(bytes, HAK_GRANULE);
    t->st.frees++;
    t->st.bytes_freed += span;
    int b = in->enabled && bytes && span <= in->max_cached ? warm_bucket(span) : -1;
    if (!in->enabled || (b >= 0 && !in->ring[b].cap))
        b = -1;
    if (b >= 0) {
        /* a span already ours would be handed out twice later */
        if (((uintptr_t)p & (HAK_GRANULE - 1)) || in->host->lookup(p) >> 16 == in->owner) {
            in->host->bad_free(in->name, "span freed twice or not a span", p);
            return;
        }
        in->host->assign(p, span, in->owner, (uint16_t)b);
    }
    struct warm_down d = {0};
    if (in->enabled) {
        uint64_t now = in->host->now_ns();
        hak_spin_lock(in->lock);
        sweep_locked(in, now, &d);
        if (b >= 0) {
            struct span_ring *r = &in->ring[b];
            if (r->count == r->cap)
                down_add_oldest(in, b, &d);
            while (in->cached + span > in->max_cached)
                down_add_oldest(in, oldest_bucket_locked(in), &d);
            span_ring_push(r, p, now);
            in->cached += span;
        }
        unlock_and_release(in, t, &d);
        if (b >= 0)
            return;
    }
    in->below.desc->ops.pages_free(hak_link_tls(t, &in->below), p, bytes);
    t->st.drains++;
}

static size_t warm_trim(void *inst, void *tls)
{
    struct warm_inst *in = inst;
    size_t released = 0;
    if (!tls)
        return 0;
    for (;;) {
        struct warm_down d = {0};
        hak_spin_lock(in->lock);
        for (int b; d.n < WARM_DOWN_MAX && (b = oldest_bucket_locked(in)) >= 0;)
            down_add_oldest(in, b, &d);
        for (uint32_t i = 0; i < d.n; i++)
            released += d.s[i].bytes;
        uint32_t n = d.n;
        unlock_and_release(in, tls, &d);
        if (!n)
            return released;
    }
}

static void warm_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct warm_inst *in = inst;
    if (!tls) {
        out->cached_bytes += atomic_load_explicit(&in->cached_seen, memory_order_relaxed);
        return;
    }
    const struct hak_stats *s = &((struct warm_tls *)tls)->st;
    hak_stats_add(out, s);
}

static void warm_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct warm_inst *)inst)->lock); }
static void warm_fork_parent(void *inst) { hak_spin_fork_parent(((struct warm_inst *)inst)->lock); }
static void warm_fork_child(void *inst) { hak_spin_fork_child(((struct warm_inst *)inst)->lock); }

static const struct hak_box_desc warm_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "span_warm",
    .summary = "PA2: caches of freed 64 KB, 128 KB and 2 MB spans, kept committed",
    .roles = HAK_ROLE_PAGES,
    .params = warm_params,
    .param_count = P_COUNT,
    .links = warm_links,
    .link_count = 1,
    .tls_size = sizeof(struct warm_tls),
    .ops = {
        .create = warm_create,
        .destroy = warm_destroy,
        .thread_init = warm_thread_init,
        .thread_exit = warm_thread_exit,
        .fork_prepare = warm_fork_prepare,
        .fork_parent = warm_fork_parent,
        .fork_child = warm_fork_child,
        .stats = warm_stats,
        .trim = warm_trim,
        .pages_alloc = warm_pages_alloc,
        .pages_free = warm_pages_free,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &warm_desc; }
