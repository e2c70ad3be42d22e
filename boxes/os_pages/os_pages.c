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
 * The host reports HAK_EV_MAP/HAK_EV_UNMAP for map, unmap and decommit;
 * this box adds HAK_EV_REUSE when it hands out a kept range.
 */
#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define OS_KEEP_MAX 256

enum { P_RELEASE, P_KEEP_SLOTS, P_COUNT };
enum { RELEASE_UNMAP, RELEASE_DECOMMIT };

static const struct hak_param os_params[P_COUNT] = {
    [P_RELEASE] = {"release", HAK_PARAM_ENUM, "unmap", 0, 0, "unmap|decommit",
                   "unmap: munmap freed spans; decommit: madvise them and keep the range"},
    [P_KEEP_SLOTS] = {"keep_slots", HAK_PARAM_INT, "64", 0, OS_KEEP_MAX, NULL,
                      "decommitted spans kept for reuse (release = decommit only)"},
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
    hak_spinlock lock; /* guards kept[] and kept_count */
    uint32_t kept_count;
    _Atomic uint64_t kept_bytes;
    struct kept_span kept[OS_KEEP_MAX];
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
    if (!in) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->release = (int)cfg->values[P_RELEASE].i;
    in->keep_slots = (uint32_t)cfg->values[P_KEEP_SLOTS].i;
    return in;
}

static void os_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }
static void os_thread_exit(void *inst, void *tls) { (void)inst; (void)tls; }

/* A kept span of exactly `bytes` whose address meets `align`, or NULL. */
static void *os_take_kept(struct os_inst *in, size_t bytes, size_t align)
{
    void *p = NULL;
    hak_spin_lock(&in->lock);
    for (uint32_t i = in->kept_count; i-- > 0;) {
        struct kept_span *k = &in->kept[i];
        if (k->bytes == bytes && ((uintptr_t)k->p & (align - 1)) == 0) {
            p = k->p;
            *k = in->kept[--in->kept_count];
            atomic_fetch_sub_explicit(&in->kept_bytes, bytes, memory_order_relaxed);
            break;
        }
    }
    hak_spin_unlock(&in->lock);
    return p;
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
    if (in->release == RELEASE_DECOMMIT) {
        in->host->decommit(p, bytes);
        in->host->assign(p, bytes, in->owner, 0);
        hak_spin_lock(&in->lock);
        if (in->kept_count < in->keep_slots) {
            in->kept[in->kept_count++] = (struct kept_span){p, bytes};
            atomic_fetch_add_explicit(&in->kept_bytes, bytes, memory_order_relaxed);
            p = NULL;
        }
        hak_spin_unlock(&in->lock);
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
        hak_spin_lock(&in->lock);
        if (in->kept_count) {
            k = in->kept[--in->kept_count];
            atomic_fetch_sub_explicit(&in->kept_bytes, k.bytes, memory_order_relaxed);
        }
        hak_spin_unlock(&in->lock);
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

static void os_fork_prepare(void *inst) { hak_spin_fork_prepare(&((struct os_inst *)inst)->lock); }
static void os_fork_parent(void *inst) { hak_spin_fork_parent(&((struct os_inst *)inst)->lock); }
static void os_fork_child(void *inst) { hak_spin_fork_child(&((struct os_inst *)inst)->lock); }

static const struct hak_box_desc os_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "os_pages",
    .summary = "PA3: page spans straight from the OS (mmap/munmap via the host)",
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
