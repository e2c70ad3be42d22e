/*
 * hakmem record -o FILE [-c A.ini | --hakmem] [-s key=value]... [--] CMD ARGS
 *
 * Runs CMD with libhakmem_record.so preloaded in front of the allocator
 * (glibc, or libhakmem.so with -c/-s/--hakmem), which writes one raw file
 * per program image into a private folder; once CMD has exited, each raw
 * file becomes a trace (host/record/convert.c). `%p` in FILE is the pid of
 * the process; without it the first process gets FILE and others FILE.PID.
 * A program run by exec gets .execN after its name. docs/replay.md.
 */
#include "cli.h"
#include "trace.h"

#include <box_api/hakmem_util.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct raw_file {
    char path[PATH_MAX];
    uint64_t pid, ppid;
    unsigned image;
};

static int by_pid_image(const void *a, const void *b)
{
    const struct raw_file *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->image < y->image ? -1 : x->image > y->image;
}

static int add_set(char *buf, size_t cap, const char *item)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, cap - used, "%s%s", used ? "," : "", item);
    return (n < 0 || (size_t)n >= cap - used) ? -1 : 0;
}

static int run_program(char **argv, const char *dir, const char *preload, const char *config,
                       const char *sets, double *seconds)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "hakmem record: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setenv("HAKMEM_RECORD_DIR", dir, 1);
        setenv("LD_PRELOAD", preload, 1);
        if (config)
            setenv("HAKMEM_CONFIG", config, 1);
        if (sets && *sets)
            setenv("HAKMEM_SET", sets, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "hakmem record: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    return status;
}

/* Raw files of the recording, in pid then image order. */
static struct raw_file *list_raw(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    struct raw_file *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".raw"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct raw_file *f = realloc(files, cap * sizeof *f);
            if (!f)
                break;
            files = f;
        }
        struct raw_file *f = &files[n];
        snprintf(f->path, sizeof f->path, "%s/%s", dir, de->d_name);
        char err[TRACE_ERR_MAX];
        if (trace_raw_identity(f->path, &f->pid, &f->ppid, &f->image, err)) {
            fprintf(stderr, "hakmem record: %s\n", err);
            continue;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(files, n, sizeof *files, by_pid_image);
    *count = n;
    return files;
}

int cmd_record(int argc, char **argv)
{
    const char *out = NULL, *config = NULL;
    char sets[4096] = "";
    int on_hakmem = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "-c") || !strcmp(argv[i], "-s")) && i + 1 < argc) {
            char opt = argv[i][1];
            i++;
            if (opt == 'o')
                out = argv[i];
            else if (opt == 'c')
                config = argv[i];
            else if (add_set(sets, sizeof sets, argv[i])) {
                fprintf(stderr, "hakmem record: too many -s overrides\n");
                return 2;
            }
            continue;
        }
        if (!strcmp(argv[i], "--hakmem")) {
            on_hakmem = 1;
            continue;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "hakmem record: unknown option %s\n", argv[i]);
            return 2;
        }
        break;
    }
    if (!out || i >= argc) {
        fprintf(stderr, "usage: hakmem record -o FILE [-c A.ini | --hakmem] [-s key=value]... [--] CMD ARGS\n"
                        "  records CMD's malloc-family calls (on glibc; on hakmem with -c/-s/--hakmem);\n"
                        "  %%p in FILE is the pid (one trace per process)\n");
        return 2;
    }
    on_hakmem |= config != NULL || sets[0];
    char record_lib[PATH_MAX + 32], host_lib[PATH_MAX + 32];
    snprintf(record_lib, sizeof record_lib, "%s/libhakmem_record.so", cli_lib_dir());
    snprintf(host_lib, sizeof host_lib, "%s/libhakmem.so", cli_lib_dir());
    if (access(record_lib, R_OK) || (on_hakmem && access(host_lib, R_OK))) {
        fprintf(stderr, "hakmem record: %s not found (set HAKMEM_LIB_DIR)\n",
                access(record_lib, R_OK) ? record_lib : host_lib);
        return 2;
    }
    char config_abs[PATH_MAX];
    if (config && !realpath(config, config_abs)) {
        fprintf(stderr, "hakmem record: config %s: %s\n", config, strerror(errno));
        return 2;
    }
    char preload[3 * PATH_MAX];
    const char *old = getenv("LD_PRELOAD");
    snprintf(preload, sizeof preload, "%s%s%s%s%s", record_lib, on_hakmem ? ":" : "", on_hakmem ? host_lib : "",
             old && *old ? ":" : "", old && *old ? old : "");
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/hakmem-record-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "hakmem record: cannot create a folder in %s: %s\n", tmp && *tmp ? tmp : "/tmp",
                strerror(errno));
        return 2;
    }
    double seconds = 0;
    int status = run_program(argv + i, dir, preload, config ? config_abs : NULL, sets, &seconds);
    int rc = status < 0 ? 1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (status >= 0 && WIFSIGNALED(status))
        fprintf(stderr, "hakmem record: %s was killed by signal %d; its events up to then are kept\n", argv[i],
                WTERMSIG(status));
    fprintf(stderr, "hakmem record: %s ran %.3f s (recorded%s)\n", argv[i], seconds, on_hakmem ? ", on hakmem" : "");
    size_t n = 0;
    struct raw_file *files = list_raw(dir, &n);
    uint64_t root = n ? files[0].pid : 0;
    /* The process record started is the one whose parent is not recorded. */
    for (size_t k = 0; k < n; k++) {
        int parent_recorded = 0;
        for (size_t j = 0; j < n; j++)
            parent_recorded |= files[j].pid == files[k].ppid;
        if (!parent_recorded) {
            root = files[k].pid;
            break;
        }
    }
    int failed = 0;
    for (size_t k = 0; k < n; k++) {
        char name[PATH_MAX], full[PATH_MAX + 64];
        int had_pid;
        if (hak_path_expand(out, (unsigned long long)files[k].pid, name, sizeof name, &had_pid)) {
            fprintf(stderr, "hakmem record: output name %s is too long\n", out);
            failed = 1;
            break;
        }
        int len = snprintf(full, sizeof full, "%s", name);
        if (!had_pid && files[k].pid != root)
            len += snprintf(full + len, sizeof full - (size_t)len, ".%llu", (unsigned long long)files[k].pid);
        if (files[k].image)
            snprintf(full + len, sizeof full - (size_t)len, ".exec%u", files[k].image);
        struct convert_info info;
        char err[TRACE_ERR_MAX] = "";
        if (trace_convert(files[k].path, full, &info, err)) {
            fprintf(stderr, "hakmem record: %s\n", err);
            failed = 1;
        } else {
            fprintf(stderr, "hakmem record: wrote %s: %llu calls, %llu threads, %llu blocks, pid %llu%s%s (%s)\n",
                    full, (unsigned long long)info.events, (unsigned long long)info.threads,
                    (unsigned long long)info.slots, (unsigned long long)info.pid,
                    info.image ? ", after exec" : "",
                    info.clean_exit ? "" : ", ended without exit (exec, _exit or a signal)", info.cmdline);
            if (info.bad_calls)
                fprintf(stderr, "hakmem record: %s: %llu calls took an address that was not a live block "
                                "(double or foreign frees), kept as recorded\n",
                        full, (unsigned long long)info.bad_calls);
            if (info.reappeared)
                fprintf(stderr, "hakmem record: %s: %llu blocks came back from the allocator while live "
                                "(freed out of sight)\n",
                        full, (unsigned long long)info.reappeared);
        }
        unlink(files[k].path);
    }
    if (!n)
        fprintf(stderr, "hakmem record: %s made no recorded process (was it linked statically?)\n", argv[i]);
    free(files);
    if (rmdir(dir))
        fprintf(stderr, "hakmem record: %s left in place: %s\n", dir, strerror(errno));
    if (failed || !n)
        return rc ? rc : 1;
    return rc;
}
