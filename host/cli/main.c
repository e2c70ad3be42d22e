/*
 * hakmem: the command researchers use.
 *   hakmem run [-c FILE] [-s key=value]... -- CMD ARGS...
 *   hakmem check FILE         validate a config, print the resolved chain
 *   hakmem boxes              every box found, its roles and parameters
 *   hakmem bench ARGS...      the comparison runner (bench/hakmem_bench.py)
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hakmem COMMAND [ARGS]\n"
            "  run [-c FILE] [-s key=value]... -- CMD ARGS   run CMD with hakmem preloaded\n"
            "  check FILE [-s key=value]...                  validate FILE, print the resolved chain\n"
            "  boxes                                         list boxes and their parameters\n"
            "  bench [ARGS]                                  compare configs and allocators (bench --help)\n"
            "  report A.json [B.json]                        telemetry of one run, or two side by side\n"
            "  new-box NAME [--role alloc|pages|observer]    scaffold an out-of-tree box project\n"
            "  boxtest PATH.so [-s key=value]...             conformance suite for a box\n"
            "  bundle -c FILE -o OUT.so [-s key=value]...    the host and FILE's boxes in one .so\n"
            "  record -o FILE [-c A.ini] [--] CMD ARGS       record CMD's malloc calls as a trace\n"
            "  replay FILE [-c A.ini]... [-A glibc,...]      replay a trace under configs and allocators\n"
            "  trace stats FILE [--json] [--chart PNG]       what is in a trace\n"
            "  version                                       print the version\n");
}

/* Append "key=value" to a comma list of overrides. */
static int add_override(char *buf, size_t cap, const char *item)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, cap - used, "%s%s", used ? "," : "", item);
    return (n < 0 || (size_t)n >= cap - used) ? -1 : 0;
}

int cmd_run(int argc, char **argv)
{
    const char *config = NULL;
    char overrides[4096] = "";
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "-s")) && i + 1 < argc) {
            if (argv[i][1] == 'c')
                config = argv[++i];
            else if (add_override(overrides, sizeof overrides, argv[++i])) {
                fprintf(stderr, "hakmem run: too many -s overrides\n");
                return 2;
            }
            continue;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "hakmem run: unknown option %s\n", argv[i]);
            return 2;
        }
        break;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: hakmem run [-c FILE] [-s key=value]... -- CMD ARGS...\n");
        return 2;
    }
    char lib[PATH_MAX + 16];
    snprintf(lib, sizeof lib, "%s/libhakmem.so", cli_lib_dir());
    if (access(lib, R_OK)) {
        fprintf(stderr, "hakmem run: %s not found (set HAKMEM_LIB_DIR)\n", lib);
        return 2;
    }
    char preload[2 * PATH_MAX];
    const char *old = getenv("LD_PRELOAD");
    snprintf(preload, sizeof preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", preload, 1);
    if (config) {
        char abs[PATH_MAX];
        if (!realpath(config, abs)) {
            fprintf(stderr, "hakmem run: config %s: %s\n", config, strerror(errno));
            return 2;
        }
        setenv("HAKMEM_CONFIG", abs, 1);
    }
    if (overrides[0]) {
        const char *prev = getenv("HAKMEM_SET");
        char all[8192];
        snprintf(all, sizeof all, "%s%s%s", prev && *prev ? prev : "", prev && *prev ? "," : "", overrides);
        setenv("HAKMEM_SET", all, 1);
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "hakmem run: cannot run %s: %s\n", argv[i], strerror(errno));
    return 127;
}

int cmd_bench(int argc, char **argv)
{
    char runner[PATH_MAX + 32];
    snprintf(runner, sizeof runner, "%s/bench/hakmem_bench.py", cli_data_dir());
    char **args = calloc((size_t)argc + 8, sizeof *args);
    if (!args)
        return 2;
    int n = 0;
    args[n++] = "python3";
    args[n++] = runner;
    args[n++] = "--hakmem-lib";
    args[n++] = (char *)cli_lib_dir();
    args[n++] = "--workload-dir";
    args[n++] = (char *)cli_exe_dir();
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execvp("python3", args);
    fprintf(stderr, "hakmem bench: cannot run python3 %s: %s\n", runner, strerror(errno));
    return 127;
}

int main(int argc, char **argv)
{
    cli_find_dirs();
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "boxes"))
        return cmd_boxes(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "new-box"))
        return cmd_new_box(argc - 1, argv + 1);
    if (!strcmp(cmd, "boxtest"))
        return cmd_boxtest(argc - 1, argv + 1);
    if (!strcmp(cmd, "bundle"))
        return cmd_bundle(argc - 1, argv + 1);
    if (!strcmp(cmd, "record"))
        return cmd_record(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "trace"))
        return cmd_trace(argc - 1, argv + 1);
    if (!strcmp(cmd, "version")) {
        printf("hakmem %s (box ABI %u)\n", HAKMEM_VERSION, HAK_BOX_ABI_VERSION);
        return 0;
    }
    fprintf(stderr, "hakmem: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
