/*
 * Finding and loading box plugins.
 *
 * `plugin = NAME` means the file hakbox_NAME.so, looked for in order in:
 * the config's box_dir (relative to the config file), HAKMEM_BOX_PATH
 * (colon-separated), and the folder of libhakmem.so. A plugin value with a
 * '/' is a path (relative to the config file). In setuid/setgid programs
 * only the install folder is used: box_dir and the environment could make a
 * privileged program load an attacker's code (secure_getenv returns NULL
 * there, and box_dir is ignored).
 *
 * Built-in boxes (linked into libhakmem.so, host/CMakeLists.txt): for
 * `plugin = NAME` with a built-in NAME, the built-in is used when the
 * search finds no hakbox_NAME.so, or finds it in libhakmem.so's own folder
 * and not modified after libhakmem.so (the copy it was linked from). One
 * stat per place looked in, no open: an unreadable file fails in dlopen,
 * which names it. A .so
 * found in box_dir or HAKMEM_BOX_PATH, or one beside libhakmem.so that is
 * newer (a box rebuilt since), is loaded instead: a rebuilt box is never
 * ignored. `[host] builtin_boxes = off` loads every box from its .so.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_privileged(void)
{
    return getauxval(AT_SECURE) != 0;
}

int hak_object_dir(const void *addr, char *out, size_t len)
{
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fname)
        return -1;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) {
        snprintf(out, len, ".");
        return 0;
    }
    size_t n = (size_t)(slash - info.dli_fname);
    if (n + 1 > len)
        return -1;
    memcpy(out, info.dli_fname, n);
    out[n] = '\0';
    return 0;
}

/* Concatenate NUL-terminated parts into out; -1 if it does not fit. Start-up
 * builds a path per box: snprintf costs a thousand instructions each. */
static int concat(char *out, size_t len, const char *const *parts, int count)
{
    size_t used = 0;
    for (int i = 0; i < count; i++) {
        size_t n = strlen(parts[i]);
        if (used + n >= len)
            return -1;
        memcpy(out + used, parts[i], n);
        used += n;
    }
    out[used] = '\0';
    return 0;
}

/* dir + '/' + name into out; relative dirs are taken from base_dir. */
static int join_path(char *out, size_t len, const char *base_dir, const char *dir, const char *name)
{
    if (dir[0] == '/' || !base_dir || !base_dir[0])
        return concat(out, len, (const char *const[]){ dir, "/", name }, 3);
    return concat(out, len, (const char *const[]){ base_dir, "/", dir, "/", name }, 5);
}

/* HAKMEM_BOX_PATH, read once per plan (between hak_plugin_search_begin and
 * _end) rather than once per box; read at each call outside a plan. */
static const char *box_path_env;
static int box_path_read;

void hak_plugin_search_begin(void)
{
    box_path_env = is_privileged() ? NULL : secure_getenv("HAKMEM_BOX_PATH");
    box_path_read = 1;
}

void hak_plugin_search_end(void) { box_path_read = 0; }

/* Where the search found the file: 1 in libhakmem.so's own folder. */
static int find_plugin(const char *plugin, const char *config_dir, const char *box_dir,
                       const char *lib_dir, char *path, size_t path_len, char *tried,
                       size_t tried_len, struct stat *st, int *in_lib_dir)
{
    char file[HAK_VALUE_MAX + 16];
    int privileged = is_privileged();
    tried[0] = '\0';
    *in_lib_dir = 0;
    if (strchr(plugin, '/')) {
        if (privileged)
            return -1;
        if (plugin[0] == '/' || !config_dir || !config_dir[0])
            snprintf(path, path_len, "%s", plugin);
        else if (join_path(path, path_len, config_dir, ".", plugin))
            return -1;
        snprintf(tried, tried_len, "%s", path);
        return stat(path, st) == 0 ? 0 : -1;
    }
    if (concat(file, sizeof file, (const char *const[]){ "hakbox_", plugin, ".so" }, 3))
        return -1;
    size_t used = 0;
#define TRY(dirbase, dir)                                                          \
    do {                                                                           \
        if (join_path(path, path_len, dirbase, dir, file) == 0) {                  \
            if (stat(path, st) == 0)                                               \
                return 0;                                                          \
            int w = snprintf(tried + used, tried_len - used, "%s%s",               \
                             used ? ", " : "", path);                              \
            if (w > 0 && (size_t)w < tried_len - used)                             \
                used += (size_t)w;                                                 \
        }                                                                          \
    } while (0)
    if (!privileged && box_dir && box_dir[0])
        TRY(config_dir, box_dir);
    const char *env = privileged ? NULL : box_path_read ? box_path_env : secure_getenv("HAKMEM_BOX_PATH");
    if (env) {
        const char *p = env;
        while (*p) {
            const char *colon = strchr(p, ':');
            size_t n = colon ? (size_t)(colon - p) : strlen(p);
            char dir[PATH_MAX];
            if (n > 0 && n < sizeof dir) {
                memcpy(dir, p, n);
                dir[n] = '\0';
                *in_lib_dir = lib_dir && !strcmp(dir, lib_dir);
                TRY(NULL, dir);
            }
            p = colon ? colon + 1 : p + n;
        }
    }
    *in_lib_dir = 1;
    if (lib_dir && lib_dir[0])
        TRY(NULL, lib_dir);
#undef TRY
    *in_lib_dir = 0;
    return -1;
}

static const struct hak_builtin_box *builtin_named(const char *plugin)
{
    if (!hak_builtin_boxes || !&hak_builtin_box_count || strchr(plugin, '/'))
        return NULL;
    for (int i = 0; i < hak_builtin_box_count; i++)
        if (!strcmp(hak_builtin_boxes[i].name, plugin))
            return &hak_builtin_boxes[i];
    return NULL;
}

/* The modification time and path of the object holding the built-ins
 * (libhakmem.so), looked up once. */
static int host_object(struct timespec *mtime, const char **path)
{
    static int known; /* 0 not yet, 1 yes, -1 unavailable */
    static struct timespec host_mtime;
    static const char *host_path;
    if (!known) {
        Dl_info info;
        struct stat st;
        known = -1;
        if (dladdr((const void *)builtin_named, &info) && info.dli_fname &&
            stat(info.dli_fname, &st) == 0) {
            host_mtime = st.st_mtim;
            host_path = info.dli_fname;
            known = 1;
        }
    }
    *mtime = host_mtime;
    *path = host_path;
    return known == 1 ? 0 : -1;
}

static int newer(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

int hak_plugin_builtins_enabled = 1;

/* The built-in to use instead of the file the search found (or did not). */
static const struct hak_builtin_box *builtin_instead(const char *plugin, int found,
                                                    const struct stat *st, int in_lib_dir,
                                                    char *path_out, size_t path_len)
{
    const struct hak_builtin_box *b = hak_plugin_builtins_enabled ? builtin_named(plugin) : NULL;
    struct timespec host_mtime;
    const char *host_path;
    if (!b || host_object(&host_mtime, &host_path))
        return NULL;
    if (found && (!in_lib_dir || newer(&st->st_mtim, &host_mtime)))
        return NULL;
    if (concat(path_out, path_len, (const char *const[]){ host_path, " (built in)" }, 2))
        snprintf(path_out, path_len, "(built in)");
    return b;
}

static const struct hak_box_desc *check_desc(const struct hak_box_desc *desc, const char *plugin,
                                             const char *path_out, struct hak_error *err,
                                             const char *file, int line);

const struct hak_box_desc *hak_plugin_load(const char *plugin, const char *config_dir,
                                           const char *box_dir, const char *lib_dir,
                                           char *path_out, size_t path_len,
                                           struct hak_error *err, const char *file, int line)
{
    char tried[2048];
    struct stat st;
    int in_lib_dir;
    int found = find_plugin(plugin, config_dir, box_dir, lib_dir, path_out, path_len, tried,
                            sizeof tried, &st, &in_lib_dir) == 0;
    const struct hak_builtin_box *builtin = builtin_instead(plugin, found, &st, in_lib_dir,
                                                           path_out, path_len);
    if (builtin)
        return check_desc(builtin->describe(), plugin, path_out, err, file, line);
    if (!found) {
        hak_error_set(err, file, line, "plugin '%s': no file hakbox_%s.so found (looked in: %s)",
                      plugin, plugin, tried[0] ? tried : "nowhere: set box_dir or HAKMEM_BOX_PATH");
        return NULL;
    }
    void *handle = dlopen(path_out, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        hak_error_set(err, file, line, "plugin '%s': cannot load %s: %s", plugin, path_out,
                      why ? why : "unknown error");
        return NULL;
    }
    hak_box_describe_fn describe = (hak_box_describe_fn)dlsym(handle, HAK_BOX_DESCRIBE_SYMBOL);
    if (!describe) {
        hak_error_set(err, file, line, "plugin '%s': %s exports no %s() (not a hakmem box)",
                      plugin, path_out, HAK_BOX_DESCRIBE_SYMBOL);
        return NULL;
    }
    return check_desc(describe(), plugin, path_out, err, file, line);
}

static const struct hak_box_desc *check_desc(const struct hak_box_desc *desc, const char *plugin,
                                             const char *path_out, struct hak_error *err,
                                             const char *file, int line)
{
    if (!desc) {
        hak_error_set(err, file, line, "plugin '%s': %s returned no descriptor", plugin, path_out);
        return NULL;
    }
    if (desc->abi_version != HAK_BOX_ABI_VERSION) {
        hak_error_set(err, file, line,
                      "plugin '%s': %s is built for box ABI version %u, this host speaks version %u",
                      plugin, path_out, desc->abi_version, HAK_BOX_ABI_VERSION);
        return NULL;
    }
    if (desc->struct_size < HAK_BOX_DESC_V1_SIZE) {
        hak_error_set(err, file, line,
                      "plugin '%s': %s has a descriptor of %u bytes, expected at least %zu (ABI mismatch)",
                      plugin, path_out, desc->struct_size, (size_t)HAK_BOX_DESC_V1_SIZE);
        return NULL;
    }
    if (desc->struct_size < sizeof(struct hak_box_desc)) {
        /* Built before optional ops were added at the end of the table:
         * read it through a zero-padded copy, so those ops are NULL. */
        struct hak_box_desc *copy = hak_meta_alloc(sizeof *copy);
        if (!copy) {
            hak_error_set(err, file, line, "plugin '%s': out of metadata memory", plugin);
            return NULL;
        }
        memcpy(copy, desc, desc->struct_size);
        desc = copy;
    }
    if (!desc->name || !desc->roles || desc->param_count > HAK_MAX_PARAMS ||
        desc->link_count > HAK_MAX_LINKS || desc->tls_size < sizeof(struct hak_tls_head)) {
        hak_error_set(err, file, line,
                      "plugin '%s': %s has an invalid descriptor (name, roles, %u params, %u links, "
                      "tls_size %u must hold struct hak_tls_head)",
                      plugin, path_out, desc->param_count, desc->link_count, desc->tls_size);
        return NULL;
    }
    if (!desc->ops.create) {
        hak_error_set(err, file, line, "plugin '%s': %s has no create()", plugin, path_out);
        return NULL;
    }
    if ((desc->roles & HAK_ROLE_ALLOC) && (!desc->ops.alloc || !desc->ops.free || !desc->ops.usable_size)) {
        hak_error_set(err, file, line, "plugin '%s': alloc role needs alloc, free and usable_size", plugin);
        return NULL;
    }
    if ((desc->roles & HAK_ROLE_PAGES) && (!desc->ops.pages_alloc || !desc->ops.pages_free)) {
        hak_error_set(err, file, line, "plugin '%s': pages role needs pages_alloc and pages_free", plugin);
        return NULL;
    }
    return desc;
}
