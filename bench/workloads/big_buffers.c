// Big buffers replaced at random: `live` buffers of min..max bytes (default
// 20 of 5-25 MB, 300 MB live on average) stay allocated; each op picks one
// at random and replaces it with a new buffer of a random size, zero-filled
// the way `bufs[i] = std::make_unique<char[]>(n)` does it: operator new,
// then a memset of all n bytes (value-initialisation), and only then is the
// old buffer deleted. `--calloc=1` zero-fills with calloc instead.
//
// Each buffer is stamped (head, tail and one byte per 4 KB page) and
// checked before it is freed; with --calloc=1 the new buffer is also
// checked to read as zeros (one word per page) before it is stamped.
// ops = replacements.
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "  --replace=N  replacements (default 2000)\n"
    "  --live=N     buffers kept live (default 20)\n"
    "  --min=N      smallest buffer in bytes (default 5242880)\n"
    "  --max=N      largest buffer in bytes (default 26214400)\n"
    "  --calloc=0|1 zero-fill by calloc instead of malloc + memset (default 0)\n"
    "  --seed=N     seed (default 1234567)\n";

struct buffer {
  uint8_t *p;
  size_t size;
  uint64_t key;
};

static uint8_t *zeroed_buffer(size_t n, int use_calloc) {
  uint8_t *p = use_calloc ? calloc(1, n) : malloc(n);
  if (!p)
    bench_fail("%s(%zu) returned NULL", use_calloc ? "calloc" : "malloc", n);
  if (use_calloc) {
    // one word per page, at a different cache line in each page
    for (size_t off = 0; off + 8 <= n; off += 4096) {
      size_t at = off + ((off >> 6) & 4032);
      uint64_t w;
      memcpy(&w, p + (at + 8 <= n ? at : off), sizeof w);
      if (w)
        bench_fail("calloc(%zu) memory is not zero at offset %zu", n, at);
    }
    if (p[n - 1])
      bench_fail("calloc(%zu) memory is not zero at its last byte", n);
  } else {
    memset(p, 0, n);
  }
  return p;
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "big_buffers", usage);
  uint64_t replace = bench_arg_u64("replace", 2000);
  uint64_t live = bench_arg_u64("live", 20);
  uint64_t min_size = bench_arg_u64("min", 5u << 20);
  uint64_t max_size = bench_arg_u64("max", 25u << 20);
  int use_calloc = (int)bench_arg_u64("calloc", 0);
  uint64_t seed = bench_arg_u64("seed", 1234567);
  bench_args_done();
  if (live == 0 || live > 4096 || min_size < 16 || max_size < min_size ||
      max_size > ((uint64_t)1 << 36) || use_calloc > 1)
    bench_fail("need 1 <= live <= 4096, 16 <= min <= max <= 64 GB, calloc 0 or 1");

  struct buffer *bufs = calloc(live, sizeof *bufs);
  if (!bufs)
    bench_fail("set-up allocation failed");
  uint32_t rng = bench_seed_for(seed, 0);
  uint64_t span = max_size - min_size + 1, sum = 0, keys = 0;
  for (uint64_t i = 0; i < live; i++) {
    size_t n = (size_t)(min_size + bench_xorshift32(&rng) % span);
    bufs[i] = (struct buffer){.p = zeroed_buffer(n, use_calloc), .size = n, .key = ++keys};
    bench_stamp_pages(bufs[i].p, n, bufs[i].key);
  }

  uint64_t t0 = bench_now_ns();
  for (uint64_t op = 0; op < replace; op++) {
    uint32_t r = bench_xorshift32(&rng);
    uint64_t idx = r % live;
    size_t n = (size_t)(min_size + bench_xorshift32(&rng) % span);
    uint8_t *p = zeroed_buffer(n, use_calloc);  // the new one first, as in C++
    struct buffer *b = &bufs[idx];
    if (bench_stamp_pages_bad(b->p, b->size, b->key))
      bench_fail("corruption: buffer %llu (%zu bytes) changed while live",
                 (unsigned long long)idx, b->size);
    free(b->p);
    sum = bench_mix(sum, (uint64_t)b->size ^ (idx << 40));
    *b = (struct buffer){.p = p, .size = n, .key = ++keys};
    bench_stamp_pages(p, n, b->key);
  }
  uint64_t t1 = bench_now_ns();

  uint64_t live_bytes = 0;
  for (uint64_t i = 0; i < live; i++) {
    if (bench_stamp_pages_bad(bufs[i].p, bufs[i].size, bufs[i].key))
      bench_fail("corruption: buffer %llu (%zu bytes) changed while live at the end",
                 (unsigned long long)i, bufs[i].size);
    live_bytes += bufs[i].size;
    sum = bench_mix(sum, bufs[i].size);
    free(bufs[i].p);
  }
  free(bufs);
  char extra[96];
  snprintf(extra, sizeof extra, " live_mb_end=%llu", (unsigned long long)(live_bytes >> 20));
  bench_result(replace, (double)(t1 - t0) / 1e9, sum, extra);
  return 0;
}
