// The slot loop shared by mid_large_mt and vm_mixed: `ws` slots, xorshift32;
// each cycle takes r and idx = r % ws; a full slot is checked and freed, an
// empty one gets a block of min + (r >> 8) % (max - min + 1) bytes (or
// `fixed`) with one byte written per 4 KB page. Each block carries a stamp
// (bench_stamp_pages) that is checked before it is freed.
#ifndef HAKMEM_BENCH_SLOT_LOOP_H
#define HAKMEM_BENCH_SLOT_LOOP_H

#include <stdint.h>

struct slot_loop {
  // inputs
  uint64_t cycles, ws, min_size, max_size, fixed;
  uint32_t seed;    // xorshift32 state, non-zero
  uint32_t stream;  // distinguishes the stamps of concurrent loops
  // outputs
  uint64_t allocs, frees, bytes, checksum;
  // set-up
  void **slots;
  uint32_t *sizes;
  uint32_t *serials;
};

// Checks the inputs (exits through bench_fail on nonsense) and allocates
// the slot arrays: call before the timed region.
void slot_loop_setup(struct slot_loop *l);
// The timed part: every cycle, then every block left freed.
void slot_loop_run(struct slot_loop *l);
// Frees the slot arrays.
void slot_loop_teardown(struct slot_loop *l);

#endif
