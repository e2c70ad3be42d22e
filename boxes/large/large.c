/*
 * large: the terminal box. Serves any size from 1 byte and any power-of-two
 * alignment the host can map (see large.h for the layout). Freed blocks go
 * to a cache of committed extents (large_cache.c) that serves later
 * requests of any size, so a program freeing and re-allocating big buffers
 * neither maps nor faults them anew.
 *
 * alloc may return old data (a reused extent); alloc_zeroed clears only
 * what was reused: a fresh mapping reads as zeros already, so calloc of one
 * costs the kernel's zero-page faults and nothing more.
 */
#include "large.h"

#include <stdio.h>
#include <string.h>

enum { P_CACHE_SLOTS, P_CACHE_LIVE_PCT, P_CACHE_MIN_BYTES, P_CACHE_MAX_BYTES, P_CACHE_IDLE_MS,
       P_HUGE, P_COUNT };

static const struct hak_param large_params[P_COUNT] = {
    [P_CACHE_SLOTS] = {"cache_slots", HAK_PARAM_INT, "32", 0, LARGE_CACHE_MAX, NULL,
                       "freed extents kept for reuse (0: unmap at once)"},
    [P_CACHE_LIVE_PCT] = {"cache_live_pct", HAK_PARAM_INT, "50", 0, LARGE_LIVE_PCT_MAX, NULL,
                          "cache budget: this percent of the bytes the program has live here"},
    [P_CACHE_MIN_BYTES] = {"cache_min_bytes", HAK_PARAM_SIZE, "64M", 0, (int64_t)1 << 40, NULL,
                           "cache budget whatever is live (the floor)"},
    [P_CACHE_MAX_BYTES] = {"cache_max_bytes", HAK_PARAM_SIZE, "4G", 0, (int64_t)1 << 40, NULL,
                           "cache budget never above this (the ceiling)"},
    [P_CACHE_IDLE_MS] = {"cache_idle_ms", HAK_PARAM_INT, "1000", 0, 3600000, NULL,
                         "unmap cached extents idle this long (0: never), checked lazily"},
    [P_HUGE] = {"huge", HAK_PARAM_ENUM, "off", 0, 0, "off|madvise",
                "madvise: blocks of 2 MB and more are whole 2 MB pages, mapped 2 MB-aligned, on transparent huge pages"},
};

/* Requests beyond this fail at once (the address space is 2^47). */
#define LARGE_MAX_REQUEST ((size_t)1 << 46)

void large_event(const struct large_inst *in, uint16_t type, const void *p, uint64_t bytes)
{
    struct hak_event ev = {.type = type, .bucket = HAK_BUCKET_LARGE, .owner = in->owner,
                           .addr = p, .bytes = bytes, .count = 1};
    in->host->event(&ev);
}

static void *large_create(const struct hak_host *host, const struct hak_box_config *cfg,
                          char *err, size_t err_len)
{
    if (cfg->values[P_CACHE_MIN_BYTES].i > cfg->values[P_CACHE_MAX_BYTES].i) {
        snprintf(err, err_len, "cache_min_bytes (%s) is above cache_max_bytes (%s)",
                 cfg->values[P_CACHE_MIN_BYTES].s, cfg->values[P_CACHE_MAX_BYTES].s);
        return NULL;
    }
    struct large_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host))) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->cache_slots = (uint32_t)cfg->values[P_CACHE_SLOTS].i;
    in->cache_live_pct = (uint32_t)cfg->values[P_CACHE_LIVE_PCT].i;
    in->cache_min_bytes = (uint64_t)cfg->values[P_CACHE_MIN_BYTES].i;
    in->cache_max_bytes = (uint64_t)cfg->values[P_CACHE_MAX_BYTES].i;
    in->cache_idle_ns = (uint64_t)cfg->values[P_CACHE_IDLE_MS].i * 1000000u;
    in->huge = cfg->values[P_HUGE].i == 1 && HAK_HOST_HAS(host, advise_huge) &&
               host->thp_mode() != HAK_THP_NEVER;
    return in;
}

static void large_destroy(void *inst) { large_cache_flush(inst, NULL); }
static void large_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }
static void large_thread_exit(void *inst, void *tls) { (void)inst; (void)tls; }

static inline struct large_inst *inst_of(void *tls)
{
    return ((struct hak_tls_head *)tls)->inst;
}

/* A fresh mapping for a request no cached extent fits: move the biggest
 * extents' pages into its head (no copy, no page faults for them), so the
 * cache serves requests bigger than any one extent. Returns the bytes
 * moved in, from base (they hold old data). */
static size_t large_fill_from_cache(struct large_inst *in, struct large_tls *t, char *base,
                                    size_t bytes)
{
    if (!HAK_HOST_HAS(in->host, move))
        return 0;
    struct large_cached piece[LARGE_PIECES_MAX];
    uint32_t n = large_cache_take_pieces(in, t, bytes, piece, LARGE_PIECES_MAX);
    size_t at = 0;
    int failed = 0; /* after a refusal, move no more: old data stays a prefix */
    for (uint32_t i = 0; i < n; i++) {
        if (!failed && in->host->move(base + at, piece[i].base, piece[i].bytes) == 0)
            at += piece[i].bytes;
        else {
            failed = 1;
            large_cache_put(in, t, piece[i].base, piece[i].bytes);
        }
    }
    return at;
}

/* A block for `size` bytes at `align`. *old_data: how many bytes from the
 * user pointer may hold old data (0 from a fresh mapping). The
 * best-fitting cached extent; else a fresh mapping with the biggest
 * extents' pages moved into it. */
static void *large_alloc_block(struct large_tls *t, size_t size, size_t align, size_t *old_data)
{
    struct large_inst *in = inst_of(t);
    if (size > LARGE_MAX_REQUEST || align > ((size_t)1 << LARGE_MAX_ALIGN_SHIFT))
        return NULL;
    if (!hak_is_pow2(align))
        align = align ? (size_t)1 << (hak_log2(align) + 1) : HAK_MIN_ALIGN;
    unsigned shift = hak_log2(align);
    if (shift < LARGE_MIN_OFFSET_SHIFT)
        shift = LARGE_MIN_OFFSET_SHIFT;
    size_t offset = (size_t)1 << shift;
    size_t map_align = align > HAK_GRANULE ? align : HAK_GRANULE;
    size_t bytes = large_round(in, offset + size);

    size_t reused = 0;
    char *base = large_cache_take(in, t, bytes, map_align);
    if (base) {
        reused = bytes;
        large_event(in, HAK_EV_REUSE, base, bytes);
        char *p = base + offset;
        if ((uint16_t)in->host->lookup(p) != shift) /* the tag encodes the offset */
            in->host->assign((void *)((uintptr_t)p & ~(HAK_GRANULE - 1)), HAK_GRANULE, in->owner,
                             (uint16_t)shift);
    } else {
        int huge = in->huge && bytes >= HAK_HUGE_PAGE;
        base = in->host->map(in->owner, bytes,
                             huge && map_align < HAK_HUGE_PAGE ? HAK_HUGE_PAGE : map_align,
                             (uint16_t)shift);
        if (!base)
            return NULL;
        if (huge)
            in->host->advise_huge(base, bytes);
        t->st.refills++; /* the host reports HAK_EV_MAP; FRESH carries the bucket */
        reused = large_fill_from_cache(in, t, base, bytes);
        if (reused)
            large_event(in, HAK_EV_REUSE, base, reused);
        if (bytes > reused)
            large_event(in, HAK_EV_FRESH, base + reused, bytes - reused);
    }
    struct large_hdr *h = (struct large_hdr *)base;
    h->magic = LARGE_LIVE ^ (uintptr_t)base;
    h->map_bytes = bytes;
    h->offset = offset;
    atomic_fetch_add_explicit(&in->live_bytes, bytes, memory_order_relaxed);
    t->st.allocs++;
    t->st.bytes_allocated += bytes - offset;
    *old_data = reused > offset ? reused - offset : 0;
    return base + offset;
}

static void *large_alloc_aligned(void *tls, size_t size, size_t align)
{
    size_t old_data;
    return large_alloc_block(tls, size, align, &old_data);
}

static void *large_alloc(void *tls, size_t size)
{
    size_t old_data;
    return large_alloc_block(tls, size, HAK_MIN_ALIGN, &old_data);
}

/* calloc: clear what a reused extent brought, never a fresh mapping. */
static void *large_alloc_zeroed(void *tls, size_t size)
{
    size_t old_data;
    void *p = large_alloc_block(tls, size, HAK_MIN_ALIGN, &old_data);
    if (p && old_data)
        memset(p, 0, old_data < size ? old_data : size);
    return p;
}

/* The header of the live block whose user pointer is p, or NULL after
 * reporting the misuse. Reads only memory this box owns. */
static struct large_hdr *large_block(struct large_inst *in, const void *p, uint16_t tag,
                                     const char *misuse)
{
    uintptr_t a = (uintptr_t)p;
    if (tag >= LARGE_MIN_OFFSET_SHIFT && tag <= LARGE_MAX_ALIGN_SHIFT &&
        a > ((uintptr_t)1 << tag)) {
        uintptr_t base = a - ((uintptr_t)1 << tag);
        if (!(base & (HAK_GRANULE - 1)) && in->host->lookup((void *)base) >> 16 == in->owner) {
            struct large_hdr *h = (struct large_hdr *)base;
            if (h->magic == (LARGE_LIVE ^ base) && h->offset == ((uint64_t)1 << tag))
                return h;
            if (h->magic == (LARGE_FREED ^ base) && h->offset == ((uint64_t)1 << tag))
                misuse = "double free";
        }
    }
    in->host->bad_free(in->name, misuse, p);
    return NULL;
}

static void large_free(void *tls, void *p, uint16_t tag)
{
    struct large_tls *t = tls;
    struct large_inst *in = inst_of(tls);
    struct large_hdr *h = large_block(in, p, tag, "free of a pointer not allocated");
    if (!h)
        return;
    char *base = (char *)h;
    size_t bytes = h->map_bytes;
    t->st.frees++;
    t->st.bytes_freed += bytes - h->offset;
    h->magic = LARGE_FREED ^ (uintptr_t)base;
    atomic_fetch_sub_explicit(&in->live_bytes, bytes, memory_order_relaxed);
    large_cache_put(in, t, base, bytes);
}

static size_t large_usable_size(void *tls, const void *p, uint16_t tag)
{
    struct large_hdr *h = large_block(inst_of(tls), p, tag,
                                      "usable_size of a pointer not allocated");
    return h ? h->map_bytes - h->offset : 0;
}

/* Resize in place or by remap, never by copy. Growth takes the cached
 * extent right after the block if it is big enough (no system call), else
 * remaps (mremap through the host: the pages move, the region map follows),
 * rounding up by a quarter so a loop growing a buffer step by step remaps
 * rarely (the extra is address space only until touched). A shrink below
 * half gives the tail to the cache. NULL only when remap fails. */
static void *large_realloc(void *tls, void *p, uint16_t tag, size_t size)
{
    struct large_tls *t = tls;
    struct large_inst *in = inst_of(tls);
    struct large_hdr *h = large_block(in, p, tag, "realloc of a pointer not allocated");
    if (!h || size > LARGE_MAX_REQUEST)
        return NULL;
    char *base = (char *)h;
    size_t offset = h->offset, old_bytes = h->map_bytes;
    size_t need = large_round(in, offset + size);
    if (in->huge && old_bytes >= HAK_HUGE_PAGE) /* a shrink keeps whole huge pages */
        need = hak_align_up(need, HAK_HUGE_PAGE);
    if (need <= old_bytes) {
        if (need > old_bytes / 2)
            return p; /* fits; not worth giving memory back */
        h->map_bytes = need;
        atomic_fetch_sub_explicit(&in->live_bytes, old_bytes - need, memory_order_relaxed);
        t->st.bytes_freed += old_bytes - need;
        large_cache_put(in, t, base + need, old_bytes - need);
        return p;
    }
    size_t roomy = large_round(in, old_bytes + old_bytes / 4);
    if (roomy < need)
        roomy = need;
    char *nb = base;
    size_t new_bytes = old_bytes + large_cache_take_at(in, base + old_bytes, need - old_bytes,
                                                       roomy - old_bytes);
    if (new_bytes == old_bytes) {
        new_bytes = roomy;
        nb = in->host->remap(base, old_bytes, roomy, in->owner, tag);
        if (!nb && roomy > need) {
            new_bytes = need;
            nb = in->host->remap(base, old_bytes, need, in->owner, tag);
        }
        if (!nb)
            return NULL;
    }
    h = (struct large_hdr *)nb;
    h->magic = LARGE_LIVE ^ (uintptr_t)nb;
    h->map_bytes = new_bytes;
    atomic_fetch_add_explicit(&in->live_bytes, new_bytes - old_bytes, memory_order_relaxed);
    t->st.bytes_allocated += new_bytes - old_bytes;
    return nb + offset;
}

static size_t large_trim(void *inst, void *tls) { return large_cache_flush(inst, tls); }

static void large_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct large_inst *in = inst;
    if (!tls) {
        out->cached_bytes += atomic_load_explicit(&in->cached_bytes_seen, memory_order_relaxed);
        return;
    }
    const struct hak_stats *s = &((struct large_tls *)tls)->st;
    hak_stats_add(out, s);
}

static void large_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct large_inst *)inst)->lock); }
static void large_fork_parent(void *inst) { hak_spin_fork_parent(((struct large_inst *)inst)->lock); }
static void large_fork_child(void *inst) { hak_spin_fork_child(((struct large_inst *)inst)->lock); }

static const struct hak_box_desc large_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "large",
    .summary = "any size and alignment: blocks of whole granules, freed ones reused at any size, grown by remap",
    .roles = HAK_ROLE_ALLOC,
    .flags = HAK_BOX_FLAG_TERMINAL,
    .params = large_params,
    .param_count = P_COUNT,
    .tls_size = sizeof(struct large_tls),
    .ops = {
        .create = large_create,
        .destroy = large_destroy,
        .thread_init = large_thread_init,
        .thread_exit = large_thread_exit,
        .fork_prepare = large_fork_prepare,
        .fork_parent = large_fork_parent,
        .fork_child = large_fork_child,
        .stats = large_stats,
        .trim = large_trim,
        .alloc = large_alloc,
        .alloc_aligned = large_alloc_aligned,
        .free = large_free,
        .usable_size = large_usable_size,
        .realloc = large_realloc,
        .alloc_zeroed = large_alloc_zeroed,
        .reclaim = large_reclaim,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &large_desc; }
