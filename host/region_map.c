/*
 * The region map: address -> (owner, tag) per 64 KB granule.
 *
 * A two-level radix table over the 48-bit address space: a static top level
 * of 65536 leaf pointers (one per 4 GB), leaves of 65536 32-bit entries
 * (256 KB each, mapped on first use and never freed). A lookup is two
 * dependent loads, for any pointer, including ones the host never saw. A flat
 * table would save one load but needs an 8 GB reservation, which breaks
 * programs run under RLIMIT_AS; the radix leaves cost only what is touched.
 */
#include "internal.h"

#include <pthread.h>
#include <sys/mman.h>

uint32_t *_Atomic hak_region_top[1u << HAK_REGION_TOP_BITS];

static pthread_mutex_t leaf_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t *leaf_for(uintptr_t a)
{
    size_t top = a >> 32;
    uint32_t *leaf = atomic_load_explicit(&hak_region_top[top], memory_order_acquire);
    if (leaf)
        return leaf;
    pthread_mutex_lock(&leaf_lock);
    leaf = atomic_load_explicit(&hak_region_top[top], memory_order_acquire);
    if (!leaf) {
        void *m = mmap(NULL, sizeof(uint32_t) << HAK_REGION_LEAF_BITS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            leaf = m;
            atomic_store_explicit(&hak_region_top[top], leaf, memory_order_release);
        }
    }
    pthread_mutex_unlock(&leaf_lock);
    return leaf;
}

int hak_region_set(const void *p, size_t bytes, uint32_t entry, uint64_t *lost)
{
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(HAK_GRANULE - 1);
    uintptr_t end = (uintptr_t)p + bytes;
    if (end >> 48)
        return -1;
    for (; a < end; a += HAK_GRANULE) {
        uint32_t *leaf = leaf_for(a);
        if (!leaf)
            return -1;
        uint32_t *slot = &leaf[(a >> HAK_GRANULE_SHIFT) & ((1u << HAK_REGION_LEAF_BITS) - 1)];
        uint32_t old = __atomic_load_n(slot, __ATOMIC_RELAXED) & ~HAK_REGION_FAST;
        if (lost && old)
            lost[old >> 16] += HAK_GRANULE;
        __atomic_store_n(slot, entry, __ATOMIC_RELEASE);
    }
    return 0;
}

uint16_t hak_fast_owner;
uint32_t hak_fast_classes;
uint32_t hak_fast_base;

void hak_region_mark_fast(void)
{
    pthread_mutex_lock(&leaf_lock);
    for (size_t top = 0; top < (1u << HAK_REGION_TOP_BITS); top++) {
        uint32_t *leaf = atomic_load_explicit(&hak_region_top[top], memory_order_acquire);
        for (size_t i = 0; leaf && i < (1u << HAK_REGION_LEAF_BITS); i++) {
            uint32_t e = __atomic_load_n(&leaf[i], __ATOMIC_RELAXED) & ~HAK_REGION_FAST;
            if (e)
                __atomic_store_n(&leaf[i], hak_region_entry((uint16_t)(e >> 16), (uint16_t)e),
                                 __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&leaf_lock);
}

void hak_region_fork_prepare(void) { pthread_mutex_lock(&leaf_lock); }
void hak_region_fork_parent(void) { pthread_mutex_unlock(&leaf_lock); }
void hak_region_fork_child(void) { pthread_mutex_init(&leaf_lock, NULL); }
