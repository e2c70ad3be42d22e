/*
 * Test harness: the real host core (config loader, plugin loader, region map,
 * thread blocks, routing and dispatch) linked into a test program, without
 * the exported malloc API. Box tests use it to drive boxes directly, which
 * also lets them run under ASan/UBSan/TSan (a preloaded allocator cannot).
 *
 * Box plugins are found through HAKMEM_BOX_PATH, which CTest sets to the
 * build's lib/ folder (see tests/support/CMakeLists.txt: hakmem_add_box_test).
 * One harness per process.
 */
#ifndef HAKMEM_BOX_HARNESS_H
#define HAKMEM_BOX_HARNESS_H

#include <box_api/hakmem_box.h>
#include <stddef.h>

/* Load a config given as INI text; on any error print it and exit(2). */
void harness_open(const char *ini_text);
/* Same, but return non-zero and the host's one-line message instead. */
int harness_try_open(const char *ini_text, char *err, size_t err_len);

/* The host's dispatch, exactly as libhakmem.so's malloc API uses it. */
void *harness_malloc(size_t size);
void harness_free(void *p);
void *harness_calloc(size_t n, size_t size);
void *harness_realloc(void *p, size_t size);
void *harness_memalign(size_t align, size_t size);
size_t harness_usable_size(const void *p);

/* One instance by its [box.NAME] name (abort if absent). */
const struct hak_box_desc *harness_desc(const char *instance);
void *harness_inst(const char *instance);
uint16_t harness_owner(const char *instance);
/* The calling thread's slice of that instance (its block is made on first
 * use, as the host does on a thread's first malloc). */
void *harness_tls(const char *instance);
/* The host services every box gets. */
const struct hak_host *harness_host(void);
/* (owner << 16) | tag from the region map, 0 when no box owns p. */
uint32_t harness_lookup(const void *p);
/* Run the calling thread's exit now (each box's thread_exit in chain order);
 * the thread gets a fresh block on its next call. */
void harness_thread_exit(void);
/* Counters of one instance summed over live and exited threads, plus the
 * bytes it currently has mapped. */
struct hak_stats harness_stats(const char *instance);
uint64_t harness_bytes_mapped(const char *instance);

/* Assertions that print file:line and the expression, then abort. */
#include <stdio.h>
#include <stdlib.h>
#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    abort(); } } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
    if (_a != _b) { fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", \
    __FILE__, __LINE__, #a, _a, #b, _b); abort(); } } while (0)

#endif
