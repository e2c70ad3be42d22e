/*
 * The malloc API under LD_PRELOAD=libhakmem.so, against glibc's documented
 * semantics: sizes, alignments, usable sizes, contents across realloc,
 * calloc zeroing, errno on every failure path, foreign pointers.
 * Run with any config (CTest runs it under each file in configs/).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define EXPECT(cond, ...) do { if (!(cond)) { failures++; \
    fprintf(stderr, "%s:%d: expected %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); if (failures > 20) exit(1); } } while (0)

static unsigned char pattern(size_t i, size_t n) { return (unsigned char)(i * 31 + n); }

static void fill(unsigned char *p, size_t n) { for (size_t i = 0; i < n; i++) p[i] = pattern(i, n); }

static int intact(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(i, n))
            return 0;
    return 1;
}

static void check_block(void *p, size_t n, size_t align, const char *what)
{
    EXPECT(p != NULL, "%s(%zu) returned NULL", what, n);
    if (!p)
        return;
    EXPECT(((uintptr_t)p & (align - 1)) == 0, "%s(%zu) = %p not %zu-aligned", what, n, p, align);
    EXPECT(malloc_usable_size(p) >= n, "%s(%zu): usable %zu", what, n, malloc_usable_size(p));
}

static void every_small_size(void)
{
    /* Keep a window of live blocks so overlapping blocks would show. */
    enum { WINDOW = 64 };
    void *live[WINDOW] = { 0 };
    size_t sizes[WINDOW] = { 0 };
    for (size_t n = 0; n <= 65536; n++) {
        size_t slot = n % WINDOW;
        if (live[slot]) {
            EXPECT(intact(live[slot], sizes[slot]), "block of %zu bytes was overwritten", sizes[slot]);
            free(live[slot]);
        }
        void *p = malloc(n);
        check_block(p, n, 16, "malloc");
        fill(p, n);
        live[slot] = p;
        sizes[slot] = n;
    }
    for (int i = 0; i < WINDOW; i++) {
        EXPECT(intact(live[i], sizes[i]), "block of %zu bytes was overwritten", sizes[i]);
        free(live[i]);
    }
}

static void large_sizes(void)
{
    static const size_t sizes[] = { 65537, 100000, 1 << 20, (2 << 20) - 1, 2 << 20, (2 << 20) + 1,
                                    8 << 20, 64 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = malloc(sizes[i]);
        check_block(p, sizes[i], 16, "malloc");
        if (!p)
            continue;
        p[0] = 1;
        p[sizes[i] - 1] = 2;
        memset(p + sizes[i] / 2, 3, 4096 < sizes[i] / 2 ? 4096 : sizes[i] / 2);
        EXPECT(p[0] == 1 && p[sizes[i] - 1] == 2, "large block contents");
        free(p);
    }
}

static void alignments(void)
{
    static const size_t sizes[] = { 1, 8, 24, 100, 1000, 4096, 5000, 70000, 3 << 20 };
    for (size_t align = 8; align <= (1 << 20); align <<= 1) {
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            size_t n = sizes[s];
            void *p = memalign(align, n);
            check_block(p, n, align, "memalign");
            if (p) { memset(p, 0xab, n); free(p); }
            p = aligned_alloc(align, n);
            check_block(p, n, align, "aligned_alloc");
            if (p) { memset(p, 0xab, n); free(p); }
            void *q = NULL;
            int rc = posix_memalign(&q, align, n);
            EXPECT(rc == 0, "posix_memalign(%zu, %zu) = %d", align, n, rc);
            check_block(q, n, align, "posix_memalign");
            if (q) { memset(q, 0xab, n); free(q); }
        }
    }
    long page = sysconf(_SC_PAGESIZE);
    void *p = valloc(100);
    check_block(p, 100, (size_t)page, "valloc");
    free(p);
    p = pvalloc(100);
    check_block(p, (size_t)page, (size_t)page, "pvalloc");
    free(p);
    p = pvalloc(0);
    check_block(p, (size_t)page, (size_t)page, "pvalloc");
    free(p);
    /* glibc rounds a non-power-of-two memalign alignment up. */
    static volatile size_t odd_align = 24; /* volatile: clang rejects it at build time */
    p = memalign(odd_align, 100);
    check_block(p, 100, 32, "memalign(24)");
    free(p);
}

static void reallocs(void)
{
    unsigned char *p = NULL;
    size_t n = 0;
    for (size_t next = 1; next <= (4 << 20); next = next * 3 / 2 + 1) {
        unsigned char *q = realloc(p, next);
        EXPECT(q != NULL, "realloc to %zu", next);
        if (!q)
            return;
        EXPECT(!n || intact(q, n), "realloc %zu -> %zu lost contents", n, next);
        fill(q, next);
        p = q;
        n = next;
    }
    while (n > 1) {
        size_t next = n / 3;
        if (!next)
            next = 1;
        unsigned char *q = realloc(p, next);
        EXPECT(q != NULL, "realloc down to %zu", next);
        if (!q)
            return;
        for (size_t i = 0; i < next; i++)
            if (q[i] != pattern(i, n)) {
                EXPECT(0, "shrinking realloc %zu -> %zu lost byte %zu", n, next, i);
                break;
            }
        fill(q, next);
        p = q;
        n = next;
    }
    free(p);
    p = realloc(NULL, 100);
    check_block(p, 100, 16, "realloc(NULL)");
    errno = 0;
    EXPECT(realloc(p, 0) == NULL, "realloc(p, 0) frees and returns NULL");
    p = reallocarray(NULL, 10, 10);
    check_block(p, 100, 16, "reallocarray");
    free(p);
}

static void callocs(void)
{
    for (size_t n = 1; n <= (1 << 20); n = n * 2 + 7) {
        unsigned char *dirty = malloc(n);
        if (dirty)
            memset(dirty, 0xff, n);
        free(dirty);
        unsigned char *p = calloc(1, n);
        check_block(p, n, 16, "calloc");
        if (!p)
            continue;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += p[i] != 0;
        EXPECT(bad == 0, "calloc(1, %zu) left %zu non-zero bytes", n, bad);
        free(p);
    }
    unsigned char *p = calloc(1000, 24);
    check_block(p, 24000, 16, "calloc");
    free(p);
}

/* A malloc that succeeds leaves errno alone, also when it grows the heap
 * (the host then may read /proc/self/statm, at most every 2 ms: the
 * sleeps make each round take a fresh sample). Half the rounds run with
 * no descriptor left (RLIMIT_NOFILE at the lowest free one), so the
 * host's open fails with EMFILE and must not leave that in errno. */
static void growth_keeps_errno(void)
{
    static const size_t sizes[] = { 8 << 10, 40 << 10, 200 << 10, 1 << 20, 6 << 20 };
    void *kept[8 * (sizeof sizes / sizeof sizes[0])];
    size_t count = 0;
    struct rlimit saved;
    int lowest_free = dup(0);
    EXPECT(lowest_free >= 0 && getrlimit(RLIMIT_NOFILE, &saved) == 0, "dup/getrlimit: errno %d", errno);
    if (lowest_free < 0)
        return;
    close(lowest_free);
    for (int round = 0; round < 8; round++) {
        if (round == 4) {
            struct rlimit none = { (rlim_t)lowest_free, saved.rlim_max };
            EXPECT(setrlimit(RLIMIT_NOFILE, &none) == 0, "setrlimit: errno %d", errno);
            int probe = open("/proc/self/statm", O_RDONLY);
            EXPECT(probe < 0, "open still works under RLIMIT_NOFILE %d", lowest_free);
            if (probe >= 0)
                close(probe);
        }
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            struct timespec pause = { 0, 3000000 };
            nanosleep(&pause, NULL);
            errno = EDOM;
            void *p = malloc(sizes[i] + (size_t)round * 4096);
            EXPECT(p != NULL && errno == EDOM, "malloc(%zu) growing the heap: %p, errno %d (was EDOM)",
                   sizes[i], p, errno);
            if (p)
                memset(p, 1, sizes[i]);
            kept[count++] = p;
        }
    }
    setrlimit(RLIMIT_NOFILE, &saved);
    for (size_t i = 0; i < count; i++)
        free(kept[i]);
}

static long resident_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The first call of the process (the host starts: it probes for box files
 * and may find none), and reallocs that the host serves by moving pages
 * (mremap refused for a block spanning two mappings, then retried) leave
 * errno alone when they succeed. Run first, on a fresh heap: the 64 MB
 * block reuses the pages of the 6 MB one moved before it, so it spans two
 * mappings; growing it must move its pages, not copy them (a copy makes
 * the 64 MB the program never wrote resident). */
static void remap_keeps_errno_and_pages(void)
{
    static const size_t sizes[] = { 8, 100, 1000, 2000, 40000, 100000, 1 << 20, 3 << 20, 64 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = EDOM;
        void *p = malloc(sizes[i]);
        EXPECT(p != NULL && errno == EDOM, "malloc(%zu): %p, errno %d (was EDOM)", sizes[i], p, errno);
        long before = resident_kb();
        errno = EDOM;
        void *q = realloc(p, sizes[i] * 2);
        long grown = resident_kb() - before;
        EXPECT(q != NULL && errno == EDOM, "realloc(%zu -> %zu): %p, errno %d (was EDOM)", sizes[i],
               sizes[i] * 2, q, errno);
        EXPECT(sizes[i] < (1 << 20) || grown < 4096,
               "realloc(%zu -> %zu) of unwritten memory made %ld KB resident", sizes[i],
               sizes[i] * 2, grown);
        errno = EDOM;
        free(q);
        EXPECT(errno == EDOM, "free after realloc(%zu): errno %d (was EDOM)", sizes[i] * 2, errno);
        errno = EDOM;
        p = calloc(1, sizes[i]);
        EXPECT(p != NULL && errno == EDOM, "calloc(%zu): %p, errno %d (was EDOM)", sizes[i], p, errno);
        free(p);
    }
}

/* volatile: keeps the compiler from folding impossible sizes at build time. */
static volatile size_t size_max = SIZE_MAX;

static void failures_and_errno(void)
{
    const size_t SMAX = size_max;
    void *volatile p;
    errno = 0;
    p = malloc(SMAX);
    EXPECT(p == NULL && errno == ENOMEM, "malloc(SMAX): %p errno %d", p, errno);
    errno = 0;
    p = malloc(SMAX / 2 + 1);
    EXPECT(p == NULL && errno == ENOMEM, "malloc(PTRDIFF_MAX+1): errno %d", errno);
    errno = 0;
    p = malloc(SMAX - 4096);
    EXPECT(p == NULL && errno == ENOMEM, "malloc(SMAX-4096): errno %d", errno);
    errno = 0;
    p = calloc(SMAX / 2, 3);
    EXPECT(p == NULL && errno == ENOMEM, "calloc overflow: errno %d", errno);
    errno = 0;
    p = reallocarray(NULL, SMAX / 2, 3);
    EXPECT(p == NULL && errno == ENOMEM, "reallocarray overflow: errno %d", errno);
    char *keep = malloc(10);
    strcpy(keep, "intact");
    errno = 0;
    /* Through a volatile pointer: GCC cannot know a failed realloc keeps
     * the block, and would warn about the use after it. */
    void *(*volatile realloc_fn)(void *, size_t) = realloc;
    p = realloc_fn(keep, SMAX);
    EXPECT(p == NULL && errno == ENOMEM, "realloc(SMAX): errno %d", errno);
    EXPECT(strcmp(keep, "intact") == 0, "failed realloc keeps the block");
    free(keep);
    void *out = (void *)0x1234;
    EXPECT(posix_memalign(&out, 3, 8) == EINVAL && out == (void *)0x1234, "posix_memalign(3) EINVAL");
    EXPECT(posix_memalign(&out, 4, 8) == EINVAL, "posix_memalign(4) EINVAL (below sizeof(void *))");
    /* Through a volatile pointer: GCC knows posix_memalign as a builtin
     * that writes only *out, and would fold the errno reads below. */
    int (*volatile posix_memalign_fn)(void **, size_t, size_t) = posix_memalign;
    errno = 0;
    EXPECT(posix_memalign_fn(&out, 64, SMAX) == ENOMEM && out == (void *)0x1234, "posix_memalign ENOMEM");
    EXPECT(errno == ENOMEM, "posix_memalign ENOMEM leaves errno ENOMEM, not %d", errno);
    errno = 0;
    p = aligned_alloc(64, SMAX);
    EXPECT(p == NULL && errno == ENOMEM, "aligned_alloc(SMAX): errno %d", errno);
    /* Every power-of-two alignment up to 2^63 that cannot be satisfied is
     * ENOMEM, as in glibc; only beyond 2^63 is memalign's EINVAL. */
    static volatile size_t one = 1;
    for (unsigned bit = 20; bit <= 63; bit++) {
        size_t align = one << bit;
        size_t sizes[] = { 8, SMAX / 4, SMAX - align + 1 };
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            if (bit < 47 && k == 0)
                continue; /* small alignments with a small size can succeed */
            errno = 0;
            p = memalign(align, sizes[k]);
            EXPECT(p == NULL && errno == ENOMEM, "memalign(2^%u, %zu): %p errno %d", bit,
                   sizes[k], p, errno);
            errno = 0;
            p = aligned_alloc(align, sizes[k]);
            EXPECT(p == NULL && errno == ENOMEM, "aligned_alloc(2^%u, %zu): errno %d", bit,
                   sizes[k], errno);
            errno = 0;
            out = (void *)0x1234;
            int rc = posix_memalign_fn(&out, align, sizes[k]);
            EXPECT(rc == ENOMEM && errno == ENOMEM && out == (void *)0x1234,
                   "posix_memalign(2^%u, %zu) = %d errno %d", bit, sizes[k], rc, errno);
        }
    }
    /* 2^63 + 1 has no power of two to round up to. */
    errno = 0;
    p = memalign((one << 63) + 1, 8);
    EXPECT(p == NULL && errno == EINVAL, "memalign(2^63+1): errno %d", errno);
    errno = 0;
    p = pvalloc(SMAX);
    EXPECT(p == NULL && errno == ENOMEM, "pvalloc(SMAX): errno %d", errno);
    errno = 0;
    p = valloc(SMAX);
    EXPECT(p == NULL && errno == ENOMEM, "valloc(SMAX): errno %d", errno);
    free(NULL);
    EXPECT(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)");
}

static void foreign_pointers(void)
{
    /* glibc's own malloc, behind ours: its blocks must be freed by glibc. */
    void *(*libc_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    EXPECT(libc_malloc != NULL, "glibc's malloc found");
    if (!libc_malloc)
        return;
    for (int i = 0; i < 1000; i++) {
        char *p = libc_malloc((size_t)(i * 37 % 5000) + 1);
        p[0] = 'x';
        if (i % 3 == 0) {
            EXPECT(malloc_usable_size(p) >= (size_t)(i * 37 % 5000) + 1, "usable size of a glibc block");
            free(p);
        } else {
            char *q = realloc(p, 20000);
            EXPECT(q && q[0] == 'x', "realloc of a glibc block keeps contents");
            free(q);
        }
    }
}

static void introspection(void)
{
    const char *(*config_name)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hakmem_config_name");
    EXPECT(config_name != NULL, "hakmem is preloaded");
    if (config_name) {
        const char *name = config_name();
        EXPECT(name != NULL, "hakmem runs (not fallen back to glibc)");
        if (name)
            printf("config: %s\n", name);
    }
    struct mallinfo2 mi = mallinfo2();
    (void)mi;
    malloc_trim(0);
}

int main(void)
{
    remap_keeps_errno_and_pages();
    introspection();
    every_small_size();
    large_sizes();
    alignments();
    reallocs();
    callocs();
    failures_and_errno();
    growth_keeps_errno();
    foreign_pointers();
    if (failures) {
        fprintf(stderr, "conformance: %d failures\n", failures);
        return 1;
    }
    printf("conformance: all checks passed\n");
    return 0;
}
