/*
 * Calls after the host's thread destructor: a pthread key created after the
 * host's (the first malloc creates that one) has its destructor run later,
 * when the thread's block is gone, so its mallocs and frees go through the
 * host's shared block of exited threads (set up on its first use). The
 * destructor frees blocks the thread allocated while alive, allocates new
 * ones of every route, checks and frees them. Many threads, two at a time,
 * so the shared block is used by several threads in turn.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

static const size_t sizes[] = {24, 200, 1000, 3000, 40000, 100000, 3u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

struct kept {
    char *block[NSIZES];
};

static pthread_key_t late_key;

static void fill(char *p, size_t n, int seed)
{
    for (size_t i = 0; i < n; i += 512)
        p[i] = (char)(seed + (int)i);
    p[n - 1] = (char)seed;
}

static void verify(const char *p, size_t n, int seed)
{
    for (size_t i = 0; i < n; i += 512)
        CHECK(p[i] == (char)(seed + (int)i));
    CHECK(p[n - 1] == (char)seed);
}

static void late_destructor(void *arg)
{
    struct kept *k = arg;
    char *fresh[NSIZES];
    for (size_t i = 0; i < NSIZES; i++) {
        verify(k->block[i], sizes[i], (int)i);
        free(k->block[i]); /* a block of the thread, freed after its exit */
        fresh[i] = malloc(sizes[i]);
        CHECK(fresh[i]);
        fill(fresh[i], sizes[i], (int)i + 7);
    }
    char *z = calloc(100, 10);
    CHECK(z && z[0] == 0 && z[999] == 0);
    z = realloc(z, 5000);
    CHECK(z && z[999] == 0);
    free(z);
    for (size_t i = 0; i < NSIZES; i++) {
        verify(fresh[i], sizes[i], (int)i + 7);
        free(fresh[i]);
    }
    free(k);
}

static void *worker(void *arg)
{
    (void)arg;
    struct kept *k = malloc(sizeof *k);
    CHECK(k);
    for (size_t i = 0; i < NSIZES; i++) {
        k->block[i] = malloc(sizes[i]);
        CHECK(k->block[i]);
        fill(k->block[i], sizes[i], (int)i);
    }
    CHECK(pthread_setspecific(late_key, k) == 0);
    return NULL;
}

int main(void)
{
    alarm(120); /* a hang in the late path fails the test (SIGALRM) */
    /* The host starts on the first allocation, creating its key, which must
     * come before late_key (volatile: a malloc freed unused is elided). */
    void *volatile first = malloc(1);
    CHECK(first);
    free(first);
    CHECK(pthread_key_create(&late_key, late_destructor) == 0);
    for (int round = 0; round < 200; round++) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
        for (int i = 0; i < 2; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
    }
    printf("late frees: ok\n");
    return 0;
}
