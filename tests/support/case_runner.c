/* Test cases in forked children (case_runner.h). */
#include "case_runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *(*case_label)(void);

#define CASE_CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

static void print_name(FILE *out, const char *prefix, const char *name)
{
    const char *label = case_label ? case_label() : NULL;
    if (label)
        fprintf(out, "%s%s [%s]", prefix, name, label);
    else
        fprintf(out, "%s%s", prefix, name);
}

/* Seconds a case may run: below ctest's 120 s, so the hang is named. */
static unsigned watchdog_seconds(void)
{
    const char *v = getenv("HAKMEM_CASE_TIMEOUT");
    long s = v ? strtol(v, NULL, 10) : 0;
    return s > 0 ? (unsigned)s : 100;
}

void run_case(const char *name, void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CASE_CHECK(pid >= 0);
    if (pid == 0) {
        alarm(watchdog_seconds()); /* a hung case dies of SIGALRM, reported below */
        fn();
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    CASE_CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        print_name(stderr, "case ", name);
        fprintf(stderr, " hung: not done within %u s (watchdog; HAKMEM_CASE_TIMEOUT sets it)\n",
                watchdog_seconds());
        abort();
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_name(stderr, "case ", name);
        fprintf(stderr, " failed (status 0x%x)\n", status);
        abort();
    }
    print_name(stdout, "ok ", name);
    printf("\n");
}

void run_abort_case(const char *name, void (*fn)(void), const char *expect)
{
    int fds[2];
    CASE_CHECK(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CASE_CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0); /* reaching here is the failure */
    }
    close(fds[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(fds[0]);
    int status = 0;
    CASE_CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT || !strstr(buf, expect)) {
        print_name(stderr, "case ", name);
        fprintf(stderr, ": expected an abort saying '%s', got status 0x%x and:\n%s\n", expect, status, buf);
        abort();
    }
    print_name(stdout, "ok ", name);
    printf("\n");
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
