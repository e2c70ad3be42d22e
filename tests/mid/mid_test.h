/*
 * Helpers for the mid-size box tests (pool_tls_arena, l25): each case runs
 * in a forked child (one harness per process), configs are INI text with
 * os_pages below both boxes and large at both ends.
 */
#ifndef MID_TEST_H
#define MID_TEST_H

#include "box_harness.h"
#include "case_runner.h"

#include <stddef.h>
#include <stdint.h>

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

/* The suite's config: routes 1-1024 = large, 1025-52K = pool,
 * 53249-2M = l25, 2097153-max = large; extra lines for [host], [box.pool]
 * and [box.l25] (each may be ""). Returns a static buffer. */
const char *mid_config(const char *host_extra, const char *pool_extra, const char *l25_extra);

/* The owner id the region map holds for p. */
uint16_t owner_of(const void *p);

/* A pattern over all n bytes, from seed; check_fill says it is intact. */
void fill(void *p, size_t n, uint32_t seed);
int check_fill(const void *p, size_t n, uint32_t seed);
/* One byte per 4 KB page and the last byte (cheaper, for big blocks). */
void touch_pages(void *p, size_t n, uint32_t seed);
int check_pages(const void *p, size_t n, uint32_t seed);

/* Bytes of [p, p + n) resident in memory; unmapped parts count as 0. */
size_t resident_bytes(const void *p, size_t n);

uint32_t rng_next(uint32_t *state);

/* The box's trim on this thread's slice, as malloc_trim does. */
size_t box_trim(const char *instance);

#endif
