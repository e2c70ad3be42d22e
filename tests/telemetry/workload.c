/* A workload with known allocations, run under the preloaded host:
 *   workload N SIZE [THREADS]
 * each thread mallocs N blocks of SIZE bytes, touches one byte per page,
 * then frees them all. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long n_blocks;
static size_t block_size;

static void *run(void *arg)
{
    (void)arg;
    char **p = calloc((size_t)n_blocks, sizeof *p);
    if (!p)
        abort();
    for (long i = 0; i < n_blocks; i++) {
        p[i] = malloc(block_size);
        if (!p[i])
            abort();
        for (size_t off = 0; off < block_size; off += 4096)
            p[i][off] = 1;
    }
    for (long i = 0; i < n_blocks; i++)
        free(p[i]);
    free(p);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: workload N SIZE [THREADS]\n");
        return 2;
    }
    n_blocks = atol(argv[1]);
    block_size = (size_t)atoll(argv[2]);
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    pthread_t t[64];
    if (threads < 1 || threads > 64)
        return 2;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, run, NULL))
            return 1;
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
