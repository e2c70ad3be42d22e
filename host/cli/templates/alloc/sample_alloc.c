/*
 * sample_alloc: a hakmem box of role alloc, as `hakmem new-box` writes it from its
 * template (host/cli/templates/alloc/ in hakmem's source).
 *
 * What it does: a size-class arena. A request is rounded up to a power of
 * two (16, 32, ..., max_size), and each class carves its blocks from its own
 * chunks: chunk_size bytes from host->map, or from a page box when the
 * optional `pages` link is set. The region map's tag of a chunk's granules
 * is the class index, so free() and usable_size() know a block's class
 * without a header, and a front box (tiny_unified_cache) can sit on top
 * through the class interface.
 *
 * Freed blocks go on a per-thread list per class (at most cache_blocks);
 * the overflow, and a thread's lists when it exits, go to a shared list per
 * class under a spinlock, from which every thread refills. Chunks are never
 * given back: a real box would return empty chunks (see trim()).
 *
 * Rules every box keeps (docs/writing-a-box.md): no malloc/free/printf/mmap
 * (memory from host->map or a page box, metadata from host->meta_alloc); no
 * __thread variables (per-thread state lives in the slice the host passes as
 * `tls`); fast paths never lock for long and never log.
 */
#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdio.h> /* snprintf, for create()'s error text only */

#define MIN_SHIFT 4    /* 16-byte classes first: malloc's alignment */
#define MAX_CLASSES 13 /* 16 B .. 64 KB: a block never spans chunks */
#define REFILL_MAX 64  /* blocks moved to a thread per refill */

/* ---- parameters: the host parses and checks them against this schema ---- */

enum { P_MAX_SIZE, P_CHUNK_SIZE, P_CACHE_BLOCKS, P_COUNT };

static const struct hak_param box_params[P_COUNT] = {
    [P_MAX_SIZE] = {"max_size", HAK_PARAM_SIZE, "1K", 16, 64 * 1024, NULL,
                    "largest request served, rounded up to a power of two; route at most this here"},
    [P_CHUNK_SIZE] = {"chunk_size", HAK_PARAM_SIZE, "256K", 64 * 1024, 64 * 1024 * 1024, NULL,
                      "bytes a class carves blocks from at a time (whole 64 KB granules)"},
    [P_CACHE_BLOCKS] = {"cache_blocks", HAK_PARAM_INT, "64", 1, 4096, NULL,
                        "free blocks a thread keeps per class before giving half back"},
};

/* ---- links: other boxes this one may be connected to in the config ------ */

enum { L_PAGES, L_COUNT };

static const struct hak_link_decl box_links[L_COUNT] = {
    [L_PAGES] = {"pages", HAK_ROLE_PAGES, 0, "page box the chunks come from (default: host->map)"},
};

/* ---- state ---------------------------------------------------------------- */

struct free_block {
    struct free_block *next;
};

struct size_class {
    hak_spinlock *lock;          /* guards the fields below (hak_lock_new: see create) */
    struct free_block *shared;   /* blocks threads gave back */
    char *cursor, *end;          /* the chunk being carved */
};

/* One per [box.NAME] section; from host->meta_alloc, zeroed. */
struct box_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;              /* this instance's owner id in the region map */
    uint32_t class_count;
    size_t chunk_size;
    uint32_t cache_blocks;
    struct hak_link pages;       /* desc == NULL when not linked */
    _Atomic uint64_t shared_bytes; /* bytes on the shared lists, for stats */
    struct size_class classes[MAX_CLASSES];
};

struct thread_list {
    struct free_block *head;
    uint32_t count;
};

/* The per-thread slice: zeroed by the host, header filled, then thread_init. */
struct box_tls {
    struct hak_tls_head head;    /* must come first: head.inst is our instance */
    struct thread_list lists[MAX_CLASSES];
    struct hak_stats st;
};

static inline struct box_inst *inst_of(void *tls)
{
    return ((struct hak_tls_head *)tls)->inst;
}

static inline size_t class_size_of(uint32_t c)
{
    return (size_t)1 << (c + MIN_SHIFT);
}

static inline uint32_t class_for(size_t size)
{
    return size <= 16 ? 0 : hak_log2(size - 1) + 1 - MIN_SHIFT;
}

static void report_event(struct box_inst *in, uint16_t type, const void *p, uint64_t bytes, uint64_t count)
{
    struct hak_event ev = {.type = type, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,
                           .addr = p, .bytes = bytes, .count = count};
    in->host->event(&ev);
}

/* ---- lifecycle -------------------------------------------------------------- */

/* Called once per instance before any thread uses it. Return NULL and a
 * message in err to refuse the config (the host names file and line). */
static void *box_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,
                        size_t err_len)
{
    size_t max_size = (size_t)cfg->values[P_MAX_SIZE].i;
    size_t chunk = (size_t)cfg->values[P_CHUNK_SIZE].i;
    if (chunk % HAK_GRANULE) {
        snprintf(err, err_len, "chunk_size %zu is not a multiple of 64K", chunk);
        return NULL;
    }
    struct box_inst *in = host->meta_alloc(sizeof *in);
    if (!in) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->class_count = class_for(max_size) + 1;
    in->chunk_size = chunk;
    in->cache_blocks = (uint32_t)cfg->values[P_CACHE_BLOCKS].i;
    in->pages = cfg->links[L_PAGES];
    /* Locks from the host's lock page: a fork then copies one page for
     * every box's locks, not one per lock (docs/design.md, "Fork"). */
    for (uint32_t c = 0; c < in->class_count; c++)
        if (!(in->classes[c].lock = hak_lock_new(host))) {
            snprintf(err, err_len, "out of metadata memory");
            return NULL;
        }
    return in;
}

/* The host never unloads a box in a running process; nothing to undo. */
static void box_destroy(void *inst)
{
    (void)inst;
}

/* The slice is already zeroed: empty lists, zero counters. */
static void box_thread_init(void *inst, void *tls)
{
    (void)inst;
    (void)tls;
}

/* ---- chunks and the shared lists (slow paths) ------------------------------- */

static char *new_chunk(struct box_inst *in, void *tls, uint32_t c)
{
    char *p;
    if (in->pages.desc)
        p = in->pages.desc->ops.pages_alloc(hak_link_tls(tls, &in->pages), in->chunk_size, 0, in->owner,
                                            (uint16_t)c);
    else
        p = in->host->map(in->owner, in->chunk_size, 0, (uint16_t)c);
    if (p)
        report_event(in, HAK_EV_FRESH, p, in->chunk_size, 1);
    return p;
}

static void drop_chunk(struct box_inst *in, void *tls, char *p)
{
    if (in->pages.desc)
        in->pages.desc->ops.pages_free(hak_link_tls(tls, &in->pages), p, in->chunk_size);
    else
        in->host->unmap(p, in->chunk_size);
}

/* Move up to `want` blocks of class c to the thread's list: shared ones
 * first, then carved from the class's chunk (a new chunk when it runs out). */
static int refill(struct box_inst *in, struct box_tls *t, uint32_t c, uint32_t want)
{
    struct size_class *sc = &in->classes[c];
    struct thread_list *tl = &t->lists[c];
    size_t bs = class_size_of(c);
    for (int attempt = 0; attempt < 2; attempt++) {
        uint32_t got = 0, shared = 0;
        hak_spin_lock(sc->lock);
        while (got < want && sc->shared) {
            struct free_block *b = sc->shared;
            sc->shared = b->next;
            b->next = tl->head;
            tl->head = b;
            got++;
        }
        shared = got;
        while (got < want && sc->cursor < sc->end) {
            struct free_block *b = (struct free_block *)sc->cursor;
            sc->cursor += bs;
            b->next = tl->head;
            tl->head = b;
            got++;
        }
        hak_spin_unlock(sc->lock);
        if (got) {
            tl->count += got;
            atomic_fetch_sub_explicit(&in->shared_bytes, shared * bs, memory_order_relaxed);
            t->st.refills++;
            report_event(in, HAK_EV_REFILL, NULL, got * bs, got);
            return 1;
        }
        /* Map outside the lock; if another thread installed a chunk
         * meanwhile, ours goes back. */
        char *chunk = new_chunk(in, t, c);
        if (!chunk)
            return 0;
        hak_spin_lock(sc->lock);
        int installed = sc->cursor >= sc->end;
        if (installed) {
            sc->cursor = chunk;
            sc->end = chunk + in->chunk_size;
        }
        hak_spin_unlock(sc->lock);
        if (!installed)
            drop_chunk(in, t, chunk);
    }
    return 0;
}

/* Give `n` blocks of the thread's list of class c to the shared list. */
static void drain(struct box_inst *in, struct box_tls *t, uint32_t c, uint32_t n)
{
    struct thread_list *tl = &t->lists[c];
    if (!n || !tl->head)
        return;
    struct free_block *first = tl->head, *last = first;
    uint32_t moved = 1;
    while (moved < n && last->next) {
        last = last->next;
        moved++;
    }
    tl->head = last->next;
    tl->count -= moved;
    struct size_class *sc = &in->classes[c];
    hak_spin_lock(sc->lock);
    last->next = sc->shared;
    sc->shared = first;
    hak_spin_unlock(sc->lock);
    atomic_fetch_add_explicit(&in->shared_bytes, moved * class_size_of(c), memory_order_relaxed);
    t->st.drains++;
    report_event(in, HAK_EV_DRAIN, NULL, moved * class_size_of(c), moved);
}

/* Everything the thread holds goes to the shared lists; the slice may be
 * zeroed and given to another thread afterwards. */
static void box_thread_exit(void *inst, void *tls)
{
    struct box_tls *t = tls;
    for (uint32_t c = 0; c < ((struct box_inst *)inst)->class_count; c++)
        drain(inst, t, c, t->lists[c].count);
}

/* ---- the alloc role (fast paths) ------------------------------------------ */

/* NULL means "not mine": the host tries the next box of the route. */
static void *box_alloc(void *tls, size_t size)
{
    struct box_tls *t = tls;
    struct box_inst *in = inst_of(tls);
    uint32_t c = class_for(size);
    if (HAK_UNLIKELY(c >= in->class_count))
        return NULL;
    struct thread_list *tl = &t->lists[c];
    if (HAK_UNLIKELY(!tl->head)) {
        uint32_t want = in->cache_blocks / 2 + 1;
        if (!refill(in, t, c, want < REFILL_MAX ? want : REFILL_MAX))
            return NULL;
    }
    struct free_block *b = tl->head;
    tl->head = b->next;
    tl->count--;
    b->next = NULL; /* no free-list pointer left in the program's memory */
    t->st.allocs++;
    t->st.bytes_allocated += class_size_of(c);
    return b;
}

/* Power-of-two blocks carved from granule-aligned chunks are aligned to
 * their size: a big enough class is aligned for free. */
static void *box_alloc_aligned(void *tls, size_t size, size_t align)
{
    return box_alloc(tls, size > align ? size : align);
}

/* The host found our owner id in the region map; tag is the class. Any
 * thread may free any block: it goes on the freeing thread's list. */
static void box_free(void *tls, void *p, uint16_t tag)
{
    struct box_tls *t = tls;
    struct box_inst *in = inst_of(tls);
    if (HAK_UNLIKELY(tag >= in->class_count || ((uintptr_t)p & (class_size_of(tag) - 1)))) {
        in->host->bad_free(in->name, "free(): not the start of a block", p);
        return; /* on_bad_free = warn: drop it */
    }
    struct thread_list *tl = &t->lists[tag];
    struct free_block *b = p;
    b->next = tl->head;
    tl->head = b;
    tl->count++;
    t->st.frees++;
    t->st.bytes_freed += class_size_of(tag);
    if (HAK_UNLIKELY(tl->count > in->cache_blocks))
        drain(in, t, tag, tl->count / 2);
}

static size_t box_usable_size(void *tls, const void *p, uint16_t tag)
{
    (void)p;
    return tag < inst_of(tls)->class_count ? class_size_of(tag) : 0;
}

/* Same class: keep the block. Otherwise NULL: the host allocates, copies
 * and frees. */
static void *box_realloc(void *tls, void *p, uint16_t tag, size_t size)
{
    if (tag < inst_of(tls)->class_count && class_for(size) == tag)
        return p;
    return NULL;
}

/* ---- the class interface, for a front box stacked on this one ------------- */

static uint32_t box_class_count(void *inst)
{
    return ((struct box_inst *)inst)->class_count;
}

static size_t box_class_size(void *inst, uint32_t cls)
{
    (void)inst;
    return class_size_of(cls);
}

static uint32_t box_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n)
{
    uint32_t got = 0;
    while (got < n) {
        void *p = box_alloc(tls, class_size_of(cls));
        if (!p)
            break;
        out[got++] = p;
    }
    return got;
}

static void box_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        box_free(tls, blocks[i], (uint16_t)cls);
}

/* ---- statistics, trim, fork -------------------------------------------------- */

static void box_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct box_inst *in = inst;
    if (!tls) { /* the instance's own counters */
        out->cached_bytes += atomic_load_explicit(&in->shared_bytes, memory_order_relaxed);
        return;
    }
    const struct box_tls *t = tls;
    hak_stats_add(out, &t->st);
    for (uint32_t c = 0; c < in->class_count; c++)
        out->cached_bytes += t->lists[c].count * class_size_of(c);
}

/* malloc_trim(): this box keeps every chunk; a box that tracks empty chunks
 * would unmap them here and return the bytes released. */
static size_t box_trim(void *inst, void *tls)
{
    (void)inst;
    (void)tls;
    return 0;
}

/* fork(): every lock taken in prepare and released in parent and child,
 * in the same order. The hak_spin_fork_* helpers skip a lock the forking
 * thread holds itself (fork from a signal handler inside this box). */
static void box_fork_prepare(void *inst)
{
    struct box_inst *in = inst;
    for (uint32_t c = 0; c < in->class_count; c++)
        hak_spin_fork_prepare(in->classes[c].lock);
}

static void box_fork_parent(void *inst)
{
    struct box_inst *in = inst;
    for (uint32_t c = 0; c < in->class_count; c++)
        hak_spin_fork_parent(in->classes[c].lock);
}

static void box_fork_child(void *inst)
{
    struct box_inst *in = inst;
    for (uint32_t c = 0; c < in->class_count; c++)
        hak_spin_fork_child(in->classes[c].lock);
}

/* ---- the descriptor: the one symbol the host looks up -------------------- */

static const struct hak_box_desc box_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "sample_alloc",
    .summary = "sample_alloc: power-of-two size classes carved from chunks (from the hakmem new-box template)",
    .roles = HAK_ROLE_ALLOC,
    .flags = 0, /* HAK_BOX_FLAG_FRONT: a cache over `below`; _TERMINAL: serves every size */
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
        /* alloc role */
        .alloc = box_alloc,
        .alloc_aligned = box_alloc_aligned, /* optional: NULL sends memalign elsewhere */
        .free = box_free,
        .usable_size = box_usable_size,
        .realloc = box_realloc,             /* optional */
        .alloc_zeroed = NULL,               /* optional: calloc here; NULL: the host calls alloc and clears */
        /* class interface (optional): lets a front box sit on this one */
        .class_count = box_class_count,
        .class_size = box_class_size,
        .alloc_batch = box_alloc_batch,
        .free_batch = box_free_batch,
        /* pages role: not this box (see `hakmem new-box --role pages`) */
        .pages_alloc = NULL,
        .pages_free = NULL,
        /* observer role: not this box (see `hakmem new-box --role observer`) */
        .on_event = NULL,
        .report = NULL,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)
{
    return &box_desc;
}
