/*
 * The recorder's C++ operator new and delete: every form forwards to the
 * recorder's own malloc, aligned_alloc and free, so a C++ program's
 * allocations are recorded when the allocator under the recorder exports
 * these operators itself (libhakmem.so does, to skip libstdc++'s wrappers):
 * without these, `hakmem record --hakmem` would miss them. They are
 * recorded as the malloc-family calls they become.
 *
 * A form that finds no memory hands the request to the next definition
 * (the allocator's or libstdc++'s), which runs the new handler and throws
 * std::bad_alloc or returns NULL; a block it then finds is not recorded
 * (after an out-of-memory and a new handler that freed memory: rare).
 */
#include <dlfcn.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

static void *next_definition(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort(); /* only a C++ program calls these, with libstdc++ loaded */
    return f;
}

static void *aligned(size_t size, size_t align)
{
    if (align & (align - 1))
        return NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}

#define NEW_PLAIN(name)                                                                    \
    EXPORT void *name(size_t size)                                                         \
    {                                                                                      \
        void *p = malloc(size ? size : 1);                                                 \
        return p ? p : ((void *(*)(size_t))next_definition(#name))(size);                  \
    }
#define NEW_NOTHROW(name)                                                                  \
    EXPORT void *name(size_t size, const void *tag)                                        \
    {                                                                                      \
        void *p = malloc(size ? size : 1);                                                 \
        return p ? p : ((void *(*)(size_t, const void *))next_definition(#name))(size, tag); \
    }
#define NEW_ALIGNED(name)                                                                  \
    EXPORT void *name(size_t size, size_t align)                                           \
    {                                                                                      \
        void *p = aligned(size, align);                                                    \
        return p ? p : ((void *(*)(size_t, size_t))next_definition(#name))(size, align);   \
    }
#define NEW_ALIGNED_NOTHROW(name)                                                          \
    EXPORT void *name(size_t size, size_t align, const void *tag)                          \
    {                                                                                      \
        void *p = aligned(size, align);                                                    \
        return p ? p : ((void *(*)(size_t, size_t, const void *))next_definition(#name))(  \
                           size, align, tag);                                              \
    }

NEW_PLAIN(_Znwm)
NEW_PLAIN(_Znam)
NEW_NOTHROW(_ZnwmRKSt9nothrow_t)
NEW_NOTHROW(_ZnamRKSt9nothrow_t)
NEW_ALIGNED(_ZnwmSt11align_val_t)
NEW_ALIGNED(_ZnamSt11align_val_t)
NEW_ALIGNED_NOTHROW(_ZnwmSt11align_val_tRKSt9nothrow_t)
NEW_ALIGNED_NOTHROW(_ZnamSt11align_val_tRKSt9nothrow_t)

EXPORT void _ZdlPv(void *p) { free(p); }
EXPORT void _ZdaPv(void *p) { free(p); }
EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; free(p); }
EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; free(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; free(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; free(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; free(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; free(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; free(p); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; free(p); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t)
{
    (void)a;
    (void)t;
    free(p);
}
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t)
{
    (void)a;
    (void)t;
    free(p);
}
