/*
 * Per-thread blocks. The host (preloaded, so initial-exec TLS is cheap)
 * keeps one pointer per thread to a block holding every box's slice; boxes
 * never touch TLS themselves.
 *
 * Thread exit: a pthread key destructor runs each box's thread_exit in chain
 * order (fronts drain into tiers before tiers hand back pages), folds the
 * slice counters into the box's retired totals, and puts the block on a free
 * list for the next thread. glibc may still call malloc/free for this thread
 * afterwards (other destructors, its own teardown): those calls find no
 * block, see the thread has exited, and use the shared orphan block under a
 * lock, so they never touch freed state.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

char hak_null_block[HAK_NULL_BLOCK_BYTES] __attribute__((aligned(64)));
__thread char *hak_tls_block __attribute__((tls_model("initial-exec"))) = hak_null_block;
static __thread int tls_exited __attribute__((tls_model("initial-exec")));

struct thread_rec {
    char *block;
    uint32_t index;
    int live;
    int linked;
    struct thread_rec *next_all;
    struct thread_rec *next_free;
};

static const struct hak_plan *tplan;
static pthread_key_t exit_key;
/* Both on the lock page (internal.h). */
#define thread_lock (hak_locks.thread.lock)
static struct thread_rec *all_recs, *free_recs;
static uint32_t rec_count;
#define orphan_lock (hak_locks.orphan.lock)
static char *orphan_block;
/* The orphan block is set up on its first use (under orphan_lock): most
 * processes never call after a thread's destructors, and its set-up wrote
 * three to four pages of every process at start. */
static int orphan_ready;

_Static_assert(sizeof(struct hak_fast_stack) <= HAK_BLOCK_TOKEN_OFF, "the host's 64 bytes");

/* A token per thread, never reused before 2^32 threads have started (a
 * reused one would only make the free path push another thread's blocks
 * locally, which is what it did for every block before tokens). */
static uint32_t new_token(void)
{
    static _Atomic uint32_t last = HAK_TOKEN_SHARED;
    uint32_t t;
    if (hak_region_fast_thread == HAK_TOKEN_SHARED)
        return HAK_TOKEN_SHARED; /* remote_frees = local */
    do
        t = atomic_fetch_add_explicit(&last, 1, memory_order_relaxed) + 1;
    while (t <= HAK_TOKEN_ORPHAN || t == HAK_REGION_NOBODY);
    return t;
}

/* fresh: straight from hak_meta_alloc, whose memory is never reused and
 * so still the kernel's zeros (clearing it again touched its pages and
 * cost 15K instructions a process). */
static void init_block(char *block, uint32_t index, int fresh)
{
    if (!fresh)
        memset(block, 0, tplan->tls_size);
    *(uint32_t *)(block + HAK_BLOCK_TOKEN_OFF) = new_token();
    /* Lower boxes first, so a front's thread_init may rely on its below. */
    for (int k = tplan->instance_count - 1; k >= 0; k--) {
        const struct hak_instance *in = &tplan->instances[tplan->order[k]];
        struct hak_tls_head *head = (struct hak_tls_head *)(block + in->tls_offset);
        head->block = block;
        head->inst = in->inst;
        head->thread_index = index;
    }
    for (int k = tplan->instance_count - 1; k >= 0; k--) {
        const struct hak_instance *in = &tplan->instances[tplan->order[k]];
        if (in->desc->ops.thread_init)
            in->desc->ops.thread_init(in->inst, block + in->tls_offset);
    }
}

/* Drain a block down the chain, then fold its counters into the retired
 * totals. thread_exit runs without host locks held: boxes take their own
 * locks there, and fork_prepare takes box locks before host locks, so the
 * order is always box -> host. Box stats() on a slice must not lock. */
static void retire_block(char *block)
{
    for (int k = 0; k < tplan->instance_count; k++) {
        const struct hak_instance *in = &tplan->instances[tplan->order[k]];
        if (in->desc->ops.thread_exit)
            in->desc->ops.thread_exit(in->inst, block + in->tls_offset);
    }
    hak_spin_lock(&thread_lock);
    for (int k = 0; k < tplan->instance_count; k++) {
        struct hak_instance *in = (struct hak_instance *)&tplan->instances[tplan->order[k]];
        if (in->desc->ops.stats)
            in->desc->ops.stats(in->inst, block + in->tls_offset, &in->retired);
    }
}

static void on_thread_exit(void *arg)
{
    struct thread_rec *rec = arg;
    hak_tls_block = hak_null_block;
    tls_exited = 1;
    retire_block(rec->block); /* returns holding thread_lock */
    rec->live = 0;
    rec->next_free = free_recs;
    free_recs = rec;
    hak_spin_unlock(&thread_lock);
}

int hak_threads_start(const struct hak_plan *plan)
{
    tplan = plan;
    if (pthread_key_create(&exit_key, on_thread_exit))
        return -1;
    orphan_block = hak_meta_alloc(plan->tls_size ? plan->tls_size : 64);
    orphan_ready = 0; /* a fresh block: set up on first use */
    if (!orphan_block)
        return -1;
    return 0;
}

static char *new_block(void)
{
    hak_spin_lock(&thread_lock);
    struct thread_rec *rec = free_recs;
    int fresh = rec == NULL;
    if (rec) {
        free_recs = rec->next_free;
    } else {
        rec = hak_meta_alloc(sizeof *rec);
        char *block = rec ? hak_meta_alloc(tplan->tls_size ? tplan->tls_size : 64) : NULL;
        if (!block) {
            hak_spin_unlock(&thread_lock);
            return NULL;
        }
        rec->block = block;
        rec->index = ++rec_count; /* 0 is the orphan block */
    }
    hak_spin_unlock(&thread_lock);
    init_block(rec->block, rec->index, fresh); /* box thread_init: no host lock held */
    hak_spin_lock(&thread_lock);
    if (!rec->linked) {
        rec->linked = 1;
        rec->next_all = all_recs;
        all_recs = rec;
    }
    rec->live = 1;
    hak_spin_unlock(&thread_lock);
    hak_tls_block = rec->block;
    /* Keys below PTHREAD_KEY_2NDLEVEL_SIZE need no allocation; if glibc
     * allocates anyway, the call finds hak_tls_block already set. */
    pthread_setspecific(exit_key, rec);
    return rec->block;
}

char *hak_thread_acquire(void)
{
    char *block = hak_tls_block;
    if (block != hak_null_block)
        return block;
    if (!tls_exited && tplan) {
        block = new_block();
        if (block)
            return block;
    }
    hak_spin_lock(&orphan_lock);
    if (HAK_UNLIKELY(!orphan_ready)) {
        /* Box thread_init may take box locks: they come after this one. */
        init_block(orphan_block, 0, 1);
        orphan_ready = 1;
    }
    return orphan_block;
}

void hak_thread_release(char *block)
{
    if (block == orphan_block)
        hak_spin_unlock(&orphan_lock);
}

void hak_thread_exit_now(void)
{
    char *block = hak_tls_block;
    if (block == hak_null_block)
        return;
    struct thread_rec *rec = pthread_getspecific(exit_key);
    pthread_setspecific(exit_key, NULL);
    if (rec)
        on_thread_exit(rec);
    tls_exited = 0; /* the harness lets the thread start afresh */
}

void hak_stats_collect(const struct hak_plan *plan, int index, struct hak_stats *out)
{
    const struct hak_instance *in = &plan->instances[index];
    memset(out, 0, sizeof *out);
    if (!in->desc->ops.stats || !in->inst)
        return;
    hak_spin_lock(&thread_lock);
    *out = in->retired;
    for (struct thread_rec *rec = all_recs; rec; rec = rec->next_all)
        if (rec->live)
            in->desc->ops.stats(in->inst, rec->block + in->tls_offset, out);
    hak_spin_unlock(&thread_lock);
    hak_spin_lock(&orphan_lock);
    if (orphan_ready)
        in->desc->ops.stats(in->inst, orphan_block + in->tls_offset, out);
    hak_spin_unlock(&orphan_lock);
    in->desc->ops.stats(in->inst, NULL, out);
}

/* fork (see fork.c for the order): the orphan lock comes before every box
 * lock, since a call on the orphan block holds it while it calls boxes; the
 * thread lock comes after them (nothing takes a box lock under it). */
void hak_orphans_fork_prepare(void) { hak_spin_fork_prepare(&orphan_lock); }
void hak_orphans_fork_parent(void) { hak_spin_fork_parent(&orphan_lock); }
void hak_orphans_fork_child(void) { hak_spin_fork_child(&orphan_lock); }
void hak_threads_fork_prepare(void) { hak_spin_fork_prepare(&thread_lock); }
void hak_threads_fork_parent(void) { hak_spin_fork_parent(&thread_lock); }

void hak_threads_fork_child(void)
{
    hak_spin_fork_child(&thread_lock);
    /* Other threads do not exist in the child. Their blocks stay marked
     * live, so what they cached stays reachable for stats but is not
     * reused: correctness over a little memory. */
}
