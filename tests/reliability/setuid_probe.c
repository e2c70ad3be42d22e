/*
 * Run by setuid.sh as a setuid program (AT_SECURE set) linked to
 * libhakmem.so, with an environment that would break it if the host read
 * it: HAKMEM_CONFIG names a broken config, HAKMEM_SET an unknown key, and
 * HAKMEM_BOX_PATH a folder of fake boxes. Reaching main at all shows the
 * first two were ignored (a config error exits 78 before main); the rest is
 * checked here: the embedded default is in use, every box file mapped came
 * from the folder of libhakmem.so (its built-in boxes map none), and
 * allocation works on hakmem's boxes.
 *
 *   rel_setuid_probe secure   expect AT_SECURE and the above
 *   rel_setuid_probe plain    (not setuid) must never get here: the same
 *                             environment stops a normal program; exits 1
 */
#include <dlfcn.h>
#include <hakmem.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static int failures;
#define EXPECT(cond, ...) do { if (!(cond)) { failures++; \
    fprintf(stderr, "setuid_probe: expected %s: ", #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "secure";
    if (!strcmp(mode, "plain")) {
        fprintf(stderr, "setuid_probe: a normal program ran despite HAKMEM_CONFIG=%s\n",
                getenv("HAKMEM_CONFIG") ? getenv("HAKMEM_CONFIG") : "(unset)");
        return 1;
    }
    unsigned long secure = getauxval(AT_SECURE);
    EXPECT(secure != 0, "AT_SECURE is not set (uid %d, euid %d): the test did not run setuid", (int)getuid(),
           (int)geteuid());
    EXPECT(getenv("HAKMEM_CONFIG") != NULL, "HAKMEM_CONFIG is in the environment (ld.so keeps it)");

    const char *config = hakmem_config_name();
    EXPECT(config && !strcmp(config, "(embedded default)"), "the embedded default config, got %s",
           config ? config : "NULL (running on glibc)");

    /* Where libhakmem.so is, and where every box came from. */
    Dl_info self;
    char lib_dir[PATH_MAX] = "";
    if (dladdr((void *)hakmem_config_name, &self) && self.dli_fname) {
        snprintf(lib_dir, sizeof lib_dir, "%s", self.dli_fname);
        char *slash = strrchr(lib_dir, '/');
        if (slash)
            *slash = '\0';
    }
    EXPECT(lib_dir[0] != '\0', "dladdr finds libhakmem.so");
    FILE *maps = fopen("/proc/self/maps", "r");
    EXPECT(maps != NULL, "/proc/self/maps readable");
    int boxes = 0;
    char line[PATH_MAX + 128];
    while (maps && fgets(line, sizeof line, maps)) {
        char *path = strchr(line, '/');
        if (!path || !strstr(path, "/hakbox_"))
            continue;
        path[strcspn(path, "\n")] = '\0';
        if (strstr(line, " r-xp ") || strstr(line, " r--p ")) {
            boxes++;
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", path);
            *strrchr(dir, '/') = '\0';
            EXPECT(!strcmp(dir, lib_dir), "box %s loaded from the folder of libhakmem.so (%s)", path, lib_dir);
        }
    }
    if (maps)
        fclose(maps);
    /* The default config's boxes are built into libhakmem.so (no box file
     * mapped at all); any box that is mapped came from its folder. What
     * serves is checked below: every block is a hakmem box's. */

    /* It allocates, on hakmem. */
    void *blocks[1000];
    for (int i = 0; i < 1000; i++) {
        blocks[i] = malloc((size_t)i * 97 + 1);
        EXPECT(blocks[i] != NULL, "malloc works");
        if (blocks[i])
            memset(blocks[i], 1, (size_t)i * 97 + 1);
        EXPECT(!blocks[i] || hakmem_box_of(blocks[i]) != NULL, "a block of %zu bytes comes from a hakmem box",
               (size_t)i * 97 + 1);
    }
    void *big = malloc(4 << 20);
    EXPECT(big && hakmem_box_of(big) != NULL, "a 4 MB block comes from a hakmem box");
    free(big);
    for (int i = 0; i < 1000; i++)
        free(blocks[i]);

    if (failures)
        return 1;
    printf("setuid_probe: AT_SECURE=%lu, config %s, %d box mappings from %s: environment ignored\n", secure,
           config, boxes, lib_dir);
    return 0;
}
