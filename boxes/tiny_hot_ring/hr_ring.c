/*
 * tiny_hot_ring: the hot paths (see unified cache: same checks, ring
 * indexing instead of a stack pointer).
 */
#include "hot_ring.h"

static __attribute__((noinline)) void *hr_alloc_slow(struct hr_tls *t, size_t size)
{
    struct hr_inst *in = hr_inst_of(t);
    void *btls = hr_below_tls(in, t);
    if (HAK_UNLIKELY(!t->ready)) {
        if (hr_tls_init(t))
            return hr_alloc(t, size);
        return in->bops->alloc(btls, size);
    }
    uint32_t cls = size <= HR_SIZE_INDEX_MAX * 8 ? in->cls_of[(size + 7) >> 3] : HR_NO_CLASS;
    if (cls >= in->nclasses)
        return in->bops->alloc(btls, size);
    struct hr_class *c = &t->cls[cls];
    hak_front_outbox_flush(in->bops, btls, cls, &t->outbox[cls]); /* as in the unified cache */
    /* Empty: start the ring over at slot 0 and fill it in one call. */
    uint32_t n = in->bops->alloc_batch(btls, cls, c->slots, in->refill[cls]);
    if (!n)
        return NULL;
    HR_ASSERT(in, n <= in->refill[cls] && c->head == c->tail);
    t->refills++;
    c->in += n;
    hr_event(in, HAK_EV_REFILL, cls, n);
    c->tail = 0;
    c->head = n - 1;
    void *p = c->slots[n - 1];
    *(uintptr_t *)p = 0; /* clear the free marker */
    return p;
}

void *hr_alloc(void *tls, size_t size)
{
    struct hr_tls *t = tls;
    if (HAK_UNLIKELY(size > HR_SIZE_INDEX_MAX * 8))
        return hr_alloc_slow(t, size);
    struct hr_class *c = (struct hr_class *)((char *)t->cls + t->cls_off[(size + 7) >> 3]);
    uint32_t h = c->head;
    if (HAK_UNLIKELY(h == c->tail))
        return hr_alloc_slow(t, size);
    h--;
    void *p = c->slots[h & c->mask];
    c->head = h;
    *(uintptr_t *)p = 0; /* clear the free marker */
    return p;
}

static __attribute__((noinline, cold)) void hr_bad(struct hr_inst *in, const char *problem,
                                                   const void *p)
{
    in->host->bad_free(in->name, problem, p);
}

static __attribute__((noinline)) void hr_free_slow(struct hr_tls *t, void *p, uint16_t tag)
{
    struct hr_inst *in = hr_inst_of(t);
    if (HAK_UNLIKELY(!t->ready)) {
        if (hr_tls_init(t))
            hr_free(t, p, tag);
        else
            in->bops->free(hr_below_tls(in, t), p, tag);
        return;
    }
    if (tag >= in->nclasses) {
        in->bops->free(hr_below_tls(in, t), p, tag);
        return;
    }
    struct hr_class *c = &t->cls[tag];
    if (((uintptr_t)p & (HAK_GRANULE - 1)) * c->magic > c->magic_m1) {
        hr_bad(in, "invalid pointer (not a block start)", p);
        return;
    }
    uintptr_t mark = (uintptr_t)p ^ t->secret;
    if (*(uintptr_t *)p == mark) {
        hr_bad(in, "double free", p);
        return;
    }
    if (c->head - c->tail >= c->size)
        hr_drain(t, tag, in->drain[tag]);
    *(uintptr_t *)p = mark;
    c->slots[c->head++ & c->mask] = p;
    c->frees++;
}

void hr_free(void *tls, void *p, uint16_t tag)
{
    struct hr_tls *t = tls;
    size_t cls = tag;
    if (HAK_UNLIKELY(cls >= HR_MAX_CLASSES)) {
        struct hr_inst *in = hr_inst_of(t);
        in->bops->free(hr_below_tls(in, t), p, tag);
        return;
    }
    struct hr_class *c = t->cls + cls;
    uintptr_t mark = (uintptr_t)p ^ t->secret;
    uint32_t h = c->head;
    if (HAK_UNLIKELY(h - c->tail >= c->size || *(uintptr_t *)p == mark ||
                     ((uintptr_t)p & (HAK_GRANULE - 1)) * c->magic > c->magic_m1)) {
        hr_free_slow(t, p, tag);
        return;
    }
    *(uintptr_t *)p = mark;
    c->slots[h & c->mask] = p;
    c->head = h + 1;
    c->frees++;
}

/* Another thread's block: into the class's outbox, which goes below in a
 * batch (hakmem_front.h); counted as a block that went below, so allocs
 * (derived) stay right. What the checks refuse, below checks and reports. */
void hr_free_remote(void *tls, void *p, uint16_t tag)
{
    struct hr_tls *t = tls;
    struct hr_inst *in = hr_inst_of(t);
    if (HAK_UNLIKELY(tag >= in->nclasses)) {
        in->bops->free(hr_below_tls(in, t), p, tag);
        return;
    }
    struct hr_class *c = &t->cls[tag];
    uintptr_t mark = (uintptr_t)p ^ t->secret;
    c->frees++;
    c->out++;
    if (HAK_UNLIKELY(!t->ready || ((uintptr_t)p & (HAK_GRANULE - 1)) * c->magic > c->magic_m1 ||
                     *(uintptr_t *)p == mark)) {
        in->bops->free(hr_below_tls(in, t), p, tag);
        return;
    }
    *(uintptr_t *)p = mark;
    hak_front_outbox_push(in->bops, hr_below_tls(in, t), tag, &t->outbox[tag], p);
}

size_t hr_usable_size(void *tls, const void *p, uint16_t tag)
{
    struct hr_inst *in = hr_inst_of(tls);
    return in->bops->usable_size(hr_below_tls(in, tls), p, tag);
}

uint32_t hr_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n)
{
    struct hr_tls *t = tls;
    struct hr_inst *in = hr_inst_of(t);
    uint32_t k = 0;
    if (t->ready && cls < in->nclasses) {
        struct hr_class *c = &t->cls[cls];
        while (k < n && c->head != c->tail)
            out[k++] = c->slots[--c->head & c->mask];
        c->out += k;
    }
    if (k < n)
        k += in->bops->alloc_batch(hr_below_tls(in, t), cls, out + k, n - k);
    return k;
}

void hr_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n)
{
    struct hr_tls *t = tls;
    struct hr_inst *in = hr_inst_of(t);
    uint32_t k = 0;
    if (t->ready && cls < in->nclasses) {
        struct hr_class *c = &t->cls[cls];
        while (k < n && c->head - c->tail < c->size)
            c->slots[c->head++ & c->mask] = blocks[k++];
        c->in += k;
    }
    if (k < n)
        in->bops->free_batch(hr_below_tls(in, t), cls, blocks + k, n - k);
}
