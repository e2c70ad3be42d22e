// Larson and Krishnan's server benchmark as the published suites run it
// (Hoard's larson, mimalloc-bench's `larson 5 8 1000 5000 100 4141 N`),
// with a fixed amount of work instead of a sleep so a run is repeatable.
// The main thread allocates every block (`blocks` per worker, min..max
// bytes), permutes them over the slices and replaces 4 x N of them at
// random (Larson's warm-up), and hands worker t its slice. A worker's life replaces random
// blocks of its slice (free the old one, malloc a new one, write its first
// bytes) `life` times, then starts its successor on the same slice and
// exits, leaving its blocks to it; a slice lives `lives` lives. So a
// thread frees blocks of the main thread, of its exited predecessor, and
// leaves its own live blocks behind at exit: the paths of a server whose
// workers come and go. The difference from `larson` (partitions rotating
// between live workers) is the thread exit with live memory.
// ops = mallocs + frees after the set-up.
#include "bench_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "larson_respawn: Larson's server benchmark, each worker succeeded by a new thread\n"
    "  --threads=N  workers alive at any time (default 16)\n"
    "  --blocks=N   blocks per worker (default 5000)\n"
    "  --life=N     replacements per thread life (default 500000, as published)\n"
    "  --lives=N    lives per worker slot (default 2)\n"
    "  --min=N      smallest size (default 8; at least 8)\n"
    "  --max=N      largest size (default 1000)\n"
    "  --seed=N     (default 4141)\n"
    "  --shuffle=N  1: Larson's warm-up, every worker's blocks scattered over the heap (default 1)\n";

// Own cache lines, and the generator in a local while a life runs: the
// slots are the workload's state, not the allocator's, and must not share.
struct slot {
  _Alignas(64) pthread_t thread;
  uint32_t rng;
  uint32_t lives_left;
  char **blocks;
  uint32_t *sizes;
  uint64_t ops, checksum;
};

static struct {
  uint64_t threads, blocks, life, lives, min_size, max_size;
  struct slot *slots;
  struct bench_span span;
  pthread_mutex_t done_lock;
  pthread_cond_t done_cond;
  uint64_t slots_done;
} g;

static void fill(char *p, size_t sz) {
  // Larson writes the first two bytes; the last one catches an overlap too.
  p[0] = 'a';
  p[sz > 1 ? 1 : 0] = 'b';
  p[sz - 1] = (char)(sz & 0x7f);
}

static int bad(const char *p, size_t sz) {
  return p[0] != 'a' || p[sz - 1] != (char)(sz & 0x7f) || (sz > 2 && p[1] != 'b');
}

static void *life_main(void *arg);

static void start_life(struct slot *s) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&s->thread, &attr, life_main, s) != 0)
    bench_fail("pthread_create failed");
  pthread_attr_destroy(&attr);
}

static void *life_main(void *arg) {
  struct slot *s = arg;
  bench_span_start(&g.span);
  uint64_t range = g.max_size - g.min_size + 1, sum = s->checksum;
  uint32_t rng = s->rng;
  char **blocks = s->blocks;
  uint32_t *sizes = s->sizes;
  for (uint64_t i = 0; i < g.life; i++) {
    uint32_t r = bench_xorshift32(&rng);
    uint64_t v = r % g.blocks;
    if (bad(blocks[v], sizes[v]))
      bench_fail("corruption: a block of %u bytes was overwritten", sizes[v]);
    free(blocks[v]);
    size_t sz = (size_t)(g.min_size + bench_xorshift32(&rng) % range);
    char *p = malloc(sz);
    if (!p)
      bench_fail("malloc(%zu) returned NULL", sz);
    fill(p, sz);
    blocks[v] = p;
    sizes[v] = (uint32_t)sz;
    sum = bench_mix(sum, sz);
  }
  s->rng = rng;
  s->ops += 2 * g.life;
  s->checksum = sum;
  if (--s->lives_left > 0) {
    start_life(s);  // the successor takes the slice; this thread exits
    return NULL;
  }
  bench_span_end(&g.span);
  pthread_mutex_lock(&g.done_lock);
  g.slots_done++;
  pthread_cond_signal(&g.done_cond);
  pthread_mutex_unlock(&g.done_lock);
  return NULL;
}

// Larson's warm-up: a random permutation of all the blocks over all the
// slots, then 4 x N random replacements by the main thread. So each
// worker's blocks are scattered over the whole heap, next to the other
// workers' blocks; an allocator whose frees go back to the block's owner
// gives each worker compact memory of its own again, one that reuses
// freed blocks where they are freed keeps them scattered.
static void warmup_shuffle(uint64_t seed) {
  uint64_t n = g.threads * g.blocks, range = g.max_size - g.min_size + 1;
  uint32_t rng = bench_seed_for(seed, 1u << 20);
  for (uint64_t k = n; k > 1; k--) {
    uint64_t a = k - 1, b = bench_xorshift32(&rng) % k;
    struct slot *sa = &g.slots[a / g.blocks], *sb = &g.slots[b / g.blocks];
    char *bp = sb->blocks[b % g.blocks];
    uint32_t bs = sb->sizes[b % g.blocks];
    sb->blocks[b % g.blocks] = sa->blocks[a % g.blocks];
    sb->sizes[b % g.blocks] = sa->sizes[a % g.blocks];
    sa->blocks[a % g.blocks] = bp;
    sa->sizes[a % g.blocks] = bs;
  }
  for (uint64_t k = 0; k < 4 * n; k++) {
    uint64_t v = bench_xorshift32(&rng) % n;
    struct slot *sv = &g.slots[v / g.blocks];
    free(sv->blocks[v % g.blocks]);
    size_t sz = (size_t)(g.min_size + bench_xorshift32(&rng) % range);
    char *p = malloc(sz);
    if (!p)
      bench_fail("malloc(%zu) returned NULL", sz);
    fill(p, sz);
    sv->blocks[v % g.blocks] = p;
    sv->sizes[v % g.blocks] = (uint32_t)sz;
  }
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "larson_respawn", usage);
  g.threads = bench_arg_u64("threads", 16);
  g.blocks = bench_arg_u64("blocks", 5000);
  g.life = bench_arg_u64("life", 500000);
  g.lives = bench_arg_u64("lives", 2);
  g.min_size = bench_arg_u64("min", 8);
  g.max_size = bench_arg_u64("max", 1000);
  uint64_t seed = bench_arg_u64("seed", 4141);
  uint64_t shuffle = bench_arg_u64("shuffle", 1);
  bench_args_done();
  if (g.threads == 0 || g.threads > 1024 || g.blocks == 0 || g.blocks > (1u << 24) ||
      g.life == 0 || g.lives == 0 || g.lives > UINT32_MAX)
    bench_fail("need 1 <= threads <= 1024, 1 <= blocks <= 2^24, life >= 1, lives >= 1");
  if (g.min_size < 8 || g.min_size > g.max_size || g.max_size > UINT32_MAX)
    bench_fail("need 8 <= min <= max < 4G");

  g.slots = aligned_alloc(64, g.threads * sizeof *g.slots);
  if (!g.slots)
    bench_fail("set-up allocation failed");
  memset(g.slots, 0, g.threads * sizeof *g.slots);
  pthread_mutex_init(&g.done_lock, NULL);
  pthread_cond_init(&g.done_cond, NULL);
  uint64_t range = g.max_size - g.min_size + 1;
  for (uint64_t t = 0; t < g.threads; t++) {
    struct slot *s = &g.slots[t];
    s->rng = bench_seed_for(seed, t);
    s->lives_left = (uint32_t)g.lives;
    s->blocks = malloc(g.blocks * sizeof *s->blocks);
    s->sizes = malloc(g.blocks * sizeof *s->sizes);
    if (!s->blocks || !s->sizes)
      bench_fail("set-up allocation failed");
    for (uint64_t i = 0; i < g.blocks; i++) {
      size_t sz = (size_t)(g.min_size + bench_xorshift32(&s->rng) % range);
      s->blocks[i] = malloc(sz);
      if (!s->blocks[i])
        bench_fail("malloc(%zu) returned NULL", sz);
      fill(s->blocks[i], sz);
      s->sizes[i] = (uint32_t)sz;
    }
  }
  if (shuffle)
    warmup_shuffle(seed);
  for (uint64_t t = 0; t < g.threads; t++)
    start_life(&g.slots[t]);
  pthread_mutex_lock(&g.done_lock);
  while (g.slots_done < g.threads)
    pthread_cond_wait(&g.done_cond, &g.done_lock);
  pthread_mutex_unlock(&g.done_lock);

  uint64_t ops = 0, sum = 0;
  for (uint64_t t = 0; t < g.threads; t++) {
    struct slot *s = &g.slots[t];
    ops += s->ops;
    sum = bench_mix(sum, s->checksum);
    for (uint64_t i = 0; i < g.blocks; i++) {
      if (bad(s->blocks[i], s->sizes[i]))
        bench_fail("corruption at the end: a block of %u bytes", s->sizes[i]);
      free(s->blocks[i]);
    }
    free(s->blocks);
    free(s->sizes);
  }
  char extra[96];
  snprintf(extra, sizeof extra, " threads=%llu lives=%llu", (unsigned long long)g.threads,
           (unsigned long long)(g.threads * g.lives));
  bench_result(ops, bench_span_seconds(&g.span), sum, extra);
  free(g.slots);
  return 0;
}
