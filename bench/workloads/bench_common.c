#include "bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Arguments live in argv itself; nothing here allocates, so set-up adds no
// allocator traffic before the workload's own.
#define BENCH_MAX_ARGS 64

static const char *g_workload = "?";
static const char *g_keys[BENCH_MAX_ARGS];
static const char *g_values[BENCH_MAX_ARGS];
static int g_used[BENCH_MAX_ARGS];
static int g_nargs;

void bench_args_init(int argc, char **argv, const char *workload, const char *usage) {
  g_workload = workload;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("usage: %s [--key=value]...\n%s", argv[0], usage);
      exit(0);
    }
    const char *eq = strchr(a, '=');
    if (strncmp(a, "--", 2) != 0 || !eq || eq == a + 2) {
      fprintf(stderr, "%s: bad argument '%s' (expected --key=value; --help lists keys)\n",
              workload, a);
      exit(2);
    }
    if (g_nargs == BENCH_MAX_ARGS) {
      fprintf(stderr, "%s: too many arguments\n", workload);
      exit(2);
    }
    // Keys are stored as "key=value" with the length of "key" known by '='.
    g_keys[g_nargs] = a + 2;
    g_values[g_nargs] = eq + 1;
    g_nargs++;
  }
}

static int key_matches(const char *stored, const char *key) {
  size_t n = strlen(key);
  return strncmp(stored, key, n) == 0 && stored[n] == '=';
}

uint64_t bench_arg_u64(const char *key, uint64_t def) {
  uint64_t v = def;
  // The last occurrence wins, as with most command lines.
  for (int i = 0; i < g_nargs; i++) {
    if (!key_matches(g_keys[i], key))
      continue;
    g_used[i] = 1;
    const char *s = g_values[i];
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    uint64_t mult = 1;
    if (end && (*end == 'K' || *end == 'k')) { mult = 1024; end++; }
    else if (end && (*end == 'M' || *end == 'm')) { mult = 1024 * 1024; end++; }
    else if (end && (*end == 'G' || *end == 'g')) { mult = 1024ull * 1024 * 1024; end++; }
    if (errno || end == s || *end != '\0' || s[0] == '-') {
      fprintf(stderr, "%s: --%s wants a non-negative integer (K/M/G suffix allowed), got '%s'\n",
              g_workload, key, s);
      exit(2);
    }
    v = (uint64_t)x * mult;
  }
  return v;
}

void bench_args_done(void) {
  for (int i = 0; i < g_nargs; i++) {
    if (!g_used[i]) {
      fprintf(stderr, "%s: unknown argument '--%s' (--help lists keys)\n", g_workload, g_keys[i]);
      exit(2);
    }
  }
}

void bench_fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fflush(stdout);
  fprintf(stderr, "FAIL workload=%s: %s\n", g_workload, msg);
  exit(1);
}

void bench_result(uint64_t ops, double seconds, uint64_t checksum, const char *extra) {
  double rate = seconds > 0 ? (double)ops / seconds : 0.0;
  printf("RESULT workload=%s ops=%llu seconds=%.6f ops_per_sec=%.0f checksum=%016llx%s\n",
         g_workload, (unsigned long long)ops, seconds, rate, (unsigned long long)checksum,
         extra ? extra : "");
  fflush(stdout);
}

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_span_start(struct bench_span *s) {
  uint64_t now = bench_now_ns();
  uint64_t cur = atomic_load_explicit(&s->start, memory_order_relaxed);
  while ((cur == 0 || now < cur) &&
         !atomic_compare_exchange_weak_explicit(&s->start, &cur, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

void bench_span_end(struct bench_span *s) {
  uint64_t now = bench_now_ns();
  uint64_t cur = atomic_load_explicit(&s->end, memory_order_relaxed);
  while (now > cur &&
         !atomic_compare_exchange_weak_explicit(&s->end, &cur, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

double bench_span_seconds(const struct bench_span *s) {
  uint64_t a = atomic_load(&s->start), b = atomic_load(&s->end);
  return b > a ? (double)(b - a) / 1e9 : 0.0;
}

uint64_t bench_rss_kb(void) {
  // statm: size resident shared text lib data dt, in pages. read(2) on a
  // stack buffer keeps stdio (and its malloc'd buffer) out of the picture.
  char buf[256];
  ssize_t n = -1;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
  }
  if (n <= 0)
    bench_fail("cannot read /proc/self/statm");
  buf[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
    bench_fail("cannot parse /proc/self/statm");
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024u;
}

uint32_t bench_seed_for(uint64_t seed, uint64_t i) {
  // splitmix64 finaliser: distinct streams for distinct (seed, i).
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  uint32_t s = (uint32_t)(z ^ (z >> 32));
  return s ? s : 0x2545F491u;
}

void bench_stamp(void *p, size_t size, uint64_t key) {
  uint64_t w = bench_stamp_word(size, key);
  memcpy(p, &w, sizeof w);
  ((uint8_t *)p)[size - 1] = bench_stamp_tail(key);
}

int bench_stamp_bad(const void *p, size_t size, uint64_t key) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w != bench_stamp_word(size, key) || ((const uint8_t *)p)[size - 1] != bench_stamp_tail(key);
}

void bench_stamp_pages(void *p, size_t size, uint64_t key) {
  uint8_t v = bench_stamp_tail(key);
  for (size_t off = 4096; off < size; off += 4096)
    ((uint8_t *)p)[off] = v;
  bench_stamp(p, size, key);
}

int bench_stamp_pages_bad(const void *p, size_t size, uint64_t key) {
  uint8_t v = bench_stamp_tail(key);
  for (size_t off = 4096; off < size; off += 4096)
    if (((const uint8_t *)p)[off] != v)
      return 1;
  return bench_stamp_bad(p, size, key);
}
