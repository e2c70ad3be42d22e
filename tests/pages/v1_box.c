/*
 * A box as built before alloc_zeroed was added at the end of the ops table:
 * its descriptor says struct_size = HAK_BOX_DESC_V1_SIZE (V1_BOX_TOO_SHORT:
 * 8 bytes less, which the host must refuse). The alloc_zeroed slot it
 * physically has aborts, so a host reading past the descriptor's size
 * fails the test. One mapping per block, header in the first 64 bytes.
 */
#include <box_api/hakmem_box.h>

#include <stdio.h>
#include <stdlib.h>

struct v1_inst {
    const struct hak_host *host;
    uint16_t owner;
};

struct v1_tls {
    struct hak_tls_head head;
};

static void *v1_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,
                       size_t err_len)
{
    struct v1_inst *in = host->meta_alloc(sizeof *in);
    if (!in) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    return in;
}

static void *v1_alloc(void *tls, size_t size)
{
    struct v1_inst *in = ((struct hak_tls_head *)tls)->inst;
    size_t bytes = (size + 64 + HAK_GRANULE - 1) & ~(HAK_GRANULE - 1);
    char *base = in->host->map(in->owner, bytes, 0, 0);
    if (!base)
        return NULL;
    *(size_t *)base = bytes;
    return base + 64;
}

static void v1_free(void *tls, void *p, uint16_t tag)
{
    (void)tag;
    struct v1_inst *in = ((struct hak_tls_head *)tls)->inst;
    char *base = (char *)p - 64;
    in->host->unmap(base, *(size_t *)base);
}

static size_t v1_usable_size(void *tls, const void *p, uint16_t tag)
{
    (void)tls;
    (void)tag;
    return *(const size_t *)((const char *)p - 64) - 64;
}

static void *v1_alloc_zeroed(void *tls, size_t size)
{
    (void)tls;
    (void)size;
    abort(); /* not part of this box's descriptor: the host must not call it */
}

#ifdef V1_BOX_TOO_SHORT
#define V1_SIZE (HAK_BOX_DESC_V1_SIZE - 8)
#else
#define V1_SIZE HAK_BOX_DESC_V1_SIZE
#endif

static const struct hak_box_desc v1_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = V1_SIZE,
    .name = "v1_box",
    .summary = "test: a box built before alloc_zeroed existed",
    .roles = HAK_ROLE_ALLOC,
    .flags = HAK_BOX_FLAG_TERMINAL,
    .tls_size = sizeof(struct v1_tls),
    .ops = {
        .create = v1_create,
        .alloc = v1_alloc,
        .free = v1_free,
        .usable_size = v1_usable_size,
        .alloc_zeroed = v1_alloc_zeroed,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &v1_desc; }
