// VM Mixed: one thread, the slot loop (slot_loop.h) over 256 slots with
// blocks of 64 KB to 2 MB, every 4 KB page of a new block written once:
// what the big tiers and page boxes cost in page faults. ops = cycles.
#include "bench_common.h"
#include "slot_loop.h"

#include <stdio.h>

static const char usage[] =
    "  --cycles=N   iterations (default 200000)\n"
    "  --ws=N       slots (default 256)\n"
    "  --seed=N     seed (default 1234567)\n"
    "  --min=N      smallest size (default 65536)\n"
    "  --max=N      largest size (default 2097152)\n"
    "  --size=N     fixed size instead (default 0: mixed)\n";

int main(int argc, char **argv) {
  bench_args_init(argc, argv, "vm_mixed", usage);
  struct slot_loop loop = {
      .cycles = bench_arg_u64("cycles", 200000),
      .ws = bench_arg_u64("ws", 256),
      .seed = (uint32_t)bench_seed_for(bench_arg_u64("seed", 1234567), 0),
      .min_size = bench_arg_u64("min", 64 * 1024),
      .max_size = bench_arg_u64("max", 2 * 1024 * 1024),
      .fixed = bench_arg_u64("size", 0),
  };
  bench_args_done();
  slot_loop_setup(&loop);
  uint64_t t0 = bench_now_ns();
  slot_loop_run(&loop);
  uint64_t t1 = bench_now_ns();
  char extra[64];
  snprintf(extra, sizeof extra, " allocs=%llu", (unsigned long long)loop.allocs);
  bench_result(loop.cycles, (double)(t1 - t0) / 1e9, loop.checksum, extra);
  slot_loop_teardown(&loop);
  return 0;
}
