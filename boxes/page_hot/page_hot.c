/*
 * page_hot (PA1): a LIFO cache of the smallest spans, one granule (64 KB),
 * in front of another page box. Freed spans stay committed, so a consumer
 * that gets one back does not fault its pages again. A small per-thread
 * stack serves most requests without a lock; it spills to and refills from
 * a shared stack of hot_size slots. Other sizes, and alignments above a
 * granule, go straight to `below`.
 *
 * A cached span is owned by this box in the region map (tag 0); pages_alloc
 * hands it out assigned to the consumer. Reused spans hold old data: a
 * consumer must not assume zeroed memory.
 */
#include "page_hot.h"

#include <stdio.h>
#include <string.h>

enum { P_ENABLE, P_HOT_SIZE, P_TLS_SLOTS, P_MAX_CACHED, P_IDLE_MS, P_COUNT };

static const struct hak_param hot_params[P_COUNT] = {
    [P_ENABLE] = {"enable", HAK_PARAM_BOOL, "on", 0, 1, NULL,
                  "off: pass every request through to below"},
    [P_HOT_SIZE] = {"hot_size", HAK_PARAM_INT, "1024", 0, 65536, NULL,
                    "one-granule spans in the shared stack"},
    [P_TLS_SLOTS] = {"tls_slots", HAK_PARAM_INT, "8", 0, HOT_TLS_MAX, NULL,
                     "spans in each thread's own stack (0: shared stack only)"},
    [P_MAX_CACHED] = {"max_cached", HAK_PARAM_SIZE, "64M", 0, (int64_t)1 << 40, NULL,
                      "bytes the shared stack may hold (caps hot_size)"},
    [P_IDLE_MS] = {"idle_ms", HAK_PARAM_INT, "1000", 0, 3600000, NULL,
                   "shared spans idle this long go to below (0: never); checked lazily"},
};

static const struct hak_link_decl hot_links[] = {
    {"below", HAK_ROLE_PAGES, 1, "the page box behind the cache"},
};

static void *hot_create(const struct hak_host *host, const struct hak_box_config *cfg,
                        char *err, size_t err_len)
{
    struct hot_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host))) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->enabled = (int)cfg->values[P_ENABLE].i;
    in->tls_slots = (uint32_t)cfg->values[P_TLS_SLOTS].i;
    in->idle_ns = (uint64_t)cfg->values[P_IDLE_MS].i * 1000000u;
    in->below = cfg->links[0];
    if (!in->below.desc || !in->below.desc->ops.pages_alloc || !in->below.desc->ops.pages_free) {
        snprintf(err, err_len, "below: needs a page box");
        return NULL;
    }
    uint64_t cap = (uint64_t)cfg->values[P_HOT_SIZE].i;
    uint64_t by_bytes = (uint64_t)cfg->values[P_MAX_CACHED].i / HAK_GRANULE;
    if (by_bytes < cap)
        cap = by_bytes;
    in->ring.cap = (uint32_t)cap;
    if (cap) {
        in->ring.e = host->meta_alloc(cap * sizeof(struct span_entry));
        if (!in->ring.e) {
            snprintf(err, err_len, "out of metadata memory for %u slots", (unsigned)cap);
            return NULL;
        }
    }
    return in;
}

static void hot_destroy(void *inst) { (void)inst; }
static void hot_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }

/* The thread's spans join the shared stack, where other threads reuse them. */
static void hot_thread_exit(void *inst, void *tls)
{
    (void)inst;
    struct hot_tls *t = tls;
    if (t->count)
        hot_shared_put(t, t->slots, t->count);
    t->count = 0;
}

static inline int hot_cacheable(const struct hot_inst *in, size_t bytes, size_t align)
{
    return in->enabled && bytes - 1 < HAK_GRANULE && align <= HAK_GRANULE;
}

static void *hot_pages_alloc(void *tls, size_t bytes, size_t align, uint16_t owner,
                             uint16_t tag)
{
    struct hot_tls *t = tls;
    struct hot_inst *in = hot_inst_of(t);
    void *p;
    if (HAK_LIKELY(hot_cacheable(in, bytes, align))) {
        if (HAK_LIKELY(t->count)) {
            p = t->slots[--t->count];
        } else {
            uint32_t want = in->tls_slots / 2 ? in->tls_slots / 2 : 1;
            void *one;
            uint32_t got = hot_shared_get(t, in->tls_slots ? t->slots : &one, want);
            if (!got)
                goto below;
            if (in->tls_slots) {
                t->count = got;
                p = t->slots[--t->count];
            } else {
                p = one;
            }
        }
        in->host->assign(p, HAK_GRANULE, owner, tag);
        t->st.allocs++;
        t->st.bytes_allocated += HAK_GRANULE;
        struct hak_event ev = {.type = HAK_EV_REUSE, .bucket = HAK_BUCKET_OTHER,
                               .owner = in->owner, .addr = p, .bytes = HAK_GRANULE,
                               .count = 1};
        in->host->event(&ev);
        return p;
    }
    if (in->enabled)
        hot_maybe_sweep(t);
below:
    p = in->below.desc->ops.pages_alloc(hak_link_tls(t, &in->below), bytes, align, owner, tag);
    if (p) {
        t->st.allocs++;
        t->st.bytes_allocated += hak_align_up(bytes, HAK_GRANULE);
        t->st.refills++;
    }
    return p;
}

static void hot_pages_free(void *tls, void *p, size_t bytes)
{
    struct hot_tls *t = tls;
    struct hot_inst *in = hot_inst_of(t);
    t->st.frees++;
    t->st.bytes_freed += hak_align_up(bytes, HAK_GRANULE);
    if (HAK_LIKELY(hot_cacheable(in, bytes, 0))) {
        /* a span already ours would be handed out twice later */
        if (HAK_UNLIKELY(((uintptr_t)p & (HAK_GRANULE - 1)) ||
                         in->host->lookup(p) >> 16 == in->owner)) {
            in->host->bad_free(in->name, "span freed twice or not a span", p);
            return;
        }
        in->host->assign(p, HAK_GRANULE, in->owner, 0);
        if (HAK_LIKELY(t->count < in->tls_slots)) {
            t->slots[t->count++] = p;
            return;
        }
        if (!in->tls_slots) {
            hot_shared_put(t, &p, 1);
            return;
        }
        /* full: the older half goes to the shared stack */
        uint32_t n = t->count / 2 ? t->count / 2 : 1;
        hot_shared_put(t, t->slots, n);
        memmove(t->slots, t->slots + n, (t->count - n) * sizeof t->slots[0]);
        t->count -= n;
        t->slots[t->count++] = p;
        return;
    }
    if (in->enabled)
        hot_maybe_sweep(t);
    in->below.desc->ops.pages_free(hak_link_tls(t, &in->below), p, bytes);
    t->st.drains++;
}

/* malloc_trim: this thread's spans and the shared ones go to below. */
static size_t hot_trim(void *inst, void *tls)
{
    (void)inst;
    struct hot_tls *t = tls;
    if (!t)
        return 0;
    size_t released = (size_t)t->count * HAK_GRANULE;
    hot_release_down(t, t->slots, t->count);
    t->count = 0;
    return released + hot_shared_flush(t);
}

static void hot_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct hot_inst *in = inst;
    if (!tls) {
        out->cached_bytes += atomic_load_explicit(&in->shared_bytes, memory_order_relaxed);
        return;
    }
    const struct hot_tls *t = tls;
    hak_stats_add(out, &t->st);
    out->cached_bytes += (uint64_t)t->count * HAK_GRANULE;
}

static void hot_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct hot_inst *)inst)->lock); }
static void hot_fork_parent(void *inst) { hak_spin_fork_parent(((struct hot_inst *)inst)->lock); }
static void hot_fork_child(void *inst) { hak_spin_fork_child(((struct hot_inst *)inst)->lock); }

static const struct hak_box_desc hot_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "page_hot",
    .summary = "PA1: LIFO cache of one-granule (64 KB) spans, per thread over a shared stack",
    .roles = HAK_ROLE_PAGES,
    .params = hot_params,
    .param_count = P_COUNT,
    .links = hot_links,
    .link_count = 1,
    .tls_size = sizeof(struct hot_tls),
    .ops = {
        .create = hot_create,
        .destroy = hot_destroy,
        .thread_init = hot_thread_init,
        .thread_exit = hot_thread_exit,
        .fork_prepare = hot_fork_prepare,
        .fork_parent = hot_fork_parent,
        .fork_child = hot_fork_child,
        .stats = hot_stats,
        .trim = hot_trim,
        .pages_alloc = hot_pages_alloc,
        .pages_free = hot_pages_free,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &hot_desc; }
