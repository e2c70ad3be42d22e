// Thread re-creation with cross-thread transfers (after mimalloc-bench's
// mstress): `rounds` rounds, each starting `threads` fresh threads over a
// shared table of `slots` blocks. Each thread takes a slice of the table,
// frees most of what the previous round's threads left there (blocks of
// another, exited thread), allocates replacements of 16..max bytes, keeps
// a few blocks it allocated itself alive until it ends, and exits. So
// every round the heap sees threads start, remote frees of exited threads'
// blocks, and thread exit with live memory: the paths of servers whose
// worker pools grow and shrink. ops = mallocs + frees.
#include "bench_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "mstress: threads re-created every round, blocks moved between them\n"
    "  --threads=N  threads per round (default 16)\n"
    "  --rounds=N   rounds (default 20)\n"
    "  --slots=N    blocks in the shared table (default 65536)\n"
    "  --steps=N    operations per thread per round (default 10000)\n"
    "  --max=N      largest block (default 2048; min 16)\n"
    "  --seed=N     (default 1234567)\n";

static struct {
  uint64_t threads, rounds, slots, steps, max_size, seed;
  void **table;
  uint32_t *sizes;
  uint64_t *keys;
  struct bench_span span;
} g;

struct worker {
  pthread_t thread;
  uint64_t index, round, ops, checksum;
};

static void check(uint64_t i, const char *when) {
  if (g.table[i] && bench_stamp_bad(g.table[i], g.sizes[i], g.keys[i]))
    bench_fail("corruption: slot %llu (%u bytes) was overwritten, seen %s",
               (unsigned long long)i, g.sizes[i], when);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  bench_span_start(&g.span);
  uint32_t rng = bench_seed_for(g.seed, w->round * g.threads + w->index);
  // This thread's slice of the table: its blocks are another thread's.
  uint64_t per = g.slots / g.threads;
  uint64_t lo = w->index * per;
  enum { OWN = 64 };
  void *own[OWN];
  uint32_t own_size[OWN];
  for (int k = 0; k < OWN; k++)
    own[k] = NULL;
  uint64_t sum = 0, ops = 0;
  for (uint64_t s = 0; s < g.steps; s++) {
    uint32_t r = bench_xorshift32(&rng);
    size_t sz = 16 + r % (g.max_size - 15);
    if ((r >> 24) < 16) {  // 1 in 16: a short-lived block of our own
      int k = (int)((r >> 8) % OWN);
      if (own[k]) {
        if (bench_stamp_bad(own[k], own_size[k], (uint64_t)k))
          bench_fail("corruption: a thread's own block was overwritten");
        free(own[k]);
        ops++;
      }
      own[k] = malloc(sz);
      if (!own[k])
        bench_fail("malloc(%zu) returned NULL", sz);
      bench_stamp(own[k], sz, (uint64_t)k);
      own_size[k] = (uint32_t)sz;
      ops++;
      continue;
    }
    uint64_t i = lo + (r >> 4) % per;
    check(i, "by a thread of a later round");
    if (g.table[i]) {
      sum = bench_mix(sum, g.sizes[i]);
      free(g.table[i]);
      g.table[i] = NULL;
      ops++;
      if (r & 1)
        continue;  // leave some slots empty for a while
    }
    void *p = malloc(sz);
    if (!p)
      bench_fail("malloc(%zu) returned NULL", sz);
    g.keys[i] = (w->round << 40) ^ (i << 1) ^ s;
    bench_stamp(p, sz, g.keys[i]);
    g.table[i] = p;
    g.sizes[i] = (uint32_t)sz;
    ops++;
  }
  for (int k = 0; k < OWN; k++)
    if (own[k]) {
      free(own[k]);
      ops++;
    }
  w->ops = ops;
  w->checksum = sum;
  bench_span_end(&g.span);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "mstress", usage);
  g.threads = bench_arg_u64("threads", 16);
  g.rounds = bench_arg_u64("rounds", 20);
  g.slots = bench_arg_u64("slots", 65536);
  g.steps = bench_arg_u64("steps", 10000);
  g.max_size = bench_arg_u64("max", 2048);
  g.seed = bench_arg_u64("seed", 1234567);
  bench_args_done();
  if (g.threads == 0 || g.threads > 1024 || g.rounds == 0 || g.slots < g.threads ||
      g.steps == 0 || g.max_size < 16 || g.max_size > (1u << 30))
    bench_fail("need 1 <= threads <= 1024, rounds >= 1, slots >= threads, steps >= 1, "
               "16 <= max <= 1G");
  g.table = calloc(g.slots, sizeof *g.table);
  g.sizes = calloc(g.slots, sizeof *g.sizes);
  g.keys = calloc(g.slots, sizeof *g.keys);
  struct worker *workers = calloc(g.threads, sizeof *workers);
  if (!g.table || !g.sizes || !g.keys || !workers)
    bench_fail("set-up allocation failed");
  uint64_t sum = 0, ops = 0;
  for (uint64_t round = 0; round < g.rounds; round++) {
    for (uint64_t k = 0; k < g.threads; k++) {
      workers[k] = (struct worker){ .index = k, .round = round };
      if (pthread_create(&workers[k].thread, NULL, worker_main, &workers[k]) != 0)
        bench_fail("pthread_create failed");
    }
    for (uint64_t k = 0; k < g.threads; k++) {
      pthread_join(workers[k].thread, NULL);
      sum = bench_mix(sum, workers[k].checksum);
      ops += workers[k].ops;
    }
  }
  for (uint64_t i = 0; i < g.slots; i++) {
    check(i, "at the end");
    free(g.table[i]);
  }
  char extra[96];
  snprintf(extra, sizeof extra, " threads=%llu rounds=%llu", (unsigned long long)g.threads,
           (unsigned long long)g.rounds);
  bench_result(ops, bench_span_seconds(&g.span), sum, extra);
  free(workers);
  free(g.keys);
  free(g.sizes);
  free(g.table);
  return 0;
}
