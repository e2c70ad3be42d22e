/*
 * tiny_unified_cache: descriptor, parameters, instance creation, stats.
 *
 * The checks and tables of create() come from the box kit
 * (box_api/hakmem_front.h), as for tiny_hot_ring. Kept apart from
 * hr_box.c though alike: the parameter schema (capacity_cN, its defaults
 * and docs are this box's interface), stats (array stacks: top - base) and
 * the descriptor, which publishes the fast stacks.
 */
#include "unified_cache.h"

#include <box_api/hakmem_front.h>
#include <string.h>

enum {
    P_CAPACITY,
    P_CAPACITY_C0,
    P_CAPACITY_C7 = P_CAPACITY_C0 + 7,
    P_REFILL,
    P_DRAIN,
    P_CHECK_BLOCK_START,
    P_COUNT
};

#define UC_CAP_MAX 65536

#define CAP_C(n) [P_CAPACITY_C0 + n] = {"capacity_c" #n, HAK_PARAM_INT, "0", 0, UC_CAP_MAX, \
    NULL, "stack size of class " #n " (0: capacity), like HAKMEM_TINY_UNIFIED_C" #n}

static const struct hak_param uc_params[P_COUNT] = {
    [P_CAPACITY] = {"capacity", HAK_PARAM_INT, "128", 1, UC_CAP_MAX, NULL,
                    "blocks each class stack holds per thread"},
    CAP_C(0), CAP_C(1), CAP_C(2), CAP_C(3), CAP_C(4), CAP_C(5), CAP_C(6), CAP_C(7),
    [P_REFILL] = {"refill", HAK_PARAM_INT, "32", 1, UC_CAP_MAX, NULL,
                  "blocks asked from below when a stack is empty (at most its size)"},
    [P_DRAIN] = {"drain", HAK_PARAM_INT, "0", 0, UC_CAP_MAX, NULL,
                 "oldest blocks given below when a stack is full (0: half its size)"},
    [P_CHECK_BLOCK_START] = {"check_block_start", HAK_PARAM_BOOL, "on", 0, 1, NULL,
                             "refuse frees not on a block start (below must place blocks "
                             "at multiples of the class size from their 64 KB granule)"},
};

static const struct hak_link_decl uc_links[] = {
    {"below", HAK_ROLE_ALLOC, 1, "the box with the classes (superslab)"},
};

/* The tables hakmem_front.h fills are sized by the same limits. */
_Static_assert(UC_MAX_CLASSES == HAK_FRONT_MAX_CLASSES && UC_NO_CLASS == HAK_FRONT_MAX_CLASSES &&
                   UC_SIZE_INDEX_MAX == HAK_FRONT_SIZE_INDEX_MAX,
               "uc's limits are hakmem_front.h's");

void uc_event(const struct uc_inst *in, uint16_t type, uint32_t cls, uint64_t count)
{
    hak_front_event(in->host, in->owner, type, cls, in->class_size[cls], count);
}

static void *uc_create(const struct hak_host *host, const struct hak_box_config *cfg,
                       char *err, size_t err_len)
{
    const struct hak_value *v = cfg->values;
    const struct hak_link *below = &cfg->links[0];
    uint32_t n = hak_front_class_count(below, err, err_len);
    if (!n)
        return NULL;
    struct uc_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->pool_lock = hak_lock_new(host))) {
        hak_front_error(err, err_len, "out of metadata memory", "");
        return NULL;
    }
    in->host = host;
    in->below = *below;
    in->bops = &below->desc->ops;
    in->owner = cfg->owner;
    strncpy(in->name, cfg->instance_name ? cfg->instance_name : "tiny_unified_cache",
            sizeof in->name - 1);
    in->nclasses = n;
    in->hardened = cfg->hardened;
    in->secret = host->block_secret; /* the tiny free-marker convention */
    /* The default drain is (capacity + 1) / 2. */
    static const struct hak_front_params params = {P_CAPACITY, P_CAPACITY_C0, P_REFILL, P_DRAIN, P_CHECK_BLOCK_START,
                                                    .drain_rounds_up = 1};
    const struct hak_front_tables tables = {in->class_size, in->cap, in->refill, in->drain, in->slot_off,
                                            in->magic, in->cls_of, in->cls_off, &in->buf_slots};
    if (hak_front_setup(below, n, v, &params, sizeof(struct uc_class), &tables, err, err_len))
        return NULL;
    return in;
}

static void uc_destroy(void *inst) { (void)inst; }

static void uc_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct uc_inst *in = inst;
    struct uc_tls *t = tls;
    if (!t)
        return;
    for (uint32_t c = 0; c < in->nclasses; c++) {
        uint64_t allocs = uc_allocs(&t->cls[c]);
        out->allocs += allocs;
        out->frees += t->cls[c].frees;
        out->bytes_allocated += allocs * in->class_size[c];
        out->bytes_freed += t->cls[c].frees * in->class_size[c];
        out->cached_bytes += (uint64_t)uc_count(&t->cls[c]) * in->class_size[c];
    }
    out->refills += t->refills;
    out->drains += t->drains;
}

static void uc_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct uc_inst *)inst)->pool_lock); }
static void uc_fork_parent(void *inst) { hak_spin_fork_parent(((struct uc_inst *)inst)->pool_lock); }
static void uc_fork_child(void *inst) { hak_spin_fork_child(((struct uc_inst *)inst)->pool_lock); }

static uint32_t uc_class_count(void *inst) { return ((struct uc_inst *)inst)->nclasses; }

static size_t uc_class_size(void *inst, uint32_t cls)
{
    struct uc_inst *in = inst;
    return cls < in->nclasses ? in->class_size[cls] : 0;
}

static const struct hak_box_desc uc_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "tiny_unified_cache",
    .summary = "tiny front: per-thread per-class array stacks refilled in batches from below",
    .roles = HAK_ROLE_ALLOC,
    .flags = HAK_BOX_FLAG_FRONT,
    .params = uc_params,
    .param_count = P_COUNT,
    .links = uc_links,
    .link_count = sizeof uc_links / sizeof uc_links[0],
    .tls_size = sizeof(struct uc_tls),
    /* The host pops and pushes cls[] itself (hak_fast_stack protocol). */
    .fast_stack_offset = offsetof(struct uc_tls, cls),
    .fast_stack_stride = sizeof(struct uc_class),
    .ops = {
        .create = uc_create,
        .destroy = uc_destroy,
        .thread_init = uc_thread_init,
        .thread_exit = uc_thread_exit,
        .fork_prepare = uc_fork_prepare,
        .fork_parent = uc_fork_parent,
        .fork_child = uc_fork_child,
        .stats = uc_stats,
        .trim = uc_trim,
        .alloc = uc_alloc,
        .free = uc_free,
        .usable_size = uc_usable_size,
        .class_count = uc_class_count,
        .class_size = uc_class_size,
        .alloc_batch = uc_alloc_batch,
        .free_batch = uc_free_batch,
        .free_remote = uc_free_remote,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &uc_desc; }
