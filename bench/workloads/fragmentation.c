// Fragmentation: build a peak of `count` blocks of min..max bytes (each
// written in full, as live data is), free 90% of them in random order, and
// read the resident set (/proc/self/statm) after that free phase: how much
// of the peak the allocator gives back while a scattered 10% stays live.
// Then free the rest. The time covers the three phases; RSS readings are
// taken between them (their cost is not timed).
// ops = mallocs + frees.
//
// Extra fields: rss_base_kb (before the peak), rss_peak_kb, rss_after_free_kb,
// live_kb (bytes still requested when rss_after_free_kb was read).
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "  --count=N    blocks at the peak (default 200000)\n"
    "  --min=N      smallest size (default 16)\n"
    "  --max=N      largest size (default 1024)\n"
    "  --keep=N     per mille of blocks kept live (default 100: free 90%)\n"
    "  --settle_ms=N  wait before reading rss_after_free_kb (default 0)\n"
    "  --seed=N     seed (default 1234567)\n";

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "fragmentation", usage);
  uint64_t count = bench_arg_u64("count", 200000);
  uint64_t min_size = bench_arg_u64("min", 16);
  uint64_t max_size = bench_arg_u64("max", 1024);
  uint64_t keep = bench_arg_u64("keep", 100);
  uint64_t settle_ms = bench_arg_u64("settle_ms", 0);
  uint64_t seed = bench_arg_u64("seed", 1234567);
  bench_args_done();
  if (count == 0 || count > (1u << 28) || keep > 1000)
    bench_fail("need 1 <= count <= 2^28 and keep <= 1000");
  if (min_size < 16 || min_size > max_size || max_size > UINT32_MAX)
    bench_fail("need 16 <= min <= max < 4G");

  // Set-up: sizes and the order of the frees (a Fisher-Yates shuffle).
  void **blocks = calloc(count, sizeof *blocks);
  uint32_t *sizes = calloc(count, sizeof *sizes);
  uint32_t *order = calloc(count, sizeof *order);
  if (!blocks || !sizes || !order)
    bench_fail("set-up allocation failed");
  uint32_t rng = bench_seed_for(seed, 0);
  for (uint64_t i = 0; i < count; i++) {
    sizes[i] = (uint32_t)(min_size + bench_xorshift32(&rng) % (max_size - min_size + 1));
    order[i] = (uint32_t)i;
  }
  for (uint64_t i = count - 1; i > 0; i--) {
    uint64_t j = bench_xorshift32(&rng) % (i + 1);
    uint32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  uint64_t nfree = count - count * keep / 1000;
  uint64_t sum = 0, live_bytes = 0;

  uint64_t rss_base = bench_rss_kb();
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < count; i++) {
    uint8_t *p = malloc(sizes[i]);
    if (!p)
      bench_fail("malloc(%u) returned NULL at block %llu", sizes[i], (unsigned long long)i);
    memset(p, (int)(i & 0xFF), sizes[i]);
    bench_stamp(p, sizes[i], i);
    blocks[i] = p;
    live_bytes += sizes[i];
  }
  uint64_t t1 = bench_now_ns();
  uint64_t rss_peak = bench_rss_kb();

  uint64_t t2 = bench_now_ns();
  for (uint64_t k = 0; k < nfree; k++) {
    uint32_t i = order[k];
    const uint8_t *p = blocks[i];
    // The stamp covers the ends, one byte in the middle the memset.
    if (bench_stamp_bad(p, sizes[i], i) || p[sizes[i] / 2] != (uint8_t)(i & 0xFF))
      bench_fail("corruption: block %u (%u bytes) was overwritten", i, sizes[i]);
    sum = bench_mix(sum, sizes[i]);
    free(blocks[i]);
    blocks[i] = NULL;
    live_bytes -= sizes[i];
  }
  uint64_t t3 = bench_now_ns();
  if (settle_ms) {
    struct timespec ts = {(time_t)(settle_ms / 1000), (long)(settle_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  uint64_t rss_after = bench_rss_kb();
  uint64_t live_kb = live_bytes / 1024;

  uint64_t t4 = bench_now_ns();
  for (uint64_t k = nfree; k < count; k++) {
    uint32_t i = order[k];
    const uint8_t *p = blocks[i];
    if (bench_stamp_bad(p, sizes[i], i) || p[sizes[i] / 2] != (uint8_t)(i & 0xFF))
      bench_fail("corruption: block %u (%u bytes) was overwritten", i, sizes[i]);
    sum = bench_mix(sum, sizes[i]);
    free(blocks[i]);
    blocks[i] = NULL;
  }
  uint64_t t5 = bench_now_ns();

  char extra[160];
  snprintf(extra, sizeof extra,
           " rss_base_kb=%llu rss_peak_kb=%llu rss_after_free_kb=%llu live_kb=%llu",
           (unsigned long long)rss_base, (unsigned long long)rss_peak,
           (unsigned long long)rss_after, (unsigned long long)live_kb);
  double seconds = (double)((t1 - t0) + (t3 - t2) + (t5 - t4)) / 1e9;
  bench_result(2 * count, seconds, sum, extra);
  free(order);
  free(sizes);
  free(blocks);
  return 0;
}
