/*
 * pool_tls_arena: the descriptor, parameters, instance creation, per-thread
 * set-up, statistics, trim and fork hooks. See pool_internal.h for the
 * design.
 */
#include "pool_internal.h"

#include <stdio.h>
#include <string.h>

static const struct hak_param pool_params[P_COUNT] = {
    /* 1040, 4112, 4384, 4608, 4864: a page plus a header. sqlite3's
     * page-cache buffers are 4096 + 272 B and its 1 KB buffers 1032 B; with
     * 5K and 1280 as the next classes its peak RSS was 1.24x glibc's,
     * with these 1.06x (bench/RESULTS.md). */
    [P_SIZES] = { "sizes", HAK_PARAM_SIZE_LIST,
                  "1K,1040,1280,1536,1792,2K,2560,3K,3584,4K,4112,4384,4608,4864,5K,6K,7K,8K,"
                  "10K,12K,14K,16K,20K,24K,28K,32K,40K,48K,52K",
                  16, 64 * 1024, NULL,
                  "block sizes (multiples of 16); a request gets the first that fits" },
    [P_CHUNK_MIN] = { "chunk_min", HAK_PARAM_SIZE, "1M", 512 * 1024, 16 << 20, NULL,
                      "first chunk of a thread (a multiple of 64K)" },
    [P_CHUNK_MAX] = { "chunk_max", HAK_PARAM_SIZE, "8M", 512 * 1024, 16 << 20, NULL,
                      "chunks double per chunk held, up to this (a power of two, the "
                      "chunks' alignment)" },
    [P_PURGE_DELAY] = { "purge_delay_ms", HAK_PARAM_INT, "250", 0, 60000, NULL,
                        "free granules idle this long are decommitted, empty chunks "
                        "returned (0: at once)" },
    [P_DIRTY_MAX] = { "dirty_max", HAK_PARAM_SIZE, "32M", 0, (int64_t)1 << 40, NULL,
                      "committed free bytes the process keeps (all threads and exited "
                      "threads' chunks) before a thread purges its own" },
};

static const struct hak_link_decl pool_links[] = {
    { "pages", HAK_ROLE_PAGES, 1, "page box the chunks come from" },
};

/* The smallest slab (1 .. 8 granules) holding at least 4 blocks with at
 * most 1/16 of it left over (only the last page of that is ever touched);
 * failing that, the least wasteful one. */
static unsigned pool_pick_slab(size_t size, uint32_t *cap_out)
{
    unsigned best = 0;
    size_t best_waste = 0;
    for (unsigned k = 1; k <= POOL_MAX_SLAB_GRANULES; k++) {
        size_t bytes = (size_t)k << HAK_GRANULE_SHIFT;
        size_t cap = bytes / size;
        if (!cap)
            continue;
        size_t waste = bytes - cap * size;
        if (cap >= POOL_SLAB_MIN_BLOCKS && waste * 16 <= bytes) {
            best = k;
            break;
        }
        /* waste / k < best_waste / best */
        if (!best || waste * best < best_waste * k) {
            best = k;
            best_waste = waste;
        }
    }
    *cap_out = (uint32_t)(((size_t)best << HAK_GRANULE_SHIFT) / size);
    return best;
}

static void *pool_create(const struct hak_host *host, const struct hak_box_config *cfg,
                         char *err, size_t err_len)
{
    const struct hak_value *v = cfg->values;
    const struct hak_value *sizes = &v[P_SIZES];
    size_t chunk_min = (size_t)v[P_CHUNK_MIN].i, chunk_max = (size_t)v[P_CHUNK_MAX].i;
    if (!sizes->count) {
        snprintf(err, err_len, "sizes: at least one size is needed");
        return NULL;
    }
    for (uint32_t i = 0; i < sizes->count; i++) {
        if (sizes->list[i] % HAK_MIN_ALIGN) {
            snprintf(err, err_len, "sizes: %llu is not a multiple of 16",
                     (unsigned long long)sizes->list[i]);
            return NULL;
        }
    }
    if (chunk_min % HAK_GRANULE || chunk_max % HAK_GRANULE) {
        snprintf(err, err_len, "chunk_min and chunk_max must be multiples of 64K");
        return NULL;
    }
    if (!hak_is_pow2(chunk_max)) {
        snprintf(err, err_len, "chunk_max must be a power of two (chunks are aligned to it)");
        return NULL;
    }
    if (chunk_min > chunk_max) {
        snprintf(err, err_len, "chunk_min (%zu) is larger than chunk_max (%zu)", chunk_min,
                 chunk_max);
        return NULL;
    }
    if (!cfg->links[0].desc || !cfg->links[0].desc->ops.pages_alloc) {
        snprintf(err, err_len, "pages: a page box is required");
        return NULL;
    }

    struct pool_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host))) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->growing = HAK_HOST_HAS(host, growing) ? host->growing : NULL;
    in->pages = cfg->links[0];
    in->owner = cfg->owner;
    in->hardened = cfg->hardened;
    in->nclasses = sizes->count;
    in->max_size = (size_t)sizes->list[sizes->count - 1];
    in->chunk_min = chunk_min;
    in->chunk_max = chunk_max;
    in->chunk_mask = ~(uintptr_t)(chunk_max - 1);
    in->purge_delay_ns = (uint64_t)v[P_PURGE_DELAY].i * 1000000u;
    in->dirty_max = (size_t)v[P_DIRTY_MAX].i;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    for (uint32_t c = 0; c < in->nclasses; c++) {
        uint32_t size = (uint32_t)sizes->list[c];
        in->class_size[c] = size;
        uint32_t low = size & -size; /* blocks at slab + i * size, slabs on granules */
        in->class_align[c] = low < HAK_GRANULE ? low : HAK_GRANULE;
        in->class_granules[c] = (uint8_t)pool_pick_slab(size, &in->class_cap[c]);
        if ((size_t)(in->class_granules[c] + 1) << HAK_GRANULE_SHIFT > chunk_min) {
            snprintf(err, err_len, "chunk_min is too small for the slabs of class %u", size);
            return NULL;
        }
    }
    size_t entries = in->max_size >> 4;
    uint8_t *class_of = host->meta_alloc(entries);
    if (!class_of) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    /* Entry i serves sizes up to (i + 1) * 16: one run per class (a loop
     * per entry was 27K instructions of every process's start). */
    size_t from = 0;
    for (uint32_t c = 0; c < in->nclasses && from < entries; c++) {
        size_t to = in->class_size[c] >> 4; /* entries [from, to) */
        if (to > entries)
            to = entries;
        if (to > from)
            memset(class_of + from, (int)c, to - from);
        from = to > from ? to : from;
    }
    in->class_of = class_of;
    return in;
}

static void pool_destroy(void *inst) { (void)inst; }

static void pool_thread_init(void *inst, void *tls)
{
    const struct pool_inst *in = inst;
    struct pool_tls *t = tls;
    memset((char *)t + sizeof t->head, 0, sizeof *t - sizeof t->head);
    t->chunk_mask = in->chunk_mask;
    t->class_of = in->class_of;
    t->max_size = in->max_size;
    t->nclasses = in->nclasses;
#if HAKMEM_DEBUG
    t->check = true;
#else
    t->check = in->hardened != 0;
#endif
    for (uint32_t c = 0; c < in->nclasses; c++)
        t->cls[c].size = in->class_size[c];
    t->tick_countdown = POOL_TICK_EVERY;
}

static void pool_stats(void *inst, void *tls, struct hak_stats *out)
{
    (void)inst;
    if (!tls)
        return;
    const struct pool_tls *t = tls;
    for (uint32_t c = 0; c < POOL_MAX_CLASSES; c++) {
        out->allocs += t->cls[c].allocs;
        out->frees += t->cls[c].frees;
        out->bytes_allocated += t->cls[c].allocs * t->cls[c].size;
        out->bytes_freed += t->cls[c].frees * t->cls[c].size;
    }
    out->refills += t->st.refills;
    out->drains += t->st.drains;
    out->remote_frees += t->st.remote_frees;
    out->cached_bytes += t->dirty_bytes;
}

static size_t pool_trim(void *inst, void *tls)
{
    (void)inst;
    if (!tls)
        return 0;
    return pool_purge_all(tls);
}

static void pool_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct pool_inst *)inst)->lock); }
static void pool_fork_parent(void *inst) { hak_spin_fork_parent(((struct pool_inst *)inst)->lock); }
static void pool_fork_child(void *inst) { hak_spin_fork_child(((struct pool_inst *)inst)->lock); }

static uint32_t pool_class_count(void *inst) { return ((struct pool_inst *)inst)->nclasses; }

static size_t pool_class_size(void *inst, uint32_t cls)
{
    const struct pool_inst *in = inst;
    return cls < in->nclasses ? in->class_size[cls] : 0;
}

static const struct hak_box_desc pool_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "pool_tls_arena",
    .summary = "mid sizes: per-thread chunks of class slabs, remote frees, orphan adoption",
    .roles = HAK_ROLE_ALLOC,
    .flags = 0,
    .params = pool_params,
    .param_count = P_COUNT,
    .links = pool_links,
    .link_count = 1,
    .tls_size = sizeof(struct pool_tls),
    .ops = {
        .create = pool_create,
        .destroy = pool_destroy,
        .thread_init = pool_thread_init,
        .thread_exit = pool_thread_exit,
        .fork_prepare = pool_fork_prepare,
        .fork_parent = pool_fork_parent,
        .fork_child = pool_fork_child,
        .stats = pool_stats,
        .trim = pool_trim,
        .reclaim = pool_reclaim,
        .alloc = pool_alloc,
        .alloc_aligned = pool_alloc_aligned,
        .free = pool_free,
        .usable_size = pool_usable_size,
        .realloc = pool_realloc,
        .class_count = pool_class_count,
        .class_size = pool_class_size,
        .alloc_batch = pool_alloc_batch,
        .free_batch = pool_free_batch,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &pool_desc; }
