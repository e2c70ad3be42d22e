/*
 * Boxes that exist only for the host's tests:
 *   test_link  (pages role): a `below` link and a size parameter, for the
 *              config checks on links, cycles and parameter values;
 *   test_abi2  built with -DTEST_ABI_VERSION=2: the host must refuse it.
 */
#include <box_api/hakmem_box.h>

#ifndef TEST_ABI_VERSION
#define TEST_ABI_VERSION HAK_BOX_ABI_VERSION
#endif

struct test_box {
    const struct hak_host *host;
};

static void *test_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err, size_t len)
{
    (void)cfg;
    (void)err;
    (void)len;
    struct test_box *box = host->meta_alloc(sizeof *box);
    if (box)
        box->host = host;
    return box;
}

static void *test_pages_alloc(void *tls, size_t bytes, size_t align, uint16_t owner, uint16_t tag)
{
    struct test_box *box = ((struct hak_tls_head *)tls)->inst;
    return box->host->map(owner, bytes, align, tag);
}

static void test_pages_free(void *tls, void *p, size_t bytes)
{
    struct test_box *box = ((struct hak_tls_head *)tls)->inst;
    box->host->unmap(p, bytes);
}

static const struct hak_param test_params[] = {
    { "span", HAK_PARAM_SIZE, "64K", 65536, 1 << 30, NULL, "span size (unused)" },
};

static const struct hak_link_decl test_links[] = {
    { "below", HAK_ROLE_PAGES, 0, "a pages box (unused)" },
};

static const struct hak_box_desc test_desc = {
    .abi_version = TEST_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "test_link",
    .summary = "test box: pages role with a link and a parameter",
    .roles = HAK_ROLE_PAGES,
    .params = test_params,
    .param_count = 1,
    .links = test_links,
    .link_count = 1,
    .tls_size = sizeof(struct hak_tls_head),
    .ops = {
        .create = test_create,
        .pages_alloc = test_pages_alloc,
        .pages_free = test_pages_free,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)
{
    return &test_desc;
}
