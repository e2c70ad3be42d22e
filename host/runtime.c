/*
 * The runtime: instances of a resolved plan, the dispatch tables, and the
 * malloc paths built on them.
 *
 * Fast paths (hak_malloc for sizes up to 1 KB, hak_free for every pointer)
 * are one TLS load, one table load and one indirect call into the box. The
 * direct route table has one slot per 16 bytes; a slot whose 16-byte span is
 * split between two routes calls route_split, which sends the request down
 * the general path. Frees go through hak_owners[]: slot 0 is "no box owns it"
 * (glibc's or start-up memory), slots of page boxes report a bad free.
 */
#include "fastpath.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

uint64_t hak_block_secret;

struct owner_info {
    uint32_t own_tls;
    int instance; /* -1: no box (slot 0, unused ids) */
    /* The box's own realloc and usable_size (alloc role), else NULL:
     * hak_realloc's and hak_usable_size's one step for the common case. */
    void *(*realloc)(void *tls, void *p, uint16_t tag, size_t size);
    size_t (*usable_size)(void *tls, const void *p, uint16_t tag);
};

static void free_foreign(void *tls, void *p, uint16_t tag);

struct route_slot hak_small_routes[HAK_SMALL_MAX / 16 + 1];
/* Slot 0 is usable before start: frees of start-up and glibc memory. */
struct owner_slot hak_owners[HAK_MAX_INSTANCES + 1] = {
    [0] = { .free = free_foreign, .other = free_foreign },
};
static struct owner_info owner_info[HAK_MAX_INSTANCES + 1] = {
    [0] = { .instance = -1 },
};

/* 0 not started, 1 ready, 2 running on glibc (config error with fallback). */
_Atomic int hak_runtime_state;

/* Defined by malloc_api.c in libhakmem.so: starts the runtime on first use.
 * Absent in the test harness, which starts it explicitly. */
__attribute__((weak)) int hak_lazy_start(void);

/* Sizes above the direct table: the routed box straight from a short
 * table of (last size, box), one call; the general path only when the box
 * cannot serve (chains, errno) or the thread has no block. */
struct big_route {
    uint64_t hi;
    void *(*alloc)(void *tls, size_t size);
    void *(*alloc_zeroed)(void *tls, size_t size); /* NULL: alloc, then clear */
    uint32_t tls_offset;
};

static struct big_route big_routes[HAK_MAX_ROUTES];

static void *route_split(void *tls, size_t size)
{
    (void)tls;
    (void)size;
    return NULL;
}

/* In hardened mode, is the page holding glibc's chunk header of p mapped?
 * A second free of a block a box already returned to the OS lands here
 * (its granules have no owner any more); glibc would crash reading it. */
static int header_unmapped(const void *p)
{
    uintptr_t page = ((uintptr_t)p - 16) & ~(uintptr_t)4095;
    int saved = errno;
    int gone = msync((void *)page, 4096, MS_ASYNC) == -1 && errno == ENOMEM;
    errno = saved;
    return gone;
}

static void free_foreign(void *tls, void *p, uint16_t tag)
{
    (void)tls;
    (void)tag;
    if (!p || hak_bootstrap_owns(p))
        return;
    if (HAK_UNLIKELY(hak_plan_active && hak_plan_active->hardened) && header_unmapped(p)) {
        hak_host_services.bad_free("host", "free(): pointer to unmapped memory (double free of a released block?)", p);
        return;
    }
    __libc_free(p);
}

static void free_not_alloc(void *tls, void *p, uint16_t tag)
{
    (void)tls;
    (void)tag;
    const struct hak_plan *plan = hak_plan_active;
    uint32_t owner = hak_region_lookup(p) >> 16;
    const char *box = owner && owner <= (uint32_t)plan->instance_count ? plan->instances[owner - 1].name : "host";
    hak_host_services.bad_free(box, "free(): invalid pointer (memory of a page box, never handed out)", p);
}

static const struct hak_route *route_for(const struct hak_plan *plan, size_t size)
{
    for (int i = 0; i < plan->route_count; i++)
        if (size <= plan->routes[i].hi)
            return &plan->routes[i];
    return &plan->routes[plan->route_count - 1];
}

/* Does this instance publish fast stacks the host may use? */
static int has_fast_stacks(const struct hak_plan *plan, const struct hak_instance *in)
{
    const struct hak_box_desc *d = in->desc;
    return !plan->hardened && (d->flags & HAK_BOX_FLAG_FRONT) &&
           d->fast_stack_stride == HAK_FAST_STACK_STRIDE && d->ops.class_count && d->ops.class_size;
}

/* Does the free path route this free entry's class blocks by thread (a
 * front with fast stacks the host pushes on, or with free_remote)? Not
 * when hardened: fronts then hand every free to the box below, which
 * checks it and sends other threads' blocks home itself. */
static int routes_frees(const struct hak_plan *plan, const struct hak_instance *in)
{
    const struct hak_box_desc *d = in->desc;
    return !plan->hardened && (d->flags & HAK_BOX_FLAG_FRONT) && d->ops.class_count &&
           (has_fast_stacks(plan, in) || d->ops.free_remote);
}

/* The classes of the box the direct table is being built for, asked once
 * (two indirect calls per slot were 5K instructions of every start). */
#define CLASS_CACHE_MAX 64
struct class_cache {
    const struct hak_instance *in;
    uint32_t n, from;
    size_t size[CLASS_CACHE_MAX];
};

static void class_cache_load(struct class_cache *cc, const struct hak_instance *in)
{
    uint32_t n = in->desc->ops.class_count(in->inst);
    cc->in = in;
    cc->n = n < CLASS_CACHE_MAX ? n : CLASS_CACHE_MAX;
    cc->from = 0;
    for (uint32_t c = 0; c < cc->n; c++)
        cc->size[c] = in->desc->ops.class_size(in->inst, c);
}

/* The class serving `size`, or -1. Classes ascend, so sizes asked in
 * increasing order resume at the last one found. */
static int class_of(struct class_cache *cc, size_t size)
{
    for (uint32_t c = cc->from; c < cc->n; c++)
        if (cc->size[c] >= size) {
            cc->from = c;
            return (int)c;
        }
    return -1;
}

static void build_tables(const struct hak_plan *plan)
{
    struct class_cache cc = { .in = NULL };
    for (size_t i = 0; i <= HAK_SMALL_MAX / 16; i++) {
        size_t lo = i == 0 ? 1 : i * 16 - 15, hi = i == 0 ? 1 : i * 16;
        const struct hak_route *a = route_for(plan, lo), *b = route_for(plan, hi);
        hak_small_routes[i].stack_off = 0;
        if (a != b) {
            hak_small_routes[i].alloc = route_split;
            hak_small_routes[i].tls_offset = 0;
            continue;
        }
        const struct hak_instance *in = &plan->instances[a->chain[0]];
        hak_small_routes[i].alloc = in->desc->ops.alloc;
        hak_small_routes[i].tls_offset = in->tls_offset;
        if (has_fast_stacks(plan, in)) {
            /* One class must serve the whole 16-byte span of the slot. */
            if (in != cc.in)
                class_cache_load(&cc, in);
            int c_lo = class_of(&cc, lo);
            int c = class_of(&cc, hi);
            if (c >= 0 && c == c_lo)
                hak_small_routes[i].stack_off = in->tls_offset + in->desc->fast_stack_offset +
                                            (uint32_t)c * in->desc->fast_stack_stride;
        }
    }
    for (int i = 0; i < plan->route_count; i++) {
        const struct hak_instance *in = &plan->instances[plan->routes[i].chain[0]];
        big_routes[i] = (struct big_route){ .hi = plan->routes[i].hi, .alloc = in->desc->ops.alloc,
                                            .alloc_zeroed = in->desc->ops.alloc_zeroed,
                                            .tls_offset = in->tls_offset };
    }
    hak_owners[0] = (struct owner_slot){ .free = free_foreign, .other = free_foreign };
    owner_info[0] = (struct owner_info){ .instance = -1 };
    for (int i = 0; i < plan->instance_count; i++) {
        const struct hak_instance *in = &plan->instances[i];
        struct owner_slot *o = &hak_owners[in->owner];
        owner_info[in->owner] = (struct owner_info){
            .own_tls = in->tls_offset, .instance = i,
            .realloc = (in->desc->roles & HAK_ROLE_ALLOC) ? in->desc->ops.realloc : NULL,
            .usable_size = (in->desc->roles & HAK_ROLE_ALLOC) ? in->desc->ops.usable_size : NULL };
        if (in->desc->roles & HAK_ROLE_ALLOC) {
            const struct hak_instance *entry = &plan->instances[in->free_entry];
            *o = (struct owner_slot){ .free = entry->desc->ops.free, .free_tls = entry->tls_offset,
                                      .other = entry->desc->ops.free, .other_tls = entry->tls_offset };
            /* The first owner whose free entry is a front with fast stacks
             * or free_remote gets the region map's fast bit and thread
             * marks (one such owner: they are all the free path looks at).
             * Without stacks of its own the front's are the block's
             * always-full ones, so pushes fail and its free decides. */
            if (routes_frees(plan, entry) && !(in->desc->flags & HAK_BOX_FLAG_FRONT) && !hak_fast_owner) {
                uint32_t classes = entry->desc->ops.class_count(entry->inst);
                if (has_fast_stacks(plan, entry)) {
                    hak_fast_base = entry->tls_offset + entry->desc->fast_stack_offset;
                } else {
                    hak_fast_base = HAK_BLOCK_FULL_STACKS_OFF;
                    classes = classes < HAK_BLOCK_FULL_STACKS ? classes : HAK_BLOCK_FULL_STACKS;
                }
                hak_fast_classes = classes;
                hak_fast_owner = in->owner;
                if (entry->desc->ops.free_remote && plan->remote_frees != HAK_REMOTE_LOCAL)
                    o->other = entry->desc->ops.free_remote;
            }
        } else {
            *o = (struct owner_slot){ .free = free_not_alloc, .other = free_not_alloc };
        }
    }
    for (int i = plan->instance_count + 1; i <= HAK_MAX_INSTANCES; i++) {
        hak_owners[i] = (struct owner_slot){ .free = free_not_alloc, .other = free_not_alloc };
        owner_info[i] = (struct owner_info){ .instance = -1 };
    }
}

/* ---- start ------------------------------------------------------------ */

int hak_runtime_start(struct hak_plan *plan, struct hak_error *err)
{
    /* glibc's malloc_usable_size and malloc_trim are looked up (dlsym) on
     * first use: most processes never call them. */
    hak_block_secret = hak_host_services.block_secret = hak_make_secret();
    /* Before any box maps: hak_region_set writes it beside class entries. */
    hak_region_fast_thread = plan->remote_frees == HAK_REMOTE_LOCAL ? HAK_TOKEN_SHARED : HAK_REGION_NOBODY;
    hak_region_orphan_thread = plan->remote_frees == HAK_REMOTE_LIVE_HOME ? HAK_TOKEN_ORPHAN : HAK_REGION_NOBODY;
    hak_plan_active = plan;
    /* Create lower boxes first: a box's links must point at live instances. */
    for (int k = plan->instance_count - 1; k >= 0; k--) {
        struct hak_instance *in = &plan->instances[plan->order[k]];
        for (uint32_t l = 0; l < in->desc->link_count; l++)
            if (in->link_target[l] >= 0)
                in->links[l].inst = plan->instances[in->link_target[l]].inst;
        struct hak_box_config cfg = {
            .instance_name = in->name,
            .owner = in->owner,
            .values = in->values,
            .links = in->links,
            .tls_offset = in->tls_offset,
            .hardened = plan->hardened,
        };
        char why[512] = "";
        in->inst = in->desc->ops.create(&hak_host_services, &cfg, why, sizeof why);
        if (!in->inst) {
            hak_error_set(err, plan->config_name, in->line, "[box.%s]: plugin %s refused to start: %s",
                          in->name, in->plugin, why[0] ? why : "no reason given");
            hak_plan_active = NULL;
            return -1;
        }
        if (in->desc->roles & HAK_ROLE_OBSERVER)
            hak_observer_count++;
    }
    build_tables(plan);
    hak_region_mark_fast();
    if (hak_threads_start(plan)) {
        hak_error_set(err, plan->config_name, 0, "cannot set up per-thread state");
        return -1;
    }
    pthread_atfork(hak_fork_prepare, hak_fork_parent, hak_fork_child);
    atomic_store(&hak_runtime_state, 1);
    return 0;
}

/* ---- general paths -------------------------------------------------------- */

/* Not started: start (libhakmem.so), or serve from the bootstrap arena while
 * the host itself is starting. Returns 1 when the runtime is ready. */
static int ensure_ready(void)
{
    int state = atomic_load(&hak_runtime_state);
    if (state == 0 && hak_lazy_start)
        hak_lazy_start();
    return atomic_load(&hak_runtime_state) == 1;
}

static void *alloc_chain(const struct hak_plan *plan, const struct hak_route *r, char *block, size_t size)
{
    for (int i = 0; i < r->chain_len; i++) {
        const struct hak_instance *in = &plan->instances[r->chain[i]];
        void *p = in->desc->ops.alloc(block + in->tls_offset, size);
        if (p)
            return p;
    }
    return NULL;
}

__attribute__((noinline)) void *hak_malloc_general(size_t size)
{
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (!ensure_ready()) {
        void *p = atomic_load(&hak_runtime_state) == 2 ? __libc_malloc(size) : hak_bootstrap_alloc(size, 16);
        if (!p)
            errno = ENOMEM;
        return p;
    }
    const struct hak_plan *plan = hak_plan_active;
    if (size == 0)
        size = 1;
    char *block = hak_thread_acquire();
    void *p = alloc_chain(plan, route_for(plan, size), block, size);
    hak_thread_release(block);
    if (!p)
        errno = ENOMEM;
    return p;
}

__attribute__((noinline)) void *hak_malloc_above_small(size_t size)
{
    char *block = hak_tls_block;
    if (HAK_LIKELY(block != hak_null_block && size <= PTRDIFF_MAX)) {
        const struct big_route *r = big_routes;
        while (size > r->hi)
            r++;
        void *p = r->alloc(block + r->tls_offset, size);
        if (HAK_LIKELY(p != NULL))
            return p;
    }
    return hak_malloc_general(size);
}

/* The routed box, when its fast stack is empty (or it has none). Out of
 * line so the fast path above needs no stack frame. */
__attribute__((noinline)) void *hak_malloc_box(const struct route_slot *slot, char *block, size_t size)
{
    if (HAK_UNLIKELY(block == hak_null_block))
        return hak_malloc_general(size);
    void *p = slot->alloc(block + slot->tls_offset, size);
    return HAK_LIKELY(p != NULL) ? p : hak_malloc_general(size);
}

__attribute__((noinline)) void hak_free_general(void *p, uint32_t entry)
{
    if (!p)
        return;
    const struct owner_slot *o = &hak_owners[entry >> 16];
    if (owner_info[entry >> 16].instance < 0) {
        o->free(NULL, p, (uint16_t)entry);
        return;
    }
    /* No thread block of the caller's own: nothing is marked as its. */
    char *block = hak_thread_acquire();
    o->other(block + o->other_tls, p, (uint16_t)entry);
    hak_thread_release(block);
}

/* The exported entry points of the harness and of calloc/realloc; the
 * malloc API itself inlines hak_malloc_fast/hak_free_fast. */
void *hak_malloc(size_t size) { return hak_malloc_fast(size); }
void hak_free(void *p) { hak_free_fast(p); }

/* calloc above the direct table: the routed box's alloc_zeroed, which
 * clears only memory it reuses (fresh pages are zero already); NULL when
 * the box has none or cannot serve (the caller then allocates and clears). */
static void *calloc_above_small(size_t total)
{
    char *block = hak_tls_block;
    if (block == hak_null_block || total > PTRDIFF_MAX)
        return NULL;
    const struct big_route *r = big_routes;
    while (total > r->hi)
        r++;
    return r->alloc_zeroed ? r->alloc_zeroed(block + r->tls_offset, total) : NULL;
}

/* Zero n bytes of a small block inline: calloc(1, 64) and free cost 133
 * instructions against mimalloc's 94, a third of it the call to memset
 * through its ifunc and the bootstrap test. Exactly n bytes: a box may
 * hand out a block of no more than the size asked. The empty asm keeps
 * the loop a loop (GCC would turn it back into a call to memset). */
#define CALLOC_INLINE_MAX 96 /* past it memset costs no more (callgrind) */
static inline void zero_small(void *p, size_t n)
{
    typedef char v16 __attribute__((vector_size(16), may_alias, aligned(1)));
    typedef uint64_t __attribute__((may_alias, aligned(1))) u64;
    char *c = p;
    if (n >= 16) { /* 16-byte stores, the last one overlapping */
        for (size_t i = 0; i + 16 <= n; i += 16) {
            *(v16 *)(c + i) = (v16){ 0 };
            __asm__("" : "+r"(c));
        }
        *(v16 *)(c + n - 16) = (v16){ 0 };
    } else if (n >= 8) {
        *(u64 *)c = 0;
        *(u64 *)(c + n - 8) = 0;
    } else {
        for (size_t i = 0; i < n; i++)
            c[i] = 0;
    }
}

void *hak_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (HAK_LIKELY(total <= CALLOC_INLINE_MAX)) {
        void *p = hak_malloc_fast(total);
        if (p) /* bootstrap memory too: it is zero already, and small */
            zero_small(p, total);
        return p;
    }
    if (total > HAK_SMALL_MAX && atomic_load_explicit(&hak_runtime_state, memory_order_relaxed) == 1) {
        void *z = calloc_above_small(total);
        if (z)
            return z;
    }
    void *p = hak_malloc(total);
    /* Bootstrap memory is never reused, so it is still zero. */
    if (p && !hak_bootstrap_owns(p))
        memset(p, 0, total);
    return p;
}

static __attribute__((noinline)) size_t hak_usable_size_general(const void *p)
{
    if (!p)
        return 0;
    uint32_t entry = hak_region_lookup(p);
    const struct owner_info *o = &owner_info[entry >> 16];
    if (entry == 0 || o->instance < 0) {
        if (hak_bootstrap_owns(p))
            return hak_bootstrap_usable(p);
        return entry == 0 ? hak_libc_usable_size((void *)p) : 0;
    }
    const struct hak_instance *in = &hak_plan_active->instances[o->instance];
    if (!(in->desc->roles & HAK_ROLE_ALLOC))
        return 0;
    char *block = hak_thread_acquire();
    size_t n = in->desc->ops.usable_size(block + o->own_tls, p, (uint16_t)entry);
    hak_thread_release(block);
    return n;
}

/* malloc_usable_size in one step, as hak_realloc: a box's block, a thread
 * with its block. 99 instructions a call before (mimalloc 37, glibc 22;
 * callgrind of a loop over 64 live blocks, the loop included), 50 now.
 * Programs that count their memory call it at every malloc and free
 * (Redis's zmalloc on glibc). */
size_t hak_usable_size(const void *p)
{
    char *block = hak_tls_block;
    if (HAK_LIKELY(p && block != hak_null_block)) {
        uint32_t entry = hak_region_lookup(p);
        const struct owner_info *o = &owner_info[entry >> 16];
        if (HAK_LIKELY(o->usable_size != NULL))
            return o->usable_size(block + o->own_tls, p, (uint16_t)entry);
    }
    return hak_usable_size_general(p);
}

/* The box kept nothing in place (or has no realloc): keep the block when
 * it fits and is not more than twice too big, else move it. */
static void *realloc_keep_or_move(void *p, size_t size, size_t usable)
{
    if (size <= usable && size >= usable / 2)
        return p;
    /* A block of a granule or more that must move to grow gets room to
     * double, so a buffer grown in steps is copied at most once per
     * doubling of its size (a mapping then grows by remap, no copy). */
    void *q = NULL;
    if (size > usable && usable >= HAK_GRANULE && size < usable * 2 && usable <= PTRDIFF_MAX / 2)
        q = hak_malloc(usable * 2);
    if (!q)
        q = hak_malloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, usable < size ? usable : size);
    hak_free(p);
    return q;
}

/* Everything but the common case: NULL or 0 or a huge size, memory that is
 * not a box's, a thread without its block. */
static __attribute__((noinline)) void *hak_realloc_general(void *p, size_t size)
{
    if (!p)
        return hak_malloc(size);
    if (size == 0) { /* glibc: free and return NULL */
        hak_free(p);
        return NULL;
    }
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t entry = hak_region_lookup(p);
    const struct owner_info *o = &owner_info[entry >> 16];
    if (entry == 0) {
        if (!hak_bootstrap_owns(p))
            return __libc_realloc(p, size); /* glibc's memory stays glibc's */
        size_t old = hak_bootstrap_usable(p);
        void *q = hak_malloc(size);
        if (q)
            memcpy(q, p, old < size ? old : size);
        return q;
    }
    const struct hak_instance *in = o->instance >= 0 ? &hak_plan_active->instances[o->instance] : NULL;
    if (!in || !(in->desc->roles & HAK_ROLE_ALLOC)) {
        hak_host_services.bad_free(in ? in->name : "host", "realloc(): invalid pointer", p);
        errno = EINVAL;
        return NULL;
    }
    char *block = hak_thread_acquire();
    void *tls = block + o->own_tls;
    if (in->desc->ops.realloc) {
        void *q = in->desc->ops.realloc(tls, p, (uint16_t)entry, size);
        if (q) {
            hak_thread_release(block);
            return q;
        }
    }
    size_t usable = in->desc->ops.usable_size(tls, p, (uint16_t)entry);
    hak_thread_release(block);
    return realloc_keep_or_move(p, size, usable);
}

/* realloc of a box's block by a thread with its own block, in one step:
 * the owner from the region map, its realloc with the thread's slice (no
 * lock, no orphan block to take), else its usable size and the move. gawk's
 * strings grown by concatenation, 150K calls: 131 instructions a call with
 * the box's realloc before (the general path's checks, its frame, the
 * thread block taken and given back), 84 now (callgrind). */
void *hak_realloc(void *p, size_t size)
{
    char *block = hak_tls_block;
    if (HAK_LIKELY(p && size - 1 < PTRDIFF_MAX && block != hak_null_block)) {
        uint32_t entry = hak_region_lookup(p);
        const struct owner_info *o = &owner_info[entry >> 16];
        void *tls = block + o->own_tls;
        if (o->realloc) { /* an alloc box: usable_size is there too */
            void *q = o->realloc(tls, p, (uint16_t)entry, size);
            if (q)
                return q;
            return realloc_keep_or_move(p, size, o->usable_size(tls, p, (uint16_t)entry));
        }
        if (o->usable_size) /* superslab: no realloc of its own */
            return realloc_keep_or_move(p, size, o->usable_size(tls, p, (uint16_t)entry));
    }
    return hak_realloc_general(p, size);
}

void *hak_memalign(size_t align, size_t size)
{
    if (align <= HAK_MIN_ALIGN)
        return hak_malloc(size);
    /* No mapping in a 47-bit address space can be aligned beyond 2^46; such
     * requests fail as glibc's do (ENOMEM), before any box sees an
     * alignment its arithmetic could overflow on. */
    if (size > PTRDIFF_MAX || align > HAK_MAX_ALIGN) {
        errno = ENOMEM;
        return NULL;
    }
    if (!ensure_ready()) {
        void *p = atomic_load(&hak_runtime_state) == 2 ? __libc_memalign(align, size)
                                                      : hak_bootstrap_alloc(size, align);
        if (!p)
            errno = ENOMEM;
        return p;
    }
    const struct hak_plan *plan = hak_plan_active;
    if (size == 0)
        size = 1;
    const struct hak_route *r = route_for(plan, size);
    char *block = hak_thread_acquire();
    void *p = NULL;
    for (int i = 0; i < r->chain_len && !p; i++) {
        const struct hak_instance *in = &plan->instances[r->chain[i]];
        void *tls = block + in->tls_offset;
        if (in->desc->ops.alloc_aligned) {
            p = in->desc->ops.alloc_aligned(tls, size, align);
        } else if (align <= 4096 && size <= (size_t)1 << 20) {
            /* Boxes with power-of-two classes align blocks naturally: ask
             * for a multiple of the alignment and keep it if it lands. */
            size_t padded = (size + align - 1) & ~(align - 1);
            p = in->desc->ops.alloc(tls, padded);
            if (p && ((uintptr_t)p & (align - 1))) {
                uint32_t entry = hak_region_lookup(p);
                const struct owner_slot *o = &hak_owners[entry >> 16];
                o->other(block + o->other_tls, p, (uint16_t)entry);
                p = NULL;
            }
        }
    }
    hak_thread_release(block);
    if (!p)
        errno = ENOMEM;
    return p;
}

int hak_trim(void)
{
    int released = 0;
    const struct hak_plan *plan = hak_plan_active;
    if (plan && atomic_load(&hak_runtime_state) == 1) {
        char *block = hak_thread_acquire();
        for (int k = 0; k < plan->instance_count; k++) {
            const struct hak_instance *in = &plan->instances[plan->order[k]];
            if (in->desc->ops.trim && in->desc->ops.trim(in->inst, block + in->tls_offset))
                released = 1;
        }
        hak_thread_release(block);
    }
    return hak_libc_trim(0) || released;
}
