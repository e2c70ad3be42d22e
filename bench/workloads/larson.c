// Larson-like server: `threads` workers share `threads` partitions of `ws`
// slots. In round k worker t serves partition (t + k) % threads, so most
// blocks it frees were allocated by another thread, as when a server's
// worker frees a request another one built. Each operation picks a slot
// (xorshift32 of the partition, so the sequence does not depend on which
// thread runs it), checks and frees the block there and puts a new one of
// min..max bytes in its place. Partitions are filled before the clock
// starts; the time covers the rounds and the final drain.
// ops = mallocs + frees.
#include "bench_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "  --threads=N  workers and partitions (default 2)\n"
    "  --rounds=N   rounds; partitions rotate between rounds (default 50)\n"
    "  --ops=N      operations per worker per round (default 100000)\n"
    "  --ws=N       slots per partition (default 1024)\n"
    "  --min=N      smallest size (default 16)\n"
    "  --max=N      largest size (default 1024)\n"
    "  --seed=N     base seed (default 1234567)\n";

struct partition {
  uint32_t rng;
  uint32_t id;
  void **slots;
  uint32_t *sizes;
  uint32_t *serials;
  uint64_t serial_next;
  uint64_t mallocs, frees, checksum;
};

static struct {
  uint64_t threads, rounds, ops, ws, min_size, max_size;
  struct partition *parts;
  pthread_barrier_t round_barrier;  // workers only, between rounds
  pthread_barrier_t start_barrier;  // workers and main: the clock starts
  struct bench_span span;
} g;

static inline uint64_t key_of(const struct partition *pt, uint32_t serial) {
  return ((uint64_t)pt->id << 32) | serial;
}

static void put_new(struct partition *pt, uint64_t idx, uint32_t r) {
  size_t sz = (size_t)(g.min_size + (r >> 8) % (g.max_size - g.min_size + 1));
  void *p = malloc(sz);
  if (!p)
    bench_fail("malloc(%zu) returned NULL", sz);
  uint32_t serial = (uint32_t)pt->serial_next++;
  bench_stamp(p, sz, key_of(pt, serial));
  pt->slots[idx] = p;
  pt->sizes[idx] = (uint32_t)sz;
  pt->serials[idx] = serial;
  pt->mallocs++;
}

static void check_and_free(struct partition *pt, uint64_t idx) {
  void *p = pt->slots[idx];
  uint32_t sz = pt->sizes[idx];
  if (bench_stamp_bad(p, sz, key_of(pt, pt->serials[idx])))
    bench_fail("corruption: partition %u slot %llu (block %p, %u bytes) was overwritten",
               pt->id, (unsigned long long)idx, p, sz);
  pt->checksum = bench_mix(pt->checksum, ((const uint8_t *)p)[sz - 1] + sz);
  free(p);
  pt->slots[idx] = NULL;
  pt->frees++;
}

static void *worker_main(void *arg) {
  uint64_t t = (uint64_t)(uintptr_t)arg;
  // Set-up: each worker fills the partition it serves first.
  struct partition *own = &g.parts[t];
  for (uint64_t i = 0; i < g.ws; i++)
    put_new(own, i, bench_xorshift32(&own->rng));
  pthread_barrier_wait(&g.start_barrier);
  bench_span_start(&g.span);
  for (uint64_t k = 0; k < g.rounds; k++) {
    struct partition *pt = &g.parts[(t + k) % g.threads];
    for (uint64_t i = 0; i < g.ops; i++) {
      uint32_t r = bench_xorshift32(&pt->rng);
      uint64_t idx = r % g.ws;
      check_and_free(pt, idx);
      put_new(pt, idx, r);
    }
    pthread_barrier_wait(&g.round_barrier);
  }
  // Drain whichever partition the last round left with this worker.
  struct partition *last = &g.parts[(t + g.rounds - 1) % g.threads];
  for (uint64_t i = 0; i < g.ws; i++)
    check_and_free(last, i);
  bench_span_end(&g.span);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "larson", usage);
  g.threads = bench_arg_u64("threads", 2);
  g.rounds = bench_arg_u64("rounds", 50);
  g.ops = bench_arg_u64("ops", 100000);
  g.ws = bench_arg_u64("ws", 1024);
  g.min_size = bench_arg_u64("min", 16);
  g.max_size = bench_arg_u64("max", 1024);
  uint64_t seed = bench_arg_u64("seed", 1234567);
  bench_args_done();
  if (g.threads == 0 || g.threads > 1024 || g.rounds == 0 || g.ws == 0 || g.ws > (1u << 24))
    bench_fail("need 1 <= threads <= 1024, rounds >= 1, 1 <= ws <= 2^24");
  if (g.min_size < 16 || g.min_size > g.max_size || g.max_size > UINT32_MAX)
    bench_fail("need 16 <= min <= max < 4G");

  g.parts = calloc(g.threads, sizeof *g.parts);
  pthread_t *tids = calloc(g.threads, sizeof *tids);
  if (!g.parts || !tids)
    bench_fail("set-up allocation failed");
  for (uint64_t t = 0; t < g.threads; t++) {
    struct partition *pt = &g.parts[t];
    pt->id = (uint32_t)t;
    pt->rng = bench_seed_for(seed, t);
    pt->slots = calloc(g.ws, sizeof *pt->slots);
    pt->sizes = calloc(g.ws, sizeof *pt->sizes);
    pt->serials = calloc(g.ws, sizeof *pt->serials);
    if (!pt->slots || !pt->sizes || !pt->serials)
      bench_fail("set-up allocation failed");
  }
  if (pthread_barrier_init(&g.round_barrier, NULL, (unsigned)g.threads) != 0 ||
      pthread_barrier_init(&g.start_barrier, NULL, (unsigned)g.threads + 1) != 0)
    bench_fail("set-up failed");
  for (uint64_t t = 0; t < g.threads; t++)
    if (pthread_create(&tids[t], NULL, worker_main, (void *)(uintptr_t)t) != 0)
      bench_fail("pthread_create failed");
  pthread_barrier_wait(&g.start_barrier);
  for (uint64_t t = 0; t < g.threads; t++)
    pthread_join(tids[t], NULL);

  uint64_t sum = 0, ops = 0, mallocs = 0;
  for (uint64_t t = 0; t < g.threads; t++) {
    struct partition *pt = &g.parts[t];
    sum += bench_mix(pt->checksum, pt->mallocs);
    mallocs += pt->mallocs;
    ops += pt->mallocs + pt->frees;
    free(pt->serials);
    free(pt->sizes);
    free(pt->slots);
  }
  // The prefill mallocs happened before the clock started.
  ops -= g.threads * g.ws;
  char extra[96];
  snprintf(extra, sizeof extra, " threads=%llu mallocs=%llu", (unsigned long long)g.threads,
           (unsigned long long)mallocs);
  bench_result(ops, bench_span_seconds(&g.span), sum, extra);
  pthread_barrier_destroy(&g.round_barrier);
  pthread_barrier_destroy(&g.start_barrier);
  free(tids);
  free(g.parts);
  return 0;
}
