/*
 * superslab: slabs and SuperSlabs. Getting a slab for a class (adopt an
 * orphan, take a free slab, or get a new SuperSlab from the pages box),
 * giving an empty slab back, and giving empty SuperSlabs back under the
 * keep_empty_superslabs policy. The instance lock covers the shared lists
 * and is never held across a call into the pages box.
 */
#include "superslab.h"

#include <stddef.h>

/* ---- intrusive lists -------------------------------------------------- */

void ss_list_push(struct ss_slab **head, struct ss_slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

void ss_list_remove(struct ss_slab **head, struct ss_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

static void ss_head_push(struct ss_head **list, struct ss_head *h, uint32_t where)
{
    h->prev = NULL;
    h->next = *list;
    if (*list)
        (*list)->prev = h;
    *list = h;
    h->where = where;
}

static void ss_head_remove(struct ss_head **list, struct ss_head *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        *list = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->next = h->prev = NULL;
    h->where = SS_IN_NONE;
}

/* ---- remote frees ----------------------------------------------------- */

/* Take the slab's whole remote stack onto its local list (owner only, or
 * under the instance lock for an orphan). Returns the blocks taken. */
uint32_t ss_drain_remote(const struct ss_inst *in, struct ss_slab *s)
{
    uintptr_t first = atomic_exchange_explicit(&s->remote, 0, memory_order_acquire);
    if (!first)
        return 0;
    void *last = (void *)first, *next;
    uint32_t n = 1;
    while ((next = ss_link_get(in, s, last)) != NULL) {
        last = next;
        n++;
    }
    ss_link_set(in, s, last, s->free);
    s->free = (void *)first;
    SS_ASSERT(in, n <= s->used);
    s->used = (uint16_t)(s->used - n);
    ss_event(in, HAK_EV_REMOTE_FREE, ss_bucket(s->cls), s->base, (uint64_t)n * s->stride, n);
    return n;
}

/* ---- SuperSlabs ------------------------------------------------------- */

static void *ss_pages_tls(const struct ss_inst *in, void *my_tls)
{
    return hak_link_tls(my_tls, &in->pages);
}

static struct ss_head *ss_new_superslab(struct ss_inst *in, struct ss_tls *t)
{
    const struct hak_box_ops *pages = &in->pages.desc->ops;
    char *base = pages->pages_alloc(ss_pages_tls(in, t), in->ss_size, in->ss_size, in->owner,
                                    SS_TAG_NONE);
    if (!base)
        return NULL;
    if ((uintptr_t)base & ~in->ss_mask) {
        in->host->log(HAK_LOG_ERROR, in->name, "pages box returned %p, not %zu-aligned",
                      (void *)base, in->ss_size);
        pages->pages_free(ss_pages_tls(in, t), base, in->ss_size);
        return NULL;
    }
    /* The span may be recycled (not zero): set every field. */
    struct ss_head *h = (struct ss_head *)base;
    h->magic = SS_HEAD_MAGIC;
    h->inst = in;
    h->next = h->prev = NULL;
    h->free_slabs = NULL;
    h->nslabs = in->ss_granules;
    h->free_count = 0;
    h->where = SS_IN_NONE;
    for (uint32_t i = h->nslabs; i-- > 0;) {
        struct ss_slab *s = &h->slabs[i];
        s->free = NULL;
        s->base = base + ((size_t)i << HAK_GRANULE_SHIFT);
        s->used = s->capacity = s->stride = 0;
        s->cls = SS_TAG_NONE;
        s->state = SLAB_FREE;
        s->list = LIST_NONE;
        s->link_off = 0;
        s->divmagic = 0;
        s->prev = NULL;
        atomic_store_explicit(&s->owner_id, SS_ORPHAN_ID, memory_order_relaxed);
        atomic_store_explicit(&s->carved, 0, memory_order_relaxed);
        atomic_store_explicit(&s->remote, 0, memory_order_relaxed);
        if (i == 0) { /* granule 0 is this metadata */
            s->next = NULL;
            continue;
        }
        s->next = h->free_slabs; /* lowest address first */
        h->free_slabs = s;
        h->free_count++;
    }
    ss_event(in, HAK_EV_FRESH, HAK_BUCKET_SSM, base,
             offsetof(struct ss_head, slabs) + h->nslabs * sizeof(struct ss_slab), 0);
    return h;
}

/* Give empty SuperSlabs beyond `keep` back to the pages box. */
size_t ss_release_superslabs(struct ss_inst *in, void *tls, uint32_t keep)
{
    struct ss_head *give = NULL;
    hak_spin_lock(&in->lock);
    while (in->empty_count > keep) {
        struct ss_head *h = in->empty;
        ss_head_remove(&in->empty, h);
        in->empty_count--;
        in->superslabs--;
        in->free_slabs -= h->nslabs - 1;
        h->next = give;
        give = h;
    }
    hak_spin_unlock(&in->lock);
    size_t bytes = 0;
    while (give) {
        struct ss_head *h = give;
        give = h->next;
        h->magic = 0;
        in->pages.desc->ops.pages_free(ss_pages_tls(in, tls), h, in->ss_size);
        bytes += in->ss_size;
    }
    return bytes;
}

/* ---- slabs ------------------------------------------------------------ */

/* Ready a slab for class cls. The one stride of the class is its size:
 * blocks carry no header, every carve uses s->stride and s->capacity. */
static void ss_format(const struct ss_inst *in, struct ss_slab *s, uint32_t cls)
{
    uint32_t stride = in->class_size[cls];
    s->stride = (uint16_t)stride;
    s->capacity = (uint16_t)(SS_SLAB_SIZE / stride);
    s->divmagic = in->divmagic[cls];
    s->link_off = stride >= 2 * sizeof(void *) ? sizeof(void *) : 0;
    s->cls = (uint16_t)cls;
    s->free = NULL;
    s->used = 0;
    s->list = LIST_NONE;
    atomic_store_explicit(&s->carved, 0, memory_order_relaxed);
}

static bool ss_orphan_useful(const struct ss_slab *s)
{
    return s->free || atomic_load_explicit(&s->remote, memory_order_relaxed) ||
           atomic_load_explicit(&s->carved, memory_order_relaxed) <
               (uint32_t)s->capacity * s->stride;
}

static struct ss_slab *ss_adopt_orphan_locked(struct ss_inst *in, uint32_t cls)
{
    uint32_t k = 0;
    for (struct ss_slab *s = in->orphans[cls]; s && k < in->orphan_scan; s = s->next, k++) {
        SS_ASSERT(in, s->state == SLAB_ORPHAN && s->cls == cls);
        if (ss_orphan_useful(s)) {
            ss_list_remove(&in->orphans[cls], s);
            in->orphan_slabs--;
            return s;
        }
    }
    return NULL;
}

static struct ss_slab *ss_take_free_slab_locked(struct ss_inst *in)
{
    struct ss_head *h = in->partial;
    if (!h && in->empty) {
        h = in->empty;
        ss_head_remove(&in->empty, h);
        in->empty_count--;
        ss_head_push(&in->partial, h, SS_IN_PARTIAL);
    }
    if (!h)
        return NULL;
    struct ss_slab *s = h->free_slabs;
    h->free_slabs = s->next;
    s->next = NULL;
    h->free_count--;
    in->free_slabs--;
    if (h->free_count == 0)
        ss_head_remove(&in->partial, h);
    return s;
}

struct ss_slab *ss_acquire_slab(struct ss_tls *t, uint32_t cls)
{
    struct ss_inst *in = ss_inst_of(t);
    struct ss_slab *s;
    bool adopted;
    for (;;) {
        hak_spin_lock(&in->lock);
        s = ss_adopt_orphan_locked(in, cls);
        adopted = s != NULL;
        if (!s)
            s = ss_take_free_slab_locked(in);
        hak_spin_unlock(&in->lock);
        if (s)
            break;
        struct ss_head *h = ss_new_superslab(in, t);
        if (!h)
            return NULL;
        hak_spin_lock(&in->lock);
        in->superslabs++;
        in->free_slabs += h->free_count;
        ss_head_push(&in->partial, h, SS_IN_PARTIAL);
        hak_spin_unlock(&in->lock);
    }
    t->refills++;
    if (adopted) {
        s->state = SLAB_ACTIVE;
        atomic_store_explicit(&s->owner_id, t->id, memory_order_relaxed);
        if (ss_drain_remote(in, s))
            t->drains++;
        return s;
    }
    ss_format(in, s, cls);
    in->host->assign(s->base, SS_SLAB_SIZE, in->owner, (uint16_t)cls);
    s->state = SLAB_ACTIVE;
    atomic_store_explicit(&s->owner_id, t->id, memory_order_relaxed);
    return s;
}

/* An empty slab (used == 0, on none of the owner's lists) goes back to its
 * SuperSlab; a SuperSlab left wholly free is kept or given back. */
void ss_release_slab(struct ss_tls *t, struct ss_slab *s)
{
    struct ss_inst *in = ss_inst_of(t);
    struct ss_head *h = ss_head_of_slab(in, s);
    bool give_back = false;

    SS_ASSERT(in, s->used == 0 && s->state != SLAB_FREE && !atomic_load(&s->remote));

    /* Retag first: from now on a stale free of one of its blocks is caught
     * (tag SS_TAG_NONE) instead of landing on a list. */
    in->host->assign(s->base, SS_SLAB_SIZE, in->owner, SS_TAG_NONE);
    atomic_store_explicit(&s->owner_id, SS_ORPHAN_ID, memory_order_relaxed);
    s->state = SLAB_FREE;
    s->cls = SS_TAG_NONE;
    s->list = LIST_NONE;
    s->free = NULL;
    /* A SuperSlab with one live block keeps its 2 MB: beyond a few free
     * slabs' worth, a released slab's pages go back to the OS now (it is on
     * no list yet, so no thread carves it meanwhile). Its next use faults
     * fresh zero pages, which carving needs no more than committed ones.
     * The count is read without the lock: a bound, not an exact budget. */
    if (in->free_slabs >= in->free_committed_max)
        in->host->decommit(s->base, SS_SLAB_SIZE);

    hak_spin_lock(&in->lock);
    s->next = h->free_slabs;
    h->free_slabs = s;
    h->free_count++;
    in->free_slabs++;
    if (h->where == SS_IN_NONE)
        ss_head_push(&in->partial, h, SS_IN_PARTIAL);
    if (h->free_count == h->nslabs - 1) {
        ss_head_remove(&in->partial, h);
        if (in->empty_count < in->keep_empty) {
            ss_head_push(&in->empty, h, SS_IN_EMPTY);
            in->empty_count++;
        } else {
            in->superslabs--;
            in->free_slabs -= h->nslabs - 1;
            give_back = true;
        }
    }
    hak_spin_unlock(&in->lock);
    if (give_back) {
        h->magic = 0;
        in->pages.desc->ops.pages_free(ss_pages_tls(in, t), h, in->ss_size);
    }
}

/* Hand a slab with live blocks to the orphan list, or release it if the
 * remote stack brought everything back. */
void ss_retire_slab(struct ss_tls *t, struct ss_slab *s)
{
    struct ss_inst *in = ss_inst_of(t);
    if (ss_drain_remote(in, s))
        t->drains++;
    s->list = LIST_NONE;
    if (s->used == 0) {
        ss_release_slab(t, s);
        return;
    }
    hak_spin_lock(&in->lock);
    atomic_store_explicit(&s->owner_id, SS_ORPHAN_ID, memory_order_relaxed);
    s->state = SLAB_ORPHAN;
    ss_list_push(&in->orphans[s->cls], s);
    in->orphan_slabs++;
    hak_spin_unlock(&in->lock);
}

/* trim: orphans whose blocks all came back are released. */
size_t ss_reclaim_orphans(struct ss_tls *t)
{
    struct ss_inst *in = ss_inst_of(t);
    struct ss_slab *empty = NULL;
    size_t bytes = 0;
    hak_spin_lock(&in->lock);
    for (uint32_t c = 0; c < in->nclasses; c++) {
        struct ss_slab *s = in->orphans[c];
        while (s) {
            struct ss_slab *next = s->next;
            ss_drain_remote(in, s);
            if (s->used == 0) {
                ss_list_remove(&in->orphans[c], s);
                in->orphan_slabs--;
                s->next = empty;
                empty = s;
            }
            s = next;
        }
    }
    hak_spin_unlock(&in->lock);
    while (empty) {
        struct ss_slab *s = empty;
        empty = s->next;
        ss_release_slab(t, s);
        bytes += SS_SLAB_SIZE;
    }
    return bytes;
}
