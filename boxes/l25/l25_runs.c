/*
 * The shared state: runs, their bins, best-fit carving, frees, in-place
 * resizing, and the purge tick. Functions here run under in->lock unless
 * their comment says otherwise.
 */
#include "l25_internal.h"

#include <stdlib.h>

/* ---- run lookup: a radix table over run addresses ---------------------- */

struct l25_run *l25_run_of(const struct l25_inst *in, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (a >> 48)
        return NULL;
    struct l25_run **leaf = in->radix[a >> (L25_RUN_SHIFT + L25_RADIX_LEAF_BITS)];
    if (!leaf)
        return NULL;
    return leaf[(a >> L25_RUN_SHIFT) & ((1u << L25_RADIX_LEAF_BITS) - 1)];
}

static struct l25_run **l25_radix_slot(struct l25_inst *in, const void *base)
{
    uintptr_t a = (uintptr_t)base;
    struct l25_run **leaf = in->radix[a >> (L25_RUN_SHIFT + L25_RADIX_LEAF_BITS)];
    return &leaf[(a >> L25_RUN_SHIFT) & ((1u << L25_RADIX_LEAF_BITS) - 1)];
}

/* ---- bins: runs by their longest free stretch --------------------------- */

static unsigned l25_longest(uint32_t free)
{
    unsigned len = 0;
    while (free) {
        free &= free << 1;
        len++;
    }
    return len;
}

static void l25_bin_remove(struct l25_inst *in, struct l25_run *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        in->bins[r->max_free] = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (!in->bins[r->max_free])
        in->bin_mask &= ~(1ull << r->max_free);
    r->next = r->prev = NULL;
}

static void l25_bin_insert(struct l25_inst *in, struct l25_run *r)
{
    r->prev = NULL;
    r->next = in->bins[r->max_free];
    if (r->next)
        r->next->prev = r;
    in->bins[r->max_free] = r;
    in->bin_mask |= 1ull << r->max_free;
}

/* After the masks changed: back into the right bin, at its head (the most
 * recently touched run is the most likely to be in cache and committed). */
static void l25_rebin(struct l25_inst *in, struct l25_run *r)
{
    l25_bin_remove(in, r);
    r->max_free = (uint8_t)l25_longest(~r->used);
    l25_bin_insert(in, r);
}

void l25_run_insert(struct l25_inst *in, struct l25_run *r)
{
    r->all_prev = NULL;
    r->all_next = in->runs;
    if (in->runs)
        in->runs->all_prev = r;
    in->runs = r;
    r->max_free = (uint8_t)l25_longest(~r->used);
    l25_bin_insert(in, r);
    in->run_count++;
}

static void l25_run_remove(struct l25_inst *in, struct l25_run *r)
{
    l25_bin_remove(in, r);
    if (r->all_prev)
        r->all_prev->all_next = r->all_next;
    else
        in->runs = r->all_next;
    if (r->all_next)
        r->all_next->all_prev = r->all_prev;
    *l25_radix_slot(in, r->base) = NULL;
    in->run_count--;
}

/* ---- carving ------------------------------------------------------------ */

/* Place n granules in r (which has a free stretch of n): the smallest
 * stretch that fits, at whichever end reuses more committed granules. */
static unsigned l25_place(struct l25_inst *in, struct l25_run *r, unsigned n,
                          uint64_t *fresh_bytes, bool *retag)
{
    uint32_t x = ~r->used;
    unsigned best_start = 0, best_len = L25_RUN_GRANULES + 1;
    while (x) {
        unsigned start = (unsigned)__builtin_ctz(x);
        unsigned len = (unsigned)__builtin_ctzll(~((uint64_t)x >> start));
        if (len >= n && len < best_len) {
            best_start = start;
            best_len = len;
            if (len == n)
                break;
        }
        x &= ~(l25_bits(len) << start);
    }
    uint32_t dirty = r->dirty_new | r->dirty_old;
    uint32_t win = l25_bits(n);
    unsigned lo = best_start, hi = best_start + best_len - n;
    unsigned pos = __builtin_popcount(dirty & (win << hi)) >
                           __builtin_popcount(dirty & (win << lo))
                       ? hi
                       : lo;
    uint32_t mask = win << pos;
    unsigned reused = (unsigned)__builtin_popcount(dirty & mask);
    r->used |= mask;
    r->starts |= 1u << pos;
    r->dirty_new &= ~mask;
    r->dirty_old &= ~mask;
    in->dirty_bytes -= (size_t)reused << HAK_GRANULE_SHIFT;
    in->live_bytes += (size_t)n << HAK_GRANULE_SHIFT;
    *fresh_bytes += (uint64_t)(n - reused) << HAK_GRANULE_SHIFT;
    /* only the block's first granule is looked up (free, usable_size and
     * realloc get the block's own address); when a block of the same class
     * started here last, the region map already says so */
    *retag = r->tag[pos] != n - 1;
    r->tag[pos] = (uint8_t)(n - 1);
    l25_rebin(in, r);
    return pos;
}

/* Up to `want` blocks of n granules from the runs in hand; returns how many.
 * The caller tags those flagged in *retag (host->assign) outside the lock. */
uint32_t l25_carve(struct l25_inst *in, unsigned n, void **out, uint32_t want,
                   uint64_t *fresh_bytes, uint32_t *retag)
{
    uint32_t got = 0;
    *retag = 0;
    while (got < want) {
        uint64_t fits = in->bin_mask >> n;
        if (!fits)
            break;
        struct l25_run *r = in->bins[n + (unsigned)__builtin_ctzll(fits)];
        bool changed;
        unsigned pos = l25_place(in, r, n, fresh_bytes, &changed);
        if (changed)
            *retag |= 1u << got;
        out[got++] = r->base + ((size_t)pos << HAK_GRANULE_SHIFT);
    }
    return got;
}

/* The run and position of a live block of n granules at p, or NULL. */
struct l25_run *l25_block_run(struct l25_inst *in, const void *p, unsigned n,
                                     unsigned *pos_out)
{
    if ((uintptr_t)p & (HAK_GRANULE - 1))
        return NULL;
    struct l25_run *r = l25_run_of(in, p);
    if (!r)
        return NULL;
    unsigned pos = (unsigned)(((const char *)p - r->base) >> HAK_GRANULE_SHIFT);
    if (pos + n > L25_RUN_GRANULES)
        return NULL;
    uint32_t mask = l25_bits(n) << pos;
    if (!(r->starts & (1u << pos)) || (r->used & mask) != mask || (r->busy & mask))
        return NULL;
    /* exactly n granules: no block starts inside, and the granule after
     * it is free, busy or the start of another block */
    if (n > 1 && (r->starts & (l25_bits(n - 1) << (pos + 1))))
        return NULL;
    if (pos + n < L25_RUN_GRANULES) {
        uint32_t after = 1u << (pos + n);
        if ((r->used & after) && !(r->starts & after) && !(r->busy & after))
            return NULL;
    }
    *pos_out = pos;
    return r;
}

bool l25_free_locked(struct l25_inst *in, void *p, unsigned n)
{
    unsigned pos;
    struct l25_run *r = l25_block_run(in, p, n, &pos);
    if (!r)
        return false;
    uint32_t mask = l25_bits(n) << pos;
    r->used &= ~mask;
    r->starts &= ~(1u << pos);
    r->dirty_new |= mask;
    in->dirty_bytes += (size_t)n << HAK_GRANULE_SHIFT;
    in->live_bytes -= (size_t)n << HAK_GRANULE_SHIFT;
    l25_rebin(in, r);
    return true;
}

/* Shrink a block in place, or grow it into the free granules after it. */
bool l25_resize_locked(struct l25_inst *in, void *p, unsigned n_old, unsigned n_new)
{
    unsigned pos;
    struct l25_run *r = l25_block_run(in, p, n_old, &pos);
    if (!r)
        return false;
    if (n_new < n_old) {
        uint32_t tail = l25_bits(n_old - n_new) << (pos + n_new);
        r->used &= ~tail;
        r->dirty_new |= tail;
        in->dirty_bytes += (size_t)(n_old - n_new) << HAK_GRANULE_SHIFT;
        in->live_bytes -= (size_t)(n_old - n_new) << HAK_GRANULE_SHIFT;
    } else {
        if (pos + n_new > L25_RUN_GRANULES)
            return false;
        uint32_t ext = l25_bits(n_new - n_old) << (pos + n_old);
        if (r->used & ext)
            return false;
        unsigned reused = (unsigned)__builtin_popcount((r->dirty_new | r->dirty_old) & ext);
        r->used |= ext;
        r->dirty_new &= ~ext;
        r->dirty_old &= ~ext;
        in->dirty_bytes -= (size_t)reused << HAK_GRANULE_SHIFT;
        in->live_bytes += (size_t)(n_new - n_old) << HAK_GRANULE_SHIFT;
    }
    l25_rebin(in, r);
    r->tag[pos] = (uint8_t)(n_new - 1);
    in->host->assign(p, HAK_GRANULE, in->owner, (uint16_t)(n_new - 1));
    return true;
}

/* ---- new runs (called without the lock) --------------------------------- */

struct l25_run *l25_run_new(struct l25_inst *in, void *ptls)
{
    char *base = in->pages.desc->ops.pages_alloc(ptls, L25_RUN_BYTES, L25_RUN_BYTES, in->owner,
                                                 L25_TAG_NONE);
    if (!base)
        return NULL;
    size_t top = (uintptr_t)base >> (L25_RUN_SHIFT + L25_RADIX_LEAF_BITS);
    hak_spin_lock(in->lock);
    bool need_leaf = in->radix[top] == NULL;
    struct l25_run *r = in->free_descs;
    if (r)
        in->free_descs = r->next;
    hak_spin_unlock(in->lock);

    struct l25_run **leaf = NULL;
    if (need_leaf)
        leaf = in->host->meta_alloc(sizeof(struct l25_run *) << L25_RADIX_LEAF_BITS);
    if (!r)
        r = in->host->meta_alloc(sizeof *r);
    if (!r || (need_leaf && !leaf)) {
        in->pages.desc->ops.pages_free(ptls, base, L25_RUN_BYTES);
        if (r) {
            hak_spin_lock(in->lock);
            r->next = in->free_descs;
            in->free_descs = r;
            hak_spin_unlock(in->lock);
        }
        return NULL;
    }
    r->base = base;
    r->used = r->starts = r->dirty_new = r->dirty_old = r->busy = 0;
    for (unsigned g = 0; g < L25_RUN_GRANULES; g++)
        r->tag[g] = L25_TAG_BYTE_NONE;
    r->next = r->prev = r->all_next = r->all_prev = NULL;

    hak_spin_lock(in->lock);
    if (!in->radix[top])
        in->radix[top] = leaf; /* a leaf made by a racing thread is simply unused */
    *l25_radix_slot(in, base) = r;
    l25_run_insert(in, r);
    hak_spin_unlock(in->lock);
    return r;
}

/* ---- the purge tick (called without the lock) ---------------------------- */

struct l25_purge_item {
    struct l25_run *run;
    uint32_t mask;
};

static size_t l25_decommit_mask(const struct l25_inst *in, char *base, uint32_t bits)
{
    size_t bytes = 0;
    while (bits) {
        unsigned start = (unsigned)__builtin_ctz(bits);
        unsigned len = (unsigned)__builtin_ctzll(~((uint64_t)bits >> start));
        size_t run = (size_t)len << HAK_GRANULE_SHIFT;
        in->host->decommit(base + ((size_t)start << HAK_GRANULE_SHIFT), run);
        bytes += run;
        bits &= ~(l25_bits(len) << start);
    }
    return bytes;
}

#if HAKMEM_DEBUG
/* Debug builds: the shared counters and bins match the runs. */
static void l25_check_runs(const struct l25_inst *in)
{
    size_t dirty = 0;
    uint32_t count = 0;
    for (const struct l25_run *r = in->runs; r; r = r->all_next) {
        dirty += (size_t)__builtin_popcount(r->dirty_new | r->dirty_old) << HAK_GRANULE_SHIFT;
        count++;
        if ((r->dirty_new | r->dirty_old) & r->used || r->dirty_new & r->dirty_old ||
            (r->busy & ~r->used) || (r->starts & ~r->used) ||
            r->max_free != l25_longest(~r->used))
            abort();
    }
    if (dirty != in->dirty_bytes || count != in->run_count)
        abort();
}
#endif

/* Take `purge` (free granules of r) for decommitting outside the lock:
 * marked used and busy so nobody carves them meanwhile. */
static void l25_purge_take_locked(struct l25_inst *in, struct l25_run *r, uint32_t purge,
                                  struct l25_purge_item *item)
{
    r->used |= purge;
    r->busy |= purge;
    r->dirty_old &= ~purge;
    r->dirty_new &= ~purge;
    in->dirty_bytes -= (size_t)__builtin_popcount(purge) << HAK_GRANULE_SHIFT;
    l25_rebin(in, r);
    item->run = r;
    item->mask = purge;
}

/* Decommitted: the granules are free (clean) again. */
static void l25_purge_done_locked(struct l25_inst *in, const struct l25_purge_item *items,
                                  unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct l25_run *r = items[i].run;
        r->used &= ~items[i].mask;
        r->busy &= ~items[i].mask;
        l25_rebin(in, r);
    }
}

/* Runs empty since the last tick go back to the pages box (when ptls is
 * given); granules free for a whole tick are decommitted; the recent ones
 * age. Force: everything free goes. At most L25_PURGE_BATCH runs of each
 * kind per call, the rest on an immediate next tick. The decommits and page
 * box calls run outside the lock, the granules marked busy meanwhile. */
size_t l25_tick(struct l25_inst *in, void *ptls, uint64_t now, bool force)
{
    struct l25_purge_item items[L25_PURGE_BATCH];
    struct l25_run *give_back[L25_PURGE_BATCH];
    unsigned ni = 0, nr = 0;
    bool incomplete = false, empty_left = false;

    hak_spin_lock(in->lock);
#if HAKMEM_DEBUG
    l25_check_runs(in);
#endif
    uint64_t due = atomic_load_explicit(&in->next_tick_ns, memory_order_relaxed);
    bool granules = in->release_granules || force; /* malloc_trim takes all */
    force |= in->force_purge;
    if (!force && (!due || now < due)) {
        hak_spin_unlock(in->lock); /* another thread ran this tick */
        return 0;
    }
    in->force_purge = false;
    struct l25_run *next;
    for (struct l25_run *r = in->runs; r; r = next) {
        next = r->all_next;
        if (r->used == 0 && (force || !r->dirty_new)) {
            if (ptls && nr < L25_PURGE_BATCH) {
                in->dirty_bytes -= (size_t)__builtin_popcount(r->dirty_new | r->dirty_old)
                                   << HAK_GRANULE_SHIFT;
                l25_run_remove(in, r);
                give_back[nr++] = r;
                continue;
            }
            if (ptls)
                incomplete = true;
        }
        uint32_t purge = granules ? r->dirty_old | (force ? r->dirty_new : 0) : 0;
        if (purge && ni == L25_PURGE_BATCH) {
            incomplete = true;
            continue;
        }
        if (purge)
            l25_purge_take_locked(in, r, purge, &items[ni++]);
        /* What was not purged (release = runs) stays old: it was free a
         * whole tick, and dirty_bytes still counts it. */
        r->dirty_old |= r->dirty_new;
        r->dirty_new = 0;
        if (r->used == r->busy)
            empty_left = true;
    }
    uint64_t next_due = 0;
    if (incomplete)
        next_due = now;
    else if (in->dirty_bytes || empty_left)
        next_due = now + in->purge_delay_ns;
    atomic_store_explicit(&in->next_tick_ns, next_due, memory_order_relaxed);
    hak_spin_unlock(in->lock);

    size_t released = 0;
    for (unsigned i = 0; i < ni; i++)
        released += l25_decommit_mask(in, items[i].run->base, items[i].mask);
    for (unsigned i = 0; i < nr; i++) {
        in->pages.desc->ops.pages_free(ptls, give_back[i]->base, L25_RUN_BYTES);
        released += L25_RUN_BYTES;
    }
    if (ni || nr) {
        hak_spin_lock(in->lock);
        l25_purge_done_locked(in, items, ni);
        for (unsigned i = 0; i < nr; i++) {
            give_back[i]->next = in->free_descs;
            in->free_descs = give_back[i];
        }
        hak_spin_unlock(in->lock);
    }
    return released;
}

/* ---- giving back when the process grows elsewhere (ops.reclaim) --------- */

/* Decommit dirty granules, those free a whole tick first, until at most a
 * quarter of the live bytes stay dirty or `limit` bytes went. The runs
 * stay (no page-box call: the caller may be inside another box's slow
 * path); a trylock and at most L25_PURGE_BATCH runs, so the caller never
 * waits on this box. */
size_t l25_release_dirty(struct l25_inst *in, size_t limit)
{
    struct l25_purge_item items[L25_PURGE_BATCH];
    unsigned ni = 0;
    size_t taken = 0;
    if (!in->release_granules || !hak_spin_trylock(in->lock))
        return 0;
    size_t keep = in->live_bytes >> L25_RECLAIM_KEEP_SHIFT;
    for (int pass = 0; pass < 2; pass++) {
        for (struct l25_run *r = in->runs; r && ni < L25_PURGE_BATCH; r = r->all_next) {
            if (in->dirty_bytes <= keep || taken >= limit)
                break;
            uint32_t purge = pass == 0 ? r->dirty_old : r->dirty_new;
            if (!purge)
                continue;
            taken += (size_t)__builtin_popcount(purge) << HAK_GRANULE_SHIFT;
            l25_purge_take_locked(in, r, purge, &items[ni++]);
        }
    }
    hak_spin_unlock(in->lock);
    if (!ni)
        return 0;
    size_t released = 0;
    for (unsigned i = 0; i < ni; i++)
        released += l25_decommit_mask(in, items[i].run->base, items[i].mask);
    hak_spin_lock(in->lock);
    l25_purge_done_locked(in, items, ni);
    hak_spin_unlock(in->lock);
    return released;
}
