/*
 * Threads and fork under the preloaded host: threads that exit while their
 * blocks live on, blocks freed by other threads, and fork while other
 * threads allocate (the child must be able to allocate and exit).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", \
    __FILE__, __LINE__, #cond); exit(1); } } while (0)

enum { THREADS = 32, PER_THREAD = 2000 };

static size_t size_of(int t, int i) { return (size_t)((t * 7919 + i * 104729) % 70000) + 1; }

struct exiting { int id; unsigned char **blocks; };

static void *leave_blocks(void *arg)
{
    struct exiting *e = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n = size_of(e->id, i);
        e->blocks[i] = malloc(n);
        CHECK(e->blocks[i]);
        memset(e->blocks[i], (e->id + i) & 0xff, n);
    }
    return NULL;
}

static void threads_exit_holding_memory(void)
{
    pthread_t th[THREADS];
    struct exiting e[THREADS];
    for (int t = 0; t < THREADS; t++) {
        e[t].id = t;
        e[t].blocks = calloc(PER_THREAD, sizeof *e[t].blocks);
        CHECK(pthread_create(&th[t], NULL, leave_blocks, &e[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_join(th[t], NULL) == 0);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            size_t n = size_of(t, i);
            unsigned char want = (unsigned char)((t + i) & 0xff);
            CHECK(e[t].blocks[i][0] == want && e[t].blocks[i][n - 1] == want);
            free(e[t].blocks[i]);
        }
        free(e[t].blocks);
    }
}

/* Producer/consumer through a ring: every block freed by another thread. */
enum { RING = 1024, ITEMS = 200000 };
static void *ring[RING];
static size_t head, tail;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cond = PTHREAD_COND_INITIALIZER;

static void *produce(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITEMS; i++) {
        size_t n = (size_t)(i % 1500) + 8;
        uint32_t *p = malloc(n);
        CHECK(p);
        p[0] = (uint32_t)i;
        p[1] = (uint32_t)n;
        pthread_mutex_lock(&ring_lock);
        while (head - tail == RING)
            pthread_cond_wait(&ring_cond, &ring_lock);
        ring[head++ % RING] = p;
        pthread_cond_broadcast(&ring_cond);
        pthread_mutex_unlock(&ring_lock);
    }
    return NULL;
}

static void *consume(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&ring_lock);
        while (head == tail)
            pthread_cond_wait(&ring_cond, &ring_lock);
        uint32_t *p = ring[tail++ % RING];
        pthread_cond_broadcast(&ring_cond);
        pthread_mutex_unlock(&ring_lock);
        CHECK(p[0] == (uint32_t)i && p[1] == (uint32_t)(i % 1500) + 8);
        free(p);
    }
    return NULL;
}

static void cross_thread_frees(void)
{
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, produce, NULL) == 0);
    CHECK(pthread_create(&b, NULL, consume, NULL) == 0);
    CHECK(pthread_join(a, NULL) == 0);
    CHECK(pthread_join(b, NULL) == 0);
}

static atomic_int stop;

static void *churn(void *arg)
{
    unsigned r = (unsigned)(uintptr_t)arg;
    void *slots[256] = { 0 };
    while (!atomic_load(&stop)) {
        r = r * 1103515245u + 12345u;
        unsigned i = (r >> 8) % 256;
        free(slots[i]);
        slots[i] = malloc((r >> 16) % 40000 + 1);
    }
    for (int i = 0; i < 256; i++)
        free(slots[i]);
    return NULL;
}

static void fork_while_allocating(void)
{
    pthread_t th[3];
    for (int t = 0; t < 3; t++)
        CHECK(pthread_create(&th[t], NULL, churn, (void *)(uintptr_t)(t + 1)) == 0);
    for (int round = 0; round < 40; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < 2000; i++) {
                char *p = malloc((size_t)(i * 13) % 9000 + 1);
                if (!p)
                    _exit(3);
                p[0] = 1;
                free(p);
            }
            /* Half the children leave through exit (destructors, stats). */
            if (round % 2)
                exit(0);
            _exit(0);
        }
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < 3; t++)
        CHECK(pthread_join(th[t], NULL) == 0);
}

int main(void)
{
    alarm(240); /* a deadlock fails the test instead of hanging CI */
    threads_exit_holding_memory();
    cross_thread_frees();
    fork_while_allocating();
    printf("threads_fork: all checks passed\n");
    return 0;
}
