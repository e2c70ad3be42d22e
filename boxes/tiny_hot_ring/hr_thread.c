/*
 * tiny_hot_ring: slices (set up lazily with a ring buffer from the pool;
 * thread exit drains every ring below and gives the buffer back).
 */
#include "hot_ring.h"

#include <string.h>

bool hr_tls_init(struct hr_tls *t)
{
    struct hr_inst *in = hr_inst_of(t);
    struct hr_buf *buf;
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
    for (uint32_t c = 0; c <= HR_MAX_CLASSES; c++) {
        struct hr_class *cl = &t->cls[c];
        cl->head = cl->tail = 0;
        if (c < in->nclasses) {
            cl->slots = buf->slots + in->slot_off[c];
            cl->size = in->size[c];
            cl->mask = in->size[c] - 1;
            cl->magic = in->magic[c];
            cl->magic_m1 = in->magic[c] - 1;
        } else {
            cl->slots = NULL;
            cl->size = cl->mask = 0;
            cl->magic = 0;
            cl->magic_m1 = UINT64_MAX;
        }
    }
    t->ready = 1;
    return true;
}

void hr_thread_init(void *inst, void *tls)
{
    (void)inst;
    hr_tls_init(tls);
}

/* Give the n oldest blocks below: from the tail, in at most two contiguous
 * pieces of the ring. */
void hr_drain(struct hr_tls *t, uint32_t cls, uint32_t n)
{
    struct hr_inst *in = hr_inst_of(t);
    struct hr_class *c = &t->cls[cls];
    void *btls = hr_below_tls(in, t);
    uint32_t count = c->head - c->tail;
    HR_ASSERT(in, count <= c->size);
    if (n > count)
        n = count;
    if (!n)
        return;
    uint32_t at = c->tail & c->mask;
    uint32_t first = n < c->size - at ? n : c->size - at;
    in->bops->free_batch(btls, cls, c->slots + at, first);
    if (n > first)
        in->bops->free_batch(btls, cls, c->slots, n - first);
    c->tail += n;
    c->out += n;
    t->drains++;
    hr_event(in, HAK_EV_DRAIN, cls, n);
}

void hr_flush_outboxes(struct hr_tls *t)
{
    struct hr_inst *in = hr_inst_of(t);
    for (uint32_t c = 0; c < in->nclasses; c++)
        hak_front_outbox_flush(in->bops, hr_below_tls(in, t), c, &t->outbox[c]);
}

void hr_thread_exit(void *inst, void *tls)
{
    struct hr_inst *in = inst;
    struct hr_tls *t = tls;
    hr_flush_outboxes(t);
    if (!t->ready)
        return;
    for (uint32_t c = 0; c < in->nclasses; c++)
        hr_drain(t, c, t->cls[c].head - t->cls[c].tail);
    t->ready = 0;
    for (uint32_t c = 0; c <= HR_MAX_CLASSES; c++) {
        t->cls[c].slots = NULL;
        t->cls[c].size = t->cls[c].mask = 0;
        t->cls[c].head = t->cls[c].tail = 0;
    }
    memset(t->cls_off, 0, sizeof t->cls_off);
    t->secret = 0;
    hak_spin_lock(in->pool_lock);
    t->buf->next = in->pool;
    in->pool = t->buf;
    hak_spin_unlock(in->pool_lock);
    t->buf = NULL;
}

size_t hr_trim(void *inst, void *tls)
{
    struct hr_inst *in = inst;
    struct hr_tls *t = tls;
    if (t)
        hr_flush_outboxes(t);
    if (t && t->ready)
        for (uint32_t c = 0; c < in->nclasses; c++)
            hr_drain(t, c, t->cls[c].head - t->cls[c].tail);
    return 0;
}
