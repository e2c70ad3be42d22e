/*
 * hakmem box ABI, version 1.
 *
 * This is the only header a box includes. A box is a shared object that
 * exports one symbol, hak_box_describe(), returning a constant descriptor:
 * who it is, which roles it plays, its parameter schema, the size of the
 * per-thread state it wants, and its function table. The host (libhakmem.so)
 * validates configs against the schema, creates instances, owns the
 * per-thread blocks and the region map, and calls the box's functions.
 *
 * Rules a box follows (docs/writing-a-box.md explains why):
 *   - never call malloc/free/mmap: memory comes from host->map or from the
 *     box's `pages =` link, metadata from host->meta_alloc;
 *   - no thread-local variables (the box is dlopen'ed: its TLS would cost a
 *     __tls_get_addr call); per-thread data lives in the slice the host
 *     passes as `tls`, which begins with struct hak_tls_head;
 *   - no printing on the fast path; host->log on slow paths only.
 */
#ifndef HAKMEM_BOX_H
#define HAKMEM_BOX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAK_BOX_ABI_VERSION 1u

/* The region map records an owner and a tag per granule. Every mapping a
 * box gets from the host is granule aligned and a whole number of granules. */
#define HAK_GRANULE_SHIFT 16
#define HAK_GRANULE ((size_t)1 << HAK_GRANULE_SHIFT)

/* malloc's guaranteed alignment on x86-64 glibc; every alloc box keeps it. */
#define HAK_MIN_ALIGN 16

#define HAK_BOX_EXPORT __attribute__((visibility("default")))
#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- roles ------------------------------------------------------------ */

enum hak_role {
    HAK_ROLE_ALLOC = 1u << 0,    /* alloc/free/usable_size for a size range */
    HAK_ROLE_PAGES = 1u << 1,    /* page spans for other boxes */
    HAK_ROLE_OBSERVER = 1u << 2, /* events off the fast path, reports */
};

/* A front box (a cache in front of another alloc box) sets this flag: it
 * needs `below =`, and the host routes frees of the box below through it. */
#define HAK_BOX_FLAG_FRONT (1u << 0)
/* A terminal box serves any size and alignment: the end of every chain. */
#define HAK_BOX_FLAG_TERMINAL (1u << 1)

/* ---- parameters ------------------------------------------------------- */

enum hak_param_type {
    HAK_PARAM_INT,       /* signed decimal, range-checked */
    HAK_PARAM_SIZE,      /* bytes, with K/M/G suffixes, range-checked */
    HAK_PARAM_BOOL,      /* on/off, true/false, yes/no, 1/0 */
    HAK_PARAM_ENUM,      /* one of the '|'-separated words in `choices` */
    HAK_PARAM_STRING,    /* free text, at most HAK_PARAM_STRING_MAX bytes */
    HAK_PARAM_SIZE_LIST, /* comma-separated sizes, strictly increasing */
};

#define HAK_PARAM_STRING_MAX 255
#define HAK_PARAM_LIST_MAX 32

struct hak_param {
    const char *name;
    enum hak_param_type type;
    const char *default_value; /* text, parsed like a config value */
    int64_t min, max;          /* INT/SIZE: inclusive range; LIST: per item */
    const char *choices;       /* ENUM only: "off|text|json" */
    const char *doc;           /* one line, shown by `hakmem boxes` */
};

/* A parsed parameter. Index it with the parameter's position in the schema. */
struct hak_value {
    int64_t i;           /* INT, SIZE, BOOL (0/1), ENUM (index in choices) */
    const char *s;       /* STRING; also the raw text of every type */
    const uint64_t *list; /* SIZE_LIST items */
    uint32_t count;      /* SIZE_LIST item count */
};

/* ---- links between boxes ---------------------------------------------- */

struct hak_link_decl {
    const char *name;   /* config key: "below", "pages" */
    uint32_t role;      /* the role the linked box must have */
    int required;       /* a config without it is an error */
    const char *doc;
};

struct hak_box_desc;
struct hak_report_ctx;

/* A resolved link: everything needed to call the linked box from a slice. */
struct hak_link {
    const struct hak_box_desc *desc; /* NULL when the link is not set */
    void *inst;                      /* the linked box's instance */
    uint32_t tls_offset;             /* its slice within the thread block */
    uint16_t owner;                  /* its owner id in the region map */
};

/* ---- per-thread slices ------------------------------------------------ */

/* Every slice begins with this header, filled by the host before
 * thread_init. `block` is the thread block holding every box's slice. */
struct hak_tls_head {
    char *block;
    void *inst;
    uint32_t thread_index; /* small, unique among live threads */
    uint32_t reserved;
};

static inline void *hak_link_tls(const void *my_tls, const struct hak_link *link)
{
    return ((const struct hak_tls_head *)my_tls)->block + link->tls_offset;
}

/* ---- fast stacks: the host's inline fast path ------------------------- */

/* A front box may publish one stack per class in its slice; the host then
 * pops (malloc) and pushes (free) blocks itself, without calling the box,
 * and calls the box only when a stack is empty or full, or a block looks
 * wrong. Two indirect calls less on the hottest path (the measurement is in
 * bench/RESULTS.md). The box keeps every policy: capacities, refill and
 * drain batches, confirming a suspected double free.
 *
 * Protocol, per class stack (desc.fast_stack_offset/stride locate them):
 *   pop:  if top != base: p = *--top; first word of p = 0
 *   push: if top != limit and (p & 0xFFFF) * block_magic <= block_magic_m1
 *         and first word of p != p ^ host->block_secret:
 *         first word of p = p ^ host->block_secret; *top++ = p; pushes++
 * A stack with top == base == limit == NULL is "not set up": both
 * operations fall to the box, which may set it up then. With host.hardened
 * the host never uses the stacks, so the box's own checks run on every call.
 * The free marker (p ^ block_secret in a free block's first word) is the
 * convention of every tiny box, so a double free is caught wherever the
 * block sits. */
#define HAK_FAST_STACK_STRIDE 64u

struct hak_fast_stack {
    void **top;      /* next free slot */
    void **base;     /* empty when top == base */
    void **limit;    /* full when top == limit */
    uint64_t pushes; /* frees the host pushed (the box counts its own) */
    /* Every block of the class starts at an address with these bits clear
     * (class size - 1 for power-of-two classes, else the alignment - 1).
     * The host's test is the exact one below; the box may use this. */
    uint64_t block_mask;
    /* Blocks start at multiples of the class size S from their 64 KB
     * granule: (p & 0xFFFF) * block_magic <= block_magic_m1 holds exactly
     * for block starts, with block_magic = UINT64_MAX / S + 1 and
     * block_magic_m1 = block_magic - 1 (Lemire's divisibility test; any S,
     * not only powers of two). A free of an interior pointer fails it and
     * reaches the box, which reports it. block_magic 0 (m1 UINT64_MAX)
     * turns the test off. A box built before these fields existed leaves
     * garbage here: valid frees then fall to the box more often, and
     * interior pointers may go unnoticed, nothing worse. */
    uint64_t block_magic, block_magic_m1;
};

/* ---- events for observers --------------------------------------------- */

/* Size buckets the telemetry of the seed used. */
enum hak_bucket {
    HAK_BUCKET_C0, HAK_BUCKET_C1, HAK_BUCKET_C2, HAK_BUCKET_C3,
    HAK_BUCKET_C4, HAK_BUCKET_C5, HAK_BUCKET_C6, HAK_BUCKET_C7,
    HAK_BUCKET_MID,   /* pool_tls_arena sizes */
    HAK_BUCKET_L25,   /* 64 KB .. 2 MB */
    HAK_BUCKET_SSM,   /* SuperSlab metadata */
    HAK_BUCKET_LARGE, /* above 2 MB */
    HAK_BUCKET_OTHER,
    HAK_BUCKET_COUNT
};

enum hak_event_type {
    HAK_EV_FRESH,       /* fresh (never touched) memory handed out: bytes */
    HAK_EV_MAP,         /* bytes mapped from the OS */
    HAK_EV_UNMAP,       /* bytes returned to the OS (munmap or decommit) */
    HAK_EV_REFILL,      /* a cache refilled `count` blocks from below */
    HAK_EV_DRAIN,       /* a cache drained `count` blocks down */
    HAK_EV_REMOTE_FREE, /* `count` frees from a thread not the owner */
    HAK_EV_REUSE,       /* a cached span or page reused: bytes */
    HAK_EV_TYPE_COUNT
};

struct hak_event {
    uint16_t type;   /* enum hak_event_type */
    uint16_t bucket; /* enum hak_bucket */
    uint16_t owner;  /* the reporting box's owner id */
    uint16_t reserved;
    const void *addr;
    uint64_t bytes;
    uint64_t count;
};

/* ---- statistics ------------------------------------------------------- */

/* Counters a box adds into `out` (never overwrites: the host sums slices). */
struct hak_stats {
    uint64_t allocs, frees;
    uint64_t bytes_allocated, bytes_freed; /* in use = difference */
    uint64_t refills, drains, remote_frees;
    uint64_t cached_bytes; /* held in caches, not in use by the program */
};

/* ---- host services ---------------------------------------------------- */

enum hak_log_level { HAK_LOG_ERROR, HAK_LOG_WARN, HAK_LOG_INFO, HAK_LOG_DEBUG };

struct hak_host {
    uint32_t abi_version;
    uint32_t struct_size;
    size_t page_size;

    /* Fresh zero-filled memory from the OS, `bytes` rounded up to granules,
     * aligned to max(align, HAK_GRANULE); every granule recorded as
     * (owner, tag). NULL on failure. Slow path only. */
    void *(*map)(uint16_t owner, size_t bytes, size_t align, uint16_t tag);
    /* Return whole granules to the OS and clear their region-map entries. */
    void (*unmap)(void *p, size_t bytes);
    /* Record (owner, tag) for whole granules: retag, or hand a span to
     * another box (a page box giving a span to a pool). */
    void (*assign)(void *p, size_t bytes, uint16_t owner, uint16_t tag);
    /* (owner << 16) | tag for any address; 0 when no box owns it. */
    uint32_t (*lookup)(const void *p);
    /* Resize a mapping made by map (mremap, may move; a block spanning
     * several mappings, as after move, is moved piece by piece, never
     * copied); the region map follows. Returns the new address, or NULL
     * (the old mapping intact). Like every service that makes a system
     * call, it leaves errno as it found it. */
    void *(*remap)(void *p, size_t old_bytes, size_t new_bytes, uint16_t owner,
                   uint16_t tag);
    /* Give the physical pages back (madvise DONTNEED); the range stays
     * mapped, owned and reads as zeros. */
    void (*decommit)(void *p, size_t bytes);

    /* Zeroed metadata memory that lives as long as the process. */
    void *(*meta_alloc)(size_t bytes);

    /* Off the fast path only. */
    void (*log)(int level, const char *box, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* A detected heap misuse (double free, foreign pointer in a box's
     * region...). Prints "hakmem: <problem> <addr> (box <box>)" and aborts
     * unless the config says host.on_bad_free = warn; then it returns and
     * the box must drop the request. */
    void (*bad_free)(const char *box, const char *problem, const void *p);
    /* Report an event to observers. Costs one call when none is configured:
     * call it on slow paths only. */
    void (*event)(const struct hak_event *ev);
    /* Monotonic clock, for idle delays. */
    uint64_t (*now_ns)(void);

    /* Per-process random value for free markers (see hak_fast_stack). */
    uint64_t block_secret;

    /* glibc's own allocator, for the system box and for tests. */
    void *(*libc_malloc)(size_t);
    void (*libc_free)(void *);
    void *(*libc_memalign)(size_t align, size_t size);
    void *(*libc_realloc)(void *, size_t);
    size_t (*libc_usable_size)(void *);

    /* ---- added after version 1 shipped: present when host->struct_size
     * > offsetof(struct hak_host, FIELD) (HAK_HOST_HAS(host, FIELD)) ---- */

    /* Move the pages of [src, src + bytes) onto [dst, dst + bytes), whole
     * granules, without copying (mremap): dst is a range the caller owns
     * from map (what it held is dropped); src's granules leave the region
     * map as by unmap. Slow path only. src may span several mappings
     * (they move piece by piece). Returns 0, or -1 when the kernel
     * refuses: then dst is intact and src's granules are recorded again as
     * (owner, tag) of its first granule. */
    int (*move)(void *dst, void *src, size_t bytes);

    /* Transparent huge pages. The mode the process runs under: the sysfs
     * setting (/sys/kernel/mm/transparent_hugepage/enabled) read once,
     * HAK_THP_NEVER as well when the process has THP disabled
     * (prctl PR_SET_THP_DISABLE, inherited across fork and exec). */
    int (*thp_mode)(void);
    /* madvise(MADV_HUGEPAGE) over [p, p + bytes), a range the caller owns
     * (all of it, so the mapping stays one VMA and can still be remapped):
     * the kernel backs its whole 2 MB pages (HAK_HUGE_PAGE) with huge pages
     * at the first touch (or khugepaged later). 0, or -1 when the kernel
     * refuses (the range stays usable, on 4 KB pages). */
    int (*advise_huge)(void *p, size_t bytes);

    /* Which thread a granule's blocks belong to, for the host's free path.
     * A box whose class blocks are served through a front's fast stacks
     * (superslab) marks a slab's granules as the thread's that allocates
     * from it (tls: that thread's slice of the calling box), or as
     * nobody's (tls NULL) when the slab is orphaned or freed. The host
     * then pushes a free of such a block on the freeing thread's fast
     * stack only when the freeing thread is the marked one; every other
     * free goes to the front's free_remote op, so blocks go home instead of
     * being reused by whichever thread freed them. Advisory: a stale mark
     * costs locality, never correctness (the box's free still decides).
     * Granules of other owners, or without the fast-stack class tags, are
     * left alone; under [host] remote_frees = local (the default) the host
     * ignores the marks: every thread caches every free. Under live_home
     * nobody's means an exited owner's slab, whose blocks any freeing
     * thread reuses. Slow path only. */
    void (*set_thread_owner)(const void *tls, void *p, size_t bytes);
    /* Lend a live owner's slab to every freeing thread: under [host]
     * remote_frees = live_home the host marks its granules as an exited
     * thread's, whose blocks the free path reuses wherever they are freed,
     * and returns 1; under the other modes it changes nothing and returns 0
     * (nothing to take back). The caller is not the owner: it must hold
     * blocks of the slab not yet given back, so the granules' entry cannot
     * change meanwhile. The owner takes the slab back with
     * set_thread_owner. Slow path only. */
    int (*lend_slab)(void *p, size_t bytes);

    /* The calling box is about to hand out `bytes` of memory that is not
     * resident (never touched, or decommitted): the process grows by that
     * much. When that would take the process's resident bytes above the
     * most it has been seen holding, the host asks every other box to give
     * back what it keeps only in case it is asked again (ops.reclaim), as
     * it does when a box maps fresh memory; below that mark the growth
     * adds nothing to the peak and nobody is asked. Without it, memory one
     * box freed stays committed while another faults in new pages, and the
     * process's peak is the sum of every box's own peak (gcc's cc1 was 6 MB over glibc's peak RSS, most
     * of it freed memory the boxes kept). Slow path only;
     * may be called under the caller's own locks (reclaim never waits). */
    void (*growing)(uint16_t owner, size_t bytes);

    /* Memory for one lock (a zeroed hak_spinlock, one cache line of its
     * own), on the host's lock page: take a box's locks from here
     * (hak_lock_new in hakmem_lock.h does, with a fallback for older hosts).
     * Why: fork. The fork handlers write every lock after the fork, in the
     * parent (unlock) and in the child (reset), and each page they write is
     * copied once in each process; with every box's lock inside its own
     * instance, a fork of the default config copied 20 pages more than
     * glibc's (mimalloc takes no lock at fork). On one page: 2. Lives as
     * long as the process; slow path only (instance creation). */
    void *(*lock_alloc)(void);
};

/* thp_mode values, and the size of one huge page on x86-64. */
enum hak_thp_mode { HAK_THP_NEVER, HAK_THP_MADVISE, HAK_THP_ALWAYS };
#define HAK_HUGE_SHIFT 21
#define HAK_HUGE_PAGE ((size_t)1 << HAK_HUGE_SHIFT)

/* Does this host provide a service added after version 1? */
#define HAK_HOST_HAS(host, field) \
    ((host)->struct_size > offsetof(struct hak_host, field) && (host)->field != NULL)

/* ---- instance creation ------------------------------------------------ */

struct hak_box_config {
    const char *instance_name;   /* "tiny" in [box.tiny] */
    uint16_t owner;              /* this instance's owner id in the region map */
    const struct hak_value *values; /* one per schema parameter, in order */
    const struct hak_link *links;   /* one per declared link, in order */
    uint32_t tls_offset;         /* this instance's slice in the thread block */
    int hardened;                /* host.hardened: extra checks on free */
};

/* ---- the function table ----------------------------------------------- */

/* `tls` is always the box's own slice for the calling thread. Fast-path
 * functions get nothing else: settings and links are reached through
 * ((struct hak_tls_head *)tls)->inst. */
struct hak_box_ops {
    /* lifecycle */
    void *(*create)(const struct hak_host *host, const struct hak_box_config *cfg,
                    char *err, size_t err_len);
    void (*destroy)(void *inst);
    /* Must not call malloc or free: the host may hold the lock of the
     * shared block of exited threads (its set-up runs thread_init). */
    void (*thread_init)(void *inst, void *tls);
    /* The thread is leaving: give everything cached back down the chain.
     * The slice may be reused by another thread afterwards. */
    void (*thread_exit)(void *inst, void *tls);
    /* fork: take every lock in prepare; release in parent and in child.
     * Called in chain order (fronts first). Use hak_spin_fork_prepare,
     * _parent and _child (hakmem_lock.h) for each lock: they skip a lock
     * the forking thread holds itself (fork from a signal handler). */
    void (*fork_prepare)(void *inst);
    void (*fork_parent)(void *inst);
    void (*fork_child)(void *inst);
    /* Add this slice's counters (tls != NULL) or the box's global ones
     * (tls == NULL) into out. */
    void (*stats)(void *inst, void *tls, struct hak_stats *out);
    /* malloc_trim: return cached memory to the OS; bytes released. */
    size_t (*trim)(void *inst, void *tls);

    /* alloc role. NULL from alloc means "cannot serve": the host tries the
     * next box of the chain. alloc must return HAK_MIN_ALIGN-aligned memory. */
    void *(*alloc)(void *tls, size_t size);
    void *(*alloc_aligned)(void *tls, size_t size, size_t align); /* optional */
    void (*free)(void *tls, void *p, uint16_t tag);
    size_t (*usable_size)(void *tls, const void *p, uint16_t tag);
    /* optional: resize in place or move; NULL when it cannot (the host then
     * allocates, copies and frees). */
    void *(*realloc)(void *tls, void *p, uint16_t tag, size_t size);

    /* Class interface, for front boxes stacked on this box. The tag this box
     * records for a block's granule must be its class index. */
    uint32_t (*class_count)(void *inst);
    size_t (*class_size)(void *inst, uint32_t cls);
    /* Fill out[0..n) with blocks of class cls; return how many (0 = none). */
    uint32_t (*alloc_batch)(void *tls, uint32_t cls, void **out, uint32_t n);
    /* Take back n blocks of class cls (from any thread's cache). */
    void (*free_batch)(void *tls, uint32_t cls, void *const *blocks, uint32_t n);

    /* pages role: spans of whole granules, aligned to max(align, granule).
     * The span is assigned to `owner` with `tag` before it is returned. */
    void *(*pages_alloc)(void *tls, size_t bytes, size_t align, uint16_t owner,
                         uint16_t tag);
    /* The span comes back; the page box takes ownership again. */
    void (*pages_free)(void *tls, void *p, size_t bytes);

    /* observer role */
    void (*on_event)(void *inst, const struct hak_event *ev);
    /* At exit: write the report; `stats` holds every box's counters. */
    void (*report)(void *inst, const struct hak_report_ctx *ctx);

    /* ---- added after version 1 shipped: optional, at the end ----------
     * A box built before a field below existed has a shorter descriptor
     * (desc.struct_size says so); the host reads the missing ops as NULL,
     * so such a box keeps loading and working. */

    /* alloc role, optional: like alloc, but the memory reads as zeros
     * (calloc). A box that knows which of its memory is fresh from
     * host->map (zero, not yet faulted in) clears only what it reuses, so
     * calloc of fresh memory costs the kernel's zero-page faults alone.
     * NULL: the host calls alloc and clears the block itself. */
    void *(*alloc_zeroed)(void *tls, size_t size);

    /* any role, optional: another box has just mapped `bytes` of fresh
     * memory, or called host->growing, and the process is at a new peak
     * of resident bytes: it is growing elsewhere. Give back memory this
     * box keeps only in case it is asked again (beyond what its own policy
     * needs for what it has live), up to about `bytes`; return the bytes
     * released. Called inside the mapping box's slow path, under its
     * locks: never wait for a lock (hak_spin_trylock, and skip when busy).
     * NULL: the box is not asked. */
    size_t (*reclaim)(void *inst, size_t bytes);

    /* FRONT boxes, optional: free a class block of below's that another
     * thread owns (host->set_thread_owner marked its granule as not the
     * calling thread's). Count it as freed and hand it down, to below's
     * free_remote if below is a front too, else to below's free, which
     * sends it to its owner: not into this thread's cache, where the
     * freeing thread would reuse it and the blocks of many threads would
     * stay mixed. NULL: the host calls free. */
    void (*free_remote)(void *tls, void *p, uint16_t tag);
};

/* What an observer gets at exit. */
struct hak_report_box {
    const char *instance_name;
    const char *plugin;
    uint16_t owner;
    uint32_t roles;
    struct hak_stats stats;
    uint64_t bytes_mapped; /* currently mapped and owned (region map) */
    uint64_t peak_mapped;
};

/* Resident memory of one box at report time: mincore over the granules the
 * region map records for it, split by the granules' tags (for a tier with a
 * class interface the tag is the class index). */
#define HAK_RESIDENT_TAGS 16
struct hak_resident {
    uint64_t bytes;                     /* every granule the box owns */
    uint64_t by_tag[HAK_RESIDENT_TAGS]; /* granules tagged 0..15 */
    uint64_t other_tags;                /* granules with a larger tag */
};

struct hak_report_ctx {
    const char *config_name; /* file path, or "(embedded default)" */
    const char *command_line;
    uint32_t box_count;
    const struct hak_report_box *boxes;
    /* Appended in ABI 1 (older observers never read past `boxes`): */
    const struct hak_resident *resident; /* parallel to boxes; NULL: not counted */
    uint64_t host_resident;   /* the host's own: region map, metadata, its data */
    uint64_t process_rss;     /* the process's RSS at the same moment, bytes */
    /* Appended after ABI 1 shipped: a host has them when
     * HAK_HOST_HAS(host, thp_mode). Bytes of each box's granules on huge
     * pages (AnonHugePages of its ranges, from /proc/self/smaps), parallel
     * to boxes; the process's AnonHugePages in all; the THP mode. */
    uint32_t thp_mode; /* enum hak_thp_mode */
    uint32_t reserved;
    const uint64_t *huge;     /* NULL: not counted */
    uint64_t process_huge;
};

/* ---- the descriptor --------------------------------------------------- */

struct hak_box_desc {
    uint32_t abi_version; /* HAK_BOX_ABI_VERSION */
    uint32_t struct_size; /* sizeof(struct hak_box_desc) */
    const char *name;     /* plugin name: "superslab" */
    const char *summary;  /* one line for `hakmem boxes` */
    uint32_t roles;       /* enum hak_role bits */
    uint32_t flags;       /* HAK_BOX_FLAG_* */
    const struct hak_param *params;
    uint32_t param_count;
    const struct hak_link_decl *links;
    uint32_t link_count;
    uint32_t tls_size;    /* bytes of per-thread slice, head included */
    /* Fast stacks (FRONT boxes only; 0/0: none): the offset in the slice of
     * class 0's struct hak_fast_stack, and the distance between classes,
     * which must be HAK_FAST_STACK_STRIDE (a constant, so the host's free
     * path computes the address with a fixed shift). The classes are the
     * box's class_count/class_size. */
    uint32_t fast_stack_offset;
    uint32_t fast_stack_stride;
    uint32_t reserved;
    struct hak_box_ops ops;
};

typedef const struct hak_box_desc *(*hak_box_describe_fn)(void);
#define HAK_BOX_DESCRIBE_SYMBOL "hak_box_describe"

/* The descriptor size of a box built before alloc_zeroed was added at the
 * end of struct hak_box_ops: the smallest struct_size the host accepts
 * (it reads the ops such a box lacks as NULL). */
#define HAK_BOX_DESC_V1_SIZE offsetof(struct hak_box_desc, ops.alloc_zeroed)

#ifdef __cplusplus
}
#endif
#endif
