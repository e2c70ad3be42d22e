/*
 * large: the terminal box. Serves any size from 1 byte and any power-of-two
 * alignment the host can map, one mapping per block (see large.h for the
 * layout). Freed mappings go to a small cache (large_cache.c) so a program
 * freeing and re-allocating big buffers does not map and fault them anew.
 *
 * Memory from alloc may hold old data when it comes from the cache: callers
 * (calloc in particular) must not assume zeros.
 */
#include "large.h"

#include <stdio.h>
#include <string.h>

enum { P_CACHE_SLOTS, P_CACHE_MAX_BYTES, P_CACHE_IDLE_MS, P_COUNT };

static const struct hak_param large_params[P_COUNT] = {
    [P_CACHE_SLOTS] = {"cache_slots", HAK_PARAM_INT, "8", 0, LARGE_CACHE_MAX, NULL,
                       "freed mappings kept for reuse (0: unmap at once)"},
    [P_CACHE_MAX_BYTES] = {"cache_max_bytes", HAK_PARAM_SIZE, "64M", 0,
                           (int64_t)1 << 40, NULL,
                           "bytes of freed mappings kept; bigger blocks are unmapped"},
    [P_CACHE_IDLE_MS] = {"cache_idle_ms", HAK_PARAM_INT, "1000", 0, 3600000, NULL,
                         "unmap cached mappings idle this long (0: never), checked lazily"},
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
    struct large_inst *in = host->meta_alloc(sizeof *in);
    if (!in) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->cache_slots = (uint32_t)cfg->values[P_CACHE_SLOTS].i;
    in->cache_max_bytes = (uint64_t)cfg->values[P_CACHE_MAX_BYTES].i;
    in->cache_idle_ns = (uint64_t)cfg->values[P_CACHE_IDLE_MS].i * 1000000u;
    return in;
}

static void large_destroy(void *inst) { large_cache_flush(inst, NULL); }
static void large_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }
static void large_thread_exit(void *inst, void *tls) { (void)inst; (void)tls; }

static inline struct large_inst *inst_of(void *tls)
{
    return ((struct hak_tls_head *)tls)->inst;
}

static void *large_alloc_aligned(void *tls, size_t size, size_t align)
{
    struct large_tls *t = tls;
    struct large_inst *in = inst_of(tls);
    if (size > LARGE_MAX_REQUEST || align > ((size_t)1 << LARGE_MAX_ALIGN_SHIFT))
        return NULL;
    if (!hak_is_pow2(align))
        align = align ? (size_t)1 << (hak_log2(align) + 1) : HAK_MIN_ALIGN;
    unsigned shift = hak_log2(align);
    if (shift < LARGE_MIN_OFFSET_SHIFT)
        shift = LARGE_MIN_OFFSET_SHIFT;
    size_t offset = (size_t)1 << shift;
    size_t map_align = align > HAK_GRANULE ? align : HAK_GRANULE;
    size_t bytes = hak_align_up(offset + size, HAK_GRANULE);

    size_t got = 0;
    char *base = large_cache_take(in, t, bytes, map_align, &got);
    if (base) {
        struct large_hdr *old = (struct large_hdr *)base;
        if (old->offset != offset) /* the tag encodes the offset */
            in->host->assign(base, got, in->owner, (uint16_t)shift);
        bytes = got;
        large_event(in, HAK_EV_REUSE, base, bytes);
    } else {
        base = in->host->map(in->owner, bytes, map_align, (uint16_t)shift);
        if (!base)
            return NULL;
        t->st.refills++; /* the host reports HAK_EV_MAP; FRESH carries the bucket */
        large_event(in, HAK_EV_FRESH, base, bytes);
    }
    struct large_hdr *h = (struct large_hdr *)base;
    h->magic = LARGE_LIVE ^ (uintptr_t)base;
    h->map_bytes = bytes;
    h->offset = offset;
    t->st.allocs++;
    t->st.bytes_allocated += bytes - offset;
    return base + offset;
}

static void *large_alloc(void *tls, size_t size)
{
    return large_alloc_aligned(tls, size, HAK_MIN_ALIGN);
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
    large_cache_put(in, t, base, bytes);
}

static size_t large_usable_size(void *tls, const void *p, uint16_t tag)
{
    struct large_hdr *h = large_block(inst_of(tls), p, tag,
                                      "usable_size of a pointer not allocated");
    return h ? h->map_bytes - h->offset : 0;
}

/* The block is alone in its mapping: resize the mapping (mremap through the
 * host, which may move it and keeps the region map right). Growth rounds up
 * by a quarter so a loop growing a buffer step by step remaps rarely; the
 * extra is address space only until touched. */
static void *large_realloc(void *tls, void *p, uint16_t tag, size_t size)
{
    struct large_tls *t = tls;
    struct large_inst *in = inst_of(tls);
    struct large_hdr *h = large_block(in, p, tag, "realloc of a pointer not allocated");
    if (!h || size > LARGE_MAX_REQUEST)
        return NULL;
    char *base = (char *)h;
    size_t offset = h->offset, old_bytes = h->map_bytes;
    size_t need = hak_align_up(offset + size, HAK_GRANULE);
    char *nb;
    if (need <= old_bytes) {
        if (need > old_bytes / 2)
            return p; /* fits; not worth giving memory back */
        nb = in->host->remap(base, old_bytes, need, in->owner, tag);
        if (!nb)
            return p;
    } else {
        size_t roomy = hak_align_up(old_bytes + old_bytes / 4, HAK_GRANULE);
        nb = NULL;
        if (roomy > need) {
            nb = in->host->remap(base, old_bytes, roomy, in->owner, tag);
            if (nb)
                need = roomy;
        }
        if (!nb)
            nb = in->host->remap(base, old_bytes, need, in->owner, tag);
        if (!nb)
            return NULL;
    }
    h = (struct large_hdr *)nb;
    h->magic = LARGE_LIVE ^ (uintptr_t)nb;
    h->map_bytes = need;
    t->st.bytes_freed += old_bytes - offset;
    t->st.bytes_allocated += need - offset;
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

static void large_fork_prepare(void *inst) { hak_spin_lock(&((struct large_inst *)inst)->lock); }
static void large_fork_parent(void *inst) { hak_spin_unlock(&((struct large_inst *)inst)->lock); }
static void large_fork_child(void *inst) { hak_spin_reset(&((struct large_inst *)inst)->lock); }

static const struct hak_box_desc large_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "large",
    .summary = "one mapping per block, any size and alignment, with a cache of freed mappings",
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
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &large_desc; }
