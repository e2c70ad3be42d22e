/*
 * Host internals shared by the files of host/ (never by boxes).
 *
 * The host is split the way its jobs are:
 *   config_parse.c    INI text -> raw entries with file:line (inih)
 *   config_resolve.c  raw entries -> a validated plan (boxes, links, routes)
 *   plugin.c          finding and dlopen-ing hakbox_*.so, ABI checks
 *   region_map.c      address -> (owner, tag), two-level radix table
 *   services.c        the struct hak_host services boxes call
 *   runtime.c         instances, dispatch tables, the malloc paths
 *   thread.c          per-thread blocks, thread exit, the orphan block
 *   fork.c            the atfork handlers: lock order, stdio, signal handlers
 *   bootstrap.c       memory for the host's own start-up
 *   stats.c           the exit report, malloc_stats/malloc_info/mallinfo2
 *   resident.c        resident bytes per box (mincore over the region map)
 *   malloc_api.c      the exported malloc family (libhakmem.so only)
 */
#ifndef HAKMEM_HOST_INTERNAL_H
#define HAKMEM_HOST_INTERNAL_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_lock.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HAK_MAX_INSTANCES 32  /* owner ids 1..32; 0 = no owner */
#define HAK_MAX_ROUTES 32
#define HAK_MAX_CHAIN 6       /* boxes tried for one route, terminal included */
#define HAK_MAX_PARAMS 64
#define HAK_MAX_LINKS 8
#define HAK_MAX_ENTRIES 512
#define HAK_NAME_MAX 64
#define HAK_VALUE_MAX 256
#define HAK_SMALL_MAX 1024    /* sizes served by the direct route table */
#define HAK_MAX_ALIGN ((size_t)1 << 46) /* beyond any address a 47-bit process has */
#define HAK_CONFIG_MAX (256 * 1024)
#define HAK_EXIT_CONFIG 78    /* EX_CONFIG from sysexits.h */

/* Globals the fast paths read: hidden, so libhakmem.so addresses them
 * relative to the instruction pointer rather than through the GOT. */
#define HAK_HIDDEN __attribute__((visibility("hidden")))

/* One line of error text, "file:line: [section] key: what was expected". */
struct hak_error {
    char msg[768];
};

void hak_error_set(struct hak_error *err, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- raw config --------------------------------------------------------- */

/* An entry's strings are never NULL (a section header has key "" and
 * value ""). They point into the raw config's text store (parsed text,
 * HAKMEM_SET) or, for the compiled-in default, at the table's own strings:
 * copying those was 400 bytes an entry, pages every process wrote at start. */
struct hak_cfg_entry {
    const char *section;
    const char *key;
    const char *value;
    const char *source; /* file name, or "HAKMEM_SET" */
    int line;
};

struct hak_cfg_text {
    char section[HAK_NAME_MAX];
    char key[HAK_NAME_MAX];
    char value[HAK_VALUE_MAX];
};

struct hak_cfg_raw {
    char file[PATH_MAX];
    int entry_count;
    struct hak_cfg_entry entries[HAK_MAX_ENTRIES];
    struct hak_cfg_text text[HAK_MAX_ENTRIES]; /* text[i]: entries[i]'s copies, if any */
};

int hak_config_parse_text(struct hak_cfg_raw *raw, const char *text, size_t len,
                          const char *file, struct hak_error *err);
/* Entries parsed at build time (host/embed_config.c): the embedded default. */
struct hak_cfg_text_entry {
    const char *section, *key, *value;
    int line;
};
int hak_config_from_entries(struct hak_cfg_raw *raw, const char *file,
                            const struct hak_cfg_text_entry *entries, int count,
                            struct hak_error *err);
int hak_config_apply_overrides(struct hak_cfg_raw *raw, const char *set,
                               struct hak_error *err);
/* Read a whole file with open/read (no stdio: it would allocate). */
int hak_read_file(const char *path, char *buf, size_t cap, size_t *len,
                  struct hak_error *err);
int hak_parse_size(const char *text, uint64_t *out);

/* ---- resolved plan ------------------------------------------------------ */

enum hak_stats_mode { HAK_STATS_OFF, HAK_STATS_TEXT, HAK_STATS_JSON };
enum hak_on_error { HAK_ON_ERROR_EXIT, HAK_ON_ERROR_FALLBACK };

struct hak_instance {
    const struct hak_box_desc *desc;
    void *inst;
    uint16_t owner;       /* 1-based */
    uint32_t tls_offset;
    int line;             /* the [box.NAME] line */
    int link_target[HAK_MAX_LINKS]; /* instance index, -1 = unset */
    struct hak_link links[HAK_MAX_LINKS];
    int free_entry;       /* instance whose free() takes this owner's frees */
    int front_above;      /* front box whose `below` is this one, -1 none */
    _Atomic uint64_t bytes_mapped;
    _Atomic uint64_t peak_mapped;
    struct hak_stats retired; /* counters of exited threads (thread lock) */
    /* One per parameter of the box, in the plan's pools (a small instance:
     * the instances the start-up writes fit in two pages, not sixteen). */
    struct hak_value *values;
    const char **value_text;  /* in the plan's text pool */
    int *value_line;          /* 0 = default */
    const char *path;         /* the loaded .so, in the plan's text pool */
    char name[HAK_NAME_MAX];
    char plugin[HAK_VALUE_MAX]; /* a name, or a path to a .so */
};

struct hak_route {
    uint64_t lo, hi;      /* inclusive; hi = UINT64_MAX for max */
    int chain[HAK_MAX_CHAIN];
    int chain_len;
    int line;
};

/* [host] remote_frees: where a tiny block freed by a thread that does not
 * own its slab goes (docs/design.md, "Remote frees"). */
enum hak_remote_frees {
    HAK_REMOTE_LOCAL,     /* the freeing thread's cache, always */
    HAK_REMOTE_HOME,      /* the owner's slab, always */
    HAK_REMOTE_LIVE_HOME, /* the owner's slab while the owner lives; an
                           * exited thread's slab's blocks stay with the
                           * freeing thread */
};

struct hak_plan {
    enum hak_stats_mode stats;
    enum hak_on_error on_config_error;
    int bad_free_abort;
    int hardened;
    enum hak_remote_frees remote_frees; /* [host] remote_frees */
    int terminal;             /* instance index */
    int instance_count;
    int route_count;
    uint32_t tls_size;        /* bytes of one thread block */
    size_t pool_used;         /* bytes of pool[] handed out */
    /* Texts in pool[] (or ""): a PATH_MAX array each was a page of its own
     * in the static plan, and every page the start-up reads or writes is a
     * page fault of every process. */
    const char *config_name;  /* file, or "(embedded default)" */
    const char *config_dir;
    const char *stats_file;
    const char *box_dir;
    int order[HAK_MAX_INSTANCES]; /* chain order: fronts, tiers, pages, observers */
    struct hak_route routes[HAK_MAX_ROUTES];
    /* Cleared up to here. The plan is a static of the preloaded host, and
     * every page of it the start-up touches is RSS of every program: each
     * instance is cleared when declared, the pool written as it fills. */
    struct hak_instance instances[HAK_MAX_INSTANCES];
    /* The boxes' paths, parameter values, their texts, lines and size
     * lists, packed in the order the resolve writes them: the start-up
     * touches the first pages only (with one array per kind, each was a
     * page of its own: 5 page faults in every process, now 1-2). */
    _Alignas(16) unsigned char pool[96 * 1024];
};

/* Parse the raw config's [host] on_config_error early, so a later error
 * knows whether to fall back. */
enum hak_on_error hak_config_error_policy(const struct hak_cfg_raw *raw);
/* Validate and resolve; loads every plugin's descriptor (no instance made).
 * lib_dir: the folder of libhakmem.so (last place plugins are looked for). */
int hak_plan_resolve(struct hak_plan *plan, const struct hak_cfg_raw *raw,
                     const char *lib_dir, struct hak_error *err);
/* Everything needed for a plan: text -> raw -> overrides -> plan. */
int hak_plan_load(struct hak_plan *plan, struct hak_cfg_raw *raw, const char *text,
                  size_t len, const char *file, const char *overrides,
                  const char *lib_dir, struct hak_error *err);
int hak_instance_find(const struct hak_plan *plan, const char *name);
const char *hak_role_names(uint32_t roles, char *buf, size_t len);

/* ---- plugins -------------------------------------------------------------- */

/* Read the search's environment (HAKMEM_BOX_PATH) once for the plugins of one plan. */
void hak_plugin_search_begin(void);
void hak_plugin_search_end(void);
/* Find and load hakbox_<plugin>.so (or a path), check its ABI. */
const struct hak_box_desc *hak_plugin_load(const char *plugin, const char *config_dir,
                                           const char *box_dir, const char *lib_dir,
                                           char *path_out, size_t path_len,
                                           struct hak_error *err, const char *file,
                                           int line);
/* Boxes linked into this libhakmem.so (host/CMakeLists.txt generates the
 * table; the CLI and the test harness have none, so the symbols are weak
 * there). plugin.c says when a built-in is used instead of a .so. */
struct hak_builtin_box {
    const char *name;
    hak_box_describe_fn describe;
};
extern const struct hak_builtin_box hak_builtin_boxes[] __attribute__((weak));
extern const int hak_builtin_box_count __attribute__((weak));
/* [host] builtin_boxes: 0 loads every box from its .so (set while resolving). */
extern int hak_plugin_builtins_enabled;
/* The folder holding the given address's shared object (dladdr). */
int hak_object_dir(const void *addr, char *out, size_t len);

/* ---- region map ------------------------------------------------------- */

#define HAK_REGION_TOP_BITS 16  /* addresses below 2^48 */
#define HAK_REGION_LEAF_BITS 16 /* 4 GB per leaf at 64 KB granules */

/* A granule's slot: the entry (owner << 16 | tag, and HAK_REGION_FAST) and
 * the thread its blocks belong to (set_thread_owner), loaded together by
 * the free path. thread is the owning thread block's token, or
 * HAK_REGION_NOBODY; it is 0 only where the entry is 0 too, so the null
 * block (token 0) matches nothing but an empty slot, whose tag 0 indexes a
 * stack of the null block that is always full. */
struct hak_region_slot {
    uint32_t entry;
    uint32_t thread;
};
#define HAK_REGION_NOBODY 0xFFFFFFFFu
/* [host] remote_frees = local: every thread has this token and every
 * class granule of the fast owner carries it, so any thread's free of any
 * class block is pushed on its own stack (no per-thread marks). */
#define HAK_TOKEN_SHARED 1u
/* [host] remote_frees = live_home: the mark of a slab whose thread exited
 * (set_thread_owner with no thread). The free path treats it as the
 * freeing thread's own, so an orphan's blocks are reused where they are
 * freed instead of waiting on a slab nobody allocates from. */
#define HAK_TOKEN_ORPHAN 2u

/* What hak_region_set writes beside a fast-owner class entry: the shared
 * token (local) or HAK_REGION_NOBODY until the box marks the slab (home). */
extern HAK_HIDDEN uint32_t hak_region_fast_thread;
/* What set_thread_owner writes for a slab given up by its thread:
 * HAK_TOKEN_ORPHAN (live_home) or HAK_REGION_NOBODY (home). */
extern HAK_HIDDEN uint32_t hak_region_orphan_thread;

extern HAK_HIDDEN struct hak_region_slot *_Atomic hak_region_top[1u << HAK_REGION_TOP_BITS];

/* Internally an entry may carry HAK_REGION_FAST: the granule's owner has a
 * front with fast stacks and the tag is one of its classes, so the free
 * path can push without looking at the owner table. The services and every
 * other caller see the ABI's (owner << 16) | tag. */
#define HAK_REGION_FAST 0x80000000u

extern HAK_HIDDEN uint16_t hak_fast_owner;    /* the one owner whose frees take fast stacks; 0: none */
extern HAK_HIDDEN uint32_t hak_fast_classes;  /* its tags below this have a stack */
extern HAK_HIDDEN uint32_t hak_fast_base;     /* class 0's stack within a thread block */

static inline uint32_t hak_region_entry(uint16_t owner, uint16_t tag)
{
    uint32_t e = ((uint32_t)owner << 16) | tag;
    if (owner && owner == hak_fast_owner && tag < hak_fast_classes)
        e |= HAK_REGION_FAST;
    return e;
}

static inline struct hak_region_slot *hak_region_slot_of(struct hak_region_slot *leaf, uintptr_t a)
{
    return &leaf[(a >> HAK_GRANULE_SHIFT) & ((1u << HAK_REGION_LEAF_BITS) - 1)];
}

/* The slot as one 64-bit word: entry in the low half, thread in the high. */
static inline uint64_t hak_region_lookup_wide(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t hi = a >> 32;
    if (HAK_UNLIKELY(hi > 0xffff))
        return 0;
    struct hak_region_slot *leaf = atomic_load_explicit(&hak_region_top[hi], memory_order_relaxed);
    if (HAK_UNLIKELY(!leaf))
        return 0;
    /* Relaxed atomic: another thread may retag the granule concurrently
     * (a span handed over or unmapped); the same mov on x86-64. */
    return __atomic_load_n((const uint64_t *)hak_region_slot_of(leaf, a), __ATOMIC_RELAXED);
}

static inline uint32_t hak_region_lookup_raw(const void *p)
{
    return (uint32_t)hak_region_lookup_wide(p);
}

static inline uint32_t hak_region_lookup(const void *p)
{
    return hak_region_lookup_raw(p) & ~HAK_REGION_FAST;
}

/* Set (owner, tag) for every granule of [p, p + bytes); returns the bytes
 * each previous owner lost through `lost` (indexed by owner), may be NULL. */
int hak_region_set(const void *p, size_t bytes, uint32_t entry, uint64_t *lost);
/* Set HAK_REGION_FAST on every entry that now qualifies (at start-up, once
 * the fast owner is known: boxes may have mapped memory while starting). */
void hak_region_mark_fast(void);
/* Mark the fast-owner class granules of [p, p + bytes) as thread token's
 * (HAK_REGION_NOBODY: nobody's); other granules are left alone. */
void hak_region_set_thread(const void *p, size_t bytes, uint32_t token);
void hak_region_fork_prepare(void);
void hak_region_fork_parent(void);
void hak_region_fork_child(void);

/* ---- services and runtime ----------------------------------------------- */

extern struct hak_plan *hak_plan_active;
extern _Atomic int hak_runtime_state; /* 0 not started, 1 ready, 2 on glibc */
extern struct hak_host hak_host_services;
extern HAK_HIDDEN uint64_t hak_block_secret; /* the fast path's copy of host->block_secret */
uint64_t hak_make_secret(void);

static inline uint32_t hak_log2_u32(uint32_t n)
{
    return 31u - (uint32_t)__builtin_clz(n);
}
extern int hak_observer_count;

void *hak_os_map(size_t bytes, size_t align);
void hak_os_unmap(void *p, size_t bytes);
void *hak_meta_alloc(size_t bytes);
void hak_log_write(const char *text, size_t len);
void hak_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hak_services_fork_prepare(void);
void hak_services_fork_parent(void);
void hak_services_fork_child(void);
void hak_services_resolve_libc(void);

/* Create the instances of a resolved plan and build the dispatch tables. */
int hak_runtime_start(struct hak_plan *plan, struct hak_error *err);

/* The dispatch: what malloc_api.c and the test harness call. */
void *hak_malloc(size_t size);
void hak_free(void *p);
void *hak_calloc(size_t n, size_t size);
void *hak_realloc(void *p, size_t size);
void *hak_memalign(size_t align, size_t size); /* align a power of two */
size_t hak_usable_size(const void *p);
int hak_trim(void);

/* ---- threads ------------------------------------------------------------ */

/* The calling thread's block. A thread that has none (not started yet, or
 * exited) points at hak_null_block: all zeros, so every fast stack in it is
 * empty and full at once and the fast paths fall to the slow ones, which
 * check for it. That spares the fast paths a NULL test. */
#define HAK_NULL_BLOCK_BYTES (256u * 1024u)

/* A block's first 64 bytes are the host's: an always-empty fast stack
 * (route slots without a stack point at it) and, here, the thread's token:
 * what set_thread_owner writes into a slab's region-map slot and the free
 * path compares. A thread's token is never 0 (the null block's), 2
 * (HAK_TOKEN_ORPHAN) nor HAK_REGION_NOBODY, and 1 (HAK_TOKEN_SHARED) only
 * under remote_frees = local; a block gets a new one for each thread. */
#define HAK_BLOCK_TOKEN_OFF 56u
/* Then 16 fast stacks that stay zero, so always full: the free path's
 * stacks when the front that owns the marked slabs has none of its own
 * (tiny_hot_ring's rings). A push there fails and the free reaches the
 * front's free; the marks still send other threads' blocks home. */
#define HAK_BLOCK_FULL_STACKS_OFF 64u
#define HAK_BLOCK_FULL_STACKS 16u
#define HAK_BLOCK_HOST_BYTES (HAK_BLOCK_FULL_STACKS_OFF + HAK_BLOCK_FULL_STACKS * HAK_FAST_STACK_STRIDE)
static inline uint32_t hak_block_token(const char *block)
{
    return *(const uint32_t *)(block + HAK_BLOCK_TOKEN_OFF);
}
extern HAK_HIDDEN char hak_null_block[HAK_NULL_BLOCK_BYTES];
extern __thread char *hak_tls_block __attribute__((tls_model("initial-exec")));

int hak_threads_start(const struct hak_plan *plan);
/* The calling thread's block, made if missing; for exited threads the shared
 * orphan block, locked: the caller must call hak_thread_release(block). */
char *hak_thread_acquire(void);
void hak_thread_release(char *block);
void hak_thread_exit_now(void);
void hak_stats_collect(const struct hak_plan *plan, int index, struct hak_stats *out);
void hak_orphans_fork_prepare(void);
void hak_orphans_fork_parent(void);
void hak_orphans_fork_child(void);
void hak_threads_fork_prepare(void);
void hak_threads_fork_parent(void);
void hak_threads_fork_child(void);

/* ---- fork (fork.c) ---------------------------------------------------------- */

/* pthread_atfork handlers; see fork.c for the lock order and why. */
void hak_fork_prepare(void);
void hak_fork_parent(void);
void hak_fork_child(void);

/* The lock page: every lock the fork handlers take, the host's and the
 * boxes' (host->lock_alloc), and the handlers' own state, on one page, so
 * a fork copies one page in the parent and one in the child for all of
 * them (fork.c). One cache line per lock: no false sharing between them. */
#define HAK_LOCK_LINE 64
struct hak_lock_line {
    hak_spinlock lock;
    char pad[HAK_LOCK_LINE - sizeof(hak_spinlock)];
};
#define HAK_LOCK_PAGE_BOX_LINES (4096 / HAK_LOCK_LINE - 5)
struct hak_lock_page {
    struct hak_lock_line orphan, thread, meta, region_leaf; /* host's locks, in fork order */
    struct {
        unsigned stdio_taken;       /* fork.c: did prepare take the libio list lock? */
        _Atomic unsigned box_lines; /* lines of boxes[] handed out */
        /* services.c: the last RSS sample, which the child clears (here,
         * the page a child writes anyway: one copy-on-write fault less) */
        _Atomic uint64_t rss_sample;
        char pad[HAK_LOCK_LINE - 2 * sizeof(unsigned) - sizeof(uint64_t)];
    } fork;
    struct hak_lock_line boxes[HAK_LOCK_PAGE_BOX_LINES];
};
extern struct hak_lock_page hak_locks;
/* host->lock_alloc: a line of boxes[], then metadata lines once the page is full. */
void *hak_lock_alloc(void);

/* ---- bootstrap ------------------------------------------------------------ */

void *hak_bootstrap_alloc(size_t size, size_t align);
int hak_bootstrap_owns(const void *p);
size_t hak_bootstrap_usable(const void *p);

/* ---- stats ---------------------------------------------------------------- */

/* The exit report; the header names the process (pid, command line) and
 * host.stats_file's %p is replaced by the pid. */
void hak_stats_report(const struct hak_plan *plan, const char *command_line);
int hak_stats_format_text(const struct hak_plan *plan, const char *command_line, char *buf,
                          size_t cap);
void hak_observers_report(const struct hak_plan *plan, const char *command_line);
int hak_stats_path(const char *pattern, char *out, size_t len);
/* /proc/self/cmdline with spaces between the arguments ("" if unreadable). */
int hak_read_cmdline(char *out, size_t len);

/* glibc's statistics calls (malloc_api.c exports them). plan is NULL when
 * hakmem is not running. In use counts the program's blocks: tiers under a
 * front and page boxes are left out (their blocks are the front's, their
 * spans the tiers'). */
struct hak_totals {
    uint64_t mapped, peak, in_use, cached;
};
void hak_stats_totals(const struct hak_plan *plan, struct hak_totals *t);
void hak_malloc_stats(const struct hak_plan *plan);
char *hak_malloc_info_xml(const struct hak_plan *plan, size_t *len);
void hak_report_free(char *xml);

/* ---- resident memory (resident.c) ------------------------------------------ */

/* mincore over every granule of the region map and the host's own memory,
 * at report time (a walk of the whole map: never on a malloc path). */
struct hak_resident_report {
    struct hak_resident box[HAK_MAX_INSTANCES + 1]; /* by owner id; [0]: none */
    uint64_t host, host_mapped; /* region map leaves, metadata, libhakmem's data */
    uint64_t process_rss;       /* /proc/self/statm, read right after */
    /* Huge-page coverage (/proc/self/smaps): bytes of each owner's granules
     * on huge pages, and the process's AnonHugePages in all. */
    uint64_t huge[HAK_MAX_INSTANCES + 1];
    uint64_t process_huge;
    int thp_mode;
};
void hak_resident_measure(struct hak_resident_report *out);
/* Resident bytes of the process now (/proc/self/statm), 0 when unknown;
 * safe inside malloc (no allocation, errno kept). */
uint64_t hak_process_rss(void);
/* enum hak_thp_mode of this process (services.c). */
int hak_thp_mode(void);
/* The host's own mappings (metadata chunks), for the resident count. */
void hak_host_map_note(void *p, size_t bytes);

/* ---- libc's allocator ------------------------------------------------------ */

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
size_t hak_libc_usable_size(void *p);
int hak_libc_trim(size_t pad);

#endif
