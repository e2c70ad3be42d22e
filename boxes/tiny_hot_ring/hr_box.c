/*
 * tiny_hot_ring: descriptor, parameters, instance creation, stats.
 *
 * create()'s set-up over below's classes is the box kit's, shared with
 * tiny_unified_cache (box_api/hakmem_front.h). What looks like uc_box.c but
 * stays here: the schema (this box's own names, defaults and docs, which
 * `hakmem boxes` prints), stats (they read the ring's head and tail) and
 * the descriptor.
 */
#include "hot_ring.h"

#include <box_api/hakmem_front.h>
#include <string.h>

enum {
    P_RING,
    P_RING_C0,
    P_RING_C7 = P_RING_C0 + 7,
    P_REFILL,
    P_DRAIN,
    P_CHECK_BLOCK_START,
    P_COUNT
};

#define HR_RING_MAX 65536

#define RING_C(n) [P_RING_C0 + n] = {"ring_c" #n, HAK_PARAM_INT, "0", 0, HR_RING_MAX, NULL, \
    "ring size of class " #n ", a power of two (0: ring), like HAKMEM_TINY_HOT_RING_C" #n}

static const struct hak_param hr_params[P_COUNT] = {
    [P_RING] = {"ring", HAK_PARAM_INT, "64", 2, HR_RING_MAX, NULL,
                "blocks each class ring holds per thread, a power of two"},
    RING_C(0), RING_C(1), RING_C(2), RING_C(3), RING_C(4), RING_C(5), RING_C(6), RING_C(7),
    [P_REFILL] = {"refill", HAK_PARAM_INT, "32", 1, HR_RING_MAX, NULL,
                  "blocks asked from below when a ring is empty (at most its size)"},
    [P_DRAIN] = {"drain", HAK_PARAM_INT, "0", 0, HR_RING_MAX, NULL,
                 "oldest blocks given below when a ring is full (0: half its size)"},
    [P_CHECK_BLOCK_START] = {"check_block_start", HAK_PARAM_BOOL, "on", 0, 1, NULL,
                             "refuse frees not on a block start (below must place blocks "
                             "at multiples of the class size from their 64 KB granule)"},
};

static const struct hak_link_decl hr_links[] = {
    {"below", HAK_ROLE_ALLOC, 1, "the box with the classes (superslab or tiny_unified_cache)"},
};

/* hakmem_front.h fills this box's tables: the same limits. */
_Static_assert(HR_MAX_CLASSES == HAK_FRONT_MAX_CLASSES && HR_NO_CLASS == HAK_FRONT_MAX_CLASSES &&
                   HR_SIZE_INDEX_MAX == HAK_FRONT_SIZE_INDEX_MAX,
               "hr's limits are hakmem_front.h's");

void hr_event(const struct hr_inst *in, uint16_t type, uint32_t cls, uint64_t count)
{
    hak_front_event(in->host, in->owner, type, cls, in->class_size[cls], count);
}

static void *hr_create(const struct hak_host *host, const struct hak_box_config *cfg,
                       char *err, size_t err_len)
{
    const struct hak_value *v = cfg->values;
    const struct hak_link *below = &cfg->links[0];
    uint32_t n = hak_front_class_count(below, err, err_len);
    if (!n)
        return NULL;
    for (uint32_t k = 0; k < 9; k++) {
        int64_t size = v[k == 0 ? P_RING : P_RING_C0 + k - 1].i;
        if (size && !hak_is_pow2((size_t)size)) {
            hak_front_error(err, err_len, hr_params[k == 0 ? P_RING : P_RING_C0 + k - 1].name,
                            ": ring sizes must be powers of two");
            return NULL;
        }
    }
    struct hr_inst *in = host->meta_alloc(sizeof *in);
    if (!in || !(in->pool_lock = hak_lock_new(host))) {
        hak_front_error(err, err_len, "out of metadata memory", "");
        return NULL;
    }
    in->host = host;
    in->below = *below;
    in->bops = &below->desc->ops;
    in->owner = cfg->owner;
    strncpy(in->name, cfg->instance_name ? cfg->instance_name : "tiny_hot_ring",
            sizeof in->name - 1);
    in->nclasses = n;
    in->secret = host->block_secret; /* the tiny free-marker convention */
    /* The default drain is ring / 2, rounded down. */
    static const struct hak_front_params params = {P_RING, P_RING_C0, P_REFILL, P_DRAIN, P_CHECK_BLOCK_START,
                                                    .drain_rounds_up = 0};
    const struct hak_front_tables tables = {in->class_size, in->size, in->refill, in->drain, in->slot_off,
                                            in->magic, in->cls_of, in->cls_off, &in->buf_slots};
    if (hak_front_setup(below, n, v, &params, sizeof(struct hr_class), &tables, err, err_len))
        return NULL;
    return in;
}

static void hr_destroy(void *inst) { (void)inst; }

static void hr_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct hr_inst *in = inst;
    struct hr_tls *t = tls;
    if (!t)
        return;
    for (uint32_t c = 0; c < in->nclasses; c++) {
        uint64_t allocs = hr_allocs(&t->cls[c]);
        out->allocs += allocs;
        out->frees += t->cls[c].frees;
        out->bytes_allocated += allocs * in->class_size[c];
        out->bytes_freed += t->cls[c].frees * in->class_size[c];
        out->cached_bytes += (uint64_t)(t->cls[c].head - t->cls[c].tail) * in->class_size[c];
    }
    out->refills += t->refills;
    out->drains += t->drains;
}

static void hr_fork_prepare(void *inst) { hak_spin_fork_prepare(((struct hr_inst *)inst)->pool_lock); }
static void hr_fork_parent(void *inst) { hak_spin_fork_parent(((struct hr_inst *)inst)->pool_lock); }
static void hr_fork_child(void *inst) { hak_spin_fork_child(((struct hr_inst *)inst)->pool_lock); }

static uint32_t hr_class_count(void *inst) { return ((struct hr_inst *)inst)->nclasses; }

static size_t hr_class_size(void *inst, uint32_t cls)
{
    struct hr_inst *in = inst;
    return cls < in->nclasses ? in->class_size[cls] : 0;
}

static const struct hak_box_desc hr_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "tiny_hot_ring",
    .summary = "tiny front: per-thread per-class ring buffers, oldest blocks evicted below",
    .roles = HAK_ROLE_ALLOC,
    .flags = HAK_BOX_FLAG_FRONT,
    .params = hr_params,
    .param_count = P_COUNT,
    .links = hr_links,
    .link_count = sizeof hr_links / sizeof hr_links[0],
    .tls_size = sizeof(struct hr_tls),
    .ops = {
        .create = hr_create,
        .destroy = hr_destroy,
        .thread_init = hr_thread_init,
        .thread_exit = hr_thread_exit,
        .fork_prepare = hr_fork_prepare,
        .fork_parent = hr_fork_parent,
        .fork_child = hr_fork_child,
        .stats = hr_stats,
        .trim = hr_trim,
        .alloc = hr_alloc,
        .free = hr_free,
        .usable_size = hr_usable_size,
        .class_count = hr_class_count,
        .class_size = hr_class_size,
        .alloc_batch = hr_alloc_batch,
        .free_batch = hr_free_batch,
        .free_remote = hr_free_remote,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &hr_desc; }
