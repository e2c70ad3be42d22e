/* The test harness: the host core started from INI text (box_harness.h). */
#include "box_harness.h"
#include "internal.h"

#include <string.h>

static struct hak_plan harness_plan;
static struct hak_cfg_raw harness_raw;

int harness_try_open(const char *ini_text, char *err_out, size_t err_len)
{
    struct hak_error err = { "" };
    if (hak_plan_load(&harness_plan, &harness_raw, ini_text, strlen(ini_text), "(test config)",
                      NULL, NULL, &err) ||
        hak_runtime_start(&harness_plan, &err)) {
        if (err_out && err_len)
            snprintf(err_out, err_len, "%s", err.msg);
        return -1;
    }
    return 0;
}

void harness_open(const char *ini_text)
{
    char err[1024];
    if (harness_try_open(ini_text, err, sizeof err)) {
        fprintf(stderr, "harness_open: %s\n", err);
        exit(2);
    }
}

void *harness_malloc(size_t size) { return hak_malloc(size); }
void harness_free(void *p) { hak_free(p); }
void *harness_calloc(size_t n, size_t size) { return hak_calloc(n, size); }
void *harness_realloc(void *p, size_t size) { return hak_realloc(p, size); }
void *harness_memalign(size_t align, size_t size) { return hak_memalign(align, size); }
size_t harness_usable_size(const void *p) { return hak_usable_size(p); }

static const struct hak_instance *instance(const char *name)
{
    int i = hak_instance_find(&harness_plan, name);
    if (i < 0) {
        fprintf(stderr, "harness: no box instance named '%s'\n", name);
        abort();
    }
    return &harness_plan.instances[i];
}

const struct hak_box_desc *harness_desc(const char *name) { return instance(name)->desc; }
void *harness_inst(const char *name) { return instance(name)->inst; }
uint16_t harness_owner(const char *name) { return instance(name)->owner; }

void *harness_tls(const char *name)
{
    const struct hak_instance *in = instance(name);
    char *block = hak_thread_acquire();
    hak_thread_release(block);
    return block + in->tls_offset;
}

const struct hak_host *harness_host(void) { return &hak_host_services; }
uint32_t harness_lookup(const void *p) { return hak_region_lookup(p); }
void harness_thread_exit(void) { hak_thread_exit_now(); }

struct hak_stats harness_stats(const char *name)
{
    struct hak_stats s;
    hak_stats_collect(&harness_plan, hak_instance_find(&harness_plan, name), &s);
    return s;
}

uint64_t harness_bytes_mapped(const char *name)
{
    return atomic_load(&instance(name)->bytes_mapped);
}
