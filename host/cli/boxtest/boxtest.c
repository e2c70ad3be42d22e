/*
 * hakmem boxtest PATH.so|PLUGIN [-s key=value]... [--range LO-HI] ...
 *
 * The conformance suite for one box, run in-process on the host core (the
 * same code as libhakmem.so, like tests/support/box_harness.c). It writes a
 * config naming the box by path, routes the box's size range to it and the
 * rest to a terminal box, links what the box declares (an os_pages box for
 * `pages`, a class box for a front's `below`), then runs each case in a
 * forked child with a fresh host: a crash, an abort from host->bad_free or a
 * hang fails that case and the others still run. Exit 0 only if all pass.
 *
 * alloc role: sizes, alignment, the malloc API through the host, frees from
 * another thread, thread exit, fork, a seeded randomized stress; every block
 * is checked for alignment, usable_size >= request, region-map ownership
 * (the box's owner, or the owner below a front) and against overlap.
 * pages role: spans of 1..N granules, alignment, ownership handed over and
 * back, reuse, other threads, stress. observer role: events and the report.
 *
 * This file is the command: options, the config, the driver and the report;
 * the cases and what they share are in the boxtest_*.c files (see boxtest.h).
 */
#include "boxtest.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- options (struct boxtest_options is in boxtest.h) ---------------------- */

struct boxtest_options opt;

char config_text[32768];

/* ================================================================================
 * the driver (parent side)
 * ================================================================================ */

struct bt_case {
    const char *name;
    uint32_t role;
    void (*fn)(void);
};

static const struct bt_case cases[] = {
    { "start", 0, case_start },
    { "sizes", HAK_ROLE_ALLOC, case_sizes },
    { "alignment", HAK_ROLE_ALLOC, case_alignment },
    { "malloc api", HAK_ROLE_ALLOC, case_malloc_api },
    { "remote free", HAK_ROLE_ALLOC, case_remote_free },
    { "thread exit", HAK_ROLE_ALLOC, case_thread_exit },
    { "fork", HAK_ROLE_ALLOC, case_fork },
    { "stress", HAK_ROLE_ALLOC, case_stress },
    { "spans", HAK_ROLE_PAGES, case_pages_spans },
    { "span alignment", HAK_ROLE_PAGES, case_pages_alignment },
    { "span reuse", HAK_ROLE_PAGES, case_pages_reuse },
    { "span threads", HAK_ROLE_PAGES, case_pages_threads },
    { "span stress", HAK_ROLE_PAGES, case_pages_stress },
    { "span fork", HAK_ROLE_PAGES, case_pages_fork },
    { "events", HAK_ROLE_OBSERVER, case_observer },
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hakmem boxtest PATH.so|PLUGIN [options]\n"
            "  -s key=value         a parameter of the box (key.with.dots: any config override)\n"
            "  --range LO-HI        sizes the box serves (K/M/G, HI may be max; default: its classes, or 1-1K)\n"
            "  --link NAME=PLUGIN   the box linked as NAME (default: os_pages for pages links,\n"
            "                       superslab for a front's below)\n"
            "  --terminal PLUGIN    the terminal box for sizes outside the range (default large)\n"
            "  --seed N             stress seed (default 1)\n"
            "  --ops N              stress operations per thread (default 100000)\n"
            "  --threads N          stress threads (default 2)\n"
            "  --granules N         pages: largest span in granules (default 32)\n"
            "  --timeout S          seconds per case (default 120)\n"
            "  --case NAME          run only this case (and start)\n"
            "  --foreign            accept blocks the region map does not know (glibc's: the system box)\n"
            "  --no-fork            run the cases in this process (for a debugger; stops at the first failure)\n"
            "  -v                   show the config and every case's output\n"
            "exit status: 0 every case passed, 1 a case failed, 2 bad arguments or a config the host refused\n");
}

/* Append to config_text. */
__attribute__((format(printf, 1, 2))) static int cat(const char *fmt, ...)
{
    size_t used = strlen(config_text);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(config_text + used, sizeof config_text - used, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= sizeof config_text - used) ? -1 : 0;
}

static void format_size(char *out, size_t len, uint64_t v)
{
    if (v == UINT64_MAX)
        snprintf(out, len, "max");
    else
        snprintf(out, len, "%llu", (unsigned long long)v);
}

/* Helper instances, one per plugin: bt_<plugin>. */
struct helper {
    char plugin[PATH_MAX];
    char name[HAK_NAME_MAX];
};
static struct helper helpers[HAK_MAX_INSTANCES];
static int helper_count;

static const char *plugin_default(const struct hak_link_decl *l, uint32_t roles, uint32_t flags)
{
    if (l->role == HAK_ROLE_PAGES)
        return "os_pages";
    if ((flags & HAK_BOX_FLAG_FRONT) && !strcmp(l->name, "below"))
        return "superslab";
    (void)roles;
    return l->required ? opt.terminal : NULL;
}

static const char *helper_for(const char *plugin, char *err, size_t err_len);

/* The `key = INSTANCE` lines of a box's links; user choices first for the box
 * under test, defaults for the rest (required links only for helpers). */
static int link_lines(const struct hak_box_desc *d, int is_test, char *out, size_t cap, char *err, size_t err_len)
{
    out[0] = '\0';
    for (uint32_t l = 0; l < d->link_count; l++) {
        const char *plugin = NULL;
        if (is_test)
            for (int k = 0; k < opt.link_count; k++)
                if (!strcmp(opt.links[k].name, d->links[l].name))
                    plugin = opt.links[k].plugin;
        if (!plugin && (is_test || d->links[l].required))
            plugin = plugin_default(&d->links[l], d->roles, d->flags);
        if (!plugin)
            continue;
        const char *inst = helper_for(plugin, err, err_len);
        if (!inst)
            return -1;
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s = %s\n", d->links[l].name, inst);
    }
    return 0;
}

static const char *helper_for(const char *plugin, char *err, size_t err_len)
{
    if (!strcmp(plugin, opt.terminal))
        return "bt_terminal";
    for (int i = 0; i < helper_count; i++)
        if (!strcmp(helpers[i].plugin, plugin))
            return helpers[i].name;
    if (helper_count == HAK_MAX_INSTANCES - 2) {
        snprintf(err, err_len, "too many helper boxes");
        return NULL;
    }
    struct helper *h = &helpers[helper_count++];
    snprintf(h->plugin, sizeof h->plugin, "%s", plugin);
    const char *base = strrchr(plugin, '/') ? strrchr(plugin, '/') + 1 : plugin;
    snprintf(h->name, sizeof h->name, "bt_%s", base);
    for (char *c = h->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            *c = '_';
    struct hak_error e = { "" };
    char path[PATH_MAX];
    const struct hak_box_desc *d = hak_plugin_load(plugin, NULL, NULL, cli_lib_dir(), path, sizeof path, &e,
                                                   NULL, 0);
    if (!d) {
        snprintf(err, err_len, "%s", e.msg);
        return NULL;
    }
    static char lines[HAK_MAX_INSTANCES][1024];
    int me = helper_count - 1;
    if (link_lines(d, 0, lines[me], sizeof lines[me], err, err_len))
        return NULL;
    if (cat("\n[box.%s]\nplugin = %s\n%s", h->name, plugin, lines[me])) {
        snprintf(err, err_len, "config too long");
        return NULL;
    }
    return h->name;
}

static int build_config(const struct hak_box_desc *d, char *err, size_t err_len)
{
    config_text[0] = '\0';
    helper_count = 0;
    /* A box file is named through box_dir and its plugin name: a plugin
     * value is at most HAK_NAME_MAX - 1 characters, too short for paths. */
    char plugin[PATH_MAX], box_dir[PATH_MAX] = "";
    snprintf(plugin, sizeof plugin, "%s", opt.box);
    const char *slash = strrchr(opt.box, '/');
    size_t len = strlen(opt.box);
    if (slash && !strncmp(slash + 1, "hakbox_", 7) && len > 3 && !strcmp(opt.box + len - 3, ".so")) {
        snprintf(box_dir, sizeof box_dir, "%.*s", (int)(slash - opt.box), opt.box);
        snprintf(plugin, sizeof plugin, "%.*s", (int)(opt.box + len - 3 - (slash + 8)), slash + 8);
    } else if (slash && len >= HAK_NAME_MAX) {
        snprintf(err, err_len, "%s: a box file outside the box folders must be named hakbox_NAME.so "
                 "(or its path be shorter than %d characters)", opt.box, HAK_NAME_MAX);
        return -1;
    }
    cat("; written by hakmem boxtest\n[host]\nterminal = bt_terminal\non_bad_free = abort\n");
    if (box_dir[0])
        cat("box_dir = %s\n", box_dir);
    cat("\n[box.bt_terminal]\nplugin = %s\n", opt.terminal);
    char links[2048];
    if (link_lines(d, 1, links, sizeof links, err, err_len))
        return -1;
    if (cat("\n[box.test]\nplugin = %s\n%s%s", plugin, links, opt.params)) {
        snprintf(err, err_len, "config too long");
        return -1;
    }
    cat("\n[route]\n");
    if (d->roles & HAK_ROLE_ALLOC) {
        char lo[32], hi[32], after[32];
        format_size(lo, sizeof lo, opt.lo);
        format_size(hi, sizeof hi, opt.hi);
        if (opt.lo > 1)
            cat("1-%llu = bt_terminal\n", (unsigned long long)opt.lo - 1);
        cat("%s-%s = test\n", lo, hi);
        if (opt.hi != UINT64_MAX) {
            format_size(after, sizeof after, opt.hi + 1);
            cat("%s-max = bt_terminal\n", after);
        }
    } else {
        cat("1-max = bt_terminal\n");
    }
    return 0;
}

struct case_result {
    int passed;
    char summary[512];
    char output[16384];
    char range_line[256];
};

/* Run one case in a child; collect its output. */
static void run_case(const struct bt_case *c, struct case_result *res)
{
    int fds[2];
    memset(res, 0, sizeof *res);
    if (pipe(fds)) {
        snprintf(res->output, sizeof res->output, "pipe: %s\n", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    if (opt.no_fork) {
        /* For a debugger: the case runs here, a failure ends the process. */
        close(fds[0]);
        close(fds[1]);
        static int started;
        if (!started++)
            host_start();
        c->fn();
        res->passed = 1;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->output, sizeof res->output, "fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        alarm(opt.timeout);
        host_start();
        c->fn();
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    size_t used = 0;
    char buf[4096];
    static char all[1 << 16];
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t take = (size_t)n < sizeof all - 1 - used ? (size_t)n : sizeof all - 1 - used;
        memcpy(all + used, buf, take);
        used += take;
    }
    all[used] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* protocol lines (@summary, @range) apart from free text */
    size_t out_used = 0;
    for (char *line = all, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "@summary ", 9))
            snprintf(res->summary, sizeof res->summary, "%s", line + 9);
        else if (!strncmp(line, "@range ", 7))
            snprintf(res->range_line, sizeof res->range_line, "%s", line + 7);
        else if (out_used < sizeof res->output - 1) {
            int w = snprintf(res->output + out_used, sizeof res->output - out_used, "%s\n", line);
            if (w > 0)
                out_used += (size_t)w < sizeof res->output - out_used ? (size_t)w : sizeof res->output - out_used - 1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res->passed = 1;
        return;
    }
    char why[128];
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(why, sizeof why, "killed by signal %d (%s)%s", sig, strsignal(sig),
                 sig == SIGALRM ? ": timed out (a deadlock or a very slow box?)"
                 : sig == SIGABRT ? ": an abort, e.g. host->bad_free or an assertion"
                 : sig == SIGSEGV ? ": a crash" : "");
    } else if (WEXITSTATUS(status) == 1) {
        return; /* a failed check: its message says it all */
    } else {
        snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
    }
    size_t len = strlen(res->output);
    snprintf(res->output + len, sizeof res->output - len, "%s\n", why);
}

static void print_indented(const char *text)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        int n = end ? (int)(end - line) : (int)strlen(line);
        printf("        %.*s\n", n, line);
        line += n + (end ? 1 : 0);
    }
}

static int parse_range(const char *text)
{
    char lo[64];
    const char *dash = strchr(text, '-');
    if (!dash || dash == text || (size_t)(dash - text) >= sizeof lo)
        return -1;
    snprintf(lo, sizeof lo, "%.*s", (int)(dash - text), text);
    if (hak_parse_size(lo, &opt.lo))
        return -1;
    if (!strcasecmp(dash + 1, "max"))
        opt.hi = UINT64_MAX;
    else if (hak_parse_size(dash + 1, &opt.hi))
        return -1;
    if (opt.lo == 0)
        opt.lo = 1;
    return opt.hi < opt.lo ? -1 : 0;
}

static int parse_args(int argc, char **argv)
{
    memset(&opt, 0, sizeof opt);
    snprintf(opt.terminal, sizeof opt.terminal, "large");
    opt.lo = 1;
    opt.hi = 1024;
    opt.seed = 1;
    opt.ops = 100000;
    opt.threads = 2;
    opt.max_granules = 32;
    opt.timeout = 120;
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-v")) {
            opt.verbose = 1;
        } else if (!strcmp(a, "--no-fork")) {
            opt.no_fork = 1;
        } else if (!strcmp(a, "--foreign")) {
            opt.foreign_ok = 1;
        } else if (!strcmp(a, "-s") && v) {
            const char *eq = strchr(v, '=');
            const char *dot = strchr(v, '.');
            if (!eq || eq == v) {
                fprintf(stderr, "hakmem boxtest: -s %s: expected key=value\n", v);
                return -1;
            }
            char *buf = dot && dot < eq ? opt.overrides : opt.params;
            size_t cap = sizeof opt.params, used = strlen(buf);
            if (dot && dot < eq)
                snprintf(buf + used, cap - used, "%s%s", used ? "," : "", v);
            else
                snprintf(buf + used, cap - used, "%.*s = %s\n", (int)(eq - v), v, eq + 1);
            i++;
        } else if (!strcmp(a, "--range") && v) {
            if (parse_range(v)) {
                fprintf(stderr, "hakmem boxtest: --range %s: expected LO-HI such as 1-1K or 64K-max\n", v);
                return -1;
            }
            opt.range_given = 1;
            i++;
        } else if (!strcmp(a, "--link") && v) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1] || opt.link_count == HAK_MAX_LINKS) {
                fprintf(stderr, "hakmem boxtest: --link %s: expected NAME=PLUGIN\n", v);
                return -1;
            }
            struct link_choice *l = &opt.links[opt.link_count++];
            snprintf(l->name, sizeof l->name, "%.*s", (int)(eq - v), v);
            snprintf(l->plugin, sizeof l->plugin, "%s", eq + 1);
            i++;
        } else if (!strcmp(a, "--terminal") && v) {
            snprintf(opt.terminal, sizeof opt.terminal, "%s", v);
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            opt.seed = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--ops") && v) {
            opt.ops = strtol(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            opt.threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--granules") && v) {
            opt.max_granules = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(a, "--timeout") && v) {
            opt.timeout = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(a, "--case") && v) {
            opt.only = v;
            i++;
        } else if (a[0] != '-' && !target) {
            target = a;
        } else {
            fprintf(stderr, "hakmem boxtest: unknown or incomplete option %s\n", a);
            return -1;
        }
    }
    if (!target) {
        usage(stderr);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--case") || !strcmp(argv[i], "-v") || !strcmp(argv[i], "--no-fork")) {
            i += !strcmp(argv[i], "--case");
            continue;
        }
        size_t used = strlen(opt.command_line);
        int quote = strpbrk(argv[i], " \t'\"$") != NULL;
        snprintf(opt.command_line + used, sizeof opt.command_line - used, "%s%s%s%s", used ? " " : "",
                 quote ? "'" : "", argv[i], quote ? "'" : "");
    }
    if (opt.threads < 1 || opt.threads > 64 || opt.ops < 1 || opt.max_granules < 1 || opt.max_granules > 1000 ||
        opt.timeout < 1) {
        fprintf(stderr, "hakmem boxtest: --threads 1..64, --ops >= 1, --granules 1..1000, --timeout >= 1\n");
        return -1;
    }
    /* A file is named by its absolute path in the config; anything else is a
     * plugin name looked up like the host does. */
    if (strchr(target, '/') || access(target, R_OK) == 0) {
        if (!realpath(target, opt.box)) {
            fprintf(stderr, "hakmem boxtest: %s: %s\n", target, strerror(errno));
            return -1;
        }
    } else {
        snprintf(opt.box, sizeof opt.box, "%s", target);
    }
    return 0;
}

static int run_suite(const struct hak_box_desc *d)
{
    char err[1024];
    int passed = 0, failed = 0, skipped = 0;
    if (opt.only) {
        int known = 0;
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            known |= (!cases[i].role || (d->roles & cases[i].role)) && !strcmp(cases[i].name, opt.only);
        if (!known) {
            fprintf(stderr, "hakmem boxtest: --case %s: no such case for this box; its cases:", opt.only);
            for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
                if (!cases[i].role || (d->roles & cases[i].role))
                    fprintf(stderr, " '%s'", cases[i].name);
            fprintf(stderr, "\n");
            return 2;
        }
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct bt_case *c = &cases[i];
        if (c->role && !(d->roles & c->role))
            continue;
        if (opt.only && c->role && strcmp(opt.only, c->name)) {
            skipped++;
            continue;
        }
        if (c->role && failed && !passed) /* start failed: nothing else can run */
            break;
        static struct case_result res;
        run_case(c, &res);
        if (res.passed)
            passed++;
        else
            failed++;
        printf("%s  %-15s %s\n", res.passed ? "PASS" : "FAIL", c->name, res.passed ? res.summary : "");
        if (!res.passed || opt.verbose)
            print_indented(res.output);
        if (!strcmp(c->name, "start") && res.range_line[0] && res.passed) {
            /* the range the box declared, for every later case */
            char lo[32], hi[32];
            int off = 0;
            if (sscanf(res.range_line, "%31s %31s %n", lo, hi, &off) == 2) {
                char text[80];
                snprintf(text, sizeof text, "%s-%s", lo, hi);
                if (parse_range(text) == 0) {
                    snprintf(opt.range_note, sizeof opt.range_note, "%s", res.range_line + off);
                    if (build_config(d, err, sizeof err)) {
                        printf("FAIL  config: %s\n", err);
                        return 1;
                    }
                }
            }
        }
        if (!strcmp(c->name, "start") && (d->roles & HAK_ROLE_ALLOC)) {
            char lo[32], hi[32];
            format_size(lo, sizeof lo, opt.lo);
            format_size(hi, sizeof hi, opt.hi);
            printf("      range %s-%s%s%s%s\n", lo, hi, opt.range_note[0] ? " (" : "", opt.range_note,
                   opt.range_note[0] ? ")" : "");
        }
        fflush(stdout);
    }
    printf("%s: %d passed, %d failed", failed ? "FAILED" : "ok", passed, failed);
    printf(skipped ? ", %d skipped (--case)\n" : "\n", skipped);
    if (failed)
        printf("rerun one case with: hakmem boxtest %s --case NAME -v   (under gdb: add --no-fork)\n",
               opt.command_line);
    return failed ? 1 : 0;
}

int cmd_boxtest(int argc, char **argv)
{
    if (parse_args(argc, argv))
        return 2;
    /* The descriptor first: roles and links decide the config. */
    struct hak_error e = { "" };
    char path[PATH_MAX];
    const struct hak_box_desc *d = hak_plugin_load(opt.box, NULL, NULL, cli_lib_dir(), path, sizeof path, &e,
                                                   NULL, 0);
    if (!d) {
        fprintf(stderr, "hakmem boxtest: %s\n", e.msg);
        return 2;
    }
    if (!(d->roles & (HAK_ROLE_ALLOC | HAK_ROLE_PAGES | HAK_ROLE_OBSERVER))) {
        fprintf(stderr, "hakmem boxtest: %s has no role this suite knows\n", path);
        return 2;
    }
    char err[1024];
    if (build_config(d, err, sizeof err)) {
        fprintf(stderr, "hakmem boxtest: %s\n", err);
        return 2;
    }
    /* The config must resolve before any case runs (a bad -s, say). */
    {
        static struct hak_plan plan;
        static struct hak_cfg_raw raw;
        if (hak_plan_load(&plan, &raw, config_text, strlen(config_text), "(boxtest config)",
                          opt.overrides[0] ? opt.overrides : NULL, cli_lib_dir(), &e)) {
            fprintf(stderr, "hakmem boxtest: %s\n", e.msg);
            if (opt.verbose)
                fprintf(stderr, "%s", config_text);
            return 2;
        }
    }
    char roles[32];
    printf("hakmem boxtest: %s\n", path);
    printf("box %s [%s%s%s]: %s\n", d->name, hak_role_names(d->roles, roles, sizeof roles),
           d->flags & HAK_BOX_FLAG_FRONT ? ", front" : "", d->flags & HAK_BOX_FLAG_TERMINAL ? ", terminal" : "",
           d->summary ? d->summary : "");
    if (opt.verbose)
        printf("config:\n%s\n", config_text);
    fflush(stdout);
    return run_suite(d);
}
