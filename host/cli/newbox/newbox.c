/*
 * hakmem new-box NAME [--role alloc|pages|observer] [--dir DIR] [--force]
 *
 * Writes an out-of-tree box project that builds against hakmem's box kit
 * (find_package(hakmem) + hakmem_add_box) and passes `hakmem boxtest` as
 * generated. The project is a copy of host/cli/templates/ROLE/ and
 * templates/common/, compiled into this program (newbox.h), with the role's
 * box name (sample_ROLE) replaced by NAME in file names and contents, and
 * two markers by where this hakmem is (templates/README.md). The templates
 * are working boxes as they stand; tests/kit builds and tests them as they
 * stand and as generated.
 */
#include "cli.h"
#include "newbox/newbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMMON_FOLDER "common"
#define PLACEHOLDER_PREFIX "sample_" /* + role: the box name in a template */

/* One replacement: every `from` in a file's name and text becomes `to`. */
struct subst {
    const char *from, *to;
};

/* ---- the embedded templates ------------------------------------------------- */

/* The part of `path` below the template folder `folder`, or NULL. */
static const char *below_folder(const char *path, const char *folder)
{
    size_t n = strlen(folder);
    return !strncmp(path, folder, n) && path[n] == '/' ? path + n + 1 : NULL;
}

static int role_exists(const char *role)
{
    if (!strcmp(role, COMMON_FOLDER))
        return 0;
    for (size_t i = 0; i < newbox_templates_count; i++)
        if (below_folder(newbox_templates[i].path, role))
            return 1;
    return 0;
}

/* "alloc, observer, pages": the template folders but common. */
static void list_roles(char *out, size_t len)
{
    out[0] = '\0';
    char last[64] = "";
    for (size_t i = 0; i < newbox_templates_count; i++) {
        const char *path = newbox_templates[i].path, *slash = strchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : 0;
        if (!n || n >= sizeof last || (strlen(last) == n && !strncmp(last, path, n)) ||
            (n == strlen(COMMON_FOLDER) && !strncmp(path, COMMON_FOLDER, n)))
            continue;
        snprintf(last, sizeof last, "%.*s", (int)n, path);
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", used ? ", " : "", last);
    }
}

/* ---- writing files ------------------------------------------------------------ */

/* text with every substitution made, to f (or into out, for a file name). */
static void expand(const char *text, size_t len, const struct subst *subs, size_t nsubs, FILE *f, char *out,
                   size_t out_len)
{
    size_t used = 0;
    for (size_t at = 0; at < len;) {
        const struct subst *hit = NULL;
        for (size_t k = 0; k < nsubs && !hit; k++)
            if (!strncmp(text + at, subs[k].from, strlen(subs[k].from)))
                hit = &subs[k];
        const char *piece = hit ? hit->to : text + at;
        size_t piece_len = hit ? strlen(hit->to) : 1;
        at += hit ? strlen(hit->from) : 1;
        if (f)
            fwrite(piece, 1, piece_len, f);
        else if (used + piece_len < out_len) {
            memcpy(out + used, piece, piece_len);
            used += piece_len;
        }
    }
    if (out)
        out[used] = '\0';
}

static int make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* One template file, `rel` being its path below its folder. */
static int write_file(const char *dir, const char *rel, const struct template_file *t, const struct subst *subs,
                      size_t nsubs)
{
    char name[PATH_MAX], path[2 * PATH_MAX];
    expand(rel, strlen(rel), subs, nsubs, NULL, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int dirs_ok = make_dirs(path) == 0;
    *slash = '/';
    FILE *f = dirs_ok ? fopen(path, "w") : NULL;
    if (!f) {
        fprintf(stderr, "hakmem new-box: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    expand(t->data, t->len, subs, nsubs, f, NULL, 0);
    if (fclose(f)) {
        fprintf(stderr, "hakmem new-box: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("  %s\n", path);
    return 0;
}

/* The role's folder and common/, in the embedded (sorted) order. */
static int write_project(const char *dir, const char *role, const struct subst *subs, size_t nsubs)
{
    for (size_t i = 0; i < newbox_templates_count; i++) {
        const struct template_file *t = &newbox_templates[i];
        const char *rel = below_folder(t->path, role);
        if (!rel)
            rel = below_folder(t->path, COMMON_FOLDER);
        if (rel && write_file(dir, rel, t, subs, nsubs))
            return -1;
    }
    return 0;
}

/* ---- checks and where things are ------------------------------------------------ */

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 40 || !(name[0] >= 'a' && name[0] <= 'z'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return 0;
    return 1;
}

static int holds_project(const char *dir)
{
    char probe[PATH_MAX + 16];
    const char *files[] = { "CMakeLists.txt", "README.md" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(probe, sizeof probe, "%s/%s", dir, files[i]);
        if (access(probe, F_OK) == 0)
            return 1;
    }
    return 0;
}

/* The prefix this hakmem runs from, if it holds the CMake package: the
 * install prefix, or the build folder (which has one too). */
static int kit_prefix(char *out, size_t len)
{
    char probe[PATH_MAX], resolved[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/..", cli_exe_dir());
    if (!realpath(probe, resolved))
        return -1;
    const char *libdirs[] = { "lib", "lib64", "lib/x86_64-linux-gnu" };
    for (size_t i = 0; i < sizeof libdirs / sizeof *libdirs; i++) {
        char cfg[PATH_MAX + 64];
        snprintf(cfg, sizeof cfg, "%s/%s/cmake/hakmem/hakmemConfig.cmake", resolved, libdirs[i]);
        if (access(cfg, R_OK) == 0) {
            snprintf(out, len, "%s", resolved);
            return 0;
        }
    }
    return -1;
}

/* The shipped configs: installed, or the source tree's (cli_data_dir). */
static void configs_dir(char *out, size_t len)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/configs", cli_data_dir());
    if (!realpath(dir, out))
        snprintf(out, len, "%s", dir);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: hakmem new-box NAME [--role alloc|pages|observer] [--dir DIR] [--force]\n"
                 "  NAME     the plugin name: hakbox_NAME.so, [box.NAME]; lower case, digits, '_'\n"
                 "  --role   what the box does (default alloc)\n"
                 "  --dir    the project folder (default ./NAME)\n"
                 "  --force  write into a folder that already holds a project\n");
}

int cmd_new_box(int argc, char **argv)
{
    const char *name = NULL, *role = "alloc", *dir = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--role") && i + 1 < argc) {
            role = argv[++i];
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!name) {
        usage(stderr);
        return 2;
    }
    if (!valid_name(name)) {
        fprintf(stderr, "hakmem new-box: '%s': a box name starts with a lower-case letter and has only "
                        "a-z, 0-9 and '_' (at most 40)\n", name);
        return 2;
    }
    if (!role_exists(role)) {
        char roles[256];
        list_roles(roles, sizeof roles);
        fprintf(stderr, "hakmem new-box: --role %s: expected one of %s\n", role, roles);
        return 2;
    }
    char dir_buf[PATH_MAX];
    snprintf(dir_buf, sizeof dir_buf, "%s", dir ? dir : name);
    if (!force && holds_project(dir_buf)) {
        fprintf(stderr, "hakmem new-box: %s already holds a project (--force to overwrite)\n", dir_buf);
        return 1;
    }
    if (make_dirs(dir_buf)) {
        fprintf(stderr, "hakmem new-box: cannot create %s: %s\n", dir_buf, strerror(errno));
        return 1;
    }
    char stock[PATH_MAX + 32];
    snprintf(stock, sizeof stock, "%s/hakbox_%s.so", cli_lib_dir(), name);
    if (access(stock, F_OK) == 0)
        fprintf(stderr, "hakmem new-box: note: a stock box is named %s too (%s); configs that say plugin = %s "
                        "find yours first only through box_dir\n", name, stock, name);

    char placeholder[64], prefix[PATH_MAX] = "", configs[PATH_MAX];
    snprintf(placeholder, sizeof placeholder, PLACEHOLDER_PREFIX "%s", role);
    int have_prefix = kit_prefix(prefix, sizeof prefix) == 0;
    configs_dir(configs, sizeof configs);
    const struct subst subs[] = {
        { placeholder, name },
        { "@HAKMEM_PREFIX@", prefix },
        { "@HAKMEM_CONFIGS@", configs },
    };
    printf("hakmem new-box: a box of role %s in %s\n", role, dir_buf);
    if (write_project(dir_buf, role, subs, sizeof subs / sizeof *subs))
        return 1;
    printf("next:\n  cd %s\n  cmake -S . -B build%s\n  cmake --build build\n  ctest --test-dir build "
           "--output-on-failure\n", dir_buf, have_prefix ? "" : " -DCMAKE_PREFIX_PATH=<hakmem install prefix>");
    return 0;
}
