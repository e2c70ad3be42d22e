#include "pages_test.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void run_case(const char *name, void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "case %s failed (status 0x%x)\n", name, status);
        abort();
    }
    printf("ok %s\n", name);
}

void run_abort_case(const char *name, void (*fn)(void), const char *expect)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0); /* reaching here is the failure */
    }
    close(fds[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT || !strstr(buf, expect)) {
        fprintf(stderr, "case %s: expected an abort saying '%s', got status 0x%x and:\n%s\n",
                name, expect, status, buf);
        abort();
    }
    printf("ok %s\n", name);
}

void *pa_alloc(const char *inst, size_t bytes, size_t align, uint16_t owner, uint16_t tag)
{
    return harness_desc(inst)->ops.pages_alloc(harness_tls(inst), bytes, align, owner, tag);
}

void pa_free(const char *inst, void *p, size_t bytes)
{
    harness_desc(inst)->ops.pages_free(harness_tls(inst), p, bytes);
}

uint16_t owner_of(const void *p) { return (uint16_t)(harness_lookup(p) >> 16); }

uint32_t entry(uint16_t owner, uint16_t tag) { return ((uint32_t)owner << 16) | tag; }

size_t page_count(size_t bytes)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + ps - 1) / ps;
}

size_t resident_pages(const void *p, size_t bytes)
{
    static unsigned char vec[(64u << 20) / 4096];
    size_t n = page_count(bytes);
    CHECK(n <= sizeof vec);
    CHECK(mincore((void *)p, bytes, vec) == 0);
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        r += vec[i] & 1;
    return r;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int all_bytes(const void *p, size_t n, unsigned char c)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}
