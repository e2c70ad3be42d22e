/*
 * system: forwards to glibc's allocator. For size ranges a config wants left
 * to glibc (a baseline, or a range no box serves yet), and a terminal box
 * that serves any size and alignment.
 *
 * Blocks come from glibc, so the region map does not know them: the host
 * sends their frees straight to glibc (owner 0), and this box never sees
 * them. Its counters therefore count allocations only.
 */
#include <box_api/hakmem_box.h>

struct system_box {
    const struct hak_host *host;
};

struct system_tls {
    struct hak_tls_head head;
    uint64_t allocs, bytes;
};

static void *system_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,
                           size_t err_len)
{
    (void)cfg;
    (void)err;
    (void)err_len;
    struct system_box *box = host->meta_alloc(sizeof *box);
    if (box)
        box->host = host;
    return box;
}

static inline const struct hak_host *host_of(void *tls)
{
    return ((struct system_box *)((struct hak_tls_head *)tls)->inst)->host;
}

static void *system_alloc(void *tls, size_t size)
{
    struct system_tls *t = tls;
    void *p = host_of(tls)->libc_malloc(size);
    if (p) {
        t->allocs++;
        t->bytes += size;
    }
    return p;
}

static void *system_alloc_aligned(void *tls, size_t size, size_t align)
{
    struct system_tls *t = tls;
    void *p = host_of(tls)->libc_memalign(align, size);
    if (p) {
        t->allocs++;
        t->bytes += size;
    }
    return p;
}

/* Never called for glibc's blocks (the host frees them directly); kept for
 * the ABI's alloc role. */
static void system_free(void *tls, void *p, uint16_t tag)
{
    (void)tag;
    host_of(tls)->libc_free(p);
}

static size_t system_usable_size(void *tls, const void *p, uint16_t tag)
{
    (void)tag;
    return host_of(tls)->libc_usable_size((void *)p);
}

static void system_stats(void *inst, void *tls, struct hak_stats *out)
{
    (void)inst;
    if (!tls)
        return;
    struct system_tls *t = tls;
    out->allocs += t->allocs;
    out->bytes_allocated += t->bytes;
}

static const struct hak_box_desc system_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "system",
    .summary = "glibc's malloc for a size range; a terminal box (any size, any alignment)",
    .roles = HAK_ROLE_ALLOC,
    .flags = HAK_BOX_FLAG_TERMINAL,
    .tls_size = sizeof(struct system_tls),
    .ops = {
        .create = system_create,
        .stats = system_stats,
        .alloc = system_alloc,
        .alloc_aligned = system_alloc_aligned,
        .free = system_free,
        .usable_size = system_usable_size,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)
{
    return &system_desc;
}
