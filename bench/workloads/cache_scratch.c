// Cache sharing (after Hoard's cache-scratch, as in mimalloc-bench): the
// main thread allocates one small block per worker, all from its own heap
// and so side by side; each worker frees the block it was given, then
// repeatedly allocates a block of the same size, writes it `writes` times
// and frees it. An allocator that hands a worker the freed block of another
// thread (or carves different threads' blocks from one cache line) makes
// the workers' writes fight over cache lines: passive false sharing.
// ops = worker mallocs + frees; time is dominated by the writes.
#include "bench_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "cache_scratch: workers write blocks of the same small size\n"
    "  --threads=N  workers (default 16)\n"
    "  --iterations=N  malloc/write/free per worker (default 20000)\n"
    "  --size=N     block size (default 8; at least 8)\n"
    "  --writes=N   writes per block (default 200)\n";

static struct {
  uint64_t threads, iterations, size, writes;
  struct bench_span span;
} g;

struct worker {
  pthread_t thread;
  char *given;  // allocated by the main thread
  uint64_t sum;
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  bench_span_start(&g.span);
  free(w->given);
  uint64_t sum = 0;
  for (uint64_t it = 0; it < g.iterations; it++) {
    volatile char *p = malloc(g.size);
    if (!p)
      bench_fail("malloc(%llu) returned NULL", (unsigned long long)g.size);
    // malloc's bytes are unspecified: start from a known value, so the
    // checksum depends on the arguments only.
    for (uint64_t b = 0; b < g.size; b++)
      p[b] = (char)b;
    for (uint64_t k = 0; k < g.writes; k++)
      for (uint64_t b = 0; b < g.size; b++)
        p[b] = (char)(p[b] + (char)(k + b));
    sum = bench_mix(sum, (uint8_t)p[g.size - 1]);
    free((void *)p);
  }
  w->sum = sum;
  bench_span_end(&g.span);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "cache_scratch", usage);
  g.threads = bench_arg_u64("threads", 16);
  g.iterations = bench_arg_u64("iterations", 20000);
  g.size = bench_arg_u64("size", 8);
  g.writes = bench_arg_u64("writes", 200);
  bench_args_done();
  if (g.threads == 0 || g.threads > 1024 || g.iterations == 0 || g.size < 8 || g.size > 4096)
    bench_fail("need 1 <= threads <= 1024, iterations >= 1, 8 <= size <= 4096");
  struct worker *workers = calloc(g.threads, sizeof *workers);
  if (!workers)
    bench_fail("set-up allocation failed");
  for (uint64_t k = 0; k < g.threads; k++) {
    workers[k].given = malloc(g.size);
    if (!workers[k].given)
      bench_fail("set-up allocation failed");
  }
  for (uint64_t k = 0; k < g.threads; k++)
    if (pthread_create(&workers[k].thread, NULL, worker_main, &workers[k]) != 0)
      bench_fail("pthread_create failed");
  uint64_t sum = 0;
  for (uint64_t k = 0; k < g.threads; k++) {
    pthread_join(workers[k].thread, NULL);
    sum = bench_mix(sum, workers[k].sum);
  }
  char extra[64];
  snprintf(extra, sizeof extra, " threads=%llu", (unsigned long long)g.threads);
  bench_result(2 * g.threads * g.iterations, bench_span_seconds(&g.span), sum, extra);
  free(workers);
  return 0;
}
