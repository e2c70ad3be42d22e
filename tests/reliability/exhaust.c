/*
 * Memory exhaustion under the preloaded host, with any config.
 *
 * Each case runs in a forked child that sets RLIMIT_AS a little above its
 * current size, then allocates with one entry point and one size until the
 * allocator says no. It must say so with NULL and errno ENOMEM
 * (posix_memalign: return ENOMEM, *out untouched), never crash; every other
 * entry point called while memory is exhausted must fail the same way (or
 * succeed); after everything is freed, the same allocations work again, and
 * so does one big allocation of half the headroom (memory cached by a box
 * must not stay out of reach). Impossible sizes (near SIZE_MAX and
 * PTRDIFF_MAX, or beyond the limit) fail cleanly from every entry point.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEADROOM ((size_t)64 << 20)
#define TABLE_MAX (HEADROOM / 32 * 2)

static int failures;
#define EXPECT(cond, ...) do { if (!(cond)) { failures++; \
    fprintf(stderr, "%s:%d: expected %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* ---- entry points ------------------------------------------------------- */

/* Each returns the block or NULL and sets *err: errno, or posix_memalign's
 * return value. Called through volatile pointers so the compiler cannot
 * reason about impossible sizes. */
typedef void *(*entry_fn)(size_t n, int *err);

#define ENTRY(name, expr) \
    static void *name(size_t n, int *err) { errno = 0; void *p = (expr); *err = errno; return p; }
ENTRY(e_malloc, malloc(n))
ENTRY(e_calloc, calloc(1, n))
ENTRY(e_calloc16, calloc(n / 16 ? n / 16 : 1, 16))
ENTRY(e_realloc, realloc(NULL, n))
ENTRY(e_reallocarray, reallocarray(NULL, n, 1))
ENTRY(e_memalign64, memalign(64, n))
ENTRY(e_memalign2m, memalign((size_t)2 << 20, n))
ENTRY(e_aligned_alloc, aligned_alloc(4096, n))
ENTRY(e_valloc, valloc(n))
ENTRY(e_pvalloc, pvalloc(n))

static void *e_posix_memalign(size_t n, int *err)
{
    void *out = (void *)0x5a5a;
    int saved = errno;
    *err = posix_memalign(&out, 256, n);
    if (*err) {
        EXPECT(out == (void *)0x5a5a, "posix_memalign(256, %zu) failed but changed *out", n);
        EXPECT(errno == saved || errno == ENOMEM, "posix_memalign changed errno to %d", errno);
        return NULL;
    }
    return out;
}

static const struct entry {
    const char *name;
    entry_fn fn;
    int aligned; /* alignment-driven: may use much more than n */
} entries[] = {
    { "malloc", e_malloc, 0 },
    { "calloc", e_calloc, 0 },
    { "calloc(n/16, 16)", e_calloc16, 0 },
    { "realloc(NULL)", e_realloc, 0 },
    { "reallocarray(NULL)", e_reallocarray, 0 },
    { "memalign(64)", e_memalign64, 1 },
    { "memalign(2M)", e_memalign2m, 1 },
    { "aligned_alloc(4096)", e_aligned_alloc, 1 },
    { "posix_memalign(256)", e_posix_memalign, 1 },
    { "valloc", e_valloc, 1 },
    { "pvalloc", e_pvalloc, 1 },
};
#define ENTRY_COUNT (sizeof entries / sizeof *entries)

/* Sizes in every tier of the tiered configs. */
static const size_t sizes[] = { 48, 3000, 20000, 200000, 1536 << 10, 6 << 20 };
#define SIZE_COUNT (sizeof sizes / sizeof *sizes)

/* ---- helpers ------------------------------------------------------------ */

static void **table; /* mapped before the limit: it must not compete */

static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long pages = 0;
    if (fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    fclose(f);
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* stdio could allocate once memory is gone: report with write(). */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)!write(STDOUT_FILENO, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void limit_address_space(void)
{
    size_t now = vm_size();
    struct rlimit rl = { now + HEADROOM, now + HEADROOM };
    if (setrlimit(RLIMIT_AS, &rl)) {
        note("setrlimit: %s\n", strerror(errno));
        _exit(2);
    }
}

/* The hakmem box owning p (include/hakmem.h), or NULL: glibc's memory, or
 * no hakmem at all. */
static const char *box_of(const void *p)
{
    static const char *(*fn)(const void *);
    if (!fn)
        fn = (const char *(*)(const void *))dlsym(RTLD_DEFAULT, "hakmem_box_of");
    return fn ? fn(p) : NULL;
}

static int is_enomem(void *p, int err) { return p == NULL && err == ENOMEM; }

static void *thread_allocates(void *arg)
{
    (void)arg;
    void *p = malloc(16);
    free(p);
    return (void *)1;
}

/* While memory is exhausted: every entry point fails cleanly or works. */
static void everything_else_while_exhausted(const char *what, void *keep)
{
    static const size_t probe[] = { 1, 16, 1000, 30000, 100000, 3 << 20 };
    for (size_t e = 0; e < ENTRY_COUNT; e++)
        for (size_t s = 0; s < sizeof probe / sizeof *probe; s++) {
            int err;
            unsigned char *p = entries[e].fn(probe[s], &err);
            if (p) {
                p[0] = 1;
                p[probe[s] - 1] = 2;
                free(p);
            } else {
                EXPECT(err == ENOMEM, "%s: exhausted by %s, %s(%zu) gave NULL with errno %d", what,
                       what, entries[e].name, probe[s], err);
            }
        }
    /* A block that cannot grow stays intact. */
    if (keep) {
        void *(*volatile realloc_fn)(void *, size_t) = realloc;
        errno = 0;
        void *q = realloc_fn(keep, HEADROOM);
        if (q) {
            free(q);
        } else {
            EXPECT(errno == ENOMEM, "%s: failed realloc set errno %d", what, errno);
        }
    }
    /* A new thread's first malloc while there is no memory for its state. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    pthread_t t;
    if (pthread_create(&t, &attr, thread_allocates, NULL) == 0)
        pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

/* ---- one case: fill with one entry point and size, free, refill --------- */

static size_t fill(const struct entry *e, size_t n, int *last_err, size_t *usable)
{
    size_t count = 0;
    if (usable)
        *usable = 0;
    for (;;) {
        if (count == TABLE_MAX) {
            note("%s(%zu): %zu blocks and no failure: is RLIMIT_AS enforced?\n", e->name, n, count);
            _exit(3);
        }
        int err;
        unsigned char *p = e->fn(n, &err);
        if (!p) {
            *last_err = err;
            return count;
        }
        p[0] = 0x11;
        p[n - 1] = 0x22;
        table[count++] = p;
        if (usable)
            *usable += malloc_usable_size(p);
    }
}

static void release(size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(table[i]);
}

static void exhaustion_case(const struct entry *e, size_t n)
{
    limit_address_space();
    int err = 0;
    size_t usable;
    size_t count = fill(e, n, &err, &usable);
    EXPECT(err == ENOMEM, "%s(%zu): NULL after %zu blocks with errno %d", e->name, n, count, err);
    /* The allocator must hand out a good part of the headroom before it
     * fails: usable bytes, so a box that serves small requests with whole
     * granules is not blamed; alignment-driven entry points may waste up
     * to the alignment each. */
    size_t got = count * n;
    if (!e->aligned)
        EXPECT(usable >= HEADROOM / 4, "%s(%zu): only %zu KB usable of %zu KB headroom handed out before "
               "ENOMEM", e->name, n, usable >> 10, HEADROOM >> 10);
    EXPECT(count > 0 || n > HEADROOM / 4, "%s(%zu): no block at all", e->name, n);
    everything_else_while_exhausted(e->name, count ? table[0] : NULL);
    for (size_t i = 0; i < count; i++) {
        unsigned char *p = table[i];
        if (p[0] != 0x11 || p[n - 1] != 0x22) {
            EXPECT(0, "%s(%zu): block %zu overwritten while memory ran out", e->name, n, i);
            break;
        }
    }
    const char *owned_by_box = count ? box_of(table[0]) : NULL;
    release(count);
    /* Recovery: the same allocations work again... */
    int err2 = 0;
    size_t again = fill(e, n, &err2, NULL);
    EXPECT(again >= count / 2, "%s(%zu): after freeing, only %zu of %zu blocks again", e->name, n, again, count);
    release(again);
    /* ...and memory cached for one size serves another, at the latest
     * after malloc_trim (glibc itself needs it at times). */
    errno = 0;
    void *big = malloc(HEADROOM / 2);
    int trimmed = 0;
    if (!big) {
        malloc_trim(0);
        trimmed = 1;
        big = malloc(HEADROOM / 2);
    }
    /* glibc's own heap (the system box) may keep address space it cannot
     * return; that is glibc's business, not a box's. */
    EXPECT(big != NULL || !owned_by_box, "%s(%zu): after freeing everything and malloc_trim, malloc(%zu MB) "
           "failed (errno %d): memory freed to box %s stays out of reach", e->name, n, (HEADROOM / 2) >> 20,
           errno, owned_by_box ? owned_by_box : "?");
    free(big);
    note("%-20s %8zu: %8zu blocks (%4zu MB) before ENOMEM, %8zu after freeing%s\n", e->name, n, count,
         got >> 20, again, trimmed ? " (big block needed malloc_trim)" : "");
}

/* ---- impossible sizes -------------------------------------------------- */

static volatile size_t v_size_max = SIZE_MAX;

static size_t beyond_machine(void)
{
    struct sysinfo si;
    size_t machine = 0;
    if (sysinfo(&si) == 0)
        machine = ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit;
    size_t n = (size_t)1 << 40;
    while (n <= 2 * machine && n < ((size_t)1 << 46))
        n <<= 1;
    return n;
}

static int overcommit_always(void)
{
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = 0;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = 0;
        fclose(f);
    }
    return mode == 1;
}

static void impossible_sizes(int limited)
{
    const size_t smax = v_size_max, pmax = smax >> 1;
    /* The last entry: more than twice the machine's RAM and swap (at least
     * 1 TB). The kernel's overcommit check refuses it, so glibc fails it
     * without any limit, unless vm.overcommit_memory = 1 (then it is only
     * tried under the limit). Not 2^46: a host that wrongly accepts it
     * would touch gigabytes of bookkeeping, on CI machines. */
    const size_t huge[] = { smax, smax - 1, smax - 15, smax - 4095, smax - (2u << 20), pmax + 1, pmax,
                            pmax - 1, pmax - 4095, pmax - (2u << 20), beyond_machine() };
    const size_t beyond_limit[] = { (size_t)1 << 46, (size_t)1 << 40, (size_t)1 << 36, HEADROOM * 2 };
    size_t huge_count = sizeof huge / sizeof *huge;
    if (!limited && overcommit_always())
        huge_count -= 1;
    int succeeded[sizeof huge / sizeof *huge] = { 0 };
    for (size_t e = 0; e < ENTRY_COUNT; e++) {
        for (size_t s = 0; s < huge_count; s++) {
            if (succeeded[s])
                continue; /* reported once; calloc would spend hours zeroing it */
            int err;
            void *p = entries[e].fn(huge[s], &err);
            EXPECT(is_enomem(p, err), "%s(%#zx): %p, errno %d", entries[e].name, huge[s], p, err);
            succeeded[s] = p != NULL;
            free(p);
        }
        if (!limited)
            continue;
        for (size_t s = 0; s < sizeof beyond_limit / sizeof *beyond_limit; s++) {
            int err;
            void *p = entries[e].fn(beyond_limit[s], &err);
            EXPECT(is_enomem(p, err), "%s(%zu) beyond RLIMIT_AS: %p, errno %d", entries[e].name,
                   beyond_limit[s], p, err);
            free(p);
        }
    }
    /* Overflowing products. */
    errno = 0;
    void *p = calloc(pmax, 3);
    EXPECT(is_enomem(p, errno), "calloc(PTRDIFF_MAX, 3)");
    errno = 0;
    p = calloc(v_size_max >> 31, v_size_max >> 31); /* 2^33 * 2^33 */
    EXPECT(is_enomem(p, errno), "calloc(2^33, 2^33)");
    errno = 0;
    p = reallocarray(NULL, v_size_max >> 30, v_size_max >> 32); /* 2^34 * 2^32 */
    EXPECT(is_enomem(p, errno), "reallocarray(NULL, 2^34, 2^32)");
    /* A live block survives failed growth to an impossible size. */
    char *keep = malloc(100);
    EXPECT(keep != NULL, "malloc(100)");
    if (keep) {
        memset(keep, 'k', 100);
        void *(*volatile realloc_fn)(void *, size_t) = realloc;
        void *(*volatile reallocarray_fn)(void *, size_t, size_t) = reallocarray;
        for (size_t s = 0; s < sizeof huge / sizeof *huge; s++) {
            if (s >= huge_count || succeeded[s])
                continue;
            errno = 0;
            void *q = realloc_fn(keep, huge[s]);
            EXPECT(is_enomem(q, errno), "realloc(p, %#zx): %p errno %d", huge[s], q, errno);
            if (q)
                keep = q; /* it moved: keep checking the block where it is now */
        }
        errno = 0;
        void *q = reallocarray_fn(keep, pmax, 4);
        EXPECT(is_enomem(q, errno), "reallocarray(p, PTRDIFF_MAX, 4)");
        for (int i = 0; i < 100; i++)
            if (keep[i] != 'k') {
                EXPECT(0, "failed realloc damaged the block");
                break;
            }
        free(keep);
    }
    /* Impossible alignments with ordinary sizes. */
    errno = 0;
    p = memalign(smax / 4 + 1, 16); /* 2^62, computed: clang checks constants */
    EXPECT(p == NULL, "memalign(2^62, 16) = %p", p);
    free(p);
    if (limited) {
        errno = 0;
        p = memalign(smax >> 23, 16); /* 2^41 - 1, rounded up to 2^41 */
        EXPECT(is_enomem(p, errno), "memalign(2^41, 16) under RLIMIT_AS: %p errno %d", p, errno);
        free(p);
        void *out = (void *)0x77;
        int rc = posix_memalign(&out, (size_t)1 << 40, 16);
        EXPECT(rc == ENOMEM && out == (void *)0x77, "posix_memalign(2^40, 16) under RLIMIT_AS: %d", rc);
    }
}

/* ---- driver ------------------------------------------------------------ */

static int run_child(const char *what, void (*fn)(const void *), const void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        alarm(60);
        failures = 0;
        fn(arg);
        _exit(failures ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "FAIL %s: the child died of signal %d (%s)%s\n", what, WTERMSIG(status),
                strsignal(WTERMSIG(status)), WTERMSIG(status) == SIGALRM ? ": it hung" : "");
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "FAIL %s: exit %d\n", what, WEXITSTATUS(status));
        return 1;
    }
    return 0;
}

struct case_arg {
    const struct entry *e;
    size_t n;
};

static void case_fn(const void *arg)
{
    const struct case_arg *c = arg;
    exhaustion_case(c->e, c->n);
}

static void impossible_limited(const void *arg)
{
    (void)arg;
    limit_address_space();
    impossible_sizes(1);
}

static void impossible_unlimited(const void *arg)
{
    (void)arg;
    impossible_sizes(0);
}

int main(int argc, char **argv)
{
    /* "impossible": only the impossible sizes; "limit": only the RLIMIT_AS
     * cases; nothing: both. */
    const char *part = argc > 1 ? argv[1] : "all";
    int impossible = strcmp(part, "limit") != 0, limit = strcmp(part, "impossible") != 0;
    table = mmap(NULL, TABLE_MAX * sizeof(void *), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (table == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    /* Start the host and its per-thread state before any limit. */
    free(malloc(1));
    int bad = 0;
    if (impossible) {
        bad |= run_child("impossible sizes", impossible_unlimited, NULL);
        bad |= run_child("impossible sizes under RLIMIT_AS", impossible_limited, NULL);
    }
    for (size_t e = 0; limit && e < ENTRY_COUNT; e++)
        for (size_t s = 0; s < SIZE_COUNT; s++) {
            char what[96];
            snprintf(what, sizeof what, "%s(%zu) under RLIMIT_AS", entries[e].name, sizes[s]);
            struct case_arg c = { &entries[e], sizes[s] };
            bad |= run_child(what, case_fn, &c);
        }
    printf(bad ? "exhaust (%s): FAILED\n" : "exhaust (%s): all checks passed\n", part);
    return bad;
}
