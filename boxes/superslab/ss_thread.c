/*
 * superslab: per-thread slices. A slice gets a fresh id whenever it starts
 * serving a thread, so a slice zeroed or reused by another thread never
 * mistakes the slabs of its previous life for its own. Thread exit gives
 * every owned slab back: empty ones to their SuperSlab, the others to the
 * orphan list (their blocks stay freeable and are reused by adopters).
 */
#include "superslab.h"

#include <string.h>

void ss_tls_init(struct ss_tls *t)
{
    struct ss_inst *in = ss_inst_of(t);
    if (t->id)
        return;
    t->id = atomic_fetch_add_explicit(&in->next_slice_id, 1, memory_order_relaxed);
    hak_spin_lock(in->lock);
    if (in->activity_free_n)
        t->activity = &in->activity[in->activity_free[--in->activity_free_n]];
    else if (in->activity_used < SS_ACTIVITY_CELLS)
        t->activity = &in->activity[in->activity_used++];
    else
        t->activity = NULL;
    hak_spin_unlock(in->lock);
    memcpy(t->cls_of, in->cls_of, sizeof t->cls_of);
    for (uint32_t c = 0; c <= SS_MAX_CLASSES; c++) {
        t->cls[c].cur = t->cls[c].partial = t->cls[c].full = NULL;
        t->cls[c].borrowed = NULL;
        t->cls[c].borrowed_n = 0;
    }
}

void ss_thread_init(void *inst, void *tls)
{
    (void)inst;
    ss_tls_init(tls);
}

void ss_thread_exit(void *inst, void *tls)
{
    struct ss_inst *in = inst;
    struct ss_tls *t = tls;
    struct ss_slab *s;
    if (!t->id)
        return;
    ss_return_borrowed(t); /* before the slabs: one may be this slice's own */
    for (uint32_t c = 0; c < in->nclasses; c++) {
        struct ss_class_tls *ct = &t->cls[c];
        if ((s = ct->cur) != NULL) {
            ct->cur = NULL;
            ss_retire_slab(t, s);
        }
        while ((s = ct->partial) != NULL) {
            ss_list_remove(&ct->partial, s);
            ss_retire_slab(t, s);
        }
        while ((s = ct->full) != NULL) {
            ss_list_remove(&ct->full, s);
            ss_retire_slab(t, s);
        }
    }
    /* Counters stay: the host folds them into its retired totals. The
     * zeroed class table sends any late call through the slow path, which
     * starts a new life with a new id. */
    memset(t->cls_of, 0, sizeof t->cls_of);
    t->id = 0;
    if (t->activity) {
        hak_spin_lock(in->lock);
        in->activity_free[in->activity_free_n++] = (uint16_t)(t->activity - in->activity);
        hak_spin_unlock(in->lock);
        t->activity = NULL;
    }
}

/* malloc_trim: release this thread's empty owned slabs, reclaim orphans
 * whose blocks all came back, decommit every free slab, then give every
 * empty SuperSlab back to the pages box. Returns the bytes given back. */
size_t ss_trim(void *inst, void *tls)
{
    struct ss_inst *in = inst;
    struct ss_tls *t = tls;
    if (!t)
        return 0;
    if (t->id) {
        ss_return_borrowed(t);
        for (uint32_t c = 0; c < in->nclasses; c++) {
            struct ss_class_tls *ct = &t->cls[c];
            struct ss_slab *s = ct->partial;
            while (s) {
                struct ss_slab *next = s->next;
                if (ss_drain_remote(in, s))
                    t->drains++;
                if (s->used == 0) {
                    ss_list_remove(&ct->partial, s);
                    s->list = LIST_NONE;
                    ss_release_slab(t, s);
                }
                s = next;
            }
            if ((s = ct->cur) != NULL) {
                if (ss_drain_remote(in, s))
                    t->drains++;
                if (s->used == 0) {
                    ct->cur = NULL;
                    s->list = LIST_NONE;
                    ss_release_slab(t, s);
                }
            }
        }
    }
    ss_reclaim_orphans(t);
    size_t purged = ss_purge_all(in, t);
    return purged + ss_release_superslabs(in, t, 0);
}
