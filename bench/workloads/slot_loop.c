#include "slot_loop.h"

#include "bench_common.h"

#include <stdlib.h>

void slot_loop_setup(struct slot_loop *l) {
  if (l->ws == 0 || l->ws > (1u << 24))
    bench_fail("need 0 < ws <= 2^24");
  if (l->seed == 0)
    bench_fail("the seed must be non-zero");
  if (l->fixed == 0 && (l->min_size < 16 || l->min_size > l->max_size || l->max_size > UINT32_MAX))
    bench_fail("need 16 <= min <= max < 4G, got min=%llu max=%llu",
               (unsigned long long)l->min_size, (unsigned long long)l->max_size);
  if (l->fixed && (l->fixed < 16 || l->fixed > UINT32_MAX))
    bench_fail("need 16 <= size < 4G");
  l->slots = calloc(l->ws, sizeof *l->slots);
  l->sizes = calloc(l->ws, sizeof *l->sizes);
  l->serials = calloc(l->ws, sizeof *l->serials);
  if (!l->slots || !l->sizes || !l->serials)
    bench_fail("set-up allocation failed");
  l->allocs = l->frees = l->bytes = l->checksum = 0;
}

static inline uint64_t key_of(const struct slot_loop *l, uint32_t serial) {
  return ((uint64_t)l->stream << 32) | serial;
}

static void check_and_free(struct slot_loop *l, uint64_t idx, const char *when) {
  void *p = l->slots[idx];
  uint32_t sz = l->sizes[idx];
  if (bench_stamp_pages_bad(p, sz, key_of(l, l->serials[idx])))
    bench_fail("corruption: %s, stream %u slot %llu (block %p, %u bytes) was overwritten",
               when, l->stream, (unsigned long long)idx, p, sz);
  l->checksum = bench_mix(l->checksum, ((const uint8_t *)p)[sz - 1]);
  free(p);
  l->slots[idx] = NULL;
  l->frees++;
}

void slot_loop_run(struct slot_loop *l) {
  uint32_t rng = l->seed;
  uint64_t range = l->max_size - l->min_size + 1;
  for (uint64_t i = 0; i < l->cycles; i++) {
    uint32_t r = bench_xorshift32(&rng);
    uint64_t idx = r % l->ws;
    if (l->slots[idx]) {
      check_and_free(l, idx, "in the loop");
      continue;
    }
    size_t sz = l->fixed ? (size_t)l->fixed : (size_t)(l->min_size + (r >> 8) % range);
    void *p = malloc(sz);
    if (!p)
      bench_fail("malloc(%zu) returned NULL at cycle %llu", sz, (unsigned long long)i);
    uint32_t serial = (uint32_t)l->allocs++;
    bench_stamp_pages(p, sz, key_of(l, serial));
    l->slots[idx] = p;
    l->sizes[idx] = (uint32_t)sz;
    l->serials[idx] = serial;
    l->bytes += sz;
  }
  for (uint64_t idx = 0; idx < l->ws; idx++)
    if (l->slots[idx])
      check_and_free(l, idx, "at the end");
  l->checksum = bench_mix(bench_mix(l->checksum, l->allocs), l->bytes);
}

void slot_loop_teardown(struct slot_loop *l) {
  free(l->serials);
  free(l->sizes);
  free(l->slots);
  l->slots = NULL;
  l->sizes = l->serials = NULL;
}
