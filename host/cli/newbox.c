/*
 * hakmem new-box NAME [--role alloc|pages|observer] [--dir DIR] [--force]
 *
 * Writes an out-of-tree box project that builds against the installed kit
 * (find_package(hakmem) + hakmem_add_box) and passes `hakmem boxtest` as
 * generated: NAME.c with every callback of the ABI present and commented,
 * CMakeLists.txt with the tests, NAME.ini (a config using the box) and a
 * README listing the parameters. The alloc template really allocates (power-
 * of-two classes carved from chunks), the pages one caches spans, the
 * observer one counts events; tests/kit builds all three with -Werror and
 * runs their tests, so the templates below stay working code.
 *
 * The templates are kept as arrays of lines; @KEY@ is replaced by its value
 * and a line "@BLOCK@" by a block of lines.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- templates ------------------------------------------------------------ */


static const char *const tmpl_alloc_c[] = {
    "/*\n",
    " * @NAME@: a hakmem box of role alloc, scaffolded by `hakmem new-box`.\n",
    " *\n",
    " * What it does: a size-class arena. A request is rounded up to a power of\n",
    " * two (16, 32, ..., max_size), and each class carves its blocks from its own\n",
    " * chunks: chunk_size bytes from host->map, or from a page box when the\n",
    " * optional `pages` link is set. The region map's tag of a chunk's granules\n",
    " * is the class index, so free() and usable_size() know a block's class\n",
    " * without a header, and a front box (tiny_unified_cache) can sit on top\n",
    " * through the class interface.\n",
    " *\n",
    " * Freed blocks go on a per-thread list per class (at most cache_blocks);\n",
    " * the overflow, and a thread's lists when it exits, go to a shared list per\n",
    " * class under a spinlock, from which every thread refills. Chunks are never\n",
    " * given back: a real box would return empty chunks (see trim()).\n",
    " *\n",
    " * Rules every box keeps (docs/writing-a-box.md): no malloc/free/printf/mmap\n",
    " * (memory from host->map or a page box, metadata from host->meta_alloc); no\n",
    " * __thread variables (per-thread state lives in the slice the host passes as\n",
    " * `tls`); fast paths never lock for long and never log.\n",
    " */\n",
    "#include <box_api/hakmem_box.h>\n",
    "#include <box_api/hakmem_util.h>\n",
    "\n",
    "#include <stdatomic.h>\n",
    "#include <stdio.h> /* snprintf, for create()'s error text only */\n",
    "\n",
    "#define MIN_SHIFT 4    /* 16-byte classes first: malloc's alignment */\n",
    "#define MAX_CLASSES 13 /* 16 B .. 64 KB: a block never spans chunks */\n",
    "#define REFILL_MAX 64  /* blocks moved to a thread per refill */\n",
    "\n",
    "/* ---- parameters: the host parses and checks them against this schema ---- */\n",
    "\n",
    "enum { P_MAX_SIZE, P_CHUNK_SIZE, P_CACHE_BLOCKS, P_COUNT };\n",
    "\n",
    "static const struct hak_param box_params[P_COUNT] = {\n",
    "    [P_MAX_SIZE] = {\"max_size\", HAK_PARAM_SIZE, \"1K\", 16, 64 * 1024, NULL,\n",
    "                    \"largest request served, rounded up to a power of two; route at most this here\"},\n",
    "    [P_CHUNK_SIZE] = {\"chunk_size\", HAK_PARAM_SIZE, \"256K\", 64 * 1024, 64 * 1024 * 1024, NULL,\n",
    "                      \"bytes a class carves blocks from at a time (whole 64 KB granules)\"},\n",
    "    [P_CACHE_BLOCKS] = {\"cache_blocks\", HAK_PARAM_INT, \"64\", 1, 4096, NULL,\n",
    "                        \"free blocks a thread keeps per class before giving half back\"},\n",
    "};\n",
    "\n",
    "/* ---- links: other boxes this one may be connected to in the config ------ */\n",
    "\n",
    "enum { L_PAGES, L_COUNT };\n",
    "\n",
    "static const struct hak_link_decl box_links[L_COUNT] = {\n",
    "    [L_PAGES] = {\"pages\", HAK_ROLE_PAGES, 0, \"page box the chunks come from (default: host->map)\"},\n",
    "};\n",
    "\n",
    "/* ---- state ---------------------------------------------------------------- */\n",
    "\n",
    "struct free_block {\n",
    "    struct free_block *next;\n",
    "};\n",
    "\n",
    "struct size_class {\n",
    "    hak_spinlock lock;           /* guards the fields below */\n",
    "    struct free_block *shared;   /* blocks threads gave back */\n",
    "    char *cursor, *end;          /* the chunk being carved */\n",
    "};\n",
    "\n",
    "/* One per [box.NAME] section; from host->meta_alloc, zeroed. */\n",
    "struct box_inst {\n",
    "    const struct hak_host *host;\n",
    "    char name[64];\n",
    "    uint16_t owner;              /* this instance's owner id in the region map */\n",
    "    uint32_t class_count;\n",
    "    size_t chunk_size;\n",
    "    uint32_t cache_blocks;\n",
    "    struct hak_link pages;       /* desc == NULL when not linked */\n",
    "    _Atomic uint64_t shared_bytes; /* bytes on the shared lists, for stats */\n",
    "    struct size_class classes[MAX_CLASSES];\n",
    "};\n",
    "\n",
    "struct thread_list {\n",
    "    struct free_block *head;\n",
    "    uint32_t count;\n",
    "};\n",
    "\n",
    "/* The per-thread slice: zeroed by the host, header filled, then thread_init. */\n",
    "struct box_tls {\n",
    "    struct hak_tls_head head;    /* must come first: head.inst is our instance */\n",
    "    struct thread_list lists[MAX_CLASSES];\n",
    "    struct hak_stats st;\n",
    "};\n",
    "\n",
    "static inline struct box_inst *inst_of(void *tls)\n",
    "{\n",
    "    return ((struct hak_tls_head *)tls)->inst;\n",
    "}\n",
    "\n",
    "static inline size_t class_size_of(uint32_t c)\n",
    "{\n",
    "    return (size_t)1 << (c + MIN_SHIFT);\n",
    "}\n",
    "\n",
    "static inline uint32_t class_for(size_t size)\n",
    "{\n",
    "    return size <= 16 ? 0 : hak_log2(size - 1) + 1 - MIN_SHIFT;\n",
    "}\n",
    "\n",
    "static void report_event(struct box_inst *in, uint16_t type, const void *p, uint64_t bytes, uint64_t count)\n",
    "{\n",
    "    struct hak_event ev = {.type = type, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,\n",
    "                           .addr = p, .bytes = bytes, .count = count};\n",
    "    in->host->event(&ev);\n",
    "}\n",
    "\n",
    "/* ---- lifecycle -------------------------------------------------------------- */\n",
    "\n",
    "/* Called once per instance before any thread uses it. Return NULL and a\n",
    " * message in err to refuse the config (the host names file and line). */\n",
    "static void *box_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,\n",
    "                        size_t err_len)\n",
    "{\n",
    "    size_t max_size = (size_t)cfg->values[P_MAX_SIZE].i;\n",
    "    size_t chunk = (size_t)cfg->values[P_CHUNK_SIZE].i;\n",
    "    if (chunk % HAK_GRANULE) {\n",
    "        snprintf(err, err_len, \"chunk_size %zu is not a multiple of 64K\", chunk);\n",
    "        return NULL;\n",
    "    }\n",
    "    struct box_inst *in = host->meta_alloc(sizeof *in);\n",
    "    if (!in) {\n",
    "        snprintf(err, err_len, \"out of metadata memory\");\n",
    "        return NULL;\n",
    "    }\n",
    "    in->host = host;\n",
    "    in->owner = cfg->owner;\n",
    "    snprintf(in->name, sizeof in->name, \"%s\", cfg->instance_name);\n",
    "    in->class_count = class_for(max_size) + 1;\n",
    "    in->chunk_size = chunk;\n",
    "    in->cache_blocks = (uint32_t)cfg->values[P_CACHE_BLOCKS].i;\n",
    "    in->pages = cfg->links[L_PAGES];\n",
    "    return in;\n",
    "}\n",
    "\n",
    "/* The host never unloads a box in a running process; nothing to undo. */\n",
    "static void box_destroy(void *inst)\n",
    "{\n",
    "    (void)inst;\n",
    "}\n",
    "\n",
    "/* The slice is already zeroed: empty lists, zero counters. */\n",
    "static void box_thread_init(void *inst, void *tls)\n",
    "{\n",
    "    (void)inst;\n",
    "    (void)tls;\n",
    "}\n",
    "\n",
    "/* ---- chunks and the shared lists (slow paths) ------------------------------- */\n",
    "\n",
    "static char *new_chunk(struct box_inst *in, void *tls, uint32_t c)\n",
    "{\n",
    "    char *p;\n",
    "    if (in->pages.desc)\n",
    "        p = in->pages.desc->ops.pages_alloc(hak_link_tls(tls, &in->pages), in->chunk_size, 0, in->owner,\n",
    "                                            (uint16_t)c);\n",
    "    else\n",
    "        p = in->host->map(in->owner, in->chunk_size, 0, (uint16_t)c);\n",
    "    if (p)\n",
    "        report_event(in, HAK_EV_FRESH, p, in->chunk_size, 1);\n",
    "    return p;\n",
    "}\n",
    "\n",
    "static void drop_chunk(struct box_inst *in, void *tls, char *p)\n",
    "{\n",
    "    if (in->pages.desc)\n",
    "        in->pages.desc->ops.pages_free(hak_link_tls(tls, &in->pages), p, in->chunk_size);\n",
    "    else\n",
    "        in->host->unmap(p, in->chunk_size);\n",
    "}\n",
    "\n",
    "/* Move up to `want` blocks of class c to the thread's list: shared ones\n",
    " * first, then carved from the class's chunk (a new chunk when it runs out). */\n",
    "static int refill(struct box_inst *in, struct box_tls *t, uint32_t c, uint32_t want)\n",
    "{\n",
    "    struct size_class *sc = &in->classes[c];\n",
    "    struct thread_list *tl = &t->lists[c];\n",
    "    size_t bs = class_size_of(c);\n",
    "    for (int attempt = 0; attempt < 2; attempt++) {\n",
    "        uint32_t got = 0, shared = 0;\n",
    "        hak_spin_lock(&sc->lock);\n",
    "        while (got < want && sc->shared) {\n",
    "            struct free_block *b = sc->shared;\n",
    "            sc->shared = b->next;\n",
    "            b->next = tl->head;\n",
    "            tl->head = b;\n",
    "            got++;\n",
    "        }\n",
    "        shared = got;\n",
    "        while (got < want && sc->cursor < sc->end) {\n",
    "            struct free_block *b = (struct free_block *)sc->cursor;\n",
    "            sc->cursor += bs;\n",
    "            b->next = tl->head;\n",
    "            tl->head = b;\n",
    "            got++;\n",
    "        }\n",
    "        hak_spin_unlock(&sc->lock);\n",
    "        if (got) {\n",
    "            tl->count += got;\n",
    "            atomic_fetch_sub_explicit(&in->shared_bytes, shared * bs, memory_order_relaxed);\n",
    "            t->st.refills++;\n",
    "            report_event(in, HAK_EV_REFILL, NULL, got * bs, got);\n",
    "            return 1;\n",
    "        }\n",
    "        /* Map outside the lock; if another thread installed a chunk\n",
    "         * meanwhile, ours goes back. */\n",
    "        char *chunk = new_chunk(in, t, c);\n",
    "        if (!chunk)\n",
    "            return 0;\n",
    "        hak_spin_lock(&sc->lock);\n",
    "        int installed = sc->cursor >= sc->end;\n",
    "        if (installed) {\n",
    "            sc->cursor = chunk;\n",
    "            sc->end = chunk + in->chunk_size;\n",
    "        }\n",
    "        hak_spin_unlock(&sc->lock);\n",
    "        if (!installed)\n",
    "            drop_chunk(in, t, chunk);\n",
    "    }\n",
    "    return 0;\n",
    "}\n",
    "\n",
    "/* Give `n` blocks of the thread's list of class c to the shared list. */\n",
    "static void drain(struct box_inst *in, struct box_tls *t, uint32_t c, uint32_t n)\n",
    "{\n",
    "    struct thread_list *tl = &t->lists[c];\n",
    "    if (!n || !tl->head)\n",
    "        return;\n",
    "    struct free_block *first = tl->head, *last = first;\n",
    "    uint32_t moved = 1;\n",
    "    while (moved < n && last->next) {\n",
    "        last = last->next;\n",
    "        moved++;\n",
    "    }\n",
    "    tl->head = last->next;\n",
    "    tl->count -= moved;\n",
    "    struct size_class *sc = &in->classes[c];\n",
    "    hak_spin_lock(&sc->lock);\n",
    "    last->next = sc->shared;\n",
    "    sc->shared = first;\n",
    "    hak_spin_unlock(&sc->lock);\n",
    "    atomic_fetch_add_explicit(&in->shared_bytes, moved * class_size_of(c), memory_order_relaxed);\n",
    "    t->st.drains++;\n",
    "    report_event(in, HAK_EV_DRAIN, NULL, moved * class_size_of(c), moved);\n",
    "}\n",
    "\n",
    "/* Everything the thread holds goes to the shared lists; the slice may be\n",
    " * zeroed and given to another thread afterwards. */\n",
    "static void box_thread_exit(void *inst, void *tls)\n",
    "{\n",
    "    struct box_tls *t = tls;\n",
    "    for (uint32_t c = 0; c < ((struct box_inst *)inst)->class_count; c++)\n",
    "        drain(inst, t, c, t->lists[c].count);\n",
    "}\n",
    "\n",
    "/* ---- the alloc role (fast paths) ------------------------------------------ */\n",
    "\n",
    "/* NULL means \"not mine\": the host tries the next box of the route. */\n",
    "static void *box_alloc(void *tls, size_t size)\n",
    "{\n",
    "    struct box_tls *t = tls;\n",
    "    struct box_inst *in = inst_of(tls);\n",
    "    uint32_t c = class_for(size);\n",
    "    if (HAK_UNLIKELY(c >= in->class_count))\n",
    "        return NULL;\n",
    "    struct thread_list *tl = &t->lists[c];\n",
    "    if (HAK_UNLIKELY(!tl->head)) {\n",
    "        uint32_t want = in->cache_blocks / 2 + 1;\n",
    "        if (!refill(in, t, c, want < REFILL_MAX ? want : REFILL_MAX))\n",
    "            return NULL;\n",
    "    }\n",
    "    struct free_block *b = tl->head;\n",
    "    tl->head = b->next;\n",
    "    tl->count--;\n",
    "    b->next = NULL; /* no free-list pointer left in the program's memory */\n",
    "    t->st.allocs++;\n",
    "    t->st.bytes_allocated += class_size_of(c);\n",
    "    return b;\n",
    "}\n",
    "\n",
    "/* Power-of-two blocks carved from granule-aligned chunks are aligned to\n",
    " * their size: a big enough class is aligned for free. */\n",
    "static void *box_alloc_aligned(void *tls, size_t size, size_t align)\n",
    "{\n",
    "    return box_alloc(tls, size > align ? size : align);\n",
    "}\n",
    "\n",
    "/* The host found our owner id in the region map; tag is the class. Any\n",
    " * thread may free any block: it goes on the freeing thread's list. */\n",
    "static void box_free(void *tls, void *p, uint16_t tag)\n",
    "{\n",
    "    struct box_tls *t = tls;\n",
    "    struct box_inst *in = inst_of(tls);\n",
    "    if (HAK_UNLIKELY(tag >= in->class_count || ((uintptr_t)p & (class_size_of(tag) - 1)))) {\n",
    "        in->host->bad_free(in->name, \"free(): not the start of a block\", p);\n",
    "        return; /* on_bad_free = warn: drop it */\n",
    "    }\n",
    "    struct thread_list *tl = &t->lists[tag];\n",
    "    struct free_block *b = p;\n",
    "    b->next = tl->head;\n",
    "    tl->head = b;\n",
    "    tl->count++;\n",
    "    t->st.frees++;\n",
    "    t->st.bytes_freed += class_size_of(tag);\n",
    "    if (HAK_UNLIKELY(tl->count > in->cache_blocks))\n",
    "        drain(in, t, tag, tl->count / 2);\n",
    "}\n",
    "\n",
    "static size_t box_usable_size(void *tls, const void *p, uint16_t tag)\n",
    "{\n",
    "    (void)p;\n",
    "    return tag < inst_of(tls)->class_count ? class_size_of(tag) : 0;\n",
    "}\n",
    "\n",
    "/* Same class: keep the block. Otherwise NULL: the host allocates, copies\n",
    " * and frees. */\n",
    "static void *box_realloc(void *tls, void *p, uint16_t tag, size_t size)\n",
    "{\n",
    "    if (tag < inst_of(tls)->class_count && class_for(size) == tag)\n",
    "        return p;\n",
    "    return NULL;\n",
    "}\n",
    "\n",
    "/* ---- the class interface, for a front box stacked on this one ------------- */\n",
    "\n",
    "static uint32_t box_class_count(void *inst)\n",
    "{\n",
    "    return ((struct box_inst *)inst)->class_count;\n",
    "}\n",
    "\n",
    "static size_t box_class_size(void *inst, uint32_t cls)\n",
    "{\n",
    "    (void)inst;\n",
    "    return class_size_of(cls);\n",
    "}\n",
    "\n",
    "static uint32_t box_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n)\n",
    "{\n",
    "    uint32_t got = 0;\n",
    "    while (got < n) {\n",
    "        void *p = box_alloc(tls, class_size_of(cls));\n",
    "        if (!p)\n",
    "            break;\n",
    "        out[got++] = p;\n",
    "    }\n",
    "    return got;\n",
    "}\n",
    "\n",
    "static void box_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n)\n",
    "{\n",
    "    for (uint32_t i = 0; i < n; i++)\n",
    "        box_free(tls, blocks[i], (uint16_t)cls);\n",
    "}\n",
    "\n",
    "/* ---- statistics, trim, fork -------------------------------------------------- */\n",
    "\n",
    "static void box_stats(void *inst, void *tls, struct hak_stats *out)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    if (!tls) { /* the instance's own counters */\n",
    "        out->cached_bytes += atomic_load_explicit(&in->shared_bytes, memory_order_relaxed);\n",
    "        return;\n",
    "    }\n",
    "    const struct box_tls *t = tls;\n",
    "    out->allocs += t->st.allocs;\n",
    "    out->frees += t->st.frees;\n",
    "    out->bytes_allocated += t->st.bytes_allocated;\n",
    "    out->bytes_freed += t->st.bytes_freed;\n",
    "    out->refills += t->st.refills;\n",
    "    out->drains += t->st.drains;\n",
    "    for (uint32_t c = 0; c < in->class_count; c++)\n",
    "        out->cached_bytes += t->lists[c].count * class_size_of(c);\n",
    "}\n",
    "\n",
    "/* malloc_trim(): this box keeps every chunk; a box that tracks empty chunks\n",
    " * would unmap them here and return the bytes released. */\n",
    "static size_t box_trim(void *inst, void *tls)\n",
    "{\n",
    "    (void)inst;\n",
    "    (void)tls;\n",
    "    return 0;\n",
    "}\n",
    "\n",
    "/* fork(): every lock taken in prepare, released in parent, reset in child\n",
    " * (the child has one thread; a lock held by another thread would never be\n",
    " * released there). */\n",
    "static void box_fork_prepare(void *inst)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    for (uint32_t c = 0; c < in->class_count; c++)\n",
    "        hak_spin_lock(&in->classes[c].lock);\n",
    "}\n",
    "\n",
    "static void box_fork_parent(void *inst)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    for (uint32_t c = 0; c < in->class_count; c++)\n",
    "        hak_spin_unlock(&in->classes[c].lock);\n",
    "}\n",
    "\n",
    "static void box_fork_child(void *inst)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    for (uint32_t c = 0; c < in->class_count; c++)\n",
    "        hak_spin_reset(&in->classes[c].lock);\n",
    "}\n",
    "\n",
    "/* ---- the descriptor: the one symbol the host looks up -------------------- */\n",
    "\n",
    "static const struct hak_box_desc box_desc = {\n",
    "    .abi_version = HAK_BOX_ABI_VERSION,\n",
    "    .struct_size = sizeof(struct hak_box_desc),\n",
    "    .name = \"@NAME@\",\n",
    "    .summary = \"@NAME@: power-of-two size classes carved from chunks (scaffolded by hakmem new-box)\",\n",
    "    .roles = HAK_ROLE_ALLOC,\n",
    "    .flags = 0, /* HAK_BOX_FLAG_FRONT: a cache over `below`; _TERMINAL: serves every size */\n",
    "    .params = box_params,\n",
    "    .param_count = P_COUNT,\n",
    "    .links = box_links,\n",
    "    .link_count = L_COUNT,\n",
    "    .tls_size = sizeof(struct box_tls),\n",
    "    .ops = {\n",
    "        /* lifecycle */\n",
    "        .create = box_create,\n",
    "        .destroy = box_destroy,\n",
    "        .thread_init = box_thread_init,\n",
    "        .thread_exit = box_thread_exit,\n",
    "        .fork_prepare = box_fork_prepare,\n",
    "        .fork_parent = box_fork_parent,\n",
    "        .fork_child = box_fork_child,\n",
    "        .stats = box_stats,\n",
    "        .trim = box_trim,\n",
    "        /* alloc role */\n",
    "        .alloc = box_alloc,\n",
    "        .alloc_aligned = box_alloc_aligned, /* optional: NULL sends memalign elsewhere */\n",
    "        .free = box_free,\n",
    "        .usable_size = box_usable_size,\n",
    "        .realloc = box_realloc,             /* optional */\n",
    "        /* class interface (optional): lets a front box sit on this one */\n",
    "        .class_count = box_class_count,\n",
    "        .class_size = box_class_size,\n",
    "        .alloc_batch = box_alloc_batch,\n",
    "        .free_batch = box_free_batch,\n",
    "        /* pages role: not this box (see `hakmem new-box --role pages`) */\n",
    "        .pages_alloc = NULL,\n",
    "        .pages_free = NULL,\n",
    "        /* observer role: not this box (see `hakmem new-box --role observer`) */\n",
    "        .on_event = NULL,\n",
    "        .report = NULL,\n",
    "    },\n",
    "};\n",
    "\n",
    "HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)\n",
    "{\n",
    "    return &box_desc;\n",
    "}\n",
    NULL,
};

static const char *const tmpl_pages_c[] = {
    "/*\n",
    " * @NAME@: a hakmem box of role pages, scaffolded by `hakmem new-box`.\n",
    " *\n",
    " * What it does: a cache of freed page spans. Consumers (pool_tls_arena,\n",
    " * l25, superslab: any box with a `pages =` link) ask for spans of whole\n",
    " * 64 KB granules; a freed span of at most max_granules is kept (up to\n",
    " * `slots` of them) and handed out again for a request of the same size,\n",
    " * so the span is neither unmapped nor faulted in again. Everything else\n",
    " * goes to the page box linked as `below` (os_pages, say), or to the host's\n",
    " * map/unmap when no `below` is set.\n",
    " *\n",
    " * Ownership: pages_alloc must return the span assigned to (owner, tag) in\n",
    " * the region map; a kept span is assigned back to this box, so a stray\n",
    " * free() of it is caught by the host.\n",
    " *\n",
    " * Rules every box keeps (docs/writing-a-box.md): no malloc/free/printf/mmap,\n",
    " * no __thread variables, short bounded locks only.\n",
    " */\n",
    "#include <box_api/hakmem_box.h>\n",
    "#include <box_api/hakmem_util.h>\n",
    "\n",
    "#include <stdatomic.h>\n",
    "#include <stdio.h> /* snprintf, for create()'s error text only */\n",
    "\n",
    "#define SLOTS_MAX 1024\n",
    "\n",
    "enum { P_SLOTS, P_MAX_GRANULES, P_COUNT };\n",
    "\n",
    "static const struct hak_param box_params[P_COUNT] = {\n",
    "    [P_SLOTS] = {\"slots\", HAK_PARAM_INT, \"64\", 0, SLOTS_MAX, NULL, \"freed spans kept for reuse (0: keep none)\"},\n",
    "    [P_MAX_GRANULES] = {\"max_granules\", HAK_PARAM_INT, \"8\", 1, 512, NULL,\n",
    "                        \"largest span kept, in 64 KB granules; bigger ones go below at once\"},\n",
    "};\n",
    "\n",
    "enum { L_BELOW, L_COUNT };\n",
    "\n",
    "static const struct hak_link_decl box_links[L_COUNT] = {\n",
    "    [L_BELOW] = {\"below\", HAK_ROLE_PAGES, 0, \"page box spans come from and go back to (default: the host)\"},\n",
    "};\n",
    "\n",
    "struct kept_span {\n",
    "    char *p;\n",
    "    size_t bytes;\n",
    "};\n",
    "\n",
    "struct box_inst {\n",
    "    const struct hak_host *host;\n",
    "    char name[64];\n",
    "    uint16_t owner;\n",
    "    uint32_t slots;\n",
    "    size_t max_bytes;\n",
    "    struct hak_link below;\n",
    "    hak_spinlock lock;            /* guards kept[] and kept_count */\n",
    "    uint32_t kept_count;\n",
    "    _Atomic uint64_t kept_bytes;  /* for stats */\n",
    "    struct kept_span kept[SLOTS_MAX];\n",
    "};\n",
    "\n",
    "struct box_tls {\n",
    "    struct hak_tls_head head;     /* must come first */\n",
    "    struct hak_stats st;\n",
    "};\n",
    "\n",
    "static void report_event(struct box_inst *in, uint16_t type, const void *p, uint64_t bytes)\n",
    "{\n",
    "    struct hak_event ev = {.type = type, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,\n",
    "                           .addr = p, .bytes = bytes, .count = 1};\n",
    "    in->host->event(&ev);\n",
    "}\n",
    "\n",
    "/* ---- lifecycle ------------------------------------------------------------- */\n",
    "\n",
    "static void *box_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,\n",
    "                        size_t err_len)\n",
    "{\n",
    "    struct box_inst *in = host->meta_alloc(sizeof *in);\n",
    "    if (!in) {\n",
    "        snprintf(err, err_len, \"out of metadata memory\");\n",
    "        return NULL;\n",
    "    }\n",
    "    in->host = host;\n",
    "    in->owner = cfg->owner;\n",
    "    snprintf(in->name, sizeof in->name, \"%s\", cfg->instance_name);\n",
    "    in->slots = (uint32_t)cfg->values[P_SLOTS].i;\n",
    "    in->max_bytes = (size_t)cfg->values[P_MAX_GRANULES].i * HAK_GRANULE;\n",
    "    in->below = cfg->links[L_BELOW];\n",
    "    return in;\n",
    "}\n",
    "\n",
    "static void box_destroy(void *inst)\n",
    "{\n",
    "    (void)inst;\n",
    "}\n",
    "\n",
    "/* No per-thread cache: nothing to set up or hand back. */\n",
    "static void box_thread_init(void *inst, void *tls)\n",
    "{\n",
    "    (void)inst;\n",
    "    (void)tls;\n",
    "}\n",
    "\n",
    "static void box_thread_exit(void *inst, void *tls)\n",
    "{\n",
    "    (void)inst;\n",
    "    (void)tls;\n",
    "}\n",
    "\n",
    "/* ---- below: the next page box, or the host ------------------------------------ */\n",
    "\n",
    "static void *below_alloc(struct box_inst *in, void *tls, size_t bytes, size_t align, uint16_t owner,\n",
    "                         uint16_t tag)\n",
    "{\n",
    "    if (in->below.desc)\n",
    "        return in->below.desc->ops.pages_alloc(hak_link_tls(tls, &in->below), bytes, align, owner, tag);\n",
    "    return in->host->map(owner, bytes, align, tag);\n",
    "}\n",
    "\n",
    "static void below_free(struct box_inst *in, void *tls, void *p, size_t bytes)\n",
    "{\n",
    "    if (in->below.desc)\n",
    "        in->below.desc->ops.pages_free(hak_link_tls(tls, &in->below), p, bytes);\n",
    "    else\n",
    "        in->host->unmap(p, bytes);\n",
    "}\n",
    "\n",
    "/* ---- the pages role ---------------------------------------------------------- */\n",
    "\n",
    "/* A span of `bytes` (whole granules), aligned to max(align, granule),\n",
    " * assigned to (owner, tag) before it is returned. */\n",
    "static void *box_pages_alloc(void *tls, size_t bytes, size_t align, uint16_t owner, uint16_t tag)\n",
    "{\n",
    "    struct box_tls *t = tls;\n",
    "    struct box_inst *in = t->head.inst;\n",
    "    if (!bytes)\n",
    "        return NULL;\n",
    "    bytes = hak_align_up(bytes, HAK_GRANULE);\n",
    "    size_t need_align = align > HAK_GRANULE ? align : HAK_GRANULE;\n",
    "    char *p = NULL;\n",
    "    hak_spin_lock(&in->lock);\n",
    "    for (uint32_t i = in->kept_count; i-- > 0;) { /* newest first: warmest */\n",
    "        if (in->kept[i].bytes == bytes && !((uintptr_t)in->kept[i].p & (need_align - 1))) {\n",
    "            p = in->kept[i].p;\n",
    "            in->kept[i] = in->kept[--in->kept_count];\n",
    "            break;\n",
    "        }\n",
    "    }\n",
    "    hak_spin_unlock(&in->lock);\n",
    "    if (p) {\n",
    "        atomic_fetch_sub_explicit(&in->kept_bytes, bytes, memory_order_relaxed);\n",
    "        in->host->assign(p, bytes, owner, tag);\n",
    "        report_event(in, HAK_EV_REUSE, p, bytes);\n",
    "    } else {\n",
    "        p = below_alloc(in, tls, bytes, align, owner, tag);\n",
    "        if (!p)\n",
    "            return NULL;\n",
    "        t->st.refills++;\n",
    "    }\n",
    "    t->st.allocs++;\n",
    "    t->st.bytes_allocated += bytes;\n",
    "    return p;\n",
    "}\n",
    "\n",
    "/* The span comes back: keep it (owned by this box again) or pass it down. */\n",
    "static void box_pages_free(void *tls, void *p, size_t bytes)\n",
    "{\n",
    "    struct box_tls *t = tls;\n",
    "    struct box_inst *in = t->head.inst;\n",
    "    bytes = hak_align_up(bytes, HAK_GRANULE);\n",
    "    t->st.frees++;\n",
    "    t->st.bytes_freed += bytes;\n",
    "    if (bytes <= in->max_bytes && in->slots) {\n",
    "        /* Ours before anyone can take it from the list. */\n",
    "        in->host->assign(p, bytes, in->owner, 0);\n",
    "        int kept = 0;\n",
    "        hak_spin_lock(&in->lock);\n",
    "        if (in->kept_count < in->slots) {\n",
    "            in->kept[in->kept_count++] = (struct kept_span){p, bytes};\n",
    "            kept = 1;\n",
    "        }\n",
    "        hak_spin_unlock(&in->lock);\n",
    "        if (kept) {\n",
    "            atomic_fetch_add_explicit(&in->kept_bytes, bytes, memory_order_relaxed);\n",
    "            return;\n",
    "        }\n",
    "    }\n",
    "    below_free(in, tls, p, bytes);\n",
    "    t->st.drains++;\n",
    "}\n",
    "\n",
    "/* ---- statistics, trim, fork ---------------------------------------------------- */\n",
    "\n",
    "static void box_stats(void *inst, void *tls, struct hak_stats *out)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    if (!tls) {\n",
    "        out->cached_bytes += atomic_load_explicit(&in->kept_bytes, memory_order_relaxed);\n",
    "        return;\n",
    "    }\n",
    "    const struct hak_stats *s = &((struct box_tls *)tls)->st;\n",
    "    out->allocs += s->allocs;\n",
    "    out->frees += s->frees;\n",
    "    out->bytes_allocated += s->bytes_allocated;\n",
    "    out->bytes_freed += s->bytes_freed;\n",
    "    out->refills += s->refills;\n",
    "    out->drains += s->drains;\n",
    "}\n",
    "\n",
    "/* malloc_trim(): every kept span goes below; returns the bytes released. */\n",
    "static size_t box_trim(void *inst, void *tls)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    size_t released = 0;\n",
    "    for (;;) {\n",
    "        struct kept_span k = {NULL, 0};\n",
    "        hak_spin_lock(&in->lock);\n",
    "        if (in->kept_count)\n",
    "            k = in->kept[--in->kept_count];\n",
    "        hak_spin_unlock(&in->lock);\n",
    "        if (!k.p)\n",
    "            return released;\n",
    "        atomic_fetch_sub_explicit(&in->kept_bytes, k.bytes, memory_order_relaxed);\n",
    "        below_free(in, tls, k.p, k.bytes);\n",
    "        released += k.bytes;\n",
    "    }\n",
    "}\n",
    "\n",
    "static void box_fork_prepare(void *inst) { hak_spin_lock(&((struct box_inst *)inst)->lock); }\n",
    "static void box_fork_parent(void *inst) { hak_spin_unlock(&((struct box_inst *)inst)->lock); }\n",
    "static void box_fork_child(void *inst) { hak_spin_reset(&((struct box_inst *)inst)->lock); }\n",
    "\n",
    "/* ---- the descriptor ------------------------------------------------------------ */\n",
    "\n",
    "static const struct hak_box_desc box_desc = {\n",
    "    .abi_version = HAK_BOX_ABI_VERSION,\n",
    "    .struct_size = sizeof(struct hak_box_desc),\n",
    "    .name = \"@NAME@\",\n",
    "    .summary = \"@NAME@: keeps freed page spans for reuse (scaffolded by hakmem new-box)\",\n",
    "    .roles = HAK_ROLE_PAGES,\n",
    "    .flags = 0,\n",
    "    .params = box_params,\n",
    "    .param_count = P_COUNT,\n",
    "    .links = box_links,\n",
    "    .link_count = L_COUNT,\n",
    "    .tls_size = sizeof(struct box_tls),\n",
    "    .ops = {\n",
    "        /* lifecycle */\n",
    "        .create = box_create,\n",
    "        .destroy = box_destroy,\n",
    "        .thread_init = box_thread_init,\n",
    "        .thread_exit = box_thread_exit,\n",
    "        .fork_prepare = box_fork_prepare,\n",
    "        .fork_parent = box_fork_parent,\n",
    "        .fork_child = box_fork_child,\n",
    "        .stats = box_stats,\n",
    "        .trim = box_trim,\n",
    "        /* alloc role: not this box (see `hakmem new-box --role alloc`) */\n",
    "        .alloc = NULL,\n",
    "        .alloc_aligned = NULL,\n",
    "        .free = NULL,\n",
    "        .usable_size = NULL,\n",
    "        .realloc = NULL,\n",
    "        .class_count = NULL,\n",
    "        .class_size = NULL,\n",
    "        .alloc_batch = NULL,\n",
    "        .free_batch = NULL,\n",
    "        /* pages role */\n",
    "        .pages_alloc = box_pages_alloc,\n",
    "        .pages_free = box_pages_free,\n",
    "        /* observer role: not this box */\n",
    "        .on_event = NULL,\n",
    "        .report = NULL,\n",
    "    },\n",
    "};\n",
    "\n",
    "HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)\n",
    "{\n",
    "    return &box_desc;\n",
    "}\n",
    NULL,
};

static const char *const tmpl_observer_c[] = {
    "/*\n",
    " * @NAME@: a hakmem box of role observer, scaffolded by `hakmem new-box`.\n",
    " *\n",
    " * What it does: counts the events boxes report (fresh memory carved,\n",
    " * mappings, refills, drains, remote frees, reuse) per type and size bucket,\n",
    " * and at exit logs one line per event type seen and one per box with its\n",
    " * counters. Events come on slow paths only, from any thread, so the counters\n",
    " * are atomics; the host calls on_event only when an observer is configured.\n",
    " *\n",
    " * Rules every box keeps (docs/writing-a-box.md): no malloc/free/printf/mmap,\n",
    " * no __thread variables; write reports through host->log (or to a file\n",
    " * with open/write), never through stdio.\n",
    " */\n",
    "#include <box_api/hakmem_box.h>\n",
    "\n",
    "#include <stdatomic.h>\n",
    "#include <stdio.h> /* snprintf, for create()'s error text only */\n",
    "\n",
    "enum { P_PER_BOX, P_COUNT };\n",
    "\n",
    "static const struct hak_param box_params[P_COUNT] = {\n",
    "    [P_PER_BOX] = {\"per_box\", HAK_PARAM_BOOL, \"on\", 0, 1, NULL, \"also report each box's counters at exit\"},\n",
    "};\n",
    "\n",
    "static const char *const event_names[HAK_EV_TYPE_COUNT] = {\n",
    "    \"fresh\", \"map\", \"unmap\", \"refill\", \"drain\", \"remote_free\", \"reuse\",\n",
    "};\n",
    "\n",
    "struct box_inst {\n",
    "    const struct hak_host *host;\n",
    "    char name[64];\n",
    "    int per_box;\n",
    "    _Atomic uint64_t count[HAK_EV_TYPE_COUNT][HAK_BUCKET_COUNT];\n",
    "    _Atomic uint64_t bytes[HAK_EV_TYPE_COUNT][HAK_BUCKET_COUNT];\n",
    "};\n",
    "\n",
    "/* ---- lifecycle -------------------------------------------------------------- */\n",
    "\n",
    "static void *box_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,\n",
    "                        size_t err_len)\n",
    "{\n",
    "    struct box_inst *in = host->meta_alloc(sizeof *in);\n",
    "    if (!in) {\n",
    "        snprintf(err, err_len, \"out of metadata memory\");\n",
    "        return NULL;\n",
    "    }\n",
    "    in->host = host;\n",
    "    snprintf(in->name, sizeof in->name, \"%s\", cfg->instance_name);\n",
    "    in->per_box = (int)cfg->values[P_PER_BOX].i;\n",
    "    return in;\n",
    "}\n",
    "\n",
    "static void box_destroy(void *inst)\n",
    "{\n",
    "    (void)inst;\n",
    "}\n",
    "\n",
    "/* ---- the observer role ---------------------------------------------------------- */\n",
    "\n",
    "/* Any thread, slow paths only: keep it short and lock-free. */\n",
    "static void box_on_event(void *inst, const struct hak_event *ev)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    if (ev->type >= HAK_EV_TYPE_COUNT || ev->bucket >= HAK_BUCKET_COUNT)\n",
    "        return;\n",
    "    atomic_fetch_add_explicit(&in->count[ev->type][ev->bucket], ev->count ? ev->count : 1, memory_order_relaxed);\n",
    "    atomic_fetch_add_explicit(&in->bytes[ev->type][ev->bucket], ev->bytes, memory_order_relaxed);\n",
    "}\n",
    "\n",
    "/* At exit: the event totals, then (per_box) every box's counters. */\n",
    "static void box_report(void *inst, const struct hak_report_ctx *ctx)\n",
    "{\n",
    "    struct box_inst *in = inst;\n",
    "    const struct hak_host *h = in->host;\n",
    "    h->log(HAK_LOG_INFO, in->name, \"report for %s (config %s)\", ctx->command_line ? ctx->command_line : \"?\",\n",
    "           ctx->config_name);\n",
    "    for (int type = 0; type < HAK_EV_TYPE_COUNT; type++) {\n",
    "        uint64_t n = 0, b = 0;\n",
    "        for (int bucket = 0; bucket < HAK_BUCKET_COUNT; bucket++) {\n",
    "            n += atomic_load_explicit(&in->count[type][bucket], memory_order_relaxed);\n",
    "            b += atomic_load_explicit(&in->bytes[type][bucket], memory_order_relaxed);\n",
    "        }\n",
    "        if (n)\n",
    "            h->log(HAK_LOG_INFO, in->name, \"events %-11s %10llu  %12llu bytes\", event_names[type],\n",
    "                   (unsigned long long)n, (unsigned long long)b);\n",
    "    }\n",
    "    if (!in->per_box)\n",
    "        return;\n",
    "    for (uint32_t i = 0; i < ctx->box_count; i++) {\n",
    "        const struct hak_report_box *bx = &ctx->boxes[i];\n",
    "        h->log(HAK_LOG_INFO, in->name, \"box %-16s allocs %llu frees %llu mapped %llu KB (peak %llu KB)\",\n",
    "               bx->instance_name, (unsigned long long)bx->stats.allocs, (unsigned long long)bx->stats.frees,\n",
    "               (unsigned long long)(bx->bytes_mapped >> 10), (unsigned long long)(bx->peak_mapped >> 10));\n",
    "    }\n",
    "}\n",
    "\n",
    "/* ---- the descriptor ----------------------------------------------------------- */\n",
    "\n",
    "static const struct hak_box_desc box_desc = {\n",
    "    .abi_version = HAK_BOX_ABI_VERSION,\n",
    "    .struct_size = sizeof(struct hak_box_desc),\n",
    "    .name = \"@NAME@\",\n",
    "    .summary = \"@NAME@: counts events per type and reports them at exit (scaffolded by hakmem new-box)\",\n",
    "    .roles = HAK_ROLE_OBSERVER,\n",
    "    .flags = 0,\n",
    "    .params = box_params,\n",
    "    .param_count = P_COUNT,\n",
    "    .links = NULL,\n",
    "    .link_count = 0,\n",
    "    .tls_size = sizeof(struct hak_tls_head), /* no per-thread state */\n",
    "    .ops = {\n",
    "        /* lifecycle: no per-thread state, no locks, nothing cached */\n",
    "        .create = box_create,\n",
    "        .destroy = box_destroy,\n",
    "        .thread_init = NULL,\n",
    "        .thread_exit = NULL,\n",
    "        .fork_prepare = NULL,\n",
    "        .fork_parent = NULL,\n",
    "        .fork_child = NULL,\n",
    "        .stats = NULL,\n",
    "        .trim = NULL,\n",
    "        /* alloc role: not this box (see `hakmem new-box --role alloc`) */\n",
    "        .alloc = NULL,\n",
    "        .alloc_aligned = NULL,\n",
    "        .free = NULL,\n",
    "        .usable_size = NULL,\n",
    "        .realloc = NULL,\n",
    "        .class_count = NULL,\n",
    "        .class_size = NULL,\n",
    "        .alloc_batch = NULL,\n",
    "        .free_batch = NULL,\n",
    "        /* pages role: not this box (see `hakmem new-box --role pages`) */\n",
    "        .pages_alloc = NULL,\n",
    "        .pages_free = NULL,\n",
    "        /* observer role */\n",
    "        .on_event = box_on_event,\n",
    "        .report = box_report,\n",
    "    },\n",
    "};\n",
    "\n",
    "HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)\n",
    "{\n",
    "    return &box_desc;\n",
    "}\n",
    NULL,
};

static const char *const tmpl_alloc_ini[] = {
    "; @NAME@ serves 1..1K; glibc (the system box) the rest.\n",
    ";   hakmem run -c @NAME@.ini -- PROGRAM\n",
    "[host]\n",
    "; where hakbox_@NAME@.so is, relative to this file\n",
    "box_dir = build\n",
    "stats = off\n",
    "\n",
    "[box.@NAME@]\n",
    "plugin = @NAME@\n",
    "max_size = 1K\n",
    "\n",
    "[box.system]\n",
    "plugin = system\n",
    "\n",
    "[route]\n",
    "1-1K = @NAME@\n",
    "1025-max = system\n",
    NULL,
};

static const char *const tmpl_pages_ini[] = {
    "; @NAME@ keeps the spans of l25 (53249..2M), on top of os_pages; glibc (the\n",
    "; system box) serves the other sizes.\n",
    ";   hakmem run -c @NAME@.ini -- PROGRAM\n",
    "[host]\n",
    "; where hakbox_@NAME@.so is, relative to this file\n",
    "box_dir = build\n",
    "stats = off\n",
    "\n",
    "[box.@NAME@]\n",
    "plugin = @NAME@\n",
    "below = os\n",
    "\n",
    "[box.os]\n",
    "plugin = os_pages\n",
    "\n",
    "[box.l25]\n",
    "plugin = l25\n",
    "pages = @NAME@\n",
    "\n",
    "[box.system]\n",
    "plugin = system\n",
    "\n",
    "[route]\n",
    "1-52K = system\n",
    "53249-2M = l25\n",
    "2097153-max = system\n",
    NULL,
};

static const char *const tmpl_observer_ini[] = {
    "; @NAME@ watches the events of large (above 64K); glibc (the system box)\n",
    "; serves the small sizes. Its report goes to stderr at exit.\n",
    ";   hakmem run -c @NAME@.ini -- PROGRAM\n",
    "[host]\n",
    "; where hakbox_@NAME@.so is, relative to this file\n",
    "box_dir = build\n",
    "stats = off\n",
    "\n",
    "[box.@NAME@]\n",
    "plugin = @NAME@\n",
    "\n",
    "[box.large]\n",
    "plugin = large\n",
    "\n",
    "[box.system]\n",
    "plugin = system\n",
    "\n",
    "[route]\n",
    "1-64K = system\n",
    "65537-max = large\n",
    NULL,
};

static const char *const tmpl_cmakelists[] = {
    "# @NAME@: a hakmem box (role @ROLE@), built out of tree against an installed\n",
    "# hakmem (its box kit). Scaffolded by `hakmem new-box`.\n",
    "#\n",
    "#   cmake -S . -B build\n",
    "#   cmake --build build\n",
    "#   ctest --test-dir build --output-on-failure\n",
    "#\n",
    "# find_package looks in CMAKE_PREFIX_PATH first, then in the hakmem that\n",
    "# scaffolded this project; pass -DCMAKE_PREFIX_PATH=<hakmem prefix> to use\n",
    "# another. `cmake --install build --prefix <hakmem prefix>` puts the box\n",
    "# next to the stock ones, where every config finds it by name.\n",
    "cmake_minimum_required(VERSION 3.18)\n",
    "project(hakbox_@NAME@ LANGUAGES C)\n",
    "\n",
    "if(NOT CMAKE_BUILD_TYPE)\n",
    "  set(CMAKE_BUILD_TYPE Release CACHE STRING \"Build type\" FORCE)\n",
    "endif()\n",
    "\n",
    "# hakmem::box_api (the headers), hakmem_add_box(), hakmem_EXECUTABLE.\n",
    "find_package(hakmem 0.1 REQUIRED@HINTS@)\n",
    "\n",
    "hakmem_add_box(@NAME@ SOURCES @NAME@.c)\n",
    "target_compile_options(hakbox_@NAME@ PRIVATE -Wall -Wextra)\n",
    "\n",
    "enable_testing()\n",
    "# The conformance suite; `hakmem boxtest --help` lists its options.\n",
    "add_test(NAME @NAME@_boxtest COMMAND ${hakmem_EXECUTABLE} boxtest $<TARGET_FILE:hakbox_@NAME@>@BOXTEST_ARGS@)\n",
    "# A real program under @NAME@.ini, with the box of this build.\n",
    "find_program(PYTHON3 python3)\n",
    "if(PYTHON3)\n",
    "  add_test(NAME @NAME@_python\n",
    "           COMMAND ${hakmem_EXECUTABLE} run -c ${CMAKE_CURRENT_SOURCE_DIR}/@NAME@.ini\n",
    "                   -s host.box_dir=$<TARGET_FILE_DIR:hakbox_@NAME@>\n",
    "                   -- ${PYTHON3} -c \"print(sum(len(str(i)) for i in range(10**6)))\")\n",
    "  set_tests_properties(@NAME@_python PROPERTIES PASS_REGULAR_EXPRESSION \"@PYTHON_REGEX@\")\n",
    "endif()\n",
    NULL,
};

static const char *const tmpl_readme[] = {
    "# @NAME@\n",
    "\n",
    "Role: `@ROLE@`. @WHAT@\n",
    "\n",
    "Scaffolded by `hakmem new-box`: the source has every callback of the box\n",
    "ABI, used or set to NULL with a comment; start from it. The rules a box\n",
    "keeps, and why, are in hakmem's docs/writing-a-box.md: memory only from\n",
    "`host->map` or a page box, metadata from `host->meta_alloc`, no\n",
    "malloc/printf/mmap and no `__thread` variables inside the box.\n",
    "\n",
    "## Files\n",
    "\n",
    "| file | what |\n",
    "| --- | --- |\n",
    "| `@NAME@.c` | the box: its descriptor, parameter schema and functions |\n",
    "| `CMakeLists.txt` | builds `hakbox_@NAME@.so` with `find_package(hakmem)` and `hakmem_add_box`; the tests |\n",
    "| `@NAME@.ini` | a config that uses the box: `hakmem run -c @NAME@.ini -- PROGRAM` |\n",
    "\n",
    "## Build and test\n",
    "\n",
    "    cmake -S . -B build\n",
    "    cmake --build build\n",
    "    ctest --test-dir build --output-on-failure\n",
    "\n",
    "The tests are `hakmem boxtest` (the conformance suite: @BOXTEST_WHAT@) and\n",
    "python3 running under `@NAME@.ini`. Rerun the suite by hand with more detail:\n",
    "\n",
    "    hakmem boxtest build/hakbox_@NAME@.so@BOXTEST_ARGS@ -v\n",
    "\n",
    "## Use\n",
    "\n",
    "    hakmem check @NAME@.ini                       # the resolved chain, with this box\n",
    "    hakmem run -c @NAME@.ini -s host.stats=text -- python3 -c 'print(1)'\n",
    "    hakmem bench -c @NAME@.ini -c @COMPARE_WITH@ -A hakmem -w @BENCH_WORKLOADS@ -n 3\n",
    "\n",
    "`@NAME@.ini` finds the box through `box_dir = build` (relative to the file).\n",
    "`hakmem boxes --dir build` lists its parameters.\n",
    "\n",
    "## Parameters\n",
    "\n",
    "| name | type | default | range | meaning |\n",
    "| --- | --- | --- | --- | --- |\n",
    "@PARAMS@\n",
    NULL,
};

static const char *const tmpl_gitignore[] = {
    "build/\n",
    NULL,
};

/* ---- per-role pieces ------------------------------------------------------ */

static const char *const alloc_params[] = {
    "| `max_size` | size | `1K` | 16..64K | largest request served, rounded up to a power of two; route at most this here |\n",
    "| `chunk_size` | size | `256K` | 64K..64M | bytes a class carves blocks from at a time (whole 64 KB granules) |\n",
    "| `cache_blocks` | int | 64 | 1..4096 | free blocks a thread keeps per class before giving half back |\n",
    "\n",
    "Links: `pages = BOX` (optional, a page box such as `os_pages`): where chunks come from; without it,\n",
    "`host->map`.\n",
    NULL,
};

static const char *const pages_params[] = {
    "| `slots` | int | 64 | 0..1024 | freed spans kept for reuse (0: keep none) |\n",
    "| `max_granules` | int | 8 | 1..512 | largest span kept, in 64 KB granules; bigger ones go below at once |\n",
    "\n",
    "Links: `below = BOX` (optional, a page box such as `os_pages`): where spans come from and go back to;\n",
    "without it, `host->map` and `host->unmap`.\n",
    NULL,
};

static const char *const observer_params[] = {
    "| `per_box` | bool | `on` | | also report each box's counters at exit |\n",
    NULL,
};

struct role {
    const char *name;
    const char *const *source;
    const char *const *ini;
    const char *const *params;
    const char *what;
    const char *boxtest_args;
    const char *boxtest_what;
    const char *python_regex;
    const char *compare_with; /* a shipped config, for the bench line */
    const char *bench_workloads;
};

static const struct role roles[] = {
    { "alloc", tmpl_alloc_c, tmpl_alloc_ini, alloc_params,
      "A size-class arena: requests up to `max_size`\n"
      "are rounded up to a power of two, and each class carves its blocks from chunks\n"
      "of its own (from `host->map`, or from a page box linked as `pages`), tagged\n"
      "with the class in the region map. Freed blocks go on per-thread lists, the\n"
      "overflow to a shared list per class. A starting point: chunks are never given\n"
      "back.",
      " --range 1-1K",
      "sizes and alignments in 1..1K,\n"
      "usable_size, region-map ownership, frees from other threads, thread exit,\n"
      "fork and a seeded stress",
      "^5888890\\n$", "tiny-unified.ini", "random_mixed,random_mixed_256" },
    { "pages", tmpl_pages_c, tmpl_pages_ini, pages_params,
      "A cache of freed page spans for the boxes linked to it with\n"
      "`pages =`: a freed span of at most `max_granules` is kept (up to `slots`) and\n"
      "handed out again for a request of the same size; the rest goes to the page box\n"
      "linked as `below`, or to the host.",
      "",
      "spans of 1..32 granules,\n"
      "alignment, ownership handed over and back, reuse, other threads, fork and a\n"
      "seeded stress",
      "^5888890\\n$", "page-arena-on.ini", "vm_mixed,mid_large_mt" },
    { "observer", tmpl_observer_c, tmpl_observer_ini, observer_params,
      "Counts the events boxes report (fresh memory, mappings,\n"
      "refills, drains, remote frees, reuse) per type and size bucket, and logs them\n"
      "with every box's counters at exit.",
      "",
      "the box starts, takes the\n"
      "events of five threads and writes its report",
      "5888890.*report for|report for.*5888890", "telemetry.ini", "vm_mixed" },
};

/* ---- writing files ------------------------------------------------------------- */

struct subst {
    const char *key;   /* "@NAME@" */
    const char *value;
    const char *const *block; /* for a line that is exactly the key */
};

static int write_template(const char *dir, const char *file, const char *const *lines, const struct subst *subs,
                          size_t nsubs)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hakmem new-box: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; lines[i]; i++) {
        const char *line = lines[i];
        const struct subst *block = NULL;
        for (size_t k = 0; k < nsubs; k++)
            if (subs[k].block && !strncmp(line, subs[k].key, strlen(subs[k].key)) &&
                line[strlen(subs[k].key)] == '\n')
                block = &subs[k];
        if (block) {
            for (size_t j = 0; block->block[j]; j++)
                fputs(block->block[j], f);
            continue;
        }
        for (const char *p = line; *p;) {
            const struct subst *hit = NULL;
            if (*p == '@')
                for (size_t k = 0; k < nsubs && !hit; k++)
                    if (!subs[k].block && !strncmp(p, subs[k].key, strlen(subs[k].key)))
                        hit = &subs[k];
            if (hit) {
                fputs(hit->value, f);
                p += strlen(hit->key);
            } else {
                fputc(*p++, f);
            }
        }
    }
    if (fclose(f)) {
        fprintf(stderr, "hakmem new-box: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("  %s\n", path);
    return 0;
}

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 40 || !(name[0] >= 'a' && name[0] <= 'z'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return 0;
    return 1;
}

static int dir_is_empty(const char *dir)
{
    char probe[PATH_MAX];
    const char *files[] = { "CMakeLists.txt", "README.md" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(probe, sizeof probe, "%s/%s", dir, files[i]);
        if (access(probe, F_OK) == 0)
            return 0;
    }
    return 1;
}

static int make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* The prefix this hakmem runs from, if it holds the CMake package: the
 * install prefix, or the build folder (which has one too). */
static int kit_prefix(char *out, size_t len)
{
    char probe[PATH_MAX], resolved[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/..", cli_exe_dir());
    if (!realpath(probe, resolved))
        return -1;
    const char *libdirs[] = { "lib", "lib64", "lib/x86_64-linux-gnu" };
    for (size_t i = 0; i < sizeof libdirs / sizeof *libdirs; i++) {
        char cfg[PATH_MAX + 64];
        snprintf(cfg, sizeof cfg, "%s/%s/cmake/hakmem/hakmemConfig.cmake", resolved, libdirs[i]);
        if (access(cfg, R_OK) == 0) {
            snprintf(out, len, "%s", resolved);
            return 0;
        }
    }
    return -1;
}

/* A shipped config by name: installed, or in the source tree. */
static void shipped_config(char *out, size_t len, const char *name)
{
    char installed[PATH_MAX];
    snprintf(installed, sizeof installed, "%s/%s/configs/%s", cli_exe_dir(), HAKMEM_REL_DATADIR, name);
    char resolved[PATH_MAX];
    if (realpath(installed, resolved)) {
        snprintf(out, len, "%s", resolved);
        return;
    }
    snprintf(out, len, "%s/configs/%s", HAKMEM_SOURCE_DIR, name);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: hakmem new-box NAME [--role alloc|pages|observer] [--dir DIR] [--force]\n"
                 "  NAME     the plugin name: hakbox_NAME.so, [box.NAME]; lower case, digits, '_'\n"
                 "  --role   what the box does (default alloc)\n"
                 "  --dir    the project folder (default ./NAME)\n"
                 "  --force  write into a folder that already holds a project\n");
}

int cmd_new_box(int argc, char **argv)
{
    const char *name = NULL, *role_name = "alloc", *dir = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--role") && i + 1 < argc) {
            role_name = argv[++i];
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!name) {
        usage(stderr);
        return 2;
    }
    if (!valid_name(name)) {
        fprintf(stderr, "hakmem new-box: '%s': a box name starts with a lower-case letter and has only "
                        "a-z, 0-9 and '_' (at most 40)\n", name);
        return 2;
    }
    const struct role *role = NULL;
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (!strcmp(roles[i].name, role_name))
            role = &roles[i];
    if (!role) {
        fprintf(stderr, "hakmem new-box: --role %s: expected alloc, pages or observer\n", role_name);
        return 2;
    }
    char dir_buf[PATH_MAX];
    snprintf(dir_buf, sizeof dir_buf, "%s", dir ? dir : name);
    if (!force && !dir_is_empty(dir_buf)) {
        fprintf(stderr, "hakmem new-box: %s already holds a project (--force to overwrite)\n", dir_buf);
        return 1;
    }
    if (make_dirs(dir_buf)) {
        fprintf(stderr, "hakmem new-box: cannot create %s: %s\n", dir_buf, strerror(errno));
        return 1;
    }
    char stock[PATH_MAX + 32];
    snprintf(stock, sizeof stock, "%s/hakbox_%s.so", cli_lib_dir(), name);
    if (access(stock, F_OK) == 0)
        fprintf(stderr, "hakmem new-box: note: a stock box is named %s too (%s); configs that say plugin = %s "
                        "find yours first only through box_dir\n", name, stock, name);

    char prefix[PATH_MAX], hints[PATH_MAX + 16] = "", compare[PATH_MAX], source_file[HAK_NAME_MAX + 8],
        ini_file[HAK_NAME_MAX + 8];
    if (kit_prefix(prefix, sizeof prefix) == 0)
        snprintf(hints, sizeof hints, " HINTS \"%s\"", prefix);
    shipped_config(compare, sizeof compare, role->compare_with);
    snprintf(source_file, sizeof source_file, "%s.c", name);
    snprintf(ini_file, sizeof ini_file, "%s.ini", name);
    const struct subst subs[] = {
        { "@NAME@", name, NULL },
        { "@ROLE@", role->name, NULL },
        { "@HINTS@", hints, NULL },
        { "@BOXTEST_ARGS@", role->boxtest_args, NULL },
        { "@BOXTEST_WHAT@", role->boxtest_what, NULL },
        { "@PYTHON_REGEX@", role->python_regex, NULL },
        { "@WHAT@", role->what, NULL },
        { "@COMPARE_WITH@", compare, NULL },
        { "@BENCH_WORKLOADS@", role->bench_workloads, NULL },
        { "@PARAMS@", NULL, role->params },
    };
    size_t n = sizeof subs / sizeof *subs;
    printf("hakmem new-box: a box of role %s in %s\n", role->name, dir_buf);
    if (write_template(dir_buf, source_file, role->source, subs, n) ||
        write_template(dir_buf, "CMakeLists.txt", tmpl_cmakelists, subs, n) ||
        write_template(dir_buf, ini_file, role->ini, subs, n) ||
        write_template(dir_buf, "README.md", tmpl_readme, subs, n) ||
        write_template(dir_buf, ".gitignore", tmpl_gitignore, subs, n))
        return 1;
    printf("next:\n  cd %s\n  cmake -S . -B build%s\n  cmake --build build\n  ctest --test-dir build "
           "--output-on-failure\n", dir_buf, hints[0] ? "" : " -DCMAKE_PREFIX_PATH=<hakmem install prefix>");
    return 0;
}
