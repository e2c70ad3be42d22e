// A growing array: each round grows one buffer by realloc in fixed steps
// (default 800 KB) from one step to `max` (default 256 MB), writing each
// new step in full (memset with the step's own byte), as a vector of
// records appended to in chunks does; then frees it. A copying realloc
// touches the whole array again, a remapping one only the new step.
//
// Each growth checks the head byte and the first and last byte of the
// previous step; each round ends by checking one byte per 4 KB page of the
// whole array. ops = reallocs.
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "  --rounds=N   arrays grown and freed (default 2)\n"
    "  --step=N     bytes added per realloc (default 819200)\n"
    "  --max=N      size an array grows to (default 268435456)\n";

static inline uint8_t step_byte(uint64_t round, uint64_t k) {
  return (uint8_t)(k * 7u + round * 13u + 1u);
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "growing_array", usage);
  uint64_t rounds = bench_arg_u64("rounds", 2);
  uint64_t step = bench_arg_u64("step", 800u << 10);
  uint64_t max_size = bench_arg_u64("max", 256u << 20);
  bench_args_done();
  if (rounds == 0 || step == 0 || max_size < step || max_size > ((uint64_t)1 << 38))
    bench_fail("need rounds >= 1, 1 <= step <= max <= 256 GB");

  uint64_t reallocs = 0, sum = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t round = 0; round < rounds; round++) {
    uint8_t *p = NULL;
    uint64_t size = 0, k = 0;
    for (; size + step <= max_size; k++) {
      uint8_t *q = realloc(p, size + step);
      if (!q)
        bench_fail("realloc(%llu) returned NULL", (unsigned long long)(size + step));
      if (k && (q[0] != step_byte(round, 0) || q[size - step] != step_byte(round, k - 1) ||
                q[size - 1] != step_byte(round, k - 1)))
        bench_fail("corruption: round %llu step %llu lost contents across realloc",
                   (unsigned long long)round, (unsigned long long)k);
      memset(q + size, step_byte(round, k), step);
      p = q;
      size += step;
      reallocs++;
    }
    for (uint64_t off = 0; off < size; off += 4096)
      if (p[off] != step_byte(round, off / step))
        bench_fail("corruption: round %llu offset %llu holds %u at the end",
                   (unsigned long long)round, (unsigned long long)off, p[off]);
    sum = bench_mix(sum, size + k);
    free(p);
  }
  uint64_t t1 = bench_now_ns();

  char extra[96];
  snprintf(extra, sizeof extra, " max_mb=%llu", (unsigned long long)(max_size >> 20));
  bench_result(reallocs, (double)(t1 - t0) / 1e9, sum, extra);
  return 0;
}
