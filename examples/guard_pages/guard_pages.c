/*
 * guard_pages: a debugging box (role alloc) that puts every block against an
 * inaccessible page, like Electric Fence, for the size range it is routed.
 *
 * Each block gets a slot of its own: data pages, then one guard page mapped
 * PROT_NONE. The block ends at the guard page (rounded to 16 bytes, malloc's
 * alignment), so
 *   - writing or reading past the end of a block faults at once (SIGSEGV),
 *     or, within the 0..15 bytes of rounding, is found at free() by a canary
 *     ("heap overflow");
 *   - a freed slot is made inaccessible and its pages released, and stays so
 *     for the next `quarantine` frees: a use after free faults;
 *   - double frees and frees of interior pointers are reported through
 *     host->bad_free, from metadata kept outside the slots.
 *
 * Slots are carved from chunks of chunk_size bytes (host->map); the region
 * map's tag of a chunk's granules is the chunk's index, so free() finds the
 * chunk, then the slot, by arithmetic. One spinlock guards the slot lists;
 * mprotect and madvise run outside it. It is slow by design (two or three
 * system calls per malloc/free pair) and costs a slot of at least two pages
 * per block: route it a narrow size range, or a whole program for a
 * debugging run. If the kernel refuses more mappings (vm.max_map_count) or
 * the chunk table is full, alloc returns NULL and the host's next box serves.
 *
 * This box is built out of tree against the installed hakmem kit
 * (find_package(hakmem)), like any box a researcher writes.
 */
#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdatomic.h>
#include <stdio.h>    /* snprintf, for create()'s error text only */
#include <string.h>
#include <sys/mman.h> /* mprotect: the one system call this box makes itself */

#define MAX_CHUNKS 4096 /* tags are chunk indexes */
#define CANARY 0xCB     /* the bytes between a block's end and its guard page */

enum { P_MAX_SIZE, P_QUARANTINE, P_CHUNK_SIZE, P_JUNK, P_COUNT };

static const struct hak_param guard_params[P_COUNT] = {
    [P_MAX_SIZE] = {"max_size", HAK_PARAM_SIZE, "4K", 1, 1 << 20, NULL,
                    "largest request served; a slot is this rounded to pages, plus the guard page"},
    [P_QUARANTINE] = {"quarantine", HAK_PARAM_INT, "256", 0, 1 << 20, NULL,
                      "freed slots kept inaccessible before reuse (use-after-free window)"},
    [P_CHUNK_SIZE] = {"chunk_size", HAK_PARAM_SIZE, "4M", 64 * 1024, 1 << 30, NULL,
                      "address space mapped at a time and cut into slots (whole 64 KB granules)"},
    [P_JUNK] = {"junk", HAK_PARAM_BOOL, "on", 0, 1, NULL,
                "fill new blocks with 0xAA so reads of uninitialised memory show"},
};

enum { SLOT_UNUSED, SLOT_LIVE, SLOT_QUARANTINED, SLOT_FREE };

/* Outside the slots, so a freed (inaccessible) slot can still be checked. */
struct slot_meta {
    char *user;     /* the pointer handed out */
    uint32_t size;  /* the request */
    uint32_t state;
    uint32_t next;  /* free list / quarantine ring link: a slot id + 1, 0 = none */
    uint32_t reserved;
};

struct chunk {
    char *base;
    struct slot_meta *meta;
};

struct guard_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    size_t page, max_size, data_bytes, slot_bytes, chunk_size;
    uint32_t slots_per_chunk, quarantine;
    int junk;
    hak_spinlock lock;         /* guards the lists and the carving cursor */
    _Atomic uint32_t chunk_count;
    uint32_t carve_chunk, carve_next; /* next unused slot */
    uint32_t free_head;        /* slot id + 1 */
    uint32_t q_head, q_tail, q_count; /* quarantine FIFO: oldest at head */
    _Atomic uint64_t quarantined_bytes;
    struct chunk chunks[MAX_CHUNKS];
};

struct guard_tls {
    struct hak_tls_head head;
    struct hak_stats st;
};

static inline struct guard_inst *inst_of(void *tls)
{
    return ((struct hak_tls_head *)tls)->inst;
}

static inline struct slot_meta *meta_of(struct guard_inst *in, uint32_t id)
{
    return &in->chunks[id / in->slots_per_chunk].meta[id % in->slots_per_chunk];
}

static inline char *slot_base(struct guard_inst *in, uint32_t id)
{
    return in->chunks[id / in->slots_per_chunk].base + (size_t)(id % in->slots_per_chunk) * in->slot_bytes;
}

/* ---- lifecycle -------------------------------------------------------------- */

static void *guard_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err, size_t err_len)
{
    size_t chunk = (size_t)cfg->values[P_CHUNK_SIZE].i;
    size_t page = host->page_size;
    size_t data = hak_align_up((size_t)cfg->values[P_MAX_SIZE].i, page);
    if (chunk % HAK_GRANULE || chunk < data + page) {
        snprintf(err, err_len, "chunk_size must be a multiple of 64K holding at least one slot (%zu bytes)",
                 data + page);
        return NULL;
    }
    struct guard_inst *in = host->meta_alloc(sizeof *in);
    if (!in) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->page = page;
    in->max_size = (size_t)cfg->values[P_MAX_SIZE].i;
    in->data_bytes = data;
    in->slot_bytes = data + page;
    in->chunk_size = chunk;
    in->slots_per_chunk = (uint32_t)(chunk / in->slot_bytes);
    in->quarantine = (uint32_t)cfg->values[P_QUARANTINE].i;
    in->junk = (int)cfg->values[P_JUNK].i;
    return in;
}

static void guard_destroy(void *inst) { (void)inst; }
static void guard_thread_init(void *inst, void *tls) { (void)inst; (void)tls; }
/* Nothing per thread: slots go straight back to the shared lists. */
static void guard_thread_exit(void *inst, void *tls) { (void)inst; (void)tls; }

/* ---- slots (under the lock unless said otherwise) ------------------------------ */

/* A new chunk, mapped outside the lock; its index is its tag. */
static int add_chunk(struct guard_inst *in)
{
    uint32_t idx = atomic_load_explicit(&in->chunk_count, memory_order_relaxed);
    if (idx == MAX_CHUNKS)
        return -1;
    char *base = in->host->map(in->owner, in->chunk_size, 0, (uint16_t)idx);
    struct slot_meta *meta = base ? in->host->meta_alloc(in->slots_per_chunk * sizeof *meta) : NULL;
    if (!meta) {
        if (base)
            in->host->unmap(base, in->chunk_size);
        return -1;
    }
    hak_spin_lock(&in->lock);
    uint32_t now = atomic_load_explicit(&in->chunk_count, memory_order_relaxed);
    if (now != idx) { /* another thread added one meanwhile: use that */
        hak_spin_unlock(&in->lock);
        in->host->unmap(base, in->chunk_size);
        return 0;
    }
    in->chunks[idx] = (struct chunk){base, meta};
    in->carve_chunk = idx;
    in->carve_next = 0;
    /* Published after the chunk entry: free() reads chunks[tag] lock-free. */
    atomic_store_explicit(&in->chunk_count, idx + 1, memory_order_release);
    hak_spin_unlock(&in->lock);
    struct hak_event ev = {.type = HAK_EV_FRESH, .bucket = HAK_BUCKET_OTHER, .owner = in->owner,
                           .addr = base, .bytes = in->chunk_size, .count = 1};
    in->host->event(&ev);
    return 0;
}

/* A slot id ready for a block: a reused one (accessible again), or a fresh
 * one whose guard page is set here. -1 when none can be had. */
static int64_t take_slot(struct guard_inst *in)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        hak_spin_lock(&in->lock);
        if (in->free_head) {
            uint32_t id = in->free_head - 1;
            in->free_head = meta_of(in, id)->next;
            hak_spin_unlock(&in->lock);
            return id;
        }
        uint32_t count = atomic_load_explicit(&in->chunk_count, memory_order_relaxed);
        if (count && in->carve_next < in->slots_per_chunk) {
            uint32_t id = in->carve_chunk * in->slots_per_chunk + in->carve_next++;
            hak_spin_unlock(&in->lock);
            if (mprotect(slot_base(in, id) + in->data_bytes, in->page, PROT_NONE)) {
                /* Out of mappings (vm.max_map_count): the slot stays unused. */
                return -1;
            }
            return id;
        }
        hak_spin_unlock(&in->lock);
        if (add_chunk(in))
            return -1;
    }
    return -1;
}

/* ---- alloc role ------------------------------------------------------------------ */

static void *place(struct guard_tls *t, size_t size, size_t align)
{
    struct guard_inst *in = inst_of(t);
    if (size > in->max_size || align > in->page)
        return NULL;
    int64_t got = take_slot(in);
    if (got < 0)
        return NULL;
    uint32_t id = (uint32_t)got;
    char *data = slot_base(in, id), *guard = data + in->data_bytes;
    char *p = (char *)((uintptr_t)(guard - size) & ~(uintptr_t)(align - 1));
    struct slot_meta *m = meta_of(in, id);
    m->user = p;
    m->size = (uint32_t)size;
    m->state = SLOT_LIVE;
    if (in->junk)
        memset(p, 0xAA, size);
    memset(p + size, CANARY, (size_t)(guard - p) - size);
    t->st.allocs++;
    t->st.bytes_allocated += size;
    return p;
}

static void *guard_alloc(void *tls, size_t size)
{
    return place(tls, size, HAK_MIN_ALIGN);
}

static void *guard_alloc_aligned(void *tls, size_t size, size_t align)
{
    return place(tls, size, align);
}

/* The live slot of p, or -1 after reporting what is wrong with p. */
static int64_t find_live(struct guard_inst *in, const void *p, uint16_t tag, const char *what)
{
    const char *problem = "invalid pointer (not a block of this box)";
    if (tag < atomic_load_explicit(&in->chunk_count, memory_order_acquire)) {
        const struct chunk *c = &in->chunks[tag];
        size_t off = (size_t)((const char *)p - c->base);
        if ((const char *)p >= c->base && off < (size_t)in->slots_per_chunk * in->slot_bytes) {
            uint32_t id = tag * in->slots_per_chunk + (uint32_t)(off / in->slot_bytes);
            const struct slot_meta *m = meta_of(in, id);
            if (m->state == SLOT_LIVE && m->user == p)
                return id;
            problem = m->state == SLOT_LIVE ? "invalid pointer (inside a block, not its start)"
                      : m->state == SLOT_UNUSED ? "invalid pointer (never allocated)"
                                                : "double free (the block is already free)";
        }
    }
    char msg[128];
    snprintf(msg, sizeof msg, "%s: %s", what, problem);
    in->host->bad_free(in->name, msg, p);
    return -1;
}

static void guard_free(void *tls, void *p, uint16_t tag)
{
    struct guard_tls *t = tls;
    struct guard_inst *in = inst_of(tls);
    int64_t got = find_live(in, p, tag, "free()");
    if (got < 0)
        return; /* on_bad_free = warn: leave it alone */
    uint32_t id = (uint32_t)got;
    struct slot_meta *m = meta_of(in, id);
    char *data = slot_base(in, id), *guard = data + in->data_bytes;
    for (const unsigned char *c = (const unsigned char *)p + m->size; c < (const unsigned char *)guard; c++)
        if (*c != CANARY) {
            in->host->bad_free(in->name, "heap overflow: bytes past the end of the block were written", p);
            break;
        }
    t->st.frees++;
    t->st.bytes_freed += m->size;
    uint32_t release = 0; /* slot id + 1 leaving quarantine */
    if (in->quarantine && !mprotect(data, in->data_bytes, PROT_NONE)) {
        in->host->decommit(data, in->data_bytes);
        hak_spin_lock(&in->lock);
        m->state = SLOT_QUARANTINED;
        m->next = 0;
        if (in->q_tail)
            meta_of(in, in->q_tail - 1)->next = id + 1;
        else
            in->q_head = id + 1;
        in->q_tail = id + 1;
        if (++in->q_count > in->quarantine) {
            release = in->q_head;
            struct slot_meta *old = meta_of(in, release - 1);
            in->q_head = old->next;
            if (!in->q_head)
                in->q_tail = 0;
            in->q_count--;
            old->state = SLOT_FREE; /* not on the free list yet: nobody takes it */
        }
        hak_spin_unlock(&in->lock);
        atomic_fetch_add_explicit(&in->quarantined_bytes, in->data_bytes, memory_order_relaxed);
    } else {
        release = id + 1;
        m->state = SLOT_FREE;
    }
    if (!release)
        return;
    uint32_t rid = release - 1;
    if (release != id + 1) {
        atomic_fetch_sub_explicit(&in->quarantined_bytes, in->data_bytes, memory_order_relaxed);
        if (mprotect(slot_base(in, rid), in->data_bytes, PROT_READ | PROT_WRITE))
            return; /* cannot make it usable again: the slot is retired */
    }
    hak_spin_lock(&in->lock);
    meta_of(in, rid)->next = in->free_head;
    in->free_head = release;
    hak_spin_unlock(&in->lock);
}

static size_t guard_usable_size(void *tls, const void *p, uint16_t tag)
{
    struct guard_inst *in = inst_of(tls);
    int64_t id = find_live(in, p, tag, "malloc_usable_size()");
    return id < 0 ? 0 : meta_of(in, (uint32_t)id)->size;
}

/* ---- statistics, fork ---------------------------------------------------------- */

static void guard_stats(void *inst, void *tls, struct hak_stats *out)
{
    struct guard_inst *in = inst;
    if (!tls) {
        out->cached_bytes += atomic_load_explicit(&in->quarantined_bytes, memory_order_relaxed);
        return;
    }
    const struct hak_stats *s = &((struct guard_tls *)tls)->st;
    out->allocs += s->allocs;
    out->frees += s->frees;
    out->bytes_allocated += s->bytes_allocated;
    out->bytes_freed += s->bytes_freed;
}

static void guard_fork_prepare(void *inst) { hak_spin_fork_prepare(&((struct guard_inst *)inst)->lock); }
static void guard_fork_parent(void *inst) { hak_spin_fork_parent(&((struct guard_inst *)inst)->lock); }
static void guard_fork_child(void *inst) { hak_spin_fork_child(&((struct guard_inst *)inst)->lock); }

static const struct hak_box_desc guard_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "guard_pages",
    .summary = "debugging: each block against a PROT_NONE page, freed blocks quarantined inaccessible",
    .roles = HAK_ROLE_ALLOC,
    .params = guard_params,
    .param_count = P_COUNT,
    .tls_size = sizeof(struct guard_tls),
    .ops = {
        .create = guard_create,
        .destroy = guard_destroy,
        .thread_init = guard_thread_init,
        .thread_exit = guard_thread_exit,
        .fork_prepare = guard_fork_prepare,
        .fork_parent = guard_fork_parent,
        .fork_child = guard_fork_child,
        .stats = guard_stats,
        .alloc = guard_alloc,
        .alloc_aligned = guard_alloc_aligned,
        .free = guard_free,
        .usable_size = guard_usable_size,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)
{
    return &guard_desc;
}
