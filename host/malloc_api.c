/*
 * The exported malloc family of libhakmem.so, with glibc's semantics, and
 * the host's start-up. Everything here forwards to runtime.c; only the
 * argument checks that the C library specifies live here.
 */
#include "fastpath.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* configs/default.ini, parsed at build time (host/embed_config.c). */
extern const struct hak_cfg_text_entry hak_embedded_entries[];
extern const int hak_embedded_entry_count;
extern const char hak_embedded_name[];

static __thread int tls_starting __attribute__((tls_model("initial-exec")));
static _Atomic int start_claimed;
static struct hak_cfg_raw start_raw;
static struct hak_plan start_plan;
static char start_text[HAK_CONFIG_MAX];

static void start_failed(const struct hak_error *err)
{
    hak_logf("hakmem: %s\n", err->msg);
    if (hak_config_error_policy(&start_raw) == HAK_ON_ERROR_FALLBACK) {
        hak_logf("hakmem: warning: host.on_config_error = fallback: this program runs on the "
                 "system allocator (glibc), not on hakmem\n");
        atomic_store(&hak_runtime_state, 2);
        return;
    }
    _exit(HAK_EXIT_CONFIG);
}

/* Start the runtime once; another thread waits until the start is over. */
static void lazy_start(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&start_claimed, &expected, 1)) {
        while (atomic_load(&hak_runtime_state) == 0)
            sched_yield();
        return;
    }
    tls_starting = 1;
    struct hak_error err = { "" };
    const char *path = secure_getenv("HAKMEM_CONFIG");
    size_t len;
    int failed;
    if (path && *path)
        failed = hak_read_file(path, start_text, sizeof start_text, &len, &err) ||
                 hak_config_parse_text(&start_raw, start_text, len, path, &err);
    else
        failed = hak_config_from_entries(&start_raw, hak_embedded_name, hak_embedded_entries,
                                         hak_embedded_entry_count, &err);
    if (failed) {
        tls_starting = 0;
        start_failed(&err);
        return;
    }
    char lib_dir[PATH_MAX] = "";
    hak_object_dir((const void *)lazy_start, lib_dir, sizeof lib_dir);
    if (hak_config_apply_overrides(&start_raw, secure_getenv("HAKMEM_SET"), &err) ||
        hak_plan_resolve(&start_plan, &start_raw, lib_dir, &err) ||
        hak_runtime_start(&start_plan, &err)) {
        tls_starting = 0;
        start_failed(&err);
        return;
    }
    tls_starting = 0;
}

/* A call made while this thread is starting (dlopen allocating, say)
 * returns at once and is served from the bootstrap arena. The start probes
 * for box files and reads /proc: a missing one is not the program's error,
 * so errno stays as the program left it. */
int hak_lazy_start(void)
{
    if (tls_starting)
        return 0;
    int saved_errno = errno;
    lazy_start();
    errno = saved_errno;
    return 0;
}

static int env_set(const char *name)
{
    const char *v = secure_getenv(name);
    return v && *v;
}

/* With HAKMEM_CONFIG or HAKMEM_SET, start before main even if the program
 * never allocates, so that an error in them stops it before it runs on the
 * wrong allocator. The embedded default has no such error: it starts on
 * the first allocation, and a process that never allocates (/bin/true, a
 * third of the instructions of its whole run) pays nothing for the host. */
__attribute__((constructor)) static void hak_at_load(void)
{
    if (atomic_load(&hak_runtime_state) == 0 && (env_set("HAKMEM_CONFIG") || env_set("HAKMEM_SET")))
        hak_lazy_start();
}

__attribute__((destructor)) static void hak_at_exit(void)
{
    if (atomic_load(&hak_runtime_state) != 1)
        return;
    /* Nothing to report: spare every process the read of its command line. */
    if (hak_plan_active->stats == HAK_STATS_OFF && !hak_observer_count)
        return;
    char cmd[1024];
    hak_read_cmdline(cmd, sizeof cmd);
    hak_observers_report(hak_plan_active, cmd);
    hak_stats_report(hak_plan_active, cmd);
}

/* ---- the API ---------------------------------------------------------- */

EXPORT void *malloc(size_t size) { return hak_malloc_fast(size); }
EXPORT void free(void *p) { hak_free_fast(p); }
EXPORT void *calloc(size_t n, size_t size) { return hak_calloc(n, size); }
EXPORT void *realloc(void *p, size_t size) { return hak_realloc(p, size); }
EXPORT size_t malloc_usable_size(void *p) { return hak_usable_size(p); }

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hak_realloc(p, total);
}

/* glibc rounds a non-power-of-two alignment up rather than failing, and
 * gives EINVAL only for an alignment beyond 2^63 (no power of two is left
 * to round to); an alignment it cannot satisfy is ENOMEM (hak_memalign). */
static void *memalign_rounded(size_t align, size_t size)
{
    if (align > ((size_t)1 << 63)) {
        errno = EINVAL;
        return NULL;
    }
    if (align & (align - 1))
        align = (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
    return hak_memalign(align, size);
}

EXPORT void *memalign(size_t align, size_t size) { return memalign_rounded(align, size); }
EXPORT void *aligned_alloc(size_t align, size_t size) { return memalign_rounded(align, size); }

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    /* On failure errno is ENOMEM as well as the result: glibc's does so,
     * and programs (and glibc's own tests) read errno after it. */
    void *p = hak_memalign(align, size);
    if (!p)
        return errno = ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *valloc(size_t size) { return hak_memalign(4096, size); }

EXPORT void *pvalloc(size_t size)
{
    size_t rounded = (size + 4095) & ~(size_t)4095;
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return hak_memalign(4096, rounded ? rounded : 4096);
}

EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    return hak_trim();
}

static const struct hak_plan *running_plan(void)
{
    return atomic_load(&hak_runtime_state) == 1 ? hak_plan_active : NULL;
}

/* glibc's fields, filled from the numbers of the stats table and of
 * malloc_info: arena = bytes mapped by the boxes, uordblks = the program's
 * bytes in use, fordblks = the rest of what is mapped, fsmblks = bytes held
 * in the boxes' caches, usmblks = the sum of the boxes' peak mappings. */
EXPORT struct mallinfo2 mallinfo2(void)
{
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    struct hak_totals t;
    hak_stats_totals(running_plan(), &t);
    mi.arena = t.mapped;
    mi.uordblks = t.in_use;
    mi.fordblks = t.mapped > t.in_use ? t.mapped - t.in_use : 0;
    mi.fsmblks = t.cached;
    mi.usmblks = t.peak;
    return mi;
}

static int clamp_int(size_t v)
{
    return (int)(v > INT32_MAX ? INT32_MAX : v);
}

EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = clamp_int(m2.arena);
    mi.uordblks = clamp_int(m2.uordblks);
    mi.fordblks = clamp_int(m2.fordblks);
    mi.fsmblks = clamp_int(m2.fsmblks);
    mi.usmblks = clamp_int(m2.usmblks);
    return mi;
}

/* hakmem's stats table on stderr (glibc prints its arenas there). */
EXPORT void malloc_stats(void) { hak_malloc_stats(running_plan()); }

/* XML in glibc's structure: one <heap> per box. Formatted into a mapped
 * buffer with no lock held, then written to fp (stdio may allocate, through
 * hakmem, which is fine by then). */
EXPORT int malloc_info(int options, FILE *fp)
{
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    size_t len;
    char *xml = hak_malloc_info_xml(running_plan(), &len);
    if (!xml) {
        errno = ENOMEM;
        return -1;
    }
    size_t written = fwrite(xml, 1, len, fp);
    hak_report_free(xml);
    return written == len ? 0 : -1;
}

/* No glibc tunable applies to hakmem's boxes: accept and ignore. */
EXPORT int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}

/* ---- introspection (include/hakmem.h) -------------------------------------- */

EXPORT const char *hakmem_box_of(const void *p)
{
    uint32_t entry = hak_region_lookup(p);
    const struct hak_plan *plan = hak_plan_active;
    if (!entry || !plan || (entry >> 16) > (uint32_t)plan->instance_count)
        return NULL;
    return plan->instances[(entry >> 16) - 1].name;
}

EXPORT const char *hakmem_config_name(void)
{
    if (atomic_load(&hak_runtime_state) == 0)
        hak_lazy_start();
    return atomic_load(&hak_runtime_state) == 1 ? hak_plan_active->config_name : NULL;
}
