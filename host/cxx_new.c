/*
 * C++'s operator new and delete, every form of C++17, exported by the host
 * so a C++ program's allocations go straight to the fast paths instead of
 * through libstdc++'s wrappers (operator new -> malloc, a loop for the new
 * handler, operator delete -> free). mimalloc, tcmalloc and jemalloc export
 * them for the same reason: on mimalloc-bench's larson (C++ new/delete)
 * the wrappers cost 22 instructions per malloc/free pair under hakmem.
 *
 * Failure: C cannot throw std::bad_alloc. A form that finds no memory hands
 * the request to the next definition in the lookup order (libstdc++'s),
 * which calls the program's new handler and retries through this host's
 * malloc, then throws or returns NULL exactly as the standard says. That
 * is a rare path; the dlsym it needs may allocate, which is fine here: no
 * allocator lock is held.
 *
 * Names are the Itanium C++ ABI's for x86_64 (size_t = m, std::align_val_t
 * is an enum over size_t, std::nothrow_t is passed by reference).
 */
#include "fastpath.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef void *(*new_fn)(size_t);
typedef void *(*new_nothrow_fn)(size_t, const void *);
typedef void *(*new_aligned_fn)(size_t, size_t);
typedef void *(*new_aligned_nothrow_fn)(size_t, size_t, const void *);

static __attribute__((noinline, cold)) void *next_definition(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        /* Only a C++ program calls these, and it has libstdc++ loaded. */
        static const char msg[] = "hakmem: out of memory in operator new, and no C++ "
                                  "runtime to throw std::bad_alloc\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
        abort();
    }
    return f;
}

static __attribute__((noinline, cold)) void *new_failed(const char *name, size_t size)
{
    return ((new_fn)next_definition(name))(size);
}

static __attribute__((noinline, cold)) void *new_nothrow_failed(const char *name, size_t size,
                                                                const void *tag)
{
    return ((new_nothrow_fn)next_definition(name))(size, tag);
}

static __attribute__((noinline, cold)) void *new_aligned_failed(const char *name, size_t size,
                                                                size_t align)
{
    return ((new_aligned_fn)next_definition(name))(size, align);
}

static __attribute__((noinline, cold)) void *
new_aligned_nothrow_failed(const char *name, size_t size, size_t align, const void *tag)
{
    return ((new_aligned_nothrow_fn)next_definition(name))(size, align, tag);
}

/* An alignment that is not a power of two is undefined behaviour in C++;
 * hak_memalign needs one, so such a request takes the failure path. */
static inline void *aligned(size_t size, size_t align)
{
    if (align & (align - 1))
        return NULL;
    return hak_memalign(align < sizeof(void *) ? sizeof(void *) : align, size);
}

/* ---- new ---------------------------------------------------------------- */

#define NEW_PLAIN(name)                                                                \
    EXPORT void *name(size_t size)                                                     \
    {                                                                                  \
        void *p = hak_malloc_fast(size);                                               \
        return HAK_LIKELY(p != NULL) ? p : new_failed(#name, size);                    \
    }
#define NEW_NOTHROW(name)                                                              \
    EXPORT void *name(size_t size, const void *tag)                                    \
    {                                                                                  \
        void *p = hak_malloc_fast(size);                                               \
        return HAK_LIKELY(p != NULL) ? p : new_nothrow_failed(#name, size, tag);       \
    }
#define NEW_ALIGNED(name)                                                              \
    EXPORT void *name(size_t size, size_t align)                                       \
    {                                                                                  \
        void *p = aligned(size, align);                                                \
        return HAK_LIKELY(p != NULL) ? p : new_aligned_failed(#name, size, align);     \
    }
#define NEW_ALIGNED_NOTHROW(name)                                                      \
    EXPORT void *name(size_t size, size_t align, const void *tag)                      \
    {                                                                                  \
        void *p = aligned(size, align);                                                \
        return HAK_LIKELY(p != NULL) ? p : new_aligned_nothrow_failed(#name, size, align, tag); \
    }

NEW_PLAIN(_Znwm)                                  /* new(size_t) */
NEW_PLAIN(_Znam)                                  /* new[](size_t) */
NEW_NOTHROW(_ZnwmRKSt9nothrow_t)                  /* new(size_t, nothrow_t const&) */
NEW_NOTHROW(_ZnamRKSt9nothrow_t)                  /* new[](size_t, nothrow_t const&) */
NEW_ALIGNED(_ZnwmSt11align_val_t)                 /* new(size_t, align_val_t) */
NEW_ALIGNED(_ZnamSt11align_val_t)                 /* new[](size_t, align_val_t) */
NEW_ALIGNED_NOTHROW(_ZnwmSt11align_val_tRKSt9nothrow_t)
NEW_ALIGNED_NOTHROW(_ZnamSt11align_val_tRKSt9nothrow_t)

/* ---- delete: every form is free (the size and alignment are not needed:
 * the region map knows the block) ---------------------------------------- */

EXPORT void _ZdlPv(void *p) { hak_free_fast(p); }
EXPORT void _ZdaPv(void *p) { hak_free_fast(p); }
EXPORT void _ZdlPvm(void *p, size_t size) { (void)size; hak_free_fast(p); }
EXPORT void _ZdaPvm(void *p, size_t size) { (void)size; hak_free_fast(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *tag) { (void)tag; hak_free_fast(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *tag) { (void)tag; hak_free_fast(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t align) { (void)align; hak_free_fast(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t align) { (void)align; hak_free_fast(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align)
{
    (void)size;
    (void)align;
    hak_free_fast(p);
}
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align)
{
    (void)size;
    (void)align;
    hak_free_fast(p);
}
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
    (void)align;
    (void)tag;
    hak_free_fast(p);
}
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
    (void)align;
    (void)tag;
    hak_free_fast(p);
}
