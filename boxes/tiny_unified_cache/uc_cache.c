/*
 * tiny_unified_cache: the hot paths. alloc is size -> class -> pop;
 * free is tag -> class -> checks -> push. Everything else (an empty or
 * full stack, a slice not set up yet, a bad pointer) is out of line.
 */
#include "unified_cache.h"

static __attribute__((noinline)) void *uc_alloc_slow(struct uc_tls *t, size_t size)
{
    struct uc_inst *in = uc_inst_of(t);
    void *btls = uc_below_tls(in, t);
    if (HAK_UNLIKELY(!t->ready)) {
        if (uc_tls_init(t))
            return uc_alloc(t, size);
        return in->bops->alloc(btls, size); /* no buffer: serve uncached */
    }
    uint32_t cls = size <= UC_SIZE_INDEX_MAX * 8 ? in->cls_of[(size + 7) >> 3] : UC_NO_CLASS;
    if (cls >= in->nclasses)
        return in->bops->alloc(btls, size); /* above the classes: below decides */
    struct uc_class *c = &t->cls[cls];
    /* Send the class's outbox home first: those blocks wait no longer
     * than this thread's next refill. */
    hak_front_outbox_flush(in->bops, btls, cls, &t->outbox[cls]);
    uint32_t n = in->bops->alloc_batch(btls, cls, c->base, in->refill[cls]);
    if (!n)
        return NULL;
    UC_ASSERT(in, n <= in->refill[cls] && c->top == c->base);
    t->refills++;
    c->net += n;
    uc_event(in, HAK_EV_REFILL, cls, n);
    c->top = c->base + n - 1;
    void *p = *c->top;
    *(uintptr_t *)p = 0; /* clear the free marker */
    return p;
}

void *uc_alloc(void *tls, size_t size)
{
    struct uc_tls *t = tls;
    if (HAK_UNLIKELY(size > UC_SIZE_INDEX_MAX * 8))
        return uc_alloc_slow(t, size);
    struct uc_class *c = (struct uc_class *)((char *)t->cls + t->cls_off[(size + 7) >> 3]);
    void **top = c->top;
    if (HAK_UNLIKELY(top == c->base))
        return uc_alloc_slow(t, size);
    void *p = *--top;
    c->top = top;
    *(uintptr_t *)p = 0; /* clear the free marker */
    return p;
}

static __attribute__((noinline, cold)) void uc_bad(struct uc_inst *in, const char *problem,
                                                   const void *p)
{
    in->host->bad_free(in->name, problem, p);
}

static __attribute__((noinline)) void uc_free_slow(struct uc_tls *t, void *p, uint16_t tag)
{
    struct uc_inst *in = uc_inst_of(t);
    if (HAK_UNLIKELY(!t->ready)) {
        if (uc_tls_init(t))
            uc_free(t, p, tag);
        else
            in->bops->free(uc_below_tls(in, t), p, tag);
        return;
    }
    if (tag >= in->nclasses || in->hardened) { /* below knows what it is */
        in->bops->free(uc_below_tls(in, t), p, tag);
        return;
    }
    struct uc_class *c = &t->cls[tag];
    if (((uintptr_t)p & (HAK_GRANULE - 1)) * c->magic > c->magic_m1) {
        uc_bad(in, "invalid pointer (not a block start)", p);
        return;
    }
    uintptr_t mark = (uintptr_t)p ^ t->secret;
    if (*(uintptr_t *)p == mark) {
        uc_bad(in, "double free", p);
        return;
    }
    if (c->top == c->limit)
        uc_drain(t, tag, in->drain[tag]);
    *(uintptr_t *)p = mark;
    *c->top++ = p;
    c->frees++;
}

void uc_free(void *tls, void *p, uint16_t tag)
{
    struct uc_tls *t = tls;
    size_t cls = tag;
    if (HAK_UNLIKELY(cls >= UC_MAX_CLASSES)) {
        struct uc_inst *in = uc_inst_of(t);
        in->bops->free(uc_below_tls(in, t), p, tag);
        return;
    }
    struct uc_class *c = &t->cls[cls];
    uintptr_t mark = (uintptr_t)p ^ t->secret;
    void **top = c->top;
    /* Three reasons to leave: full (or not set up), a free marker already
     * there (double free), not a block start. */
    if (HAK_UNLIKELY(top == c->limit || *(uintptr_t *)p == mark || ((uintptr_t)p & c->block_mask) ||
                     ((uintptr_t)p & (HAK_GRANULE - 1)) * c->magic > c->magic_m1)) {
        uc_free_slow(t, p, tag);
        return;
    }
    *(uintptr_t *)p = mark;
    *top = p;
    c->top = top + 1;
    c->frees++;
}

/* Another thread's block (the host found its slab marked as not ours):
 * into the class's outbox, which goes below in a batch (hakmem_front.h).
 * Counted here as a block that left this slice, so allocs (derived) stay
 * right. What the checks refuse, below checks again and reports. */
void uc_free_remote(void *tls, void *p, uint16_t tag)
{
    struct uc_tls *t = tls;
    struct uc_inst *in = uc_inst_of(t);
    if (HAK_UNLIKELY(tag >= in->nclasses)) {
        in->bops->free(uc_below_tls(in, t), p, tag);
        return;
    }
    struct uc_class *c = &t->cls[tag];
    uintptr_t mark = (uintptr_t)p ^ t->secret;
    c->frees++;
    c->net--;
    if (HAK_UNLIKELY(!t->ready || ((uintptr_t)p & c->block_mask) ||
                     ((uintptr_t)p & (HAK_GRANULE - 1)) * c->magic > c->magic_m1 ||
                     *(uintptr_t *)p == mark)) {
        in->bops->free(uc_below_tls(in, t), p, tag);
        return;
    }
    *(uintptr_t *)p = mark;
    hak_front_outbox_push(in->bops, uc_below_tls(in, t), tag, &t->outbox[tag], p);
}

size_t uc_usable_size(void *tls, const void *p, uint16_t tag)
{
    struct uc_inst *in = uc_inst_of(tls);
    return in->bops->usable_size(uc_below_tls(in, tls), p, tag);
}

/* Class interface for a front stacked on this one: serve from the stack,
 * then from below. Blocks keep their free markers on the way. */
uint32_t uc_alloc_batch(void *tls, uint32_t cls, void **out, uint32_t n)
{
    struct uc_tls *t = tls;
    struct uc_inst *in = uc_inst_of(t);
    uint32_t k = 0;
    if (t->ready && cls < in->nclasses) {
        struct uc_class *c = &t->cls[cls];
        while (k < n && c->top != c->base)
            out[k++] = *--c->top;
        c->net -= k;
    }
    if (k < n)
        k += in->bops->alloc_batch(uc_below_tls(in, t), cls, out + k, n - k);
    return k;
}

void uc_free_batch(void *tls, uint32_t cls, void *const *blocks, uint32_t n)
{
    struct uc_tls *t = tls;
    struct uc_inst *in = uc_inst_of(t);
    uint32_t k = 0;
    if (t->ready && cls < in->nclasses) {
        struct uc_class *c = &t->cls[cls];
        while (k < n && c->top != c->limit)
            *c->top++ = blocks[k++];
        c->net += k;
    }
    if (k < n)
        in->bops->free_batch(uc_below_tls(in, t), cls, blocks + k, n - k);
}
