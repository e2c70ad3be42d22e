// Realloc growth chains: `ws` buffers grown the way string builders and
// vectors grow them. Each cycle picks a buffer (xorshift32): an empty one
// gets malloc(16..64); a live one grows by realloc to 1.5x + 16 bytes, its
// new pages written once, until the next step would pass `max`, when it is
// freed and starts again. Sizes cross every tier, so realloc moves blocks
// between boxes. Each growth checks that the head word and the old last byte
// came along. ops = mallocs + reallocs + frees.
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "  --cycles=N   iterations (default 200000)\n"
    "  --ws=N       buffers (default 64)\n"
    "  --max=N      largest size a buffer reaches (default 1048576)\n"
    "  --seed=N     seed (default 1234567)\n";

struct chain {
  uint8_t *p;
  size_t size;
  uint32_t serial;  // which buffer this is, for its stamps
  uint32_t step;    // growths so far
};

static inline uint64_t head_word(uint32_t serial) {
  return (uint64_t)serial * 0x9E3779B97F4A7C15ull + 1;
}
static inline uint8_t tail_byte(uint32_t serial, uint32_t step) {
  return (uint8_t)(serial * 31u + step * 7u + 1u);
}

static void check(const struct chain *c, const uint8_t *p, uint64_t idx, const char *when) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  if (w != head_word(c->serial) || p[c->size - 1] != tail_byte(c->serial, c->step))
    bench_fail("corruption: buffer %llu (%zu bytes, step %u) lost its contents %s",
               (unsigned long long)idx, c->size, c->step, when);
}

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "realloc_chain", usage);
  uint64_t cycles = bench_arg_u64("cycles", 200000);
  uint64_t ws = bench_arg_u64("ws", 64);
  uint64_t max_size = bench_arg_u64("max", 1024 * 1024);
  uint64_t seed = bench_arg_u64("seed", 1234567);
  bench_args_done();
  if (ws == 0 || ws > (1u << 24) || max_size < 128)
    bench_fail("need 1 <= ws <= 2^24 and max >= 128");

  struct chain *chains = calloc(ws, sizeof *chains);
  if (!chains)
    bench_fail("set-up allocation failed");
  uint32_t rng = bench_seed_for(seed, 0);
  uint64_t mallocs = 0, reallocs = 0, frees = 0, sum = 0;
  uint32_t serials = 0;

  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < cycles; i++) {
    uint32_t r = bench_xorshift32(&rng);
    uint64_t idx = r % ws;
    struct chain *c = &chains[idx];
    if (!c->p) {
      size_t sz = 16 + (r >> 8) % 49;
      uint8_t *p = malloc(sz);
      if (!p)
        bench_fail("malloc(%zu) returned NULL", sz);
      *c = (struct chain){.p = p, .size = sz, .serial = serials++, .step = 0};
      uint64_t w = head_word(c->serial);
      memcpy(p, &w, sizeof w);
      p[sz - 1] = tail_byte(c->serial, 0);
      mallocs++;
      continue;
    }
    size_t grown = c->size + c->size / 2 + 16;
    if (grown > max_size) {
      check(c, c->p, idx, "before free");
      sum = bench_mix(sum, c->size + c->step);
      free(c->p);
      c->p = NULL;
      frees++;
      continue;
    }
    uint8_t *q = realloc(c->p, grown);
    if (!q)
      bench_fail("realloc(%zu -> %zu) returned NULL", c->size, grown);
    c->p = q;
    check(c, q, idx, "across realloc");
    // Write the new part the way a builder would reach it: once per page.
    for (size_t off = (c->size + 4095) & ~(size_t)4095; off < grown; off += 4096)
      q[off] = 0xA5;
    c->size = grown;
    c->step++;
    q[grown - 1] = tail_byte(c->serial, c->step);
    reallocs++;
  }
  for (uint64_t idx = 0; idx < ws; idx++) {
    struct chain *c = &chains[idx];
    if (!c->p)
      continue;
    check(c, c->p, idx, "at the end");
    sum = bench_mix(sum, c->size + c->step);
    free(c->p);
    c->p = NULL;
    frees++;
  }
  uint64_t t1 = bench_now_ns();

  sum = bench_mix(bench_mix(sum, mallocs), reallocs);
  char extra[96];
  snprintf(extra, sizeof extra, " reallocs=%llu", (unsigned long long)reallocs);
  bench_result(mallocs + reallocs + frees, (double)(t1 - t0) / 1e9, sum, extra);
  free(chains);
  return 0;
}
