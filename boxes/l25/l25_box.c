/*
 * l25: the descriptor, parameters, instance creation, per-thread set-up
 * and exit, statistics, trim and fork hooks. See l25_internal.h.
 */
#include "l25_internal.h"

#include <stdio.h>
#include <string.h>

static const struct hak_param l25_params[P_COUNT] = {
    [P_BUNDLE] = { "bundle", HAK_PARAM_INT, "4", 1, L25_CACHE_MAX, NULL,
                   "blocks one refill takes for a small class (at most cache_bytes/4)" },
    [P_CACHE_COUNT] = { "cache_count", HAK_PARAM_INT, "4", 0, L25_CACHE_MAX, NULL,
                        "blocks a thread keeps per class (0: no thread cache)" },
    [P_CACHE_BYTES] = { "cache_bytes", HAK_PARAM_SIZE, "1M", 0, 64 << 20, NULL,
                        "bytes a thread's cache holds in all" },
    [P_PURGE_DELAY] = { "purge_delay_ms", HAK_PARAM_INT, "250", 0, 60000, NULL,
                        "free granules idle this long are decommitted, empty runs "
                        "returned (0: at once)" },
    [P_DIRTY_MAX] = { "dirty_max", HAK_PARAM_SIZE, "128M", 0, (int64_t)1 << 40, NULL,
                      "committed free bytes kept before purging them all" },
    [P_RELEASE] = { "release", HAK_PARAM_ENUM, "granules", 0, 0, "granules|runs",
                    "what a purge gives back: free granules, or only whole empty runs "
                    "(on huge pages: a granule decommit splits the page)" },
};

static const struct hak_link_decl l25_links[] = {
    { "pages", HAK_ROLE_PAGES, 1, "page box the 2 MB runs come from" },
};

static void *l25_create(const struct hak_host *host, const struct hak_box_config *cfg,
                        char *err, size_t err_len)
{
    const struct hak_value *v = cfg->values;
    if (!cfg->links[0].desc || !cfg->links[0].desc->ops.pages_alloc) {
        snprintf(err, err_len, "pages: a page box is required");
        return NULL;
    }
    struct l25_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host))) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->growing = HAK_HOST_HAS(host, growing) ? host->growing : NULL;
    in->pages = cfg->links[0];
    in->owner = cfg->owner;
    in->hardened = cfg->hardened;
    in->bundle = (uint32_t)v[P_BUNDLE].i;
    in->cache_count = (uint32_t)v[P_CACHE_COUNT].i;
    in->cache_bytes = in->cache_count ? (size_t)v[P_CACHE_BYTES].i : 0;
    in->purge_delay_ns = (uint64_t)v[P_PURGE_DELAY].i * 1000000u;
    in->dirty_max = (size_t)v[P_DIRTY_MAX].i;
    in->release_granules = v[P_RELEASE].i == 0;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    return in;
}

static void l25_destroy(void *inst) { (void)inst; }

static void l25_thread_init(void *inst, void *tls)
{
    (void)inst;
    struct l25_tls *t = tls;
    memset((char *)t + sizeof t->head, 0, sizeof *t - sizeof t->head);
    t->tick_countdown = L25_TICK_EVERY;
}

static void l25_thread_exit(void *inst, void *tls)
{
    (void)inst;
    l25_flush_cache(tls);
}

static void l25_stats(void *inst, void *tls, struct hak_stats *out)
{
    if (!tls) {
        struct l25_inst *in = inst;
        hak_spin_lock(in->lock);
        out->cached_bytes += in->dirty_bytes;
        hak_spin_unlock(in->lock);
        return;
    }
    const struct l25_tls *t = tls;
    hak_stats_add(out, &t->st);
    out->cached_bytes += t->cached_bytes;
}

/* malloc_trim: the calling thread's cache back, everything free decommitted,
 * every empty run returned (needs the slice for the pages box). */
static size_t l25_trim(void *inst, void *tls)
{
    struct l25_inst *in = inst;
    void *ptls = NULL;
    if (tls) {
        l25_flush_cache(tls);
        ptls = hak_link_tls(tls, &in->pages);
    }
    size_t released = 0;
    for (int round = 0; round < 64; round++) {
        size_t r = l25_tick(in, ptls, in->host->now_ns(), true);
        released += r;
        if (!r)
            break;
    }
    return released;
}

/* Another box is about to fault in fresh pages: dirty granules beyond a
 * quarter of the live bytes go back first, up to that much. */
size_t l25_reclaim(void *inst, size_t bytes)
{
    return l25_release_dirty(inst, bytes);
}

static void l25_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct l25_inst *)inst)->lock); }
static void l25_fork_parent(void *inst) { hak_spin_fork_parent(((struct l25_inst *)inst)->lock); }
static void l25_fork_child(void *inst) { hak_spin_fork_child(((struct l25_inst *)inst)->lock); }

static uint32_t l25_class_count(void *inst)
{
    (void)inst;
    return L25_CLASSES;
}

static size_t l25_class_size(void *inst, uint32_t cls)
{
    (void)inst;
    return cls < L25_CLASSES ? (size_t)(cls + 1) << HAK_GRANULE_SHIFT : 0;
}

static const struct hak_box_desc l25_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "l25",
    .summary = "64 KB .. 2 MB: best-fit granule blocks in 2 MB runs, thread caches, delayed purge",
    .roles = HAK_ROLE_ALLOC,
    .flags = 0,
    .params = l25_params,
    .param_count = P_COUNT,
    .links = l25_links,
    .link_count = 1,
    .tls_size = sizeof(struct l25_tls),
    .ops = {
        .create = l25_create,
        .destroy = l25_destroy,
        .thread_init = l25_thread_init,
        .thread_exit = l25_thread_exit,
        .fork_prepare = l25_fork_prepare,
        .fork_parent = l25_fork_parent,
        .fork_child = l25_fork_child,
        .stats = l25_stats,
        .trim = l25_trim,
        .alloc = l25_alloc,
        .alloc_aligned = l25_alloc_aligned,
        .free = l25_free,
        .usable_size = l25_usable_size,
        .realloc = l25_realloc,
        .class_count = l25_class_count,
        .class_size = l25_class_size,
        .alloc_batch = l25_alloc_batch,
        .free_batch = l25_free_batch,
        .reclaim = l25_reclaim,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &l25_desc; }
