/*
 * tiny_unified_cache: slices. A slice is set up on its first slow path (or
 * by thread_init) with a stack buffer from the instance's pool; thread exit
 * drains every stack down and gives the buffer back, so the next thread
 * reuses both the buffer and the blocks.
 */
#include "unified_cache.h"

#include <string.h>

bool uc_tls_init(struct uc_tls *t)
{
    struct uc_inst *in = uc_inst_of(t);
    struct uc_buf *buf;
    if (t->ready)
        return true;
    hak_spin_lock(in->pool_lock);
    buf = in->pool;
    if (buf)
        in->pool = buf->next;
    hak_spin_unlock(in->pool_lock);
    if (!buf) {
        buf = in->host->meta_alloc(sizeof *buf + (size_t)in->buf_slots * sizeof(void *));
        if (!buf)
            return false;
    }
    t->buf = buf;
    t->secret = in->secret;
    memcpy(t->cls_off, in->cls_off, sizeof t->cls_off);
    for (uint32_t c = 0; c <= UC_MAX_CLASSES; c++) {
        struct uc_class *cl = &t->cls[c];
        if (c < in->nclasses) {
            cl->top = cl->base = buf->slots + in->slot_off[c];
            cl->limit = cl->base + in->cap[c];
            cl->magic = in->magic[c];
            cl->magic_m1 = in->magic[c] - 1; /* magic 0: test always passes */
            uint32_t size = in->class_size[c];
            cl->block_mask = in->hardened ? UINT64_MAX
                             : !in->magic[c] ? 0 : (size & (size - 1)) ? 15 : size - 1;
        } else {
            cl->top = cl->base = cl->limit = NULL;
            cl->block_mask = 0;
            cl->magic = 0;
            cl->magic_m1 = UINT64_MAX;
        }
    }
    t->ready = 1;
    return true;
}

void uc_thread_init(void *inst, void *tls)
{
    (void)inst;
    uc_tls_init(tls);
}

/* Give the n oldest blocks of a class below (the stack bottom), keeping the
 * recently freed, cache-warm ones. */
void uc_drain(struct uc_tls *t, uint32_t cls, uint32_t n)
{
    struct uc_inst *in = uc_inst_of(t);
    struct uc_class *c = &t->cls[cls];
    uint32_t count = uc_count(c);
    UC_ASSERT(in, c->base <= c->top && c->top <= c->limit);
    if (n > count)
        n = count;
    if (!n)
        return;
    in->bops->free_batch(uc_below_tls(in, t), cls, c->base, n);
    memmove(c->base, c->base + n, (size_t)(count - n) * sizeof(void *));
    c->top -= n;
    c->net -= n;
    t->drains++;
    uc_event(in, HAK_EV_DRAIN, cls, n);
}

void uc_flush_outboxes(struct uc_tls *t)
{
    struct uc_inst *in = uc_inst_of(t);
    for (uint32_t c = 0; c < in->nclasses; c++)
        hak_front_outbox_flush(in->bops, uc_below_tls(in, t), c, &t->outbox[c]);
}

void uc_thread_exit(void *inst, void *tls)
{
    struct uc_inst *in = inst;
    struct uc_tls *t = tls;
    uc_flush_outboxes(t);
    if (!t->ready)
        return;
    for (uint32_t c = 0; c < in->nclasses; c++)
        uc_drain(t, c, uc_count(&t->cls[c]));
    /* Not ready again: capacities 0 send a late call to the slow path. */
    t->ready = 0;
    for (uint32_t c = 0; c <= UC_MAX_CLASSES; c++)
        t->cls[c].top = t->cls[c].base = t->cls[c].limit = NULL;
    memset(t->cls_off, 0, sizeof t->cls_off);
    t->secret = 0;
    hak_spin_lock(in->pool_lock);
    t->buf->next = in->pool;
    in->pool = t->buf;
    hak_spin_unlock(in->pool_lock);
    t->buf = NULL;
}

/* malloc_trim: this thread's cached blocks go below, whose trim (called
 * after ours) can then give whole spans back. */
size_t uc_trim(void *inst, void *tls)
{
    struct uc_inst *in = inst;
    struct uc_tls *t = tls;
    if (t)
        uc_flush_outboxes(t);
    if (t && t->ready)
        for (uint32_t c = 0; c < in->nclasses; c++)
            uc_drain(t, c, uc_count(&t->cls[c]));
    return 0;
}
