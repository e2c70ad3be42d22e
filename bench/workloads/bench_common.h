// Shared by every workload: `--key=value` arguments, a seeded generator,
// the clock, block stamps that detect corruption, and the one result line.
//
// Result line (stdout, exactly one per run; the runner parses it):
//   RESULT workload=NAME ops=N seconds=S ops_per_sec=X checksum=C [key=value]...
// Any wrong result prints "FAIL workload=NAME: why" on stderr and exits 1.
#ifndef HAKMEM_BENCH_COMMON_H
#define HAKMEM_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

// ---- arguments -------------------------------------------------------------

// Parses argv as `--key=value` pairs. `--help` prints `usage` and exits 0.
// A key no bench_arg_* call reads is an error (exit 2) in bench_args_done,
// so a typo never silently runs the default.
void bench_args_init(int argc, char **argv, const char *workload, const char *usage);
uint64_t bench_arg_u64(const char *key, uint64_t def);
// Call after every bench_arg_*: rejects keys no one asked for.
void bench_args_done(void);

// ---- failure and results ---------------------------------------------------

// Prints "FAIL workload=NAME: <message>" to stderr and exits 1.
__attribute__((noreturn, format(printf, 1, 2)))
void bench_fail(const char *fmt, ...);

// Prints the result line. `extra` is either NULL or " key=value ..." text
// appended as is (keys must be [a-z0-9_]).
void bench_result(uint64_t ops, double seconds, uint64_t checksum, const char *extra);

// ---- time, memory ----------------------------------------------------------

uint64_t bench_now_ns(void);
// The timed span of a multi-threaded run: each thread marks its own start
// (right after the start barrier) and end; the span runs from the earliest
// start to the latest end. Timing in the threads, not in main, because main
// may not run again until the workers are done when cores are few.
struct bench_span {
  _Atomic uint64_t start;  // 0 until the first thread starts
  _Atomic uint64_t end;
};
void bench_span_start(struct bench_span *s);
void bench_span_end(struct bench_span *s);
double bench_span_seconds(const struct bench_span *s);

// Resident set size of this process now, in KB (/proc/self/statm).
uint64_t bench_rss_kb(void);

// ---- random numbers --------------------------------------------------------

// Marsaglia's xorshift32; the state must never be 0.
static inline uint32_t bench_xorshift32(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

// A well-mixed non-zero seed for stream `i` derived from `seed`.
uint32_t bench_seed_for(uint64_t seed, uint64_t i);

// Folds a value into a running checksum (order-sensitive).
static inline uint64_t bench_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

// ---- block stamps ----------------------------------------------------------

// A stamp marks a live block so that a later check sees whether anyone else
// wrote into it: the first 8 bytes hold (size, key) folded into one word and
// the last byte a byte of the key. Blocks must be >= 16 bytes.
static inline uint64_t bench_stamp_word(size_t size, uint64_t key) {
  return ((uint64_t)size << 40) ^ (key * 0x9E3779B97F4A7C15ull);
}
static inline uint8_t bench_stamp_tail(uint64_t key) {
  return (uint8_t)(key ^ (key >> 8) ^ 0x5A);
}
void bench_stamp(void *p, size_t size, uint64_t key);
// Returns 0 when the stamp is intact; else prints nothing and returns 1,
// leaving the message to the caller (which knows what the block was).
int bench_stamp_bad(const void *p, size_t size, uint64_t key);

// As bench_stamp, and also one byte at every further 4 KB offset, so all
// the pages of a fresh block get faulted in the way a program would use them.
void bench_stamp_pages(void *p, size_t size, uint64_t key);
int bench_stamp_pages_bad(const void *p, size_t size, uint64_t key);

#endif
