/*
 * tiny_hot_ring: descriptor, parameters, instance creation, stats.
 */
#include "hot_ring.h"

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

static void hr_error(char *err, size_t len, const char *a, const char *b)
{
    size_t at = 0;
    if (!err || !len)
        return;
    for (const char *s = a; *s && at + 1 < len; s++)
        err[at++] = *s;
    for (const char *s = b; *s && at + 1 < len; s++)
        err[at++] = *s;
    err[at] = 0;
}


void hr_event(const struct hr_inst *in, uint16_t type, uint32_t cls, uint64_t count)
{
    struct hak_event ev = {
        .type = type,
        .bucket = (uint16_t)(HAK_BUCKET_C0 + (cls < 7 ? cls : 7)),
        .owner = in->owner,
        .bytes = count * in->class_size[cls],
        .count = count,
    };
    in->host->event(&ev);
}

static void *hr_create(const struct hak_host *host, const struct hak_box_config *cfg,
                       char *err, size_t err_len)
{
    const struct hak_value *v = cfg->values;
    const struct hak_link *below = &cfg->links[0];
    const struct hak_box_ops *b = below->desc ? &below->desc->ops : NULL;

    if (!b || !b->class_count || !b->class_size || !b->alloc_batch || !b->free_batch) {
        hr_error(err, err_len, "below: the linked box has no class interface ",
                 "(class_count/class_size/alloc_batch/free_batch)");
        return NULL;
    }
    uint32_t n = b->class_count(below->inst);
    if (n == 0 || n > HR_MAX_CLASSES) {
        hr_error(err, err_len, "below: ", "between 1 and 16 classes are supported");
        return NULL;
    }
    for (uint32_t k = 0; k < 9; k++) {
        int64_t size = v[k == 0 ? P_RING : P_RING_C0 + k - 1].i;
        if (size && !hak_is_pow2((size_t)size)) {
            hr_error(err, err_len, hr_params[k == 0 ? P_RING : P_RING_C0 + k - 1].name,
                     ": ring sizes must be powers of two");
            return NULL;
        }
    }
    struct hr_inst *in = host->meta_alloc(sizeof *in);
    if (!in) {
        hr_error(err, err_len, "out of metadata memory", "");
        return NULL;
    }
    in->host = host;
    in->below = *below;
    in->bops = b;
    in->owner = cfg->owner;
    strncpy(in->name, cfg->instance_name ? cfg->instance_name : "tiny_hot_ring",
            sizeof in->name - 1);
    in->nclasses = n;
    in->secret = host->block_secret; /* the tiny free-marker convention */
    uint32_t slots = 0;
    for (uint32_t c = 0; c < n; c++) {
        size_t size = b->class_size(below->inst, c);
        if (size < 8 || size > HR_SIZE_INDEX_MAX * 8 || size % 8 ||
            (c && size <= in->class_size[c - 1])) {
            hr_error(err, err_len, "below: ",
                     "class sizes must increase, be multiples of 8 and at most 1024");
            return NULL;
        }
        in->class_size[c] = (uint32_t)size;
        int64_t ring = c < 8 && v[P_RING_C0 + c].i ? v[P_RING_C0 + c].i : v[P_RING].i;
        in->size[c] = (uint32_t)ring;
        in->refill[c] = v[P_REFILL].i < ring ? (uint32_t)v[P_REFILL].i : (uint32_t)ring;
        int64_t drain = v[P_DRAIN].i ? v[P_DRAIN].i : ring / 2;
        in->drain[c] = drain < ring ? (uint32_t)drain : (uint32_t)ring;
        in->slot_off[c] = slots;
        slots += (uint32_t)ring;
        in->magic[c] = v[P_CHECK_BLOCK_START].i ? UINT64_MAX / size + 1 : 0;
    }
    in->buf_slots = slots;
    for (uint32_t i = 0; i <= HR_SIZE_INDEX_MAX; i++) {
        uint32_t c = 0;
        while (c < n && in->class_size[c] < i * 8)
            c++;
        in->cls_of[i] = (uint8_t)(c < n ? c : HR_NO_CLASS);
        in->cls_off[i] = (uint16_t)(in->cls_of[i] * sizeof(struct hr_class));
    }
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

static void hr_fork_prepare(void *inst) { hak_spin_lock(&((struct hr_inst *)inst)->pool_lock); }
static void hr_fork_parent(void *inst) { hak_spin_unlock(&((struct hr_inst *)inst)->pool_lock); }
static void hr_fork_child(void *inst) { hak_spin_reset(&((struct hr_inst *)inst)->pool_lock); }

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
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &hr_desc; }
