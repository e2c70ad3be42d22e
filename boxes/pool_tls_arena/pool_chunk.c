/*
 * Chunks: getting them from the pages box, giving them back, orphaning them
 * at thread exit, adopting and reclaiming orphans, and purging idle dirty
 * granules on a tick.
 */
#include "pool_internal.h"

#include <pthread.h>

#include <stdlib.h>

/* ---- pending sets (metadata memory, never freed, recycled) ------------- */

static struct pool_pending *pool_pending_get(struct pool_inst *in)
{
    hak_spin_lock(in->lock);
    struct pool_pending *pd = in->free_pending;
    if (pd)
        in->free_pending = pd->next_free;
    hak_spin_unlock(in->lock);
    if (!pd)
        pd = in->host->meta_alloc(sizeof *pd);
    if (pd)
        for (unsigned w = 0; w < POOL_CHUNK_WORDS; w++)
            atomic_store_explicit(&pd->bits[w], 0, memory_order_relaxed);
    return pd;
}

static void pool_pending_put(struct pool_inst *in, struct pool_pending *pd)
{
    hak_spin_lock(in->lock);
    pd->next_free = in->free_pending;
    in->free_pending = pd;
    hak_spin_unlock(in->lock);
}

/* ---- the thread's chunk list ------------------------------------------- */

/* ---- the thread's chunks with room, for placing new slabs ---------------- */

void pool_avail_remove(struct pool_tls *t, struct pool_chunk *ch)
{
    if (!ch->avail)
        return;
    if (ch->avail_prev)
        ch->avail_prev->avail_next = ch->avail_next;
    else
        t->avail = ch->avail_next;
    if (ch->avail_next)
        ch->avail_next->avail_prev = ch->avail_prev;
    ch->avail_next = ch->avail_prev = NULL;
    ch->avail = false;
}

/* Granules came free in ch (or it is new): to the head of the list. */
void pool_avail_touch(struct pool_tls *t, struct pool_chunk *ch)
{
    if (ch->avail && !ch->avail_prev)
        return;
    pool_avail_remove(t, ch);
    ch->avail = true;
    ch->avail_prev = NULL;
    ch->avail_next = t->avail;
    if (t->avail)
        t->avail->avail_prev = ch;
    t->avail = ch;
}

static void pool_chunk_link(struct pool_tls *t, struct pool_chunk *ch)
{
    ch->prev = NULL;
    ch->next = t->chunks;
    if (t->chunks)
        t->chunks->prev = ch;
    t->chunks = ch;
    t->chunk_count++;
    t->chunk_bytes += ch->bytes;
    ch->avail = false;
    ch->avail_next = ch->avail_prev = NULL;
    if (ch->free_granules)
        pool_avail_touch(t, ch);
}

static void pool_chunk_unlink(struct pool_tls *t, struct pool_chunk *ch)
{
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        t->chunks = ch->next;
    if (ch->next)
        ch->next->prev = ch->prev;
    ch->next = ch->prev = NULL;
    t->chunk_count--;
    t->chunk_bytes -= ch->bytes;
    pool_avail_remove(t, ch);
}

static unsigned pool_chunk_words(const struct pool_chunk *ch)
{
    return (ch->granules + 63) >> 6;
}

size_t pool_chunk_dirty_granules(const struct pool_chunk *ch)
{
    size_t n = 0;
    for (unsigned w = 0; w < pool_chunk_words(ch); w++)
        n += (size_t)__builtin_popcountll(ch->dirty_new[w] | ch->dirty_old[w]);
    return n;
}

/* Chunks grow with the number the thread holds: chunk_min, twice that, ...
 * up to chunk_max; one that fails falls back to chunk_min. Every chunk is
 * aligned to chunk_max, so an address finds its chunk header by masking. */
struct pool_chunk *pool_chunk_new(struct pool_tls *t)
{
    struct pool_inst *in = pool_inst_of(t);
    size_t size = in->chunk_max;
    if (t->chunk_count < 16 && (in->chunk_min << t->chunk_count) < in->chunk_max)
        size = in->chunk_min << t->chunk_count;
    struct pool_pending *pd = pool_pending_get(in);
    if (!pd)
        return NULL;
    void *ptls = hak_link_tls(t, &in->pages);
    char *base = in->pages.desc->ops.pages_alloc(ptls, size, in->chunk_max, in->owner,
                                                 POOL_TAG_NONE);
    if (!base && size > in->chunk_min) {
        size = in->chunk_min;
        base = in->pages.desc->ops.pages_alloc(ptls, size, in->chunk_max, in->owner,
                                               POOL_TAG_NONE);
    }
    if (!base) {
        pool_pending_put(in, pd);
        return NULL;
    }
    /* the span may be reused memory: set every field */
    struct pool_chunk *ch = (struct pool_chunk *)base;
    ch->bytes = size;
    ch->granules = (uint32_t)(size >> HAK_GRANULE_SHIFT);
    ch->slabs = 0;
    ch->orphan_dirty = 0;
    ch->adopted = false;
    ch->pending = pd;
    for (unsigned w = 0; w < POOL_CHUNK_WORDS; w++)
        ch->used[w] = ch->slab_start[w] = ch->dirty_new[w] = ch->dirty_old[w] = 0;
    ch->used[0] = 1; /* the header granule */
    ch->free_granules = ch->granules - 1;
    pool_chunk_link(t, ch);
    return ch;
}

static void pool_chunk_give_back(struct pool_inst *in, void *ptls, struct pool_chunk *ch)
{
    struct pool_pending *pd = ch->pending;
    in->pages.desc->ops.pages_free(ptls, ch, ch->bytes);
    pool_pending_put(in, pd);
}

static size_t pool_chunk_return(struct pool_tls *t, struct pool_chunk *ch)
{
    struct pool_inst *in = pool_inst_of(t);
    size_t bytes = ch->bytes;
    pool_dirty_add(t, -(int64_t)(pool_chunk_dirty_granules(ch) << HAK_GRANULE_SHIFT));
    pool_chunk_unlink(t, ch);
    pool_chunk_give_back(in, hak_link_tls(t, &in->pages), ch);
    return bytes;
}

/* ---- purging ------------------------------------------------------------ */

/* Decommit runs of *bits (granules of word w), one call per contiguous
 * run, until `budget` bytes; the decommitted bits are cleared from *bits.
 * Returns the bytes. */
static size_t pool_decommit_some(const struct pool_inst *in, struct pool_chunk *ch, unsigned w,
                                 uint64_t *bits, size_t budget)
{
    size_t bytes = 0;
    while (*bits && bytes < budget) {
        unsigned start = (unsigned)__builtin_ctzll(*bits);
        uint64_t rest = ~(*bits >> start);
        unsigned len = rest ? (unsigned)__builtin_ctzll(rest) : 64 - start;
        size_t left = budget - bytes;
        if (left < ((size_t)len << HAK_GRANULE_SHIFT))
            len = (unsigned)((left + HAK_GRANULE - 1) >> HAK_GRANULE_SHIFT);
        size_t run = (size_t)len << HAK_GRANULE_SHIFT;
        in->host->decommit((char *)ch + ((size_t)(w * 64 + start) << HAK_GRANULE_SHIFT), run);
        bytes += run;
        *bits &= ~(pool_bits(len) << start);
    }
    return bytes;
}

/* Decommit every granule of word w set in bits. */
static size_t pool_decommit_bits(const struct pool_inst *in, struct pool_chunk *ch, unsigned w,
                                 uint64_t bits)
{
    return pool_decommit_some(in, ch, w, &bits, SIZE_MAX);
}

/* Age a chunk's dirty granules: the old generation (idle a whole tick) is
 * decommitted, the new one becomes old. `all` decommits both. */
static size_t pool_chunk_age(const struct pool_inst *in, struct pool_chunk *ch, bool all)
{
    size_t bytes = 0;
    for (unsigned w = 0; w < pool_chunk_words(ch); w++) {
        uint64_t purge = ch->dirty_old[w] | (all ? ch->dirty_new[w] : 0);
        if (purge)
            bytes += pool_decommit_bits(in, ch, w, purge);
        ch->dirty_old[w] = all ? 0 : ch->dirty_new[w];
        ch->dirty_new[w] = 0;
    }
    return bytes;
}

static bool pool_chunk_has_new_dirty(const struct pool_chunk *ch)
{
    for (unsigned w = 0; w < pool_chunk_words(ch); w++)
        if (ch->dirty_new[w])
            return true;
    return false;
}

/* A tick: chunks empty since the last tick go back to the pages box; idle
 * dirty granules are decommitted. With force (over dirty_max, or a zero
 * purge delay) everything dirty goes and every empty chunk. */
#if HAKMEM_DEBUG
/* Debug builds: the thread's counters match its chunks. */
static void pool_check_thread(const struct pool_tls *t)
{
    size_t dirty = 0, bytes = 0;
    uint32_t count = 0;
    for (const struct pool_chunk *ch = t->chunks; ch; ch = ch->next) {
        dirty += pool_chunk_dirty_granules(ch) << HAK_GRANULE_SHIFT;
        bytes += ch->bytes;
        count++;
        uint32_t free = 0;
        for (unsigned g = 0; g < ch->granules; g++)
            free += !(ch->used[g >> 6] & (1ull << (g & 63)));
        if (free != ch->free_granules || (free != 0) != ch->avail)
            abort();
    }
    if (dirty != t->dirty_bytes || bytes != t->chunk_bytes || count != t->chunk_count)
        abort();
}
#endif

static size_t pool_tick(struct pool_tls *t, uint64_t now, bool force)
{
    struct pool_inst *in = pool_inst_of(t);
#if HAKMEM_DEBUG
    pool_check_thread(t);
#endif
    size_t released = 0;
    bool empty_left = false;
    struct pool_chunk *next;
    /* a class's current slab stays while the class is busy; one still
     * empty at a tick is released (it costs a slab set-up if the class
     * comes back) */
    pool_release_empty_current(t);
    for (struct pool_chunk *ch = t->chunks; ch; ch = next) {
        next = ch->next;
        if (ch->slabs == 0 && (force || !pool_chunk_has_new_dirty(ch))) {
            released += pool_chunk_return(t, ch);
            continue;
        }
        size_t bytes = pool_chunk_age(in, ch, force);
        pool_dirty_add(t, -(int64_t)bytes);
        released += bytes;
        if (ch->slabs == 0)
            empty_left = true;
    }
    t->force_purge = false;
    t->next_tick_ns = (t->dirty_bytes || empty_left) ? now + in->purge_delay_ns : 0;
    released += pool_reclaim_orphans(t, POOL_ORPHANS_PER_TICK, now, force);
    return released;
}

/* ops.reclaim: another box is about to fault in fresh pages and the process
 * is at a new peak. The pool's dirty granules belong to their threads'
 * chunks, which only the owner may touch, and reclaim never waits: the
 * request names the calling thread and adds the bytes it grows by; that
 * thread gives back as much of its own dirty granules at its next tick
 * check (at most POOL_TICK_EVERY calls later), so the process does not
 * hold free pool memory while it grows elsewhere. Only the thread that
 * grows gives back: a request every thread honoured also purged what the
 * others kept for their next slabs, and what exiting threads keep for the
 * next ones (thread_churn's faults went from 3.7K to 354K). cc1 compiling
 * a 60-function file held 2.9 MB of free pool granules at its peak while
 * l25 and superslab grew. */
size_t pool_reclaim(void *inst, size_t bytes)
{
    struct pool_inst *in = inst;
    atomic_store_explicit(&in->reclaim_thread, (uintptr_t)pthread_self(), memory_order_relaxed);
    atomic_fetch_add_explicit(&in->reclaim_bytes, bytes, memory_order_release);
    return 0;
}

/* The request above, seen by its thread: up to the bytes asked, the dirty
 * granules of the chunks it carved itself are decommitted, those idle a
 * whole tick first. Giving back more than the growth elsewhere only made
 * the pool fault its memory in again (sqlite3: 8 and 12 MB of dirty
 * granules about to be reused, 5K faults more, the same peak). The chunks
 * it adopted keep theirs: those are what an exited thread left for the
 * next one, which is about to reuse them (thread_churn: every new thread
 * grows superslab while it takes over a 2 MB chunk with 1.5 MB dirty). */
static void pool_honour_reclaim(struct pool_tls *t)
{
    struct pool_inst *in = pool_inst_of(t);
    if (!atomic_load_explicit(&in->reclaim_bytes, memory_order_relaxed) ||
        atomic_load_explicit(&in->reclaim_thread, memory_order_relaxed) != (uintptr_t)pthread_self())
        return;
    size_t budget = atomic_exchange_explicit(&in->reclaim_bytes, 0, memory_order_acquire);
    size_t done = 0;
    for (int old = 1; old >= 0; old--)
        for (struct pool_chunk *ch = t->chunks; ch && done < budget; ch = ch->next)
            for (unsigned w = 0; w < pool_chunk_words(ch) && !ch->adopted && done < budget; w++)
                done += pool_decommit_some(in, ch, w, old ? &ch->dirty_old[w] : &ch->dirty_new[w],
                                           budget - done);
    pool_dirty_add(t, -(int64_t)done);
}

/* Called every POOL_TICK_EVERY frees and slow allocations (every
 * POOL_TICK_PENDING while a tick is scheduled, so a freed peak goes back
 * soon even if few calls follow). */
void pool_tick_check(struct pool_tls *t)
{
    struct pool_inst *in = pool_inst_of(t);
    pool_honour_reclaim(t);
    if (t->force_purge) {
        pool_tick(t, in->host->now_ns(), true);
    } else if (!t->next_tick_ns) {
        /* orphans wait for someone's tick to be reclaimed */
        if (atomic_load_explicit(&in->orphan_count, memory_order_relaxed))
            t->next_tick_ns = in->host->now_ns() + in->purge_delay_ns;
    } else {
        uint64_t now = in->host->now_ns();
        if (now >= t->next_tick_ns)
            pool_tick(t, now, false);
    }
    t->tick_countdown = t->next_tick_ns ? POOL_TICK_PENDING : POOL_TICK_EVERY;
}

/* Dirty granules were added. Only schedules work: callers may be walking
 * chunk lists, so no chunk is returned from here. */
void pool_note_dirty(struct pool_tls *t)
{
    struct pool_inst *in = pool_inst_of(t);
    if (t->dirty_bytes > in->dirty_max || pool_process_dirty(in) > in->dirty_max ||
        in->purge_delay_ns == 0) {
        t->force_purge = true;
        t->tick_countdown = 1;
        return;
    }
    if (!t->next_tick_ns) {
        t->next_tick_ns = in->host->now_ns() + in->purge_delay_ns;
        if (t->tick_countdown > POOL_TICK_PENDING)
            t->tick_countdown = POOL_TICK_PENDING;
    }
}

/* malloc_trim: every remote free drained, every dirty granule decommitted,
 * every empty chunk returned, orphans reclaimed. */
size_t pool_purge_all(struct pool_tls *t)
{
    struct pool_inst *in = pool_inst_of(t);
    pool_drain_pending(t);
    size_t released = pool_tick(t, in->host->now_ns(), true);
    released += pool_reclaim_orphans(t, atomic_load(&in->orphan_count), in->host->now_ns(), true);
    return released;
}

/* ---- orphans ------------------------------------------------------------ */

/* The chunk's dirty granules count in orphan_dirty while it is an orphan. */
static void pool_orphan_push(struct pool_inst *in, struct pool_chunk *ch)
{
    ch->next = ch->prev = NULL;
    ch->orphan_dirty = (uint64_t)pool_chunk_dirty_granules(ch) << HAK_GRANULE_SHIFT;
    atomic_fetch_add_explicit(&in->orphan_dirty, ch->orphan_dirty, memory_order_relaxed);
    hak_spin_lock(in->lock);
    if (in->orphans_tail)
        in->orphans_tail->next = ch;
    else
        in->orphans = ch;
    in->orphans_tail = ch;
    atomic_fetch_add_explicit(&in->orphan_count, 1, memory_order_relaxed);
    hak_spin_unlock(in->lock);
}

static struct pool_chunk *pool_orphan_pop(struct pool_inst *in)
{
    hak_spin_lock(in->lock);
    struct pool_chunk *ch = in->orphans;
    if (ch) {
        in->orphans = ch->next;
        if (!in->orphans)
            in->orphans_tail = NULL;
        atomic_fetch_sub_explicit(&in->orphan_count, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&in->orphan_dirty, ch->orphan_dirty, memory_order_relaxed);
        ch->orphan_dirty = 0;
        ch->next = NULL;
    }
    hak_spin_unlock(in->lock);
    return ch;
}

/* Drain every slab of a chunk held exclusively and release the empty ones.
 * With t, the slabs become t's (partial, full); without, they stay orphans.
 * Returns the granules released. */
static size_t pool_chunk_collect(struct pool_inst *in, struct pool_tls *t,
                                 struct pool_chunk *ch)
{
    size_t released = 0;
    for (unsigned w = 0; w < pool_chunk_words(ch); w++) {
        atomic_store_explicit(&ch->pending->bits[w], 0, memory_order_relaxed);
        uint64_t bits = ch->slab_start[w];
        while (bits) {
            unsigned sh = (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            struct pool_slab *s = &ch->slab[w * 64 + sh];
            if (t)
                atomic_store_explicit(&s->owner, (void *)t, memory_order_relaxed);
            pool_slab_drain(s);
            if (s->used == 0) {
                released += s->granules;
                pool_slab_release(in, ch, s);
            } else if (t) {
                s->next = s->prev = NULL;
                if (s->free || s->bump < s->end)
                    pool_partial_push(t, s);
                else
                    s->state = SLAB_FULL;
            }
        }
    }
    return released;
}

/* Take the oldest orphan chunk as the thread's own. */
bool pool_adopt_orphan(struct pool_tls *t)
{
    struct pool_inst *in = pool_inst_of(t);
    if (!atomic_load_explicit(&in->orphan_count, memory_order_relaxed))
        return false;
    struct pool_chunk *ch = pool_orphan_pop(in);
    if (!ch)
        return false;
    pool_chunk_collect(in, t, ch);
    ch->adopted = true;
    ch->free_granules = 0;
    for (unsigned w = 0; w < pool_chunk_words(ch); w++)
        ch->free_granules += (uint32_t)__builtin_popcountll(~ch->used[w]);
    ch->free_granules -= pool_chunk_words(ch) * 64 - ch->granules; /* bits past the end */
    pool_chunk_link(t, ch);
    size_t dirty = pool_chunk_dirty_granules(ch) << HAK_GRANULE_SHIFT;
    if (dirty) {
        pool_dirty_add(t, (int64_t)dirty);
        pool_note_dirty(t);
    }
    pool_event(in, HAK_EV_REUSE, ch, ch->bytes, 1);
    return true;
}

/* Look at up to max orphan chunks: drain them, give the empty ones back to
 * the pages box, age the dirty granules of the others. */
size_t pool_reclaim_orphans(struct pool_tls *t, unsigned max, uint64_t now, bool force)
{
    struct pool_inst *in = pool_inst_of(t);
    size_t released = 0;
    for (unsigned i = 0; i < max; i++) {
        if (!atomic_load_explicit(&in->orphan_count, memory_order_relaxed))
            break;
        struct pool_chunk *ch = pool_orphan_pop(in);
        if (!ch)
            break;
        pool_chunk_collect(in, NULL, ch);
        if (ch->slabs == 0) {
            released += ch->bytes;
            pool_chunk_give_back(in, hak_link_tls(t, &in->pages), ch);
            continue;
        }
        /* An orphan stays committed for the next thread until it has
         * waited purge_delay_ms, or the process is over its budget: aging
         * it at every tick of every thread decommitted it before the next
         * thread adopted it (thread_churn, 16 threads: 40K minor faults;
         * 11K without, mimalloc 13K). */
        if (force || pool_process_dirty(in) > in->dirty_max || now - ch->orphaned_ns >= in->purge_delay_ns)
            released += pool_chunk_age(in, ch, true);
        pool_orphan_push(in, ch);
    }
    return released;
}

/* ---- thread exit -------------------------------------------------------- */

/* Empty slabs are released and empty chunks returned; the rest become
 * orphans. An orphan keeps its dirty granules committed for purge_delay_ms
 * (pool_reclaim_orphans) while the process's committed free bytes stay
 * within dirty_max: the next thread to need a slab, whichever it is, usually
 * adopts it soon, and memory decommitted here would fault again there
 * (thread_churn: 290k minor faults for 1000 threads when every orphan was
 * decommitted, against mimalloc's 3.4k). Beyond the budget an orphan is
 * decommitted whole. The budget is the process's, not a thread's: with a
 * per-thread one, threads adopting orphans could each hold dirty_max. */
void pool_thread_exit(void *inst, void *tls)
{
    struct pool_inst *in = inst;
    struct pool_tls *t = tls;
    struct pool_chunk *next;
    for (struct pool_chunk *ch = t->chunks; ch; ch = next) {
        next = ch->next;
        pool_chunk_collect(in, NULL, ch);
        if (ch->slabs == 0) {
            pool_chunk_unlink(t, ch);
            pool_chunk_give_back(in, hak_link_tls(t, &in->pages), ch);
            continue;
        }
        /* This thread's dirty bytes are counted in owned_dirty still and
         * move to orphan_dirty: the sum changes only by what is purged. */
        bool keep = pool_process_dirty(in) <= in->dirty_max;
        if (!keep)
            pool_chunk_age(in, ch, true);
        for (unsigned w = 0; w < pool_chunk_words(ch); w++) {
            uint64_t bits = ch->slab_start[w];
            while (bits) {
                unsigned sh = (unsigned)__builtin_ctzll(bits);
                bits &= bits - 1;
                struct pool_slab *s = &ch->slab[w * 64 + sh];
                s->state = SLAB_ORPHAN;
                s->next = s->prev = NULL;
                atomic_store_explicit(&s->owner, NULL, memory_order_release);
            }
        }
        pool_chunk_unlink(t, ch);
        ch->orphaned_ns = in->host->now_ns();
        pool_orphan_push(in, ch);
    }
    for (uint32_t c = 0; c < POOL_MAX_CLASSES; c++)
        t->cls[c].cur = t->cls[c].partial = t->cls[c].partial_tail = NULL;
    t->chunks = t->avail = NULL;
    t->chunk_count = 0;
    t->chunk_bytes = 0;
    pool_dirty_add(t, -(int64_t)t->dirty_bytes); /* now the orphans' */
    t->next_tick_ns = 0;
    t->force_purge = false;
}
