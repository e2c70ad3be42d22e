// Producer/consumer: `pairs` producer threads each malloc `count` blocks
// (min..max bytes, stamped) and pass them through a bounded single-producer
// single-consumer ring to their consumer thread, which checks and frees
// them: every free is a remote free of a block another thread allocated.
// ops = blocks passed (each one malloc plus one remote free).
#include "bench_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "  --pairs=N    producer/consumer pairs (default 1)\n"
    "  --count=N    blocks per producer (default 1000000)\n"
    "  --depth=N    ring capacity, a power of two (default 1024)\n"
    "  --min=N      smallest size (default 16)\n"
    "  --max=N      largest size (default 1024)\n"
    "  --seed=N     base seed (default 1234567)\n";

struct item {
  void *p;
  uint32_t size;
};

struct pair {
  uint32_t id;
  uint32_t rng;
  struct item *ring;
  uint64_t mask;
  // The two indices sit on their own cache lines: they are the only
  // shared writes, and false sharing would measure the ring, not malloc.
  _Alignas(64) _Atomic uint64_t head;  // next slot the consumer reads
  _Alignas(64) _Atomic uint64_t tail;  // next slot the producer writes
  _Alignas(64) uint64_t checksum;
  pthread_t producer, consumer;
};

static struct {
  uint64_t count, min_size, max_size;
  pthread_barrier_t start;
  struct bench_span span;
} g;

static inline uint64_t key_of(const struct pair *pr, uint64_t n) {
  return ((uint64_t)pr->id << 40) | n;
}

static inline void wait_a_little(unsigned *spins) {
  // Spin briefly, then let the other side run: the machine may have fewer
  // cores than threads.
  if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    sched_yield();
    *spins = 0;
  }
}

static void *producer_main(void *arg) {
  struct pair *pr = arg;
  uint64_t range = g.max_size - g.min_size + 1;
  pthread_barrier_wait(&g.start);
  bench_span_start(&g.span);
  for (uint64_t n = 0; n < g.count; n++) {
    uint32_t r = bench_xorshift32(&pr->rng);
    size_t sz = (size_t)(g.min_size + r % range);
    void *p = malloc(sz);
    if (!p)
      bench_fail("malloc(%zu) returned NULL", sz);
    bench_stamp(p, sz, key_of(pr, n));
    uint64_t t = atomic_load_explicit(&pr->tail, memory_order_relaxed);
    unsigned spins = 0;
    while (t - atomic_load_explicit(&pr->head, memory_order_acquire) > pr->mask)
      wait_a_little(&spins);
    pr->ring[t & pr->mask] = (struct item){p, (uint32_t)sz};
    atomic_store_explicit(&pr->tail, t + 1, memory_order_release);
  }
  bench_span_end(&g.span);
  return NULL;
}

static void *consumer_main(void *arg) {
  struct pair *pr = arg;
  uint64_t sum = 0;
  pthread_barrier_wait(&g.start);
  bench_span_start(&g.span);
  for (uint64_t n = 0; n < g.count; n++) {
    unsigned spins = 0;
    while (atomic_load_explicit(&pr->tail, memory_order_acquire) == n)
      wait_a_little(&spins);
    struct item it = pr->ring[n & pr->mask];
    atomic_store_explicit(&pr->head, n + 1, memory_order_release);
    if (bench_stamp_bad(it.p, it.size, key_of(pr, n)))
      bench_fail("corruption: pair %u block %llu (%p, %u bytes) was overwritten", pr->id,
                 (unsigned long long)n, it.p, it.size);
    sum = bench_mix(sum, it.size);
    free(it.p);
  }
  pr->checksum = sum;
  bench_span_end(&g.span);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "producer_consumer", usage);
  uint64_t pairs = bench_arg_u64("pairs", 1);
  g.count = bench_arg_u64("count", 1000000);
  uint64_t depth = bench_arg_u64("depth", 1024);
  g.min_size = bench_arg_u64("min", 16);
  g.max_size = bench_arg_u64("max", 1024);
  uint64_t seed = bench_arg_u64("seed", 1234567);
  bench_args_done();
  if (pairs == 0 || pairs > 512 || depth == 0 || (depth & (depth - 1)) != 0)
    bench_fail("need 1 <= pairs <= 512 and depth a power of two");
  if (g.min_size < 16 || g.min_size > g.max_size || g.max_size > UINT32_MAX)
    bench_fail("need 16 <= min <= max < 4G");

  struct pair *prs = aligned_alloc(64, pairs * sizeof *prs);
  if (!prs || pthread_barrier_init(&g.start, NULL, (unsigned)(2 * pairs + 1)) != 0)
    bench_fail("set-up failed");
  for (uint64_t i = 0; i < pairs; i++) {
    struct pair *pr = &prs[i];
    pr->id = (uint32_t)i;
    pr->rng = bench_seed_for(seed, i);
    pr->ring = calloc(depth, sizeof *pr->ring);
    pr->mask = depth - 1;
    atomic_init(&pr->head, 0);
    atomic_init(&pr->tail, 0);
    pr->checksum = 0;
    if (!pr->ring)
      bench_fail("set-up allocation failed");
    if (pthread_create(&pr->producer, NULL, producer_main, pr) != 0 ||
        pthread_create(&pr->consumer, NULL, consumer_main, pr) != 0)
      bench_fail("pthread_create failed");
  }
  pthread_barrier_wait(&g.start);
  for (uint64_t i = 0; i < pairs; i++) {
    pthread_join(prs[i].producer, NULL);
    pthread_join(prs[i].consumer, NULL);
  }

  uint64_t sum = 0;
  for (uint64_t i = 0; i < pairs; i++) {
    sum += prs[i].checksum;
    free(prs[i].ring);
  }
  char extra[64];
  snprintf(extra, sizeof extra, " pairs=%llu", (unsigned long long)pairs);
  bench_result(pairs * g.count, bench_span_seconds(&g.span), sum, extra);
  pthread_barrier_destroy(&g.start);
  free(prs);
  return 0;
}
