/*
 * The region map: address -> (owner, tag) per 64 KB granule.
 *
 * A two-level radix table over the 48-bit address space: a static top level
 * of 65536 leaf pointers (one per 4 GB), leaves of 65536 8-byte slots
 * (512 KB each, mapped on first use and never freed; a slot is the entry
 * and the thread the granule's blocks belong to). A lookup is two
 * dependent loads, for any pointer, including ones the host never saw. A flat
 * table would save one load but needs an 8 GB reservation, which breaks
 * programs run under RLIMIT_AS; the radix leaves cost only what is touched.
 */
#include "internal.h"

#include <pthread.h>
#include <sys/mman.h>

struct hak_region_slot *_Atomic hak_region_top[1u << HAK_REGION_TOP_BITS];

/* Guards new leaves; on the lock page (internal.h). */
#define leaf_lock (hak_locks.region_leaf.lock)

/* Spans set before the fast owner is known (boxes map while they start),
 * so that hak_region_mark_fast revisits only them: scanning every leaf
 * read 512 KB of top level and 256 KB per leaf, 393K instructions and
 * about 190 page faults in every process. Start-up is single-threaded;
 * past the log's size mark_fast falls back to the full scan. */
#define EARLY_SPANS 32
static struct { uintptr_t lo, end; } early_spans[EARLY_SPANS];
static int early_count; /* EARLY_SPANS + 1: overflowed */
static int early_done;

static struct hak_region_slot *leaf_for(uintptr_t a)
{
    size_t top = a >> 32;
    struct hak_region_slot *leaf = atomic_load_explicit(&hak_region_top[top], memory_order_acquire);
    if (leaf)
        return leaf;
    hak_spin_lock(&leaf_lock);
    leaf = atomic_load_explicit(&hak_region_top[top], memory_order_acquire);
    if (!leaf) {
        void *m = mmap(NULL, sizeof(struct hak_region_slot) << HAK_REGION_LEAF_BITS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            leaf = m;
            atomic_store_explicit(&hak_region_top[top], leaf, memory_order_release);
        }
    }
    hak_spin_unlock(&leaf_lock);
    return leaf;
}

int hak_region_set(const void *p, size_t bytes, uint32_t entry, uint64_t *lost)
{
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(HAK_GRANULE - 1);
    uintptr_t end = (uintptr_t)p + bytes;
    if (end >> 48)
        return -1;
    if (HAK_UNLIKELY(!early_done) && early_count <= EARLY_SPANS) {
        if (early_count < EARLY_SPANS)
            early_spans[early_count].lo = a, early_spans[early_count].end = end;
        early_count++;
    }
    /* A new owner or tag starts with nobody's thread, or the shared token
     * for a class entry under remote_frees = local (see struct
     * hak_region_slot: thread 0 only with entry 0). */
    uint64_t word = !entry ? 0
                    : (uint64_t)((entry & HAK_REGION_FAST) ? hak_region_fast_thread : HAK_REGION_NOBODY) << 32 |
                          entry;
    for (; a < end; a += HAK_GRANULE) {
        struct hak_region_slot *leaf = leaf_for(a);
        if (!leaf)
            return -1;
        uint64_t *slot = (uint64_t *)hak_region_slot_of(leaf, a);
        uint32_t old = (uint32_t)__atomic_load_n(slot, __ATOMIC_RELAXED) & ~HAK_REGION_FAST;
        if (lost && old)
            lost[old >> 16] += HAK_GRANULE;
        __atomic_store_n(slot, word, __ATOMIC_RELEASE);
    }
    return 0;
}

/* The box owning the granules calls this, for a slab it hands to a thread,
 * or (superslab's lending, host->lend_slab) a thread holding unpushed
 * blocks of the slab, which keeps it from being released or re-formatted;
 * a race between two marks leaves either mark, which is advisory. */
void hak_region_set_thread(const void *p, size_t bytes, uint32_t token)
{
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(HAK_GRANULE - 1);
    uintptr_t end = (uintptr_t)p + bytes;
    if (end >> 48)
        return;
    for (; a < end; a += HAK_GRANULE) {
        struct hak_region_slot *leaf = atomic_load_explicit(&hak_region_top[a >> 32], memory_order_acquire);
        if (!leaf)
            continue;
        uint64_t *slot = (uint64_t *)hak_region_slot_of(leaf, a);
        uint64_t word = __atomic_load_n(slot, __ATOMIC_RELAXED);
        /* A compare-and-swap on the whole slot: should the entry change
         * after all, the mark is dropped instead of writing the old entry
         * back; another mark in between is simply replaced. */
        while (((uint32_t)word & HAK_REGION_FAST) &&
               !__atomic_compare_exchange_n(slot, &word, (uint64_t)token << 32 | (uint32_t)word, 0,
                                            __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            ;
    }
}

uint32_t hak_region_fast_thread = HAK_REGION_NOBODY;
uint32_t hak_region_orphan_thread = HAK_REGION_NOBODY;
uint16_t hak_fast_owner;
uint32_t hak_fast_classes;
uint32_t hak_fast_base;

static void mark_fast_span(uintptr_t a, uintptr_t end)
{
    for (; a < end; a += HAK_GRANULE) {
        struct hak_region_slot *leaf = atomic_load_explicit(&hak_region_top[a >> 32], memory_order_acquire);
        if (!leaf)
            continue;
        uint64_t *slot = (uint64_t *)hak_region_slot_of(leaf, a);
        uint32_t e = (uint32_t)__atomic_load_n(slot, __ATOMIC_RELAXED) & ~HAK_REGION_FAST;
        if (e) {
            e = hak_region_entry((uint16_t)(e >> 16), (uint16_t)e);
            uint32_t thread = (e & HAK_REGION_FAST) ? hak_region_fast_thread : HAK_REGION_NOBODY;
            __atomic_store_n(slot, (uint64_t)thread << 32 | e, __ATOMIC_RELAXED);
        }
    }
}

void hak_region_mark_fast(void)
{
    hak_spin_lock(&leaf_lock);
    if (early_count <= EARLY_SPANS) {
        for (int i = 0; i < early_count; i++)
            mark_fast_span(early_spans[i].lo, early_spans[i].end);
    } else {
        for (size_t top = 0; top < (1u << HAK_REGION_TOP_BITS); top++)
            if (atomic_load_explicit(&hak_region_top[top], memory_order_acquire))
                mark_fast_span((uintptr_t)top << 32, (uintptr_t)(top + 1) << 32);
    }
    early_done = 1;
    hak_spin_unlock(&leaf_lock);
}

void hak_region_fork_prepare(void) { hak_spin_fork_prepare(&leaf_lock); }
void hak_region_fork_parent(void) { hak_spin_fork_parent(&leaf_lock); }
void hak_region_fork_child(void) { hak_spin_fork_child(&leaf_lock); }
