/*
 * os_pages (PA3): the bottom of a page chain. pages_alloc maps fresh memory
 * through host->map, recorded straight to the consumer (no retag needed);
 * pages_free gives it back to the OS.
 *
 * release = unmap (default): munmap at once; this box keeps nothing.
 * release = decommit: madvise(DONTNEED) and keep the address range in a
 * small list (keep_slots); a later request of exactly that size reuses it.
 * That saves the mmap/munmap pair and the region-map churn; the pages fault
 * again on first touch, so it does not save page faults (PA1/PA2 do that).
 * Memory from this box always reads as zeros.
 *
 * huge = madvise: spans of 2 MB and more are mapped 2 MB-aligned and
 * advised MADV_HUGEPAGE (the kernel backs them with transparent huge pages);
 * smaller spans are carved from such 2 MB pages (the huge-page filler of
 * boxes/huge_span, most used page first) and a page wholly free again is
 * unmapped at once. Granules reused from a page are cleared on the way out,
 * so this box's memory still reads as zeros. Under THP mode `never` (sysfs,
 * or prctl PR_SET_THP_DISABLE) huge = madvise behaves as off.
 *
 * The host reports HAK_EV_MAP/HAK_EV_UNMAP for map, unmap and decommit;
 * this box adds HAK_EV_REUSE when it hands out a kept range.
 */
#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include "../huge_span/huge_filler.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define OS_KEEP_MAX 256
#define OS_OWNERS 256 /* huge_after counters; larger owner ids share the last */

enum { P_RELEASE, P_KEEP_SLOTS, P_HUGE, P_HUGE_AFTER, P_COUNT };
enum { RELEASE_UNMAP, RELEASE_DECOMMIT };
enum { HUGE_OFF, HUGE_MADVISE };

static const struct hak_param os_params[P_COUNT] = {
    [P_RELEASE] = {"release", HAK_PARAM_ENUM, "unmap", 0, 0, "unmap|decommit",
                   "unmap: munmap freed spans; decommit: madvise them and keep the range"},
    [P_KEEP_SLOTS] = {"keep_slots", HAK_PARAM_INT, "64", 0, OS_KEEP_MAX, NULL,
                      "decommitted spans kept for reuse (release = decommit only)"},
    [P_HUGE] = {"huge", HAK_PARAM_ENUM, "off", 0, 0, "off|madvise",
                "madvise: spans on 2 MB-aligned transparent huge pages (MADV_HUGEPAGE)"},
    [P_HUGE_AFTER] = {"huge_after", HAK_PARAM_SIZE, "0", 0, (int64_t)1 << 40, NULL,
                      "huge = madvise: each consumer's first this many bytes stay on 4 KB pages"},
};

struct kept_span {
    void *p;
    size_t bytes;
};

struct os_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    int release;
    uint32_t keep_slots;
    hak_spinlock *lock; /* guards kept[] and kept_count */
    uint32_t kept_count;
    _Atomic uint64_t kept_bytes;
    struct kept_span kept[OS_KEEP_MAX];
    int huge; /* huge = madvise and THP not `never` */
    uint64_t huge_after;               /* bytes per consumer before advising */
    _Atomic uint64_t huge_seen[OS_OWNERS]; /* bytes mapped per consumer owner id */
    hak_spinlock *huge_lock; /* guards filler */
    struct hf_filler filler; /* 2 MB pages carved for spans below 2 MB */
};

/* Per-thread counters; allocs/frees count calls, refills/drains count
 * host->map/host->unmap calls. */
struct os_tls {
    struct hak_tls_head head;
    struct hak_stats st;
};

static void os_event(const struct os_inst *in, uint16_t type, const void *p, size_t bytes)
{
    struct hak_event ev = {.type = type, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,
                           .addr = p, .bytes = bytes, .count = 1};
    in->host->event(&ev);
}

static void *os_create(const struct hak_host *host, const struct hak_box_config *cfg,
                       char *err, size_t err_len)
{
    struct os_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host)) || !(in->huge_lock = hak_lock_new(host))) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->release = (int)cfg->values[P_RELEASE].i;
    in->keep_slots = (uint32_t)cfg->values[P_KEEP_SLOTS].i;
    /* THP `never`: no point aligning to 2 MB or carving */
    in->huge = cfg->values[P_HUGE].i == HUGE_MADVISE && HAK_HOST_HAS(host, advise_huge) &&
               host->thp_mode() != HAK_THP_NEVER;
    in->huge_after = (uint64_t)cfg->values[P_HUGE_AFTER].i;
    if (in->huge && hf_init(&in->filler, host)) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    return in;
}

static void os_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }
static void os_thread_exit(void *inst, void *tls) { (void)inst; (void)tls; }

/* A kept span of exactly `bytes` whose address meets `align`, or NULL. */
static void *os_take_kept(struct os_inst *in, size_t bytes, size_t align)
{
    void *p = NULL;
    hak_spin_lock(in->lock);
    for (uint32_t i = in->kept_count; i-- > 0;) {
        struct kept_span *k = &in->kept[i];
        if (k->bytes == bytes && ((uintptr_t)k->p & (align - 1)) == 0) {
            p = k->p;
            *k = in->kept[--in->kept_count];
            atomic_fetch_sub_explicit(&in->kept_bytes, bytes, memory_order_relaxed);
            break;
        }
    }
    hak_spin_unlock(in->lock);
    return p;
}

/* huge mode: advise a fresh mapping once its consumer has had huge_after
 * bytes (a consumer's first chunk or SuperSlab, which a small process
 * barely touches, stays on 4 KB pages: a huge page would cost it RSS and
 * save it nothing). */
static void os_advise(struct os_inst *in, uint16_t owner, void *p, size_t bytes)
{
    _Atomic uint64_t *seen = &in->huge_seen[owner < OS_OWNERS ? owner : OS_OWNERS - 1];
    uint64_t before = atomic_fetch_add_explicit(seen, bytes, memory_order_relaxed);
    if (before >= in->huge_after)
        in->host->advise_huge(p, bytes);
}

/* huge mode, a span below 2 MB: carved from a 2 MB page, most used first.
 * Granules handed out before are cleared (this box's memory reads as 0). */
static void *os_carve(struct os_inst *in, struct os_tls *t, size_t bytes, size_t align,
                      uint16_t owner, uint16_t tag)
{
    uint32_t n = (uint32_t)(bytes >> HAK_GRANULE_SHIFT);
    uint32_t align_g = (uint32_t)(align >> HAK_GRANULE_SHIFT);
    hak_spin_lock(in->huge_lock);
    char *p = hf_alloc(&in->filler, n, align_g);
    if (!p) {
        hak_spin_unlock(in->huge_lock);
        char *q = in->host->map(in->owner, HAK_HUGE_PAGE, HAK_HUGE_PAGE, 0);
        if (!q)
            return NULL;
        os_advise(in, owner, q, HAK_HUGE_PAGE);
        t->st.refills++;
        hak_spin_lock(in->huge_lock);
        struct hf_page *pg = hf_add(&in->filler, (uintptr_t)q, 0);
        p = pg ? hf_alloc_from(&in->filler, pg, n, align_g) : NULL;
        if (!pg) {
            hak_spin_unlock(in->huge_lock);
            in->host->unmap(q, HAK_HUGE_PAGE);
            return NULL;
        }
    }
    struct hf_page *pg = hf_find(&in->filler, p);
    uint32_t first = (uint32_t)(((uintptr_t)p - pg->base) >> HAK_GRANULE_SHIFT);
    uint32_t mask = (n >= 32 ? HF_FULL_MASK : (1u << n) - 1) << first;
    uint32_t dirty = pg->dirty & mask;
    pg->dirty |= mask;
    hak_spin_unlock(in->huge_lock);
    for (uint32_t g = first; g < first + n; g++)
        if (dirty & (1u << g))
            memset(p + ((size_t)(g - first) << HAK_GRANULE_SHIFT), 0, HAK_GRANULE);
    in->host->assign(p, bytes, owner, tag);
    return p;
}

/* huge mode, a span below 2 MB coming back: 1 when it was carved (the page
 * is unmapped once wholly free), 0 when it was not (mapped by itself). */
static int os_uncarve(struct os_inst *in, struct os_tls *t, void *p, size_t bytes)
{
    hak_spin_lock(in->huge_lock);
    struct hf_page *pg = hf_find(&in->filler, p);
    if (!pg) {
        hak_spin_unlock(in->huge_lock);
        return 0;
    }
    int r = hf_free(&in->filler, pg, p, (uint32_t)(bytes >> HAK_GRANULE_SHIFT));
    uintptr_t whole = 0;
    if (r >= 0)
        in->host->assign(p, bytes, in->owner, 0);
    if (r == 1) {
        whole = pg->base;
        hf_remove(&in->filler, pg);
    }
    hak_spin_unlock(in->huge_lock);
    if (r < 0)
        in->host->bad_free(in->name, "span freed twice or not a span", p);
    if (whole) {
        in->host->unmap((void *)whole, HAK_HUGE_PAGE);
        t->st.drains++;
    }
    return 1;
}

static void *os_pages_alloc(void *tls, size_t bytes, size_t align, uint16_t owner,
                            uint16_t tag)
{
    struct os_tls *t = tls;
    struct os_inst *in = t->head.inst;
    if (bytes == 0 || bytes > ((size_t)1 << 47))
        return NULL;
    bytes = hak_align_up(bytes, HAK_GRANULE);
    if (align < HAK_GRANULE)
        align = HAK_GRANULE;
    void *p = NULL;
    if (in->huge && bytes < HAK_HUGE_PAGE && align <= HAK_HUGE_PAGE && hak_is_pow2(align)) {
        p = os_carve(in, t, bytes, align, owner, tag);
        if (p) {
            t->st.allocs++;
            t->st.bytes_allocated += bytes;
        }
        return p;
    }
    if (in->huge && align < HAK_HUGE_PAGE)
        align = HAK_HUGE_PAGE; /* whole huge pages from its start */
    if (in->release == RELEASE_DECOMMIT) {
        p = os_take_kept(in, bytes, align);
        if (p) {
            in->host->assign(p, bytes, owner, tag);
            os_event(in, HAK_EV_REUSE, p, bytes);
        }
    }
    if (!p) {
        p = in->host->map(owner, bytes, align, tag);
        if (!p)
            return NULL;
        if (in->huge)
            os_advise(in, owner, p, bytes);
        t->st.refills++; /* the host reports HAK_EV_MAP */
    }
    t->st.allocs++;
    t->st.bytes_allocated += bytes;
    return p;
}

static void os_pages_free(void *tls, void *p, size_t bytes)
{
    struct os_tls *t = tls;
    struct os_inst *in = t->head.inst;
    bytes = hak_align_up(bytes, HAK_GRANULE);
#if HAKMEM_DEBUG
    if (((uintptr_t)p & (HAK_GRANULE - 1)) || !bytes || !(in->host->lookup(p) >> 16))
        in->host->bad_free(in->name, "span not granule aligned or not owned", p);
#endif
    t->st.frees++;
    t->st.bytes_freed += bytes;
    if (in->huge && bytes < HAK_HUGE_PAGE && os_uncarve(in, t, p, bytes))
        return;
    if (in->release == RELEASE_DECOMMIT) {
        in->host->decommit(p, bytes);
        in->host->assign(p, bytes, in->owner, 0);
        hak_spin_lock(in->lock);
        if (in->kept_count < in->keep_slots) {
            in->kept[in->kept_count++] = (struct kept_span){p, bytes};
            atomic_fetch_add_explicit(&in->kept_bytes, bytes, memory_order_relaxed);
            p = NULL;
        }
        hak_spin_unlock(in->lock);
        if (!p)
            return;
        in->host->unmap(p, bytes); /* list full: already counted as returned */
        t->st.drains++;
        return;
    }
    in->host->unmap(p, bytes);
    t->st.drains++;
}

/* Unmap every kept span (they hold no physical memory, only address space). */
static size_t os_trim(void *inst, void *tls)
{
    struct os_inst *in = inst;
    struct os_tls *t = tls;
    size_t released = 0;
    for (;;) {
        struct kept_span k = {NULL, 0};
        hak_spin_lock(in->lock);
        if (in->kept_count) {
            k = in->kept[--in->kept_count];
            atomic_fetch_sub_explicit(&in->kept_bytes, k.bytes, memory_order_relaxed);
        }
        hak_spin_unlock(in->lock);
        if (!k.p)
            break;
        in->host->unmap(k.p, k.bytes);
        if (t)
            t->st.drains++;
        released += k.bytes;
    }
    return released;
}

static void os_destroy(void *inst) { os_trim(inst, NULL); }

static void os_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct os_inst *in = inst;
    if (!tls) {
        out->cached_bytes += atomic_load_explicit(&in->kept_bytes, memory_order_relaxed);
        return;
    }
    const struct hak_stats *s = &((struct os_tls *)tls)->st;
    hak_stats_add(out, s);
}

static void os_fork_prepare(void *inst)
{
    struct os_inst *in = inst;
    hak_spin_fork_prepare(in->lock);
    hak_spin_fork_prepare(in->huge_lock);
}

static void os_fork_parent(void *inst)
{
    struct os_inst *in = inst;
    hak_spin_fork_parent(in->huge_lock);
    hak_spin_fork_parent(in->lock);
}

static void os_fork_child(void *inst)
{
    struct os_inst *in = inst;
    hak_spin_fork_child(in->huge_lock);
    hak_spin_fork_child(in->lock);
}

static const struct hak_box_desc os_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "os_pages",
    .summary = "PA3: page spans straight from the OS (mmap/munmap via the host), huge pages optional",
    .roles = HAK_ROLE_PAGES,
    .params = os_params,
    .param_count = P_COUNT,
    .tls_size = sizeof(struct os_tls),
    .ops = {
        .create = os_create,
        .destroy = os_destroy,
        .thread_init = os_thread_init,
        .thread_exit = os_thread_exit,
        .fork_prepare = os_fork_prepare,
        .fork_parent = os_fork_parent,
        .fork_child = os_fork_child,
        .stats = os_stats,
        .trim = os_trim,
        .pages_alloc = os_pages_alloc,
        .pages_free = os_pages_free,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &os_desc; }
