// Mid-Large MT: `threads` threads, each running its own slot loop
// (slot_loop.h) over 8-32 KB blocks (or a fixed size: the runner's
// mid_large_mt_2k is --size=2048), one byte written per 4 KB page of each
// new block. Threads start together after their set-up; the time runs from
// the first thread's start to the last one's end. ops = threads * cycles.
#include "bench_common.h"
#include "slot_loop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "  --threads=N  threads (default 2)\n"
    "  --cycles=N   iterations per thread (default 2000000)\n"
    "  --ws=N       slots per thread (default 256)\n"
    "  --seed=N     base seed (default 1234567)\n"
    "  --min=N      smallest size (default 8192)\n"
    "  --max=N      largest size (default 32768)\n"
    "  --size=N     fixed size instead (default 0: mixed)\n";

struct worker {
  pthread_t thread;
  pthread_barrier_t *start;
  struct bench_span *span;
  struct slot_loop loop;
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  slot_loop_setup(&w->loop);
  pthread_barrier_wait(w->start);
  bench_span_start(w->span);
  slot_loop_run(&w->loop);
  bench_span_end(w->span);
  slot_loop_teardown(&w->loop);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "mid_large_mt", usage);
  uint64_t threads = bench_arg_u64("threads", 2);
  uint64_t cycles = bench_arg_u64("cycles", 2000000);
  uint64_t ws = bench_arg_u64("ws", 256);
  uint64_t seed = bench_arg_u64("seed", 1234567);
  uint64_t min_size = bench_arg_u64("min", 8192);
  uint64_t max_size = bench_arg_u64("max", 32768);
  uint64_t fixed = bench_arg_u64("size", 0);
  bench_args_done();
  if (threads == 0 || threads > 1024)
    bench_fail("need 1 <= threads <= 1024");

  struct worker *workers = calloc(threads, sizeof *workers);
  pthread_barrier_t start;
  struct bench_span span = {0, 0};
  if (!workers || pthread_barrier_init(&start, NULL, (unsigned)threads + 1) != 0)
    bench_fail("set-up failed");
  for (uint64_t t = 0; t < threads; t++) {
    struct worker *w = &workers[t];
    w->start = &start;
    w->span = &span;
    w->loop = (struct slot_loop){.cycles = cycles, .ws = ws, .min_size = min_size,
                                 .max_size = max_size, .fixed = fixed,
                                 .seed = bench_seed_for(seed, t), .stream = (uint32_t)t};
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
      bench_fail("pthread_create failed");
  }
  pthread_barrier_wait(&start);
  for (uint64_t t = 0; t < threads; t++)
    pthread_join(workers[t].thread, NULL);

  // Summed, so the checksum does not depend on which thread finished first.
  uint64_t sum = 0, allocs = 0;
  for (uint64_t t = 0; t < threads; t++) {
    sum += workers[t].loop.checksum;
    allocs += workers[t].loop.allocs;
  }
  char extra[96];
  snprintf(extra, sizeof extra, " threads=%llu allocs=%llu", (unsigned long long)threads,
           (unsigned long long)allocs);
  bench_result(threads * cycles, bench_span_seconds(&span), sum, extra);
  pthread_barrier_destroy(&start);
  free(workers);
  return 0;
}
