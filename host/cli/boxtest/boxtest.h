/*
 * hakmem boxtest: what the files of the conformance suite share.
 *
 *   boxtest.c        the command: arguments, the config text, the driver
 *                    that runs each case in a forked child, the report
 *   boxtest_child.c  the child side: the host and the box under test,
 *                    failures, random sizes and patterns, blocks, batches
 *   boxtest_alloc.c  the start case and the alloc-role cases
 *   boxtest_pages.c  the pages-role and observer-role cases
 */
#ifndef HAKMEM_BOXTEST_H
#define HAKMEM_BOXTEST_H

#include "cli.h"

#include <box_api/hakmem_util.h>
#include <pthread.h>

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)
#define SIZE_CAP ((size_t)64 << 20) /* biggest block a case asks for */
#define LIVE_BYTES_CAP ((size_t)128 << 20)

/* ---- options (boxtest.c) ------------------------------------------------------ */

struct link_choice {
    char name[HAK_NAME_MAX];
    char plugin[PATH_MAX];
};

struct boxtest_options {
    char box[PATH_MAX];      /* absolute path, or a plugin name */
    char params[4096];       /* "key = value" lines for [box.test] */
    char overrides[4096];    /* dotted -s items (box.X.k=v, host.k=v) */
    struct link_choice links[HAK_MAX_LINKS];
    int link_count;
    char terminal[PATH_MAX];
    uint64_t lo, hi;         /* inclusive; hi = UINT64_MAX for max */
    int range_given;
    char range_note[128];
    uint64_t seed;
    long ops;                /* stress operations per thread */
    int threads;
    unsigned max_granules;
    unsigned timeout;
    int verbose;
    int no_fork;
    int foreign_ok;
    const char *only;
    char command_line[4096]; /* the arguments, for the rerun hint */
};

extern struct boxtest_options opt;

/* The config every case's host starts from (boxtest.c writes it). */
extern char config_text[32768];

/* ---- child side: the host, the box, and failures (boxtest_child.c) ------------ */

extern struct hak_plan bt_plan;
extern const struct hak_instance *box;       /* the box under test */
extern const struct hak_instance *terminal_in;
extern const struct hak_instance *class_in;  /* whose tags are class indexes */
extern int owner_after_free[HAK_MAX_INSTANCES + 1]; /* pages: owners of a freed span */

__attribute__((format(printf, 1, 2), noreturn)) void fail(const char *fmt, ...);

#define EXPECT(cond, ...) do { if (HAK_UNLIKELY(!(cond))) fail(__VA_ARGS__); } while (0)

/* A line the parent shows next to PASS. */
__attribute__((format(printf, 1, 2))) void summary(const char *fmt, ...);
const char *owner_name(uint16_t owner);
void host_start(void);

/* ---- random numbers and patterns (boxtest_child.c) ------------------------------ */

uint64_t rnd_next(uint64_t *s);
uint64_t rnd_seed(uint64_t stream);
uint64_t hi_capped(void);
size_t rnd_size(uint64_t *s, size_t cap);
void fill(void *p, size_t n, uint32_t seed);
long check_prefix(const void *p, size_t keep, uint32_t seed, size_t written);
long check(const void *p, size_t n, uint32_t seed);

/* ---- blocks (boxtest_child.c) ------------------------------------------------------ */

struct blk {
    char *p;
    size_t size, usable;
    uint32_t seed;
    uint32_t entry; /* region map (owner, tag) when handed out */
};

void *box_tls(char *block);
void *box_alloc(size_t size);
void *box_alloc_aligned(size_t size, size_t align);
struct blk take_block(const char *what, void *p, size_t size, size_t align, uint32_t seed, int may_fall_back);
void verify_block(const char *what, const struct blk *b);
void free_block(const char *what, const struct blk *b);
void expect_no_overlap(const char *what, const struct blk *blocks, size_t n);
size_t size_list(size_t *out, size_t cap);

/* ---- threads (boxtest_child.c) --------------------------------------------------- */

void run_thread(void *(*fn)(void *), void *arg);

struct batch {
    struct blk b[4096];
    size_t n;
    uint64_t rnd;
};

void batch_alloc(struct batch *bt, const char *what, size_t n, uint32_t seed_base);
void batch_free(struct batch *bt, const char *what, size_t from, size_t step);
void batch_free_rest(struct batch *bt, const char *what);

/* ---- the cases, each run in its own child ------------------------------------------ */

/* boxtest_alloc.c: start runs for every role, the rest for alloc boxes */
void case_start(void);
void case_sizes(void);
void case_alignment(void);
void case_malloc_api(void);
void case_remote_free(void);
void case_thread_exit(void);
void case_fork(void);
void case_stress(void);
/* boxtest_pages.c */
void case_pages_spans(void);
void case_pages_alignment(void);
void case_pages_reuse(void);
void case_pages_threads(void);
void case_pages_stress(void);
void case_pages_fork(void);
void case_observer(void);

#endif
