/*
 * Memory for the host's own start-up. While the host initialises, dlopen,
 * dlsym, dlerror and ld.so (DTV and TLS blocks) call malloc: those calls
 * re-enter us before any box exists. They get memory from this static
 * arena. Its frees are recognised by address and ignored: the arena is
 * small and its users (link maps, dlerror buffers) mostly live forever.
 * Untouched BSS costs no RSS, so the arena can be generous.
 */
#include "internal.h"

#include <string.h>

#define BOOTSTRAP_BYTES (4u << 20)

static char arena[BOOTSTRAP_BYTES] __attribute__((aligned(4096)));
static _Atomic size_t arena_used;

/* Each block is preceded by its size, for realloc and usable_size. */
void *hak_bootstrap_alloc(size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    if (size > BOOTSTRAP_BYTES)
        return NULL;
    size_t used = atomic_load(&arena_used);
    for (;;) {
        size_t start = (used + 16 + align - 1) & ~(align - 1);
        size_t end = start + ((size + 15) & ~(size_t)15);
        if (end > BOOTSTRAP_BYTES)
            return NULL;
        if (atomic_compare_exchange_weak(&arena_used, &used, end)) {
            *(size_t *)(arena + start - 16) = size;
            return arena + start;
        }
    }
}

int hak_bootstrap_owns(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + BOOTSTRAP_BYTES;
}

size_t hak_bootstrap_usable(const void *p)
{
    return *(const size_t *)((const char *)p - 16);
}
