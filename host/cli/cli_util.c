/*
 * Helpers several hakmem commands use (declared in cli.h): where this
 * installation keeps libhakmem.so and the boxes, and its data (the bench
 * runner, the configs), found from the executable's own location once at
 * start-up (cli_find_dirs, from main).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char exe_dir[PATH_MAX], lib_dir[PATH_MAX], data_dir[PATH_MAX];

static int is_dir_with(const char *dir, const char *file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return access(path, R_OK) == 0;
}

void cli_find_dirs(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    if (n <= 0) {
        snprintf(exe_dir, sizeof exe_dir, ".");
    } else {
        exe_dir[n] = '\0';
        char *slash = strrchr(exe_dir, '/');
        if (slash)
            *slash = '\0';
    }
    const char *env = getenv("HAKMEM_LIB_DIR");
    const char *candidates[] = { "../lib", HAKMEM_REL_LIBDIR };
    if (env && *env) {
        snprintf(lib_dir, sizeof lib_dir, "%s", env);
    } else {
        snprintf(lib_dir, sizeof lib_dir, "%s/../lib", exe_dir);
        for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s/%s", exe_dir, candidates[i]);
            if (is_dir_with(dir, "libhakmem.so")) {
                snprintf(lib_dir, sizeof lib_dir, "%s", dir);
                break;
            }
        }
    }
    char installed[PATH_MAX];
    snprintf(installed, sizeof installed, "%s/%s", exe_dir, HAKMEM_REL_DATADIR);
    if (is_dir_with(installed, "bench/hakmem_bench.py"))
        snprintf(data_dir, sizeof data_dir, "%s", installed);
    else
        snprintf(data_dir, sizeof data_dir, "%s", HAKMEM_SOURCE_DIR);
}

const char *cli_lib_dir(void) { return lib_dir; }
const char *cli_data_dir(void) { return data_dir; }
const char *cli_exe_dir(void) { return exe_dir; }
