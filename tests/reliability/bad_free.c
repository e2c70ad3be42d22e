/*
 * Bad frees under the preloaded host: each case runs in a forked child
 * whose stderr is captured.
 *
 *   rel_bad_free CASE          the child must die of SIGABRT with a message
 *                              naming the problem (hakmem's, with the
 *                              address, or glibc's when glibc owns the
 *                              memory: the system box, the embedded
 *                              default before the tiers);
 *   rel_bad_free CASE strict   the message must be hakmem's:
 *                              "hakmem: <problem>: <address> (box <box>)";
 *                              pointers no box owns go to glibc's free and
 *                              glibc's message is accepted for them (see
 *                              docs/guarantees.md);
 *   rel_bad_free CASE warn     run with host.on_bad_free = warn: hakmem's
 *                              message, then the program goes on, and the
 *                              heap is still sound (no block handed out
 *                              twice).
 *
 * Exit 0 when the expectation holds, 1 when it does not, 2 when the case
 * could not be set up.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define GRANULE ((uintptr_t)64 << 10)

/* Through a volatile pointer: the compiler must not see the misuse. */
static void (*volatile free_fn)(void *) = free;
static void *(*volatile malloc_fn)(size_t) = malloc;

static const char *box_of(const void *p)
{
    const char *(*fn)(const void *) = (const char *(*)(const void *))dlsym(RTLD_DEFAULT, "hakmem_box_of");
    return fn ? fn(p) : NULL;
}

static void *must_malloc(size_t n)
{
    unsigned char *p = malloc_fn(n);
    if (!p) {
        fprintf(stderr, "setup: malloc(%zu) failed\n", n);
        _exit(2);
    }
    memset(p, 0x5c, n < 4096 ? n : 4096);
    return p;
}

static void setup_failed(const char *why, const void *p)
{
    fprintf(stderr, "setup: %s (%p, box %s)\n", why, p, box_of(p) ? box_of(p) : "none");
    _exit(2);
}

/* ---- the misuses: each returns the pointer it passed to free ---------- */

/* The bad free itself, announced first so the parent knows the address the
 * message must name. */
static void bad_free_of(void *q)
{
    fprintf(stderr, "target %p\n", q);
    free_fn(q);
}

static void *double_free(size_t n)
{
    void *p = must_malloc(n);
    free_fn(p);
    bad_free_of(p);
    return p;
}

/* A second free that is not of the block freed last (a check against the
 * stack's top entry alone would miss it): reported, and p never handed
 * out twice by the allocations after it. */
static void *double_free_later(size_t n)
{
    void *p = must_malloc(n), *q = must_malloc(n);
    free_fn(p);
    free_fn(q);
    bad_free_of(p);
    for (int i = 0; i < 4; i++)
        must_malloc(n);
    return p;
}

/* The same after p went from the front's stack to superslab's list: the
 * marker must survive there for the second free to be caught. */
static void *double_free_listed(size_t n)
{
    enum { MANY = 4096 };
    static void *many[MANY];
    void *p = must_malloc(n);
    for (int i = 0; i < MANY; i++)
        many[i] = must_malloc(n);
    free_fn(p); /* the oldest on the stack: the first to drain */
    /* Every other one: p's slab keeps live blocks, so it stays a slab
     * with p on its list (an emptied slab is released, and a free into it
     * is refused as no block at all). */
    for (int i = 0; i < MANY; i += 2)
        free_fn(many[i]);
    bad_free_of(p);
    for (int i = 0; i < 2 * MANY; i++)
        must_malloc(n);
    return p;
}

static void *interior(size_t n, size_t offset)
{
    char *p = must_malloc(n);
    bad_free_of(p + offset);
    return p + offset;
}

/* An address in the same box's memory as a live block, in a part nobody
 * was given: the far end of the block's granule (tiny, mid), half a run
 * further (l25), the mapping's base (large). */
static void *unallocated(size_t n, ptrdiff_t offset_from_block, int from_granule_end)
{
    char *p = must_malloc(n);
    char *q;
    if (from_granule_end)
        q = (char *)(((uintptr_t)p & ~(GRANULE - 1)) + GRANULE - (uintptr_t)offset_from_block);
    else
        q = p + offset_from_block;
    const char *a = box_of(p), *b = box_of(q);
    if (!a || !b || strcmp(a, b) || q == p)
        setup_failed("no unallocated address in the block's box next to it", q);
    bad_free_of(q);
    return q;
}

/* A granule that belongs to a page box: l25 gives an empty 2 MB run back
 * to its pages box at once when purge_delay_ms = 0 (set by the test). */
static void *page_box_span(void)
{
    char *p = must_malloc(1536 << 10);
    const char *tier = box_of(p);
    char name[64];
    snprintf(name, sizeof name, "%s", tier ? tier : "");
    free_fn(p);
    const char *now = box_of(p);
    if (!now || !strcmp(now, name))
        setup_failed("the freed run did not go back to a page box", p);
    bad_free_of(p);
    return p;
}

static void *stack_pointer(void)
{
    char buf[64];
    memset(buf, 0, sizeof buf); /* what sits before the pointer: zeros */
    bad_free_of(buf + 16);
    return NULL; /* only reached when nothing noticed */
}

static char global_buf[64] __attribute__((aligned(16)));

static void *global_pointer(void)
{
    bad_free_of(global_buf + 16);
    return global_buf + 16;
}

struct bad_case {
    const char *name;
    const char *problem; /* regex fragment hakmem's message must contain */
    int foreign;         /* no box owns it: glibc's free decides */
};

static const struct bad_case cases[] = {
    { "double_free_tiny", "double free", 0 },
    { "double_free_mid", "double free", 0 },
    { "double_free_l25", "double free", 0 },
    { "double_free_large", "double free", 0 },
    { "double_free_large_released", "double free|not allocated|invalid", 0 },
    { "double_free_tiny_later", "double free", 0 },
    { "double_free_tiny_listed", "double free", 0 },
    { "interior_tiny", NULL, 0 },
    { "interior_tiny_48", NULL, 0 },
    { "interior_tiny_768", NULL, 0 },
    { "interior_mid", NULL, 0 },
    { "interior_l25", NULL, 0 },
    { "interior_large", NULL, 0 },
    { "unallocated_tiny", NULL, 0 },
    { "unallocated_mid", NULL, 0 },
    { "unallocated_l25", NULL, 0 },
    { "unallocated_large", NULL, 0 },
    { "page_box_span", "page box|invalid", 0 },
    { "stack_pointer", NULL, 1 },
    { "global_pointer", NULL, 1 },
};

static void *run_misuse(const char *name)
{
    if (!strcmp(name, "double_free_tiny")) return double_free(32);
    if (!strcmp(name, "double_free_mid")) return double_free(8192);
    if (!strcmp(name, "double_free_l25")) return double_free(256 << 10);
    if (!strcmp(name, "double_free_large")) return double_free(4 << 20);
    /* Bigger than the large box's cache: unmapped at the first free. */
    if (!strcmp(name, "double_free_large_released")) return double_free(100 << 20);
    if (!strcmp(name, "double_free_tiny_later")) return double_free_later(32);
    if (!strcmp(name, "double_free_tiny_listed")) return double_free_listed(32);
    if (!strcmp(name, "interior_tiny")) return interior(64, 16);
    /* Classes that are not powers of two: 40 B is a 48-byte block, 700 B
     * a 768-byte one, whose p + 256 is 256-aligned; only the host's exact
     * block-start test (a multiple of the class size) tells them apart. */
    if (!strcmp(name, "interior_tiny_48")) return interior(40, 16);
    if (!strcmp(name, "interior_tiny_768")) return interior(700, 256);
    if (!strcmp(name, "interior_mid")) return interior(8192, 64);
    if (!strcmp(name, "interior_l25")) return interior(256 << 10, 4096);
    if (!strcmp(name, "interior_large")) return interior(4 << 20, 4096);
    if (!strcmp(name, "unallocated_tiny")) return unallocated(48, 64, 1);
    if (!strcmp(name, "unallocated_mid")) return unallocated(8192, 8192, 1);
    if (!strcmp(name, "unallocated_l25")) return unallocated(256 << 10, 512 << 10, 0);
    if (!strcmp(name, "unallocated_large")) return unallocated(4 << 20, -64, 0);
    if (!strcmp(name, "page_box_span")) return page_box_span();
    if (!strcmp(name, "stack_pointer")) return stack_pointer();
    if (!strcmp(name, "global_pointer")) return global_pointer();
    fprintf(stderr, "unknown case %s\n", name);
    _exit(2);
}

/* After a dropped bad free (warn mode) the heap must still be sound: the
 * sizes of the case, allocated many times, never give one block twice. */
static int heap_still_sound(void)
{
    static const size_t sizes[] = { 32, 48, 64, 8192, 256 << 10, 4 << 20 };
    enum { N = 64 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        unsigned char *blocks[N];
        size_t stamp = sizes[s] < 64 ? sizes[s] : 64;
        for (int i = 0; i < N; i++) {
            blocks[i] = malloc_fn(sizes[s]);
            if (!blocks[i])
                return 0;
            memset(blocks[i], i, stamp);
        }
        for (int i = 0; i < N; i++)
            for (size_t j = 0; j < stamp; j++)
                if (blocks[i][j] != (unsigned char)i) {
                    fprintf(stderr, "after the dropped bad free, block %p (%zu bytes) was handed out twice\n",
                            (void *)blocks[i], sizes[s]);
                    return 0;
                }
        for (int i = 0; i < N; i++)
            free_fn(blocks[i]);
    }
    return 1;
}

/* ---- the driver ---------------------------------------------------------- */

static int contains_regex(const char *text, const char *alternatives)
{
    /* alternatives: "a|b|c", plain substrings */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", alternatives);
    for (char *save = NULL, *tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
        if (strstr(text, tok))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: rel_bad_free CASE [strict|warn]\n");
        return 2;
    }
    const char *name = argv[1];
    const char *mode = argc > 2 ? argv[2] : "any";
    const struct bad_case *c = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (!strcmp(cases[i].name, name))
            c = &cases[i];
    if (!c) {
        fprintf(stderr, "unknown case %s\n", name);
        return 2;
    }
    int strict = !strcmp(mode, "strict"), warn = !strcmp(mode, "warn");
    if (warn) {
        /* Only this process and its child: HAKMEM_SET is read at start. */
        const char *set = getenv("HAKMEM_SET");
        if (!set || !strstr(set, "on_bad_free=warn")) {
            fprintf(stderr, "warn mode needs HAKMEM_SET=host.on_bad_free=warn\n");
            return 2;
        }
    }
    free(malloc(1)); /* the host is up before the fork */

    int pipefd[2];
    if (pipe(pipefd))
        return 2;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], STDERR_FILENO);
        void *p = run_misuse(name);
        /* Reached only when the misuse was not fatal. */
        fprintf(stderr, "survived the bad free of %p\n", p);
        if (warn)
            _exit(heap_still_sound() ? 0 : 4);
        _exit(3);
    }
    close(pipefd[1]);
    char out[8192];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(pipefd[0], out + used, sizeof out - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used == sizeof out - 1)
            break;
    }
    out[used] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);

    printf("case %s (%s): child %s %d; its stderr:\n%s\n", name, mode,
           WIFSIGNALED(status) ? "died of signal" : "exited with", WIFSIGNALED(status) ? WTERMSIG(status)
                                                                                      : WEXITSTATUS(status),
           out);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        printf("FAIL: the case could not be set up\n");
        return 2;
    }

    /* hakmem's message: "hakmem: <problem>: <address> (box <box>)". */
    const char *hak = strstr(out, "hakmem: ");
    int hak_names_address = 0;
    char target[64] = "";
    const char *t = strstr(out, "target 0x");
    if (t)
        sscanf(t + 7, "%63s", target);
    if (hak && target[0]) {
        char want[80];
        snprintf(want, sizeof want, ": %s (box ", target);
        hak_names_address = strstr(hak, want) != NULL;
        if (c->problem && !contains_regex(hak, c->problem))
            hak_names_address = 0;
    }
    const char *glibc_problem = c->problem ? c->problem : "invalid pointer|invalid size|double free|corrupted";
    int glibc_says = !hak && contains_regex(out, glibc_problem) && strstr(out, "free") != NULL;

    if (warn) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAIL: with on_bad_free = warn the program must go on with a sound heap\n");
            return 1;
        }
        if (!hak_names_address) {
            printf("FAIL: no hakmem message naming the problem and the address\n");
            return 1;
        }
        printf("ok: reported, dropped, heap sound\n");
        return 0;
    }
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
        printf("FAIL: expected death by SIGABRT (%s)\n",
               WIFEXITED(status) && WEXITSTATUS(status) == 3 ? "the bad free went unnoticed"
                                                            : "it crashed some other way or exited");
        return 1;
    }
    if (hak_names_address) {
        printf("ok: hakmem aborted and named the problem and the address\n");
        return 0;
    }
    if (glibc_says && (!strict || c->foreign)) {
        printf("ok: glibc's free aborted and named the problem (the memory was glibc's)\n");
        return 0;
    }
    printf("FAIL: SIGABRT, but %s\n", hak ? "hakmem's message does not name the problem and the address"
                                          : strict ? "no hakmem message" : "no message naming the problem");
    return 1;
}
