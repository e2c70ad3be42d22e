/*
 * Helpers for the tiny-tier tests: the four stacks a config can build from
 * the tiny boxes, opened through the harness; each case runs in a forked
 * child (one harness per process).
 */
#ifndef TINY_TEST_H
#define TINY_TEST_H

#include "box_harness.h"
#include "case_runner.h"

#include <stddef.h>
#include <stdint.h>

/* Which boxes serve 1..1024. The superslab instance is always "ss"; the
 * topmost box (the route's target, the free entry) is tiny_top(). */
enum tiny_stack {
    STACK_SS,      /* superslab alone */
    STACK_UC,      /* tiny_unified_cache -> superslab */
    STACK_RING,    /* tiny_hot_ring -> superslab */
    STACK_RING_UC, /* tiny_hot_ring -> tiny_unified_cache -> superslab */
    STACK_COUNT
};

extern enum tiny_stack tiny_stack_now;

const char *tiny_stack_name(enum tiny_stack s);
const char *tiny_top(void);

/* Open the harness on a stack. Extra lines go into [host], [box.ss] and the
 * top front box (ignored for STACK_SS); any may be NULL. */
void tiny_open(enum tiny_stack s, const char *host_extra, const char *ss_extra,
               const char *front_extra);

/* The classes these tests open superslab with (its default before the
 * finer classes: the cases count blocks per power-of-two slab), and the
 * class a size lands in. test_fronts runs the box's default classes too. */
#define TINY_CLASS_LIST "16,32,64,128,256,512,1024"
#define TINY_CLASSES 7
size_t tiny_class_size(unsigned cls);
unsigned tiny_class_of(size_t size);

/* Ops of an instance on the calling thread's slice. */
#define OPS(inst) (harness_desc(inst)->ops)

/* Start a thread running fn(arg) and wait for it. */
void run_thread(void *(*fn)(void *), void *arg);

/* Fill / check a block with a pattern derived from its address and a seed. */
void fill_block(void *p, size_t n, unsigned seed);
int block_intact(const void *p, size_t n, unsigned seed);

/* xorshift64*: deterministic pseudo-random numbers. */
uint64_t rng_next(uint64_t *state);

#endif
