/*
 * Page faults a fork costs, as a program that forks from a thread sees
 * them: fork_faults.sh runs this under glibc alone and under the host and
 * compares. After a fork every page the parent or the child writes is
 * copied once in that process; an allocator whose fork handlers write a
 * lock on every box's page pays a fault per box in each (docs/design.md,
 * "Fork"). The child allocates a little and exits, the parent allocates
 * after each wait, as a shell or a build tool does.
 *
 * Prints "faults/fork F" (minor faults of the parent and its children,
 * divided by the forks). Exits 1 when a child fails.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 300

static long minor_faults(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_minflt;
}

static void *forker(void *arg)
{
    double *per_fork = arg;
    /* Warm every tier of the default routes, so the handlers' locks and
     * the thread's caches exist before the first fork. */
    static const size_t sizes[] = { 24, 200, 900, 4000, 40000, 300000, 3000000 };
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = malloc(sizes[i]);
        memset(p, 1, 64);
        free(p);
    }
    long before = minor_faults(RUSAGE_SELF) + minor_faults(RUSAGE_CHILDREN);
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            exit(1);
        }
        if (pid == 0) {
            char *p = malloc(64);
            p[0] = 1;
            free(p);
            _exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "fork_faults: child %d failed\n", i);
            exit(1);
        }
        char *q = malloc(64);
        q[0] = 2;
        free(q);
    }
    long after = minor_faults(RUSAGE_SELF) + minor_faults(RUSAGE_CHILDREN);
    *per_fork = (double)(after - before) / FORKS;
    return NULL;
}

int main(void)
{
    /* The watchdog: a fork that hangs fails the test with a message. */
    alarm(60);
    pthread_t t;
    double per_fork = 0;
    if (pthread_create(&t, NULL, forker, &per_fork) || pthread_join(t, NULL)) {
        fprintf(stderr, "fork_faults: pthread failed\n");
        return 1;
    }
    printf("faults/fork %.1f\n", per_fork);
    return 0;
}
