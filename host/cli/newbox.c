/*
 * hakmem new-box NAME [--role alloc|pages|observer] [--dir DIR] [--force]
 *
 * Writes an out-of-tree box project that builds against the installed kit
 * (find_package(hakmem) + hakmem_add_box) and passes `hakmem boxtest` as
 * generated: NAME.c with every callback of the ABI present and commented,
 * CMakeLists.txt with the tests, NAME.ini (a config using the box) and a
 * README listing the parameters. The alloc template really allocates (power-
 * of-two classes carved from chunks), the pages one caches spans, the
 * observer one counts events; tests/kit builds all three with -Werror and
 * runs their tests, so the templates stay working code.
 *
 * The templates are kept as arrays of lines, one file per role and one for
 * the files every project gets (newbox.h lists them); @KEY@ is replaced by
 * its value and a line "@BLOCK@" by a block of lines.
 */
#include "cli.h"
#include "newbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- per-role pieces ------------------------------------------------------ */

struct role {
    const char *name;
    const char *const *source;
    const char *const *ini;
    const char *const *params;
    const char *what;
    const char *boxtest_args;
    const char *boxtest_what;
    const char *python_regex;
    const char *compare_with; /* a shipped config, for the bench line */
    const char *bench_workloads;
};

static const struct role roles[] = {
    { "alloc", tmpl_alloc_c, tmpl_alloc_ini, alloc_params,
      "A size-class arena: requests up to `max_size`\n"
      "are rounded up to a power of two, and each class carves its blocks from chunks\n"
      "of its own (from `host->map`, or from a page box linked as `pages`), tagged\n"
      "with the class in the region map. Freed blocks go on per-thread lists, the\n"
      "overflow to a shared list per class. A starting point: chunks are never given\n"
      "back.",
      " --range 1-1K",
      "sizes and alignments in 1..1K,\n"
      "usable_size, region-map ownership, frees from other threads, thread exit,\n"
      "fork and a seeded stress",
      "^5888890\\n$", "tiny-unified.ini", "random_mixed,random_mixed_256" },
    { "pages", tmpl_pages_c, tmpl_pages_ini, pages_params,
      "A cache of freed page spans for the boxes linked to it with\n"
      "`pages =`: a freed span of at most `max_granules` is kept (up to `slots`) and\n"
      "handed out again for a request of the same size; the rest goes to the page box\n"
      "linked as `below`, or to the host.",
      "",
      "spans of 1..32 granules,\n"
      "alignment, ownership handed over and back, reuse, other threads, fork and a\n"
      "seeded stress",
      "^5888890\\n$", "page-arena-on.ini", "vm_mixed,mid_large_mt" },
    { "observer", tmpl_observer_c, tmpl_observer_ini, observer_params,
      "Counts the events boxes report (fresh memory, mappings,\n"
      "refills, drains, remote frees, reuse) per type and size bucket, and logs them\n"
      "with every box's counters at exit.",
      "",
      "the box starts, takes the\n"
      "events of five threads and writes its report",
      "5888890.*report for|report for.*5888890", "telemetry.ini", "vm_mixed" },
};

/* ---- writing files ------------------------------------------------------------- */

struct subst {
    const char *key;   /* "@NAME@" */
    const char *value;
    const char *const *block; /* for a line that is exactly the key */
};

static int write_template(const char *dir, const char *file, const char *const *lines, const struct subst *subs,
                          size_t nsubs)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hakmem new-box: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; lines[i]; i++) {
        const char *line = lines[i];
        const struct subst *block = NULL;
        for (size_t k = 0; k < nsubs; k++)
            if (subs[k].block && !strncmp(line, subs[k].key, strlen(subs[k].key)) &&
                line[strlen(subs[k].key)] == '\n')
                block = &subs[k];
        if (block) {
            for (size_t j = 0; block->block[j]; j++)
                fputs(block->block[j], f);
            continue;
        }
        for (const char *p = line; *p;) {
            const struct subst *hit = NULL;
            if (*p == '@')
                for (size_t k = 0; k < nsubs && !hit; k++)
                    if (!subs[k].block && !strncmp(p, subs[k].key, strlen(subs[k].key)))
                        hit = &subs[k];
            if (hit) {
                fputs(hit->value, f);
                p += strlen(hit->key);
            } else {
                fputc(*p++, f);
            }
        }
    }
    if (fclose(f)) {
        fprintf(stderr, "hakmem new-box: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("  %s\n", path);
    return 0;
}

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

static int dir_is_empty(const char *dir)
{
    char probe[PATH_MAX];
    const char *files[] = { "CMakeLists.txt", "README.md" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(probe, sizeof probe, "%s/%s", dir, files[i]);
        if (access(probe, F_OK) == 0)
            return 0;
    }
    return 1;
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

/* A shipped config by name: installed, or in the source tree. */
static void shipped_config(char *out, size_t len, const char *name)
{
    char installed[PATH_MAX];
    snprintf(installed, sizeof installed, "%s/%s/configs/%s", cli_exe_dir(), HAKMEM_REL_DATADIR, name);
    char resolved[PATH_MAX];
    if (realpath(installed, resolved)) {
        snprintf(out, len, "%s", resolved);
        return;
    }
    snprintf(out, len, "%s/configs/%s", HAKMEM_SOURCE_DIR, name);
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
    const char *name = NULL, *role_name = "alloc", *dir = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--role") && i + 1 < argc) {
            role_name = argv[++i];
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
    const struct role *role = NULL;
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (!strcmp(roles[i].name, role_name))
            role = &roles[i];
    if (!role) {
        fprintf(stderr, "hakmem new-box: --role %s: expected alloc, pages or observer\n", role_name);
        return 2;
    }
    char dir_buf[PATH_MAX];
    snprintf(dir_buf, sizeof dir_buf, "%s", dir ? dir : name);
    if (!force && !dir_is_empty(dir_buf)) {
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

    char prefix[PATH_MAX], hints[PATH_MAX + 16] = "", compare[PATH_MAX], source_file[HAK_NAME_MAX + 8],
        ini_file[HAK_NAME_MAX + 8];
    if (kit_prefix(prefix, sizeof prefix) == 0)
        snprintf(hints, sizeof hints, " HINTS \"%s\"", prefix);
    shipped_config(compare, sizeof compare, role->compare_with);
    snprintf(source_file, sizeof source_file, "%s.c", name);
    snprintf(ini_file, sizeof ini_file, "%s.ini", name);
    const struct subst subs[] = {
        { "@NAME@", name, NULL },
        { "@ROLE@", role->name, NULL },
        { "@HINTS@", hints, NULL },
        { "@BOXTEST_ARGS@", role->boxtest_args, NULL },
        { "@BOXTEST_WHAT@", role->boxtest_what, NULL },
        { "@PYTHON_REGEX@", role->python_regex, NULL },
        { "@WHAT@", role->what, NULL },
        { "@COMPARE_WITH@", compare, NULL },
        { "@BENCH_WORKLOADS@", role->bench_workloads, NULL },
        { "@PARAMS@", NULL, role->params },
    };
    size_t n = sizeof subs / sizeof *subs;
    printf("hakmem new-box: a box of role %s in %s\n", role->name, dir_buf);
    if (write_template(dir_buf, source_file, role->source, subs, n) ||
        write_template(dir_buf, "CMakeLists.txt", tmpl_cmakelists, subs, n) ||
        write_template(dir_buf, ini_file, role->ini, subs, n) ||
        write_template(dir_buf, "README.md", tmpl_readme, subs, n) ||
        write_template(dir_buf, ".gitignore", tmpl_gitignore, subs, n))
        return 1;
    printf("next:\n  cd %s\n  cmake -S . -B build%s\n  cmake --build build\n  ctest --test-dir build "
           "--output-on-failure\n", dir_buf, hints[0] ? "" : " -DCMAKE_PREFIX_PATH=<hakmem install prefix>");
    return 0;
}
