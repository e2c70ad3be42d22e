/*
 * sample_pages: a hakmem box of role pages, as `hakmem new-box` writes it from its
 * template (host/cli/templates/pages/ in hakmem's source).
 *
 * What it does: a cache of freed page spans. Consumers (pool_tls_arena,
 * l25, superslab: any box with a `pages =` link) ask for spans of whole
 * 64 KB granules; a freed span of at most max_granules is kept (up to
 * `slots` of them) and handed out again for a request of the same size,
 * so the span is neither unmapped nor faulted in again. Everything else
 * goes to the page box linked as `below` (os_pages, say), or to the host's
 * map/unmap when no `below` is set.
 *
 * Ownership: pages_alloc must return the span assigned to (owner, tag) in
 * the region map; a kept span is assigned back to this box, so a stray
 * free() of it is caught by the host.
 *
 * Rules every box keeps (docs/writing-a-box.md): no malloc/free/printf/mmap,
 * no __thread variables, short bounded locks only.
 */
#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdio.h> /* snprintf, for create()'s error text only */

#define SLOTS_MAX 1024

enum { P_SLOTS, P_MAX_GRANULES, P_COUNT };

static const struct hak_param box_params[P_COUNT] = {
    [P_SLOTS] = {"slots", HAK_PARAM_INT, "64", 0, SLOTS_MAX, NULL, "freed spans kept for reuse (0: keep none)"},
    [P_MAX_GRANULES] = {"max_granules", HAK_PARAM_INT, "8", 1, 512, NULL,
                        "largest span kept, in 64 KB granules; bigger ones go below at once"},
};

enum { L_BELOW, L_COUNT };

static const struct hak_link_decl box_links[L_COUNT] = {
    [L_BELOW] = {"below", HAK_ROLE_PAGES, 0, "page box spans come from and go back to (default: the host)"},
};

struct kept_span {
    char *p;
    size_t bytes;
};

struct box_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    uint32_t slots;
    size_t max_bytes;
    struct hak_link below;
    hak_spinlock *lock;           /* guards kept[] and kept_count */
    uint32_t kept_count;
    _Atomic uint64_t kept_bytes;  /* for stats */
    struct kept_span kept[SLOTS_MAX];
};

struct box_tls {
    struct hak_tls_head head;     /* must come first */
    struct hak_stats st;
};

static void report_event(struct box_inst *in, uint16_t type, const void *p, uint64_t bytes)
{
    struct hak_event ev = {.type = type, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,
                           .addr = p, .bytes = bytes, .count = 1};
    in->host->event(&ev);
}

/* ---- lifecycle ------------------------------------------------------------- */

static void *box_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,
                        size_t err_len)
{
    struct box_inst *in = host->meta_alloc(sizeof *in);
    /* The lock from the host's lock page (hak_lock_new): a fork copies one
     * page for every box's locks, not one per lock. */
    if (!in || !(in->lock = hak_lock_new(host))) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->slots = (uint32_t)cfg->values[P_SLOTS].i;
    in->max_bytes = (size_t)cfg->values[P_MAX_GRANULES].i * HAK_GRANULE;
    in->below = cfg->links[L_BELOW];
    return in;
}

static void box_destroy(void *inst)
{
    (void)inst;
}

/* No per-thread cache: nothing to set up or hand back. */
static void box_thread_init(void *inst, void *tls)
{
    (void)inst;
    (void)tls;
}

static void box_thread_exit(void *inst, void *tls)
{
    (void)inst;
    (void)tls;
}

/* ---- below: the next page box, or the host ------------------------------------ */

static void *below_alloc(struct box_inst *in, void *tls, size_t bytes, size_t align, uint16_t owner,
                         uint16_t tag)
{
    if (in->below.desc)
        return in->below.desc->ops.pages_alloc(hak_link_tls(tls, &in->below), bytes, align, owner, tag);
    return in->host->map(owner, bytes, align, tag);
}

static void below_free(struct box_inst *in, void *tls, void *p, size_t bytes)
{
    if (in->below.desc)
        in->below.desc->ops.pages_free(hak_link_tls(tls, &in->below), p, bytes);
    else
        in->host->unmap(p, bytes);
}

/* ---- the pages role ---------------------------------------------------------- */

/* A span of `bytes` (whole granules), aligned to max(align, granule),
 * assigned to (owner, tag) before it is returned. */
static void *box_pages_alloc(void *tls, size_t bytes, size_t align, uint16_t owner, uint16_t tag)
{
    struct box_tls *t = tls;
    struct box_inst *in = t->head.inst;
    if (!bytes)
        return NULL;
    bytes = hak_align_up(bytes, HAK_GRANULE);
    size_t need_align = align > HAK_GRANULE ? align : HAK_GRANULE;
    char *p = NULL;
    hak_spin_lock(in->lock);
    for (uint32_t i = in->kept_count; i-- > 0;) { /* newest first: warmest */
        if (in->kept[i].bytes == bytes && !((uintptr_t)in->kept[i].p & (need_align - 1))) {
            p = in->kept[i].p;
            in->kept[i] = in->kept[--in->kept_count];
            break;
        }
    }
    hak_spin_unlock(in->lock);
    if (p) {
        atomic_fetch_sub_explicit(&in->kept_bytes, bytes, memory_order_relaxed);
        in->host->assign(p, bytes, owner, tag);
        report_event(in, HAK_EV_REUSE, p, bytes);
    } else {
        p = below_alloc(in, tls, bytes, align, owner, tag);
        if (!p)
            return NULL;
        t->st.refills++;
    }
    t->st.allocs++;
    t->st.bytes_allocated += bytes;
    return p;
}

/* The span comes back: keep it (owned by this box again) or pass it down. */
static void box_pages_free(void *tls, void *p, size_t bytes)
{
    struct box_tls *t = tls;
    struct box_inst *in = t->head.inst;
    bytes = hak_align_up(bytes, HAK_GRANULE);
    t->st.frees++;
    t->st.bytes_freed += bytes;
    if (bytes <= in->max_bytes && in->slots) {
        /* Ours before anyone can take it from the list. */
        in->host->assign(p, bytes, in->owner, 0);
        int kept = 0;
        hak_spin_lock(in->lock);
        if (in->kept_count < in->slots) {
            in->kept[in->kept_count++] = (struct kept_span){p, bytes};
            kept = 1;
        }
        hak_spin_unlock(in->lock);
        if (kept) {
            atomic_fetch_add_explicit(&in->kept_bytes, bytes, memory_order_relaxed);
            return;
        }
    }
    below_free(in, tls, p, bytes);
    t->st.drains++;
}

/* ---- statistics, trim, fork ---------------------------------------------------- */

static void box_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct box_inst *in = inst;
    if (!tls) {
        out->cached_bytes += atomic_load_explicit(&in->kept_bytes, memory_order_relaxed);
        return;
    }
    hak_stats_add(out, &((struct box_tls *)tls)->st);
}

/* malloc_trim(): every kept span goes below; returns the bytes released. */
static size_t box_trim(void *inst, void *tls)
{
    struct box_inst *in = inst;
    size_t released = 0;
    for (;;) {
        struct kept_span k = {NULL, 0};
        hak_spin_lock(in->lock);
        if (in->kept_count)
            k = in->kept[--in->kept_count];
        hak_spin_unlock(in->lock);
        if (!k.p)
            return released;
        atomic_fetch_sub_explicit(&in->kept_bytes, k.bytes, memory_order_relaxed);
        below_free(in, tls, k.p, k.bytes);
        released += k.bytes;
    }
}

static void box_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct box_inst *)inst)->lock); }
static void box_fork_parent(void *inst) { hak_spin_fork_parent(((struct box_inst *)inst)->lock); }
static void box_fork_child(void *inst) { hak_spin_fork_child(((struct box_inst *)inst)->lock); }

/* ---- the descriptor ------------------------------------------------------------ */

static const struct hak_box_desc box_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "sample_pages",
    .summary = "sample_pages: keeps freed page spans for reuse (from the hakmem new-box template)",
    .roles = HAK_ROLE_PAGES,
    .flags = 0,
    .params = box_params,
    .param_count = P_COUNT,
    .links = box_links,
    .link_count = L_COUNT,
    .tls_size = sizeof(struct box_tls),
    .ops = {
        /* lifecycle */
        .create = box_create,
        .destroy = box_destroy,
        .thread_init = box_thread_init,
        .thread_exit = box_thread_exit,
        .fork_prepare = box_fork_prepare,
        .fork_parent = box_fork_parent,
        .fork_child = box_fork_child,
        .stats = box_stats,
        .trim = box_trim,
        /* pages role */
        .pages_alloc = box_pages_alloc,
        .pages_free = box_pages_free,
        /* The other roles' functions stay NULL: this box has neither the alloc
         * role (`hakmem new-box --role alloc`) nor the observer role. */
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)
{
    return &box_desc;
}
