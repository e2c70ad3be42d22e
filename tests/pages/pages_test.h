/*
 * Helpers for the page-box tests: each case runs in a forked child (the
 * harness is one per process), page boxes are driven through their ops
 * table, and residency is read with mincore.
 */
#ifndef PAGES_TEST_H
#define PAGES_TEST_H

#include "box_harness.h"
#include "case_runner.h"

#include <stddef.h>
#include <stdint.h>

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)
#define G64 HAK_GRANULE

/* A page box instance's pages_alloc / pages_free on this thread's slice. */
void *pa_alloc(const char *inst, size_t bytes, size_t align, uint16_t owner, uint16_t tag);
void pa_free(const char *inst, void *p, size_t bytes);

/* The owner id / (owner, tag) entry the region map holds for p. */
uint16_t owner_of(const void *p);
uint32_t entry(uint16_t owner, uint16_t tag);

/* Pages of [p, p + bytes) resident in memory (mincore). */
size_t resident_pages(const void *p, size_t bytes);
size_t page_count(size_t bytes);

/* True if every byte of [p, p + n) is c. */
int all_bytes(const void *p, size_t n, unsigned char c);

/* The machine's THP mode is `never` (or unreadable), read from sysfs
 * independently of the host. */
int pages_thp_never(void);

#endif
