/*
 * superslab: descriptor, parameters, instance creation, stats, fork hooks.
 */
#include "superslab.h"

#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>

enum {
    P_CLASSES,
    P_SUPERSLAB_SIZE,
    P_KEEP_EMPTY,
    P_ORPHAN_SCAN,
    P_FREE_COMMITTED,
    P_PURGE_DELAY,
    P_OWNER_IDLE,
    P_COUNT
};

static const struct hak_param ss_params[P_COUNT] = {
    [P_CLASSES] = {"classes", HAK_PARAM_SIZE_LIST, "16,32,48,64,80,96,128,160,192,256,320,384,512,640,768,1024", 8, 1024, NULL,
                   "block sizes, increasing; multiples of 16 (an 8 first is allowed)"},
    [P_SUPERSLAB_SIZE] = {"superslab_size", HAK_PARAM_SIZE, "2M", 128 << 10, 16 << 20, NULL,
                          "bytes per SuperSlab from the pages box; power of two"},
    [P_KEEP_EMPTY] = {"keep_empty_superslabs", HAK_PARAM_INT, "1", 0, 1 << 20, NULL,
                      "wholly free SuperSlabs kept instead of given back to the pages box"},
    [P_ORPHAN_SCAN] = {"orphan_scan", HAK_PARAM_INT, "8", 1, 1 << 20, NULL,
                       "orphaned slabs examined per slab request before taking a free slab"},
    [P_FREE_COMMITTED] = {"free_slabs_committed", HAK_PARAM_INT, "256", 0, 1 << 20, NULL,
                          "free slabs (64 KB each) kept committed for the next slab request "
                          "of any thread; beyond them the oldest are decommitted"},
    [P_PURGE_DELAY] = {"purge_delay_ms", HAK_PARAM_INT, "1000", 0, 3600000, NULL,
                       "a free slab committed this long without reuse is decommitted"},
    [P_OWNER_IDLE] = {"owner_idle_ms", HAK_PARAM_INT, "10", 0, 3600000, NULL,
                      "blocks of a thread that has not refilled for this long are reused by "
                      "the thread freeing them (borrowed; under live_home the slab is lent), "
                      "not sent home (0: never borrowed or lent)"},
};

static const struct hak_link_decl ss_links[] = {
    {"pages", HAK_ROLE_PAGES, 1, "page box the SuperSlabs come from"},
};

/* ---- small helpers ---------------------------------------------------- */

#define NO_NUMBER UINT64_MAX

/* err = a + number + b, without printf (boxes never print). */
static void ss_error(char *err, size_t len, const char *a, uint64_t num, const char *b)
{
    char digits[24];
    size_t nd = 0, at = 0;
    if (!err || !len)
        return;
    while (num != NO_NUMBER) {
        digits[nd++] = (char)('0' + num % 10);
        num /= 10;
        if (!num)
            break;
    }
    for (const char *s = a; *s && at + 1 < len; s++)
        err[at++] = *s;
    while (nd && at + 1 < len)
        err[at++] = digits[--nd];
    for (const char *s = b; *s && at + 1 < len; s++)
        err[at++] = *s;
    err[at] = 0;
}

static uint64_t ss_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t ss_random_word(unsigned which)
{
    uint64_t w = 0x9e3779b97f4a7c15ull;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r)
        memcpy(&w, r + 8 * (which & 1), sizeof w);
    return w;
}


void ss_event(const struct ss_inst *in, uint16_t type, uint32_t bucket, const void *addr,
              uint64_t bytes, uint64_t count)
{
    struct hak_event ev = {
        .type = type,
        .bucket = (uint16_t)bucket,
        .owner = in->owner,
        .addr = addr,
        .bytes = bytes,
        .count = count,
    };
    in->host->event(&ev);
}

/* Hardened free lists: links are stored XOR a secret and their own
 * address; a decoded link that leaves its slab was overwritten. */
__attribute__((noinline)) void *ss_link_get_hardened(const struct ss_inst *in,
                                                     const struct ss_slab *s, void *p)
{
    void **at = ss_link_addr(s, p);
    uintptr_t next = *(uintptr_t *)at ^ ss_link_code(in, at);
    if (HAK_UNLIKELY(next && ((next ^ (uintptr_t)p) >> HAK_GRANULE_SHIFT))) {
        in->host->bad_free(in->name, "corrupted free list", p);
        return NULL;
    }
    return (void *)next;
}

/* ---- lifecycle -------------------------------------------------------- */

static int ss_setup_classes(struct ss_inst *in, const struct hak_value *v, char *err,
                            size_t err_len)
{
    if (v->count == 0 || v->count > SS_MAX_CLASSES) {
        ss_error(err, err_len, "classes: between 1 and ", SS_MAX_CLASSES, " sizes");
        return 0;
    }
    for (uint32_t c = 0; c < v->count; c++) {
        uint64_t size = v->list[c];
        bool ok = size >= 8 && size <= SS_SIZE_INDEX_MAX * 8 &&
                  (size % HAK_MIN_ALIGN == 0 || (size == 8 && c == 0)) &&
                  (c == 0 || size > v->list[c - 1]);
        if (!ok) {
            ss_error(err, err_len, "classes: ", size,
                     " is not a multiple of 16 up to 1024 (only the first may be 8)");
            return 0;
        }
        in->class_size[c] = (uint32_t)size;
        in->divmagic[c] = ss_divmagic((uint32_t)size);
    }
    in->nclasses = v->count;
    in->max_size = in->class_size[v->count - 1];
    /* Index i covers sizes 8i-7 .. 8i: the smallest class holding 8i. */
    uint32_t c = 0; /* sizes ascend: resume from the last class */
    for (uint32_t i = 0; i <= SS_SIZE_INDEX_MAX; i++) {
        while (c < in->nclasses && in->class_size[c] < i * 8)
            c++;
        in->cls_of[i] = (uint8_t)c; /* nclasses: no class, alloc says NULL */
    }
    return 1;
}

static void *ss_create(const struct hak_host *host, const struct hak_box_config *cfg,
                       char *err, size_t err_len)
{
    const struct hak_value *v = cfg->values;
    const struct hak_link *pages = &cfg->links[0];
    uint64_t ss_size = (uint64_t)v[P_SUPERSLAB_SIZE].i;

    if (!pages->desc || !pages->desc->ops.pages_alloc || !pages->desc->ops.pages_free) {
        ss_error(err, err_len, "pages: the linked box serves no pages", NO_NUMBER, "");
        return NULL;
    }
    if (!hak_is_pow2(ss_size) || ss_size < 2 * HAK_GRANULE) {
        ss_error(err, err_len, "superslab_size: ", ss_size,
                 " is not a power of two of at least 128K");
        return NULL;
    }
    struct ss_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->lock = hak_lock_new(host))) {
        ss_error(err, err_len, "out of metadata memory (", sizeof *in, " bytes)");
        return NULL;
    }
    in->host = host;
    in->growing = HAK_HOST_HAS(host, growing) ? host->growing : NULL;
    in->pages = *pages;
    in->owner = cfg->owner;
    in->hardened = cfg->hardened != 0;
    in->marks_threads = HAK_HOST_HAS(host, set_thread_owner);
    in->lends = in->marks_threads && HAK_HOST_HAS(host, lend_slab);
    strncpy(in->name, cfg->instance_name ? cfg->instance_name : "superslab",
            sizeof in->name - 1);
    if (!ss_setup_classes(in, &v[P_CLASSES], err, err_len))
        return NULL; /* meta memory is never freed: a few hundred bytes lost */
    in->ss_size = (size_t)ss_size;
    in->ss_mask = ~(uintptr_t)(ss_size - 1);
    in->ss_granules = (uint32_t)(ss_size >> HAK_GRANULE_SHIFT);
    in->granule_index_mask = in->ss_granules - 1;
    in->keep_empty = (uint32_t)v[P_KEEP_EMPTY].i;
    in->orphan_scan = (uint32_t)v[P_ORPHAN_SCAN].i;
    in->warm_max = (uint64_t)v[P_FREE_COMMITTED].i;
    in->purge_delay_ns = (uint64_t)v[P_PURGE_DELAY].i * 1000000u;
    in->owner_idle_ns = (uint64_t)v[P_OWNER_IDLE].i * 1000000u;
    in->mark_secret = host->block_secret; /* the tiny free-marker convention */
    in->list_key = in->hardened ? ss_mix64(ss_random_word(1) ^ (uintptr_t)in) : 0;
    atomic_init(&in->next_slice_id, 1);
    /* Metadata must fit the first granule (checked by the size range). */
    if (offsetof(struct ss_head, slabs) + in->ss_granules * sizeof(struct ss_slab) >
        HAK_GRANULE) {
        ss_error(err, err_len, "superslab_size: ", ss_size, " leaves no room for metadata");
        return NULL;
    }
    return in;
}

static void ss_destroy(void *inst)
{
    /* Memory goes with the process (the host unmaps at exit if it wants). */
    (void)inst;
}

/* ---- stats, fork ------------------------------------------------------ */

static void ss_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct ss_inst *in = inst;
    if (tls) {
        struct ss_tls *t = tls;
        for (uint32_t c = 0; c < in->nclasses; c++) {
            out->allocs += t->cls[c].allocs;
            out->frees += t->cls[c].frees;
            out->bytes_allocated += t->cls[c].allocs * in->class_size[c];
            out->bytes_freed += t->cls[c].frees * in->class_size[c];
            out->cached_bytes += (uint64_t)t->cls[c].borrowed_n * in->class_size[c];
        }
        out->refills += t->refills;
        out->drains += t->drains;
        out->remote_frees += t->remote_frees;
        return;
    }
    hak_spin_lock(in->lock);
    out->cached_bytes += in->free_slabs * SS_SLAB_SIZE;
    hak_spin_unlock(in->lock);
}

static void ss_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct ss_inst *)inst)->lock); }
static void ss_fork_parent(void *inst) { hak_spin_fork_parent(((struct ss_inst *)inst)->lock); }
static void ss_fork_child(void *inst) { hak_spin_fork_child(((struct ss_inst *)inst)->lock); }

static uint32_t ss_class_count(void *inst) { return ((struct ss_inst *)inst)->nclasses; }

static size_t ss_class_size(void *inst, uint32_t cls)
{
    struct ss_inst *in = inst;
    return cls < in->nclasses ? in->class_size[cls] : 0;
}

static const struct hak_box_desc ss_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "superslab",
    .summary = "tiny backend: 2 MB SuperSlabs of 64 KB one-class slabs, per-thread owned",
    .roles = HAK_ROLE_ALLOC,
    .flags = 0,
    .params = ss_params,
    .param_count = P_COUNT,
    .links = ss_links,
    .link_count = sizeof ss_links / sizeof ss_links[0],
    .tls_size = sizeof(struct ss_tls),
    .ops = {
        .create = ss_create,
        .destroy = ss_destroy,
        .thread_init = ss_thread_init,
        .thread_exit = ss_thread_exit,
        .fork_prepare = ss_fork_prepare,
        .fork_parent = ss_fork_parent,
        .fork_child = ss_fork_child,
        .stats = ss_stats,
        .trim = ss_trim,
        .reclaim = ss_reclaim,
        .alloc = ss_alloc,
        .free = ss_free,
        .usable_size = ss_usable_size,
        .class_count = ss_class_count,
        .class_size = ss_class_size,
        .alloc_batch = ss_alloc_batch,
        .free_batch = ss_free_batch,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &ss_desc; }
