/*
 * The program the replay tests record: worker threads calling every member
 * of the malloc family, half of their blocks freed by the next worker
 * (cross-thread frees through a locked queue). It prints the calls it made
 * itself, the reference the recorded trace is checked against:
 *   OWN malloc=N calloc=N ... remote_frees=N
 * Modes: --fork (a child allocates too, one trace per process), --exec
 * (the child execs this program with --exec-child), --double-free (frees
 * one block twice: record it on hakmem with host.on_bad_free=warn).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { K_MALLOC, K_CALLOC, K_REALLOC, K_REALLOCARRAY, K_FREE, K_MEMALIGN, K_POSIX_MEMALIGN, K_ALIGNED_ALLOC,
       K_VALLOC, K_USABLE, K_COUNT };
static const char *const names[K_COUNT] = { "malloc", "calloc", "realloc", "reallocarray", "free", "memalign",
                                            "posix_memalign", "aligned_alloc", "valloc", "malloc_usable_size" };

#define QUEUE 256
struct queue {
    pthread_mutex_t lock;
    void *items[QUEUE];
    int n;
};

struct worker {
    pthread_t handle;
    unsigned seed;
    int rounds;
    struct queue *out, *in; /* blocks for the next worker; from the previous one */
    unsigned long calls[K_COUNT], remote_frees;
};

static unsigned rnd(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void give(struct worker *w, void *p)
{
    pthread_mutex_lock(&w->out->lock);
    if (w->out->n < QUEUE) {
        w->out->items[w->out->n++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&w->out->lock);
    if (p) {
        free(p);
        w->calls[K_FREE]++;
    }
}

static void drain(struct worker *w)
{
    void *local[QUEUE];
    int n;
    pthread_mutex_lock(&w->in->lock);
    n = w->in->n;
    memcpy(local, w->in->items, (size_t)n * sizeof *local);
    w->in->n = 0;
    pthread_mutex_unlock(&w->in->lock);
    for (int i = 0; i < n; i++) {
        free(local[i]);
        w->calls[K_FREE]++;
        w->remote_frees++;
    }
}

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int r = 0; r < w->rounds; r++) {
        unsigned x = rnd(&w->seed);
        size_t n = 16 + x % 2000;
        void *p = NULL;
        switch (x % 8) {
        case 0:
            p = calloc(4, n / 4 + 1);
            w->calls[K_CALLOC]++;
            break;
        case 1:
            p = memalign(64, n);
            w->calls[K_MEMALIGN]++;
            break;
        case 2:
            if (posix_memalign(&p, 128, n))
                p = NULL;
            w->calls[K_POSIX_MEMALIGN]++;
            break;
        case 3:
            p = aligned_alloc(32, (n + 31) & ~(size_t)31);
            w->calls[K_ALIGNED_ALLOC]++;
            break;
        case 4:
            p = valloc(n);
            w->calls[K_VALLOC]++;
            break;
        default:
            p = malloc(n);
            w->calls[K_MALLOC]++;
        }
        if (!p)
            abort();
        memset(p, 1, n < 64 ? n : 64);
        if (x % 5 == 0) {
            p = realloc(p, n * 3);
            w->calls[K_REALLOC]++;
        } else if (x % 7 == 0) {
            p = reallocarray(p, 8, n);
            w->calls[K_REALLOCARRAY]++;
        }
        if (!p)
            abort();
        if (x % 11 == 0) {
            if (malloc_usable_size(p) < n)
                abort();
            w->calls[K_USABLE]++;
        }
        if (x & 0x100) {
            give(w, p);
        } else {
            free(p);
            w->calls[K_FREE]++;
        }
        if (r % 32 == 0)
            drain(w);
    }
    return NULL;
}

static void child_work(int n)
{
    for (int i = 0; i < n; i++) {
        void *p = malloc(100 + (size_t)i);
        free(p);
    }
}

int main(int argc, char **argv)
{
    int threads = 4, rounds = 20000, fork_mode = 0, exec_mode = 0;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--threads=", 10))
            threads = atoi(argv[i] + 10);
        else if (!strncmp(argv[i], "--rounds=", 9))
            rounds = atoi(argv[i] + 9);
        else if (!strcmp(argv[i], "--fork"))
            fork_mode = 1;
        else if (!strcmp(argv[i], "--exec"))
            exec_mode = 1;
        else if (!strcmp(argv[i], "--exec-child")) {
            child_work(3000);
            return 0;
        } else if (!strcmp(argv[i], "--double-free")) {
            void *keep = malloc(48), *p = malloc(64);
            free(p);
            free(p); /* deliberate */
            free(keep);
            printf("OWN malloc=2 free=3\n");
            return 0;
        } else {
            fprintf(stderr, "rep_threads: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    alarm(60); /* a watchdog: a hang fails the test */
    if (fork_mode || exec_mode) {
        /* Blocks the parent holds across the fork: not the child's events. */
        static void *held[5000];
        for (int i = 0; i < 5000; i++)
            held[i] = malloc(24);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            child_work(200);
            if (exec_mode) {
                execl("/proc/self/exe", argv[0], "--exec-child", (char *)NULL);
                _exit(127);
            }
            exit(0);
        }
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "rep_threads: the child failed\n");
            return 1;
        }
        for (int i = 0; i < 5000; i++)
            free(held[i]);
    }
    struct worker *w = calloc((size_t)threads, sizeof *w);
    struct queue *q = calloc((size_t)threads, sizeof *q);
    if (!w || !q)
        return 1;
    for (int i = 0; i < threads; i++) {
        pthread_mutex_init(&q[i].lock, NULL);
        w[i].seed = 2463534242u + (unsigned)i * 7919u;
        w[i].rounds = rounds;
        w[i].out = &q[i];
        w[i].in = &q[(i + threads - 1) % threads];
    }
    for (int i = 0; i < threads; i++)
        if (pthread_create(&w[i].handle, NULL, work, &w[i]))
            return 1;
    for (int i = 0; i < threads; i++)
        pthread_join(w[i].handle, NULL);
    unsigned long total[K_COUNT] = { 0 }, remote = 0;
    /* What is left in the queues is freed by the main thread: remote too. */
    for (int i = 0; i < threads; i++) {
        for (int k = 0; k < q[i].n; k++) {
            free(q[i].items[k]);
            total[K_FREE]++;
            remote++;
        }
        for (int k = 0; k < K_COUNT; k++)
            total[k] += w[i].calls[k];
        remote += w[i].remote_frees;
    }
    free(w);
    free(q);
    total[K_CALLOC] += 2;
    total[K_FREE] += 2;
    printf("OWN");
    for (int k = 0; k < K_COUNT; k++)
        printf(" %s=%lu", names[k], total[k]);
    printf(" remote_frees=%lu\n", remote);
    return 0;
}
