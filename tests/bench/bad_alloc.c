// Deliberately broken allocators for the bench tests, preloaded over glibc
// (whose __libc_* entry points do the real work):
//   BAD_ALLOC_CRASH:    malloc aborts on its BAD_ALLOC_AFTER-th call, as a
//                       buggy allocator crashing mid-run would;
//   BAD_ALLOC_SCRIBBLE: after BAD_ALLOC_AFTER calls, flips the first byte of
//                       one live block once, as an allocator corrupting user
//                       data would. Single-threaded workloads only.
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef BAD_ALLOC_AFTER
#define BAD_ALLOC_AFTER 2000
#endif

extern void *__libc_malloc(size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static _Atomic unsigned long calls;

#if defined(BAD_ALLOC_CRASH)

__attribute__((visibility("default"))) void *malloc(size_t n) {
  if (atomic_fetch_add(&calls, 1) + 1 >= BAD_ALLOC_AFTER)
    abort();
  return __libc_malloc(n);
}

#elif defined(BAD_ALLOC_SCRIBBLE)

// The victim: a block returned after the threshold, still live. It is
// scribbled on at the next malloc, once the program has written it.
static uint8_t *victim;
static int done;

__attribute__((visibility("default"))) void *malloc(size_t n) {
  unsigned long c = atomic_fetch_add(&calls, 1) + 1;
  void *p = __libc_malloc(n);
  if (!done && c > BAD_ALLOC_AFTER) {
    if (victim) {
      victim[0] ^= 0xFF;
      done = 1;
    } else {
      victim = p;
    }
  }
  return p;
}

__attribute__((visibility("default"))) void free(void *p) {
  if (p && p == victim && !done)
    victim = NULL;
  __libc_free(p);
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t n) {
  if (p && p == victim && !done)
    victim = NULL;
  return __libc_realloc(p, n);
}

#else
#error "define BAD_ALLOC_CRASH or BAD_ALLOC_SCRIBBLE"
#endif
