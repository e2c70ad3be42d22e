// Random Mixed: the seed project's tiny-object workload, kept exact so its
// figures stay comparable. A slot array of `ws` pointers and xorshift32
// (seed 1234567): each cycle takes r and idx = r % ws; a full slot is freed,
// an empty one gets malloc(16 + (r & 0x3FF)) (clamped to [min, max], or
// `size` when fixed: the runner's random_mixed_256 is --size=256), its first
// byte written. Everything left is freed at the end (timed). ops = cycles.
//
// The first byte of each block is checked when it is freed: a block handed
// out twice, or written by someone else, fails the run.
#include "bench_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "  --cycles=N   iterations (default 10000000)\n"
    "  --ws=N       slots (default 8192)\n"
    "  --seed=N     xorshift32 seed, non-zero (default 1234567)\n"
    "  --min=N      clamp sizes up to at least N (default 0: none)\n"
    "  --max=N      clamp sizes down to at most N (default 0: none)\n"
    "  --size=N     fixed size instead of 16 + (r & 0x3FF) (default 0: mixed;\n"
    "               the runner's random_mixed_256 is --size=256)\n";

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "random_mixed", usage);
  uint64_t cycles = bench_arg_u64("cycles", 10000000);
  uint64_t ws = bench_arg_u64("ws", 8192);
  uint64_t seed = bench_arg_u64("seed", 1234567);
  uint64_t min_size = bench_arg_u64("min", 0);
  uint64_t max_size = bench_arg_u64("max", 0);
  uint64_t fixed = bench_arg_u64("size", 0);
  bench_args_done();
  if (ws == 0 || ws > (1u << 30) || seed == 0 || seed > UINT32_MAX)
    bench_fail("need 0 < ws <= 2^30 and 0 < seed < 2^32");
  if (max_size && min_size > max_size)
    bench_fail("--min=%llu is above --max=%llu", (unsigned long long)min_size,
               (unsigned long long)max_size);

  // Set-up (untimed): the slots and, beside them, the byte each block holds.
  void **slots = calloc(ws, sizeof *slots);
  uint8_t *marks = calloc(ws, 1);
  if (!slots || !marks)
    bench_fail("set-up allocation failed");

  uint32_t rng = (uint32_t)seed;
  uint64_t allocs = 0, frees = 0, bytes = 0, readback = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < cycles; i++) {
    uint32_t r = bench_xorshift32(&rng);
    uint32_t idx = (uint32_t)(r % ws);
    uint8_t *p = slots[idx];
    if (p) {
      if (p[0] != marks[idx])
        bench_fail("corruption: cycle %llu slot %u first byte 0x%02x, wrote 0x%02x",
                   (unsigned long long)i, idx, p[0], marks[idx]);
      readback += p[0];
      free(p);
      slots[idx] = NULL;
      frees++;
    } else {
      size_t sz = fixed ? (size_t)fixed : 16 + (r & 0x3FF);
      if (sz < min_size)
        sz = (size_t)min_size;
      if (max_size && sz > max_size)
        sz = (size_t)max_size;
      p = malloc(sz);
      if (!p)
        bench_fail("malloc(%zu) returned NULL at cycle %llu", sz, (unsigned long long)i);
      uint8_t m = (uint8_t)(r >> 24);
      p[0] = m;
      marks[idx] = m;
      slots[idx] = p;
      allocs++;
      bytes += sz;
    }
  }
  for (uint64_t i = 0; i < ws; i++) {
    uint8_t *p = slots[i];
    if (!p)
      continue;
    if (p[0] != marks[i])
      bench_fail("corruption: slot %llu first byte 0x%02x at the end, wrote 0x%02x",
                 (unsigned long long)i, p[0], marks[i]);
    readback += p[0];
    free(p);
    slots[i] = NULL;
  }
  uint64_t t1 = bench_now_ns();

  uint64_t sum = bench_mix(bench_mix(bench_mix(0, allocs), bytes), readback);
  char extra[128];
  snprintf(extra, sizeof extra, " ws=%llu allocs=%llu frees=%llu", (unsigned long long)ws,
           (unsigned long long)allocs, (unsigned long long)frees);
  bench_result(cycles, (double)(t1 - t0) / 1e9, sum, extra);
  free(marks);
  free(slots);
  return 0;
}
