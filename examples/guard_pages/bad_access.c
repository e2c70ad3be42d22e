/*
 * bad_access BUG: commits one heap bug in a child process and checks that
 * the allocator stopped it (the child died of SIGSEGV or SIGABRT). Exit 0
 * when caught, 1 when the bug went unnoticed. Run it under guard_pages:
 *   hakmem run -c guard_pages.ini -- ./bad_access overflow
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The compiler must not see through malloc/free (CMakeLists.txt also
 * passes -fno-builtin): every call has to reach the allocator. */
static char *volatile p;

static void commit(const char *bug)
{
    if (!strcmp(bug, "overflow")) {          /* one byte past a 64-byte block */
        p = malloc(64);
        p[64] = 1;
        free(p);
    } else if (!strcmp(bug, "overflow_slack")) { /* past 13 bytes, inside the rounding */
        p = malloc(13);
        p[13] = 1;
        free(p);
    } else if (!strcmp(bug, "use_after_free")) {
        p = malloc(100);
        free(p);
        p[0] = 1;
    } else if (!strcmp(bug, "double_free")) {
        p = malloc(100);
        free(p);
        free(p);
    } else {
        fprintf(stderr, "bad_access: unknown bug %s\n", bug);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bad_access overflow|overflow_slack|use_after_free|double_free\n");
        return 2;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        commit(argv[1]);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return 2;
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT)) {
        printf("%s: caught (%s)\n", argv[1], strsignal(WTERMSIG(status)));
        return 0;
    }
    printf("%s: NOT caught (the child %s)\n", argv[1],
           WIFEXITED(status) ? "exited normally" : "died of another signal");
    return 1;
}
