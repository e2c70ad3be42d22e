/*
 * hakmem replay FILE [--ordered] [--replay-bad-frees] [bench options]:
 * the trace as a workload of the bench runner (`-w trace:FILE`), so that a
 * replay has the columns, measurements and verdicts of `hakmem bench`
 * (-c, -s, -A, -n, --instructions, -o ...). docs/replay.md.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_replay(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: hakmem replay FILE [--ordered] [--replay-bad-frees] [-c A.ini]... [-A glibc,...] "
                        "[--instructions] [other hakmem bench options]\n");
        return 2;
    }
    char abs[PATH_MAX];
    if (!realpath(argv[1], abs)) {
        fprintf(stderr, "hakmem replay: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    if (strchr(abs, ':') || strchr(abs, ',')) {
        fprintf(stderr, "hakmem replay: %s: a trace path with ':' or ',' cannot name a workload\n", abs);
        return 2;
    }
    char spec[PATH_MAX + 64];
    int n = snprintf(spec, sizeof spec, "trace:%s", abs);
    char **args = calloc((size_t)argc + 4, sizeof *args);
    if (!args)
        return 2;
    int k = 0;
    args[k++] = "bench";
    args[k++] = "-w";
    args[k++] = spec;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ordered"))
            n += snprintf(spec + n, sizeof spec - (size_t)n, ":ordered");
        else if (!strcmp(argv[i], "--replay-bad-frees"))
            n += snprintf(spec + n, sizeof spec - (size_t)n, ":bad-frees");
        else
            args[k++] = argv[i];
    }
    args[k] = NULL;
    return cmd_bench(k, args);
}
