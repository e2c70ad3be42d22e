/*
 * huge_span: a hugepage-aware span cache in front of another page box
 * (os_pages with huge = madvise). It takes whole 2 MB pages from below and
 * packs spans of 64 KB..2 MB into as few of them as it can (huge_filler.c),
 * so that pages become wholly free and go back whole; wholly free pages are
 * kept committed up to `keep_free` and for `idle_ms`, then given to below.
 * Spans above 2 MB, or aligned above 2 MB, pass through.
 *
 * One lock guards the filler and the free list; every call is a slow path
 * of a consumer (a chunk, a run, a SuperSlab) and the work under the lock is
 * bounded (a bin scan, a few list moves). Calls to below happen after it is
 * released. Free granules and free pages are owned by this box in the
 * region map; a span handed out is assigned to the consumer and may hold
 * old data.
 */
#include <box_api/hakmem_box.h>
#include <box_api/hakmem_lock.h>
#include <box_api/hakmem_util.h>

#include "huge_filler.h"

#include <stdatomic.h>
#include <stdio.h>

#define HS_DOWN_MAX 32 /* pages given to below per call, at most */

enum { P_KEEP_FREE, P_IDLE_MS, P_COUNT };

static const struct hak_param hs_params[P_COUNT] = {
    [P_KEEP_FREE] = {"keep_free", HAK_PARAM_INT, "4", 0, 65536, NULL,
                     "wholly free 2 MB pages kept committed; the oldest beyond go to below"},
    [P_IDLE_MS] = {"idle_ms", HAK_PARAM_INT, "1000", 0, 3600000, NULL,
                   "wholly free pages idle this long go to below (0: never); checked lazily"},
};

static const struct hak_link_decl hs_links[] = {
    {"below", HAK_ROLE_PAGES, 1, "where 2 MB pages come from (os_pages with huge = madvise)"},
};

struct hs_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    uint32_t keep_free;
    uint64_t idle_ns;
    struct hak_link below;
    hak_spinlock *lock; /* guards f and the free list */
    struct hf_filler f;
    struct hf_page *free_head, *free_tail; /* wholly free pages, newest first */
    uint32_t free_count;
    _Atomic uint64_t cached_seen; /* free bytes held, for stats without the lock */
};

/* allocs/frees and bytes count every call; refills = pages taken from
 * below, drains = pages given back (pass-throughs count in neither). */
struct hs_tls {
    struct hak_tls_head head;
    struct hak_stats st;
};

struct hs_down {
    uint32_t n;
    uintptr_t base[HS_DOWN_MAX + 1];
};

static inline struct hs_inst *inst_of(void *tls) { return ((struct hak_tls_head *)tls)->inst; }

static void *hs_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,
                       size_t err_len)
{
    struct hs_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host)) || hf_init(&in->f, host)) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->keep_free = (uint32_t)cfg->values[P_KEEP_FREE].i;
    in->idle_ns = (uint64_t)cfg->values[P_IDLE_MS].i * 1000000u;
    in->below = cfg->links[0];
    if (!in->below.desc || !in->below.desc->ops.pages_alloc || !in->below.desc->ops.pages_free) {
        snprintf(err, err_len, "below: needs a page box");
        return NULL;
    }
    return in;
}

static void hs_destroy(void *inst) { (void)inst; }
static void hs_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }
static void hs_thread_exit(void *inst, void *tls) { (void)inst; (void)tls; }

/* ---- the free list (wholly free pages; prev/next as on a bin) --------------- */

static void free_push(struct hs_inst *in, struct hf_page *pg, uint64_t now)
{
    pg->freed_ns = now;
    pg->prev = NULL;
    pg->next = in->free_head;
    if (in->free_head)
        in->free_head->prev = pg;
    else
        in->free_tail = pg;
    in->free_head = pg;
    in->free_count++;
}

static void free_unlink(struct hs_inst *in, struct hf_page *pg)
{
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        in->free_head = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    else
        in->free_tail = pg->prev;
    pg->prev = pg->next = NULL;
    in->free_count--;
}

/* The newest free page, off the list (reused while its memory is warm). */
static struct hf_page *free_pop(struct hs_inst *in)
{
    struct hf_page *pg = in->free_head;
    if (pg)
        free_unlink(in, pg);
    return pg;
}

static void down_oldest(struct hs_inst *in, struct hs_down *d)
{
    struct hf_page *pg = in->free_tail;
    free_unlink(in, pg);
    d->base[d->n++] = pg->base;
    hf_remove(&in->f, pg);
}

/* Over keep_free, or idle: the oldest free pages go (bounded per call). */
static void release_locked(struct hs_inst *in, uint64_t now, struct hs_down *d)
{
    while (in->free_count > in->keep_free && d->n < HS_DOWN_MAX)
        down_oldest(in, d);
    while (in->idle_ns && in->free_tail && d->n < HS_DOWN_MAX &&
           now - in->free_tail->freed_ns >= in->idle_ns)
        down_oldest(in, d);
}

static void unlock_and_release(struct hs_inst *in, struct hs_tls *t, struct hs_down *d)
{
    uint64_t held = (in->f.free_granules + (uint64_t)in->free_count * HF_GRANULES) * HAK_GRANULE;
    atomic_store_explicit(&in->cached_seen, held, memory_order_relaxed);
    hak_spin_unlock(in->lock);
    if (!d->n)
        return;
    void *below_tls = hak_link_tls(t, &in->below);
    for (uint32_t i = 0; i < d->n; i++)
        in->below.desc->ops.pages_free(below_tls, (void *)d->base[i], HAK_HUGE_PAGE);
    t->st.drains += d->n;
    struct hak_event ev = {.type = HAK_EV_DRAIN, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,
                           .addr = (void *)d->base[0], .bytes = d->n * HAK_HUGE_PAGE,
                           .count = d->n};
    in->host->event(&ev);
}

/* ---- pages role ---------------------------------------------------------- */

/* A span of n granules from the filler: a partly used page first, then a
 * kept free page. NULL when both have none. */
static void *take_locked(struct hs_inst *in, uint32_t n, uint32_t align_g)
{
    void *p = n < HF_GRANULES ? hf_alloc(&in->f, n, align_g) : NULL;
    if (!p) {
        struct hf_page *pg = free_pop(in);
        if (pg)
            p = hf_alloc_from(&in->f, pg, n, align_g);
    }
    return p;
}

static void *hs_pages_alloc(void *tls, size_t bytes, size_t align, uint16_t owner, uint16_t tag)
{
    struct hs_tls *t = tls;
    struct hs_inst *in = inst_of(tls);
    size_t span = hak_align_up(bytes, HAK_GRANULE);
    if (align < HAK_GRANULE)
        align = HAK_GRANULE;
    void *below_tls = hak_link_tls(t, &in->below);
    if (!bytes || span > HAK_HUGE_PAGE || align > HAK_HUGE_PAGE || !hak_is_pow2(align)) {
        void *p = in->below.desc->ops.pages_alloc(below_tls, bytes, align, owner, tag);
        if (p) {
            t->st.allocs++;
            t->st.bytes_allocated += span;
        }
        return p;
    }
    uint32_t n = (uint32_t)(span >> HAK_GRANULE_SHIFT);
    uint32_t align_g = (uint32_t)(align >> HAK_GRANULE_SHIFT);
    struct hs_down d = {0};
    hak_spin_lock(in->lock);
    void *p = take_locked(in, n, align_g);
    release_locked(in, in->host->now_ns(), &d);
    unlock_and_release(in, t, &d);
    if (p) {
        struct hak_event ev = {.type = HAK_EV_REUSE, .bucket = HAK_BUCKET_OTHER,
                               .owner = in->owner, .addr = p, .bytes = span, .count = 1};
        in->host->event(&ev);
    } else {
        /* no room in any page held: a new huge page from below */
        char *q = in->below.desc->ops.pages_alloc(below_tls, HAK_HUGE_PAGE, HAK_HUGE_PAGE,
                                                  in->owner, 0);
        if (!q)
            return NULL;
        t->st.refills++;
        hak_spin_lock(in->lock);
        struct hf_page *pg = hf_add(&in->f, (uintptr_t)q, 0);
        if (pg)
            p = hf_alloc_from(&in->f, pg, n, align_g);
        d.n = 0;
        unlock_and_release(in, t, &d);
        if (!pg) {
            in->below.desc->ops.pages_free(below_tls, q, HAK_HUGE_PAGE);
            return NULL;
        }
    }
    in->host->assign(p, span, owner, tag);
    t->st.allocs++;
    t->st.bytes_allocated += span;
    return p;
}

static void hs_pages_free(void *tls, void *p, size_t bytes)
{
    struct hs_tls *t = tls;
    struct hs_inst *in = inst_of(tls);
    size_t span = hak_align_up(bytes, HAK_GRANULE);
    t->st.frees++;
    t->st.bytes_freed += span;
    struct hs_down d = {0};
    struct hf_page *pg = NULL;
    int r = 0;
    if (bytes && span <= HAK_HUGE_PAGE) {
        hak_spin_lock(in->lock);
        pg = hf_find(&in->f, p);
        if (pg) {
            r = hf_free(&in->f, pg, p, (uint32_t)(span >> HAK_GRANULE_SHIFT));
            if (r >= 0)
                in->host->assign(p, span, in->owner, 0);
            uint64_t now = in->host->now_ns();
            if (r == 1)
                free_push(in, pg, now);
            if (r >= 0)
                release_locked(in, now, &d);
        }
        unlock_and_release(in, t, &d);
    }
    if (!pg) { /* passed through when it was handed out */
        in->below.desc->ops.pages_free(hak_link_tls(t, &in->below), p, bytes);
        return;
    }
    if (r < 0)
        in->host->bad_free(in->name, "span freed twice or not a span", p);
}

static size_t hs_trim(void *inst, void *tls)
{
    struct hs_inst *in = inst;
    size_t released = 0;
    if (!tls)
        return 0;
    for (;;) {
        struct hs_down d = {0};
        hak_spin_lock(in->lock);
        while (in->free_tail && d.n < HS_DOWN_MAX)
            down_oldest(in, &d);
        uint32_t n = d.n;
        unlock_and_release(in, tls, &d);
        released += n * HAK_HUGE_PAGE;
        if (!n)
            return released;
    }
}

static void hs_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct hs_inst *in = inst;
    if (!tls) {
        out->cached_bytes += atomic_load_explicit(&in->cached_seen, memory_order_relaxed);
        return;
    }
    hak_stats_add(out, &((struct hs_tls *)tls)->st);
}

static void hs_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct hs_inst *)inst)->lock); }
static void hs_fork_parent(void *inst) { hak_spin_fork_parent(((struct hs_inst *)inst)->lock); }
static void hs_fork_child(void *inst) { hak_spin_fork_child(((struct hs_inst *)inst)->lock); }

static const struct hak_box_desc hs_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "huge_span",
    .summary = "hugepage-aware span cache: spans packed into 2 MB pages, free pages returned whole",
    .roles = HAK_ROLE_PAGES,
    .params = hs_params,
    .param_count = P_COUNT,
    .links = hs_links,
    .link_count = 1,
    .tls_size = sizeof(struct hs_tls),
    .ops = {
        .create = hs_create,
        .destroy = hs_destroy,
        .thread_init = hs_thread_init,
        .thread_exit = hs_thread_exit,
        .fork_prepare = hs_fork_prepare,
        .fork_parent = hs_fork_parent,
        .fork_child = hs_fork_child,
        .stats = hs_stats,
        .trim = hs_trim,
        .pages_alloc = hs_pages_alloc,
        .pages_free = hs_pages_free,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &hs_desc; }
