// Thread churn: `threads` short-lived threads, at most `concurrent` alive at
// once. Each allocates `allocs` blocks of min..max bytes, frees most of them
// in a random order and exits still holding `keep` per mille of them; the
// main thread checks and frees those after the join, so every wave also
// frees blocks whose allocating thread is gone (the allocator's thread-exit
// and orphan paths). ops = mallocs + frees (thread start/exit included in
// the time, which is the point).
#include "bench_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "  --threads=N     threads started in all (default 1000)\n"
    "  --concurrent=N  threads alive at once (default 2)\n"
    "  --allocs=N      blocks per thread (default 2000)\n"
    "  --keep=N        per mille left to the main thread (default 100)\n"
    "  --min=N         smallest size (default 16)\n"
    "  --max=N         largest size (default 4096)\n"
    "  --seed=N        base seed (default 1234567)\n";

// One per concurrent slot, allocated in the set-up and reused by each wave,
// so the workload's own bookkeeping adds no allocations to the timed part.
struct worker {
  pthread_t thread;
  uint64_t index;  // which of the `threads` threads this is
  void **blocks;
  uint32_t *sizes;
  uint32_t *order;  // the order of the frees
  uint64_t checksum;
};

static struct {
  uint64_t allocs, keep_n, min_size, max_size, seed;
} g;

static void check(const struct worker *w, uint64_t i, const char *who) {
  if (bench_stamp_bad(w->blocks[i], w->sizes[i], (w->index << 32) | i))
    bench_fail("corruption: thread %llu block %llu (%u bytes) was overwritten, seen by %s",
               (unsigned long long)w->index, (unsigned long long)i, w->sizes[i], who);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  uint32_t rng = bench_seed_for(g.seed, w->index);
  uint64_t range = g.max_size - g.min_size + 1;
  for (uint64_t i = 0; i < g.allocs; i++) {
    size_t sz = (size_t)(g.min_size + bench_xorshift32(&rng) % range);
    void *p = malloc(sz);
    if (!p)
      bench_fail("malloc(%zu) returned NULL", sz);
    bench_stamp(p, sz, (w->index << 32) | i);
    w->blocks[i] = p;
    w->sizes[i] = (uint32_t)sz;
  }
  // Free all but the first keep_n, in a random order (Fisher-Yates).
  uint64_t nfree = g.allocs - g.keep_n;
  for (uint64_t k = 0; k < nfree; k++)
    w->order[k] = (uint32_t)(g.keep_n + k);
  for (uint64_t k = nfree; k > 1; k--) {
    uint64_t j = bench_xorshift32(&rng) % k;
    uint32_t t = w->order[k - 1];
    w->order[k - 1] = w->order[j];
    w->order[j] = t;
  }
  uint64_t sum = 0;
  for (uint64_t k = 0; k < nfree; k++) {
    uint32_t i = w->order[k];
    check(w, i, "its thread");
    sum = bench_mix(sum, w->sizes[i]);
    free(w->blocks[i]);
    w->blocks[i] = NULL;
  }
  w->checksum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "thread_churn", usage);
  uint64_t threads = bench_arg_u64("threads", 1000);
  uint64_t concurrent = bench_arg_u64("concurrent", 2);
  g.allocs = bench_arg_u64("allocs", 2000);
  uint64_t keep = bench_arg_u64("keep", 100);
  g.min_size = bench_arg_u64("min", 16);
  g.max_size = bench_arg_u64("max", 4096);
  g.seed = bench_arg_u64("seed", 1234567);
  bench_args_done();
  if (threads == 0 || threads >= (1ull << 31) || concurrent == 0 || concurrent > 1024 ||
      g.allocs == 0 || g.allocs >= (1ull << 31) || keep > 1000)
    bench_fail("need threads >= 1, 1 <= concurrent <= 1024, allocs >= 1, keep <= 1000");
  if (g.min_size < 16 || g.min_size > g.max_size || g.max_size > UINT32_MAX)
    bench_fail("need 16 <= min <= max < 4G");
  g.keep_n = g.allocs * keep / 1000;

  struct worker *workers = calloc(concurrent, sizeof *workers);
  if (!workers)
    bench_fail("set-up allocation failed");
  for (uint64_t k = 0; k < concurrent; k++) {
    workers[k].blocks = calloc(g.allocs, sizeof *workers[k].blocks);
    workers[k].sizes = calloc(g.allocs, sizeof *workers[k].sizes);
    workers[k].order = calloc(g.allocs, sizeof *workers[k].order);
    if (!workers[k].blocks || !workers[k].sizes || !workers[k].order)
      bench_fail("set-up allocation failed");
  }

  uint64_t sum = 0, ops = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t first = 0; first < threads; first += concurrent) {
    uint64_t wave = threads - first < concurrent ? threads - first : concurrent;
    for (uint64_t k = 0; k < wave; k++) {
      workers[k].index = first + k;
      if (pthread_create(&workers[k].thread, NULL, worker_main, &workers[k]) != 0)
        bench_fail("pthread_create failed");
    }
    for (uint64_t k = 0; k < wave; k++)
      pthread_join(workers[k].thread, NULL);
    // Their threads have exited: free what they left behind.
    for (uint64_t k = 0; k < wave; k++) {
      struct worker *w = &workers[k];
      for (uint64_t i = 0; i < g.keep_n; i++) {
        check(w, i, "the main thread");
        w->checksum = bench_mix(w->checksum, w->sizes[i]);
        free(w->blocks[i]);
        w->blocks[i] = NULL;
      }
      sum += w->checksum;
      ops += 2 * g.allocs;
    }
  }
  uint64_t t1 = bench_now_ns();

  char extra[96];
  snprintf(extra, sizeof extra, " threads=%llu concurrent=%llu", (unsigned long long)threads,
           (unsigned long long)concurrent);
  bench_result(ops, (double)(t1 - t0) / 1e9, sum, extra);
  for (uint64_t k = 0; k < concurrent; k++) {
    free(workers[k].order);
    free(workers[k].sizes);
    free(workers[k].blocks);
  }
  free(workers);
  return 0;
}
