/*
 * The services every box gets (struct hak_host): memory from the OS recorded
 * in the region map, metadata, logging, misuse reports, events.
 * All of this is slow-path code: boxes call it on refills, never per block.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

struct hak_plan *hak_plan_active;
int hak_observer_count;

/* Every service that makes a system call leaves errno as it found it: a
 * failure the box recovers from (a remap refused, a huge-page advice, a map
 * retried elsewhere) is not the program's. glibc's malloc changes errno
 * only when it fails, and programs that test errno after a successful
 * call rely on it. Where the whole request fails, the host sets ENOMEM. */
#define KEEP_ERRNO_BEGIN int saved_errno_ = errno
#define KEEP_ERRNO_END errno = saved_errno_

/* ---- OS memory ---------------------------------------------------------- */

/* mmap `bytes` aligned to `align` (a power of two >= page size) by mapping
 * more and trimming both ends. */
static void *os_map(size_t bytes, size_t align)
{
    if (align < HAK_GRANULE)
        align = HAK_GRANULE;
    size_t span = bytes + align - (size_t)sysconf(_SC_PAGESIZE);
    if (span < bytes)
        return NULL;
    /* No MAP_NORESERVE: memory a box hands out must be backed, and the
     * kernel's overcommit check is what turns malloc(2^44) into ENOMEM. */
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)(raw + span - (p + bytes));
    if (tail)
        munmap(p + bytes, tail);
    return p;
}

void *hak_os_map(size_t bytes, size_t align)
{
    KEEP_ERRNO_BEGIN;
    void *p = os_map(bytes, align);
    KEEP_ERRNO_END;
    return p;
}

void hak_os_unmap(void *p, size_t bytes)
{
    KEEP_ERRNO_BEGIN;
    munmap(p, bytes);
    KEEP_ERRNO_END;
}

static void account(uint16_t owner, int64_t delta)
{
    struct hak_plan *plan = hak_plan_active;
    if (!plan || owner == 0 || owner > plan->instance_count)
        return;
    struct hak_instance *in = &plan->instances[owner - 1];
    uint64_t now = atomic_fetch_add(&in->bytes_mapped, (uint64_t)delta) + (uint64_t)delta;
    uint64_t peak = atomic_load(&in->peak_mapped);
    while (now > peak && !atomic_compare_exchange_weak(&in->peak_mapped, &peak, now))
        ;
}

static void account_lost(const uint64_t *lost)
{
    int n = hak_plan_active ? hak_plan_active->instance_count : HAK_MAX_INSTANCES;
    for (int i = 1; i <= n; i++)
        if (lost[i])
            account((uint16_t)i, -(int64_t)lost[i]);
}

static void emit(uint16_t type, uint16_t owner, const void *addr, uint64_t bytes)
{
#ifdef HAKMEM_NO_TELEMETRY
    (void)type; (void)owner; (void)addr; (void)bytes;
    return;
#endif
    if (!hak_observer_count)
        return;
    struct hak_event ev = { .type = type, .bucket = HAK_BUCKET_OTHER, .owner = owner,
                            .addr = addr, .bytes = bytes, .count = 1 };
    hak_host_services.event(&ev);
}

/* The most resident bytes this process was seen with (sampled here, at
 * growth), and the last sample and when it was taken. */
static _Atomic uint64_t rss_high_water;
#define rss_sample (hak_locks.fork.rss_sample)
static _Atomic uint64_t rss_sample_tick;

/* A sample is reused for this long: thread_churn asks 27 times per
 * thread, and reading statm (hak_process_rss) costs a few microseconds. */
#define RSS_SAMPLE_NS 2000000ull

/* Resident bytes, at most RSS_SAMPLE_NS old (the coarse clock is the
 * vDSO's, a few nanoseconds), or 0 when unknown. */
static uint64_t process_resident_bytes(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t tick = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t last = atomic_load_explicit(&rss_sample_tick, memory_order_relaxed);
    uint64_t rss = atomic_load_explicit(&rss_sample, memory_order_relaxed);
    if (rss && tick - last < RSS_SAMPLE_NS)
        return rss;
    KEEP_ERRNO_BEGIN;
    rss = hak_process_rss();
    KEEP_ERRNO_END;
    atomic_store_explicit(&rss_sample, rss, memory_order_relaxed);
    atomic_store_explicit(&rss_sample_tick, tick, memory_order_relaxed);
    return rss;
}

/* Whether `bytes` more would take the process above the most it has been
 * seen holding: only then is what the boxes keep for reuse worth giving
 * back. Below it, the growth refills pages given back earlier and adds
 * nothing to the peak; asking then made the boxes of a churning
 * multi-threaded program take each other's caches in turn
 * (mimalloc-bench mstress at 16 threads: 830K minor faults and 5.6 s,
 * against 256K and 3.8 s: bench/RESULTS.md, "Giving back only at a new
 * peak"). The high-water mark is of resident bytes seen, never of bytes
 * asked for: a mapping touched only in part (sort's 8 MB buffer) would
 * raise it above any real peak. Unknown RSS: ask. */
static int process_at_new_peak(size_t bytes)
{
    uint64_t now = process_resident_bytes();
    if (!now)
        return 1;
    uint64_t high = atomic_load_explicit(&rss_high_water, memory_order_relaxed);
    while (now > high && !atomic_compare_exchange_weak(&rss_high_water, &high, now))
        ;
    return now + bytes > high;
}

/* A box mapped fresh memory or is about to touch pages that are not
 * resident: if that makes a new peak, the others may give back what they
 * keep only for reuse (ops.reclaim, which never waits for a lock). */
static void reclaim_others(uint16_t owner, size_t bytes)
{
    struct hak_plan *plan = hak_plan_active;
    if (!plan || !process_at_new_peak(bytes))
        return;
    for (int i = 0; i < plan->instance_count; i++) {
        struct hak_instance *in = &plan->instances[i];
        if (in->owner != owner && in->inst && in->desc->ops.reclaim)
            in->desc->ops.reclaim(in->inst, bytes);
    }
}

static void *svc_map(uint16_t owner, size_t bytes, size_t align, uint16_t tag)
{
    if (align & (align - 1))
        return NULL;
    size_t size = (bytes + HAK_GRANULE - 1) & ~(HAK_GRANULE - 1);
    if (size < bytes || size == 0)
        return NULL;
    void *p = hak_os_map(size, align);
    if (!p)
        return NULL;
    if (hak_region_set(p, size, hak_region_entry(owner, tag), NULL)) {
        hak_region_set(p, size, 0, NULL); /* what was set before the failure */
        hak_os_unmap(p, size);
        return NULL;
    }
    account(owner, (int64_t)size);
    emit(HAK_EV_MAP, owner, p, size);
    reclaim_others(owner, size);
    return p;
}

static void svc_growing(uint16_t owner, size_t bytes)
{
    reclaim_others(owner, bytes);
}

static void svc_unmap(void *p, size_t bytes)
{
    size_t size = (bytes + HAK_GRANULE - 1) & ~(HAK_GRANULE - 1);
    uint64_t lost[HAK_MAX_INSTANCES + 1] = { 0 };
    uint16_t owner = (uint16_t)(hak_region_lookup(p) >> 16);
    hak_region_set(p, size, 0, lost);
    account_lost(lost);
    hak_os_unmap(p, size);
    emit(HAK_EV_UNMAP, owner, p, size);
}

static void svc_assign(void *p, size_t bytes, uint16_t owner, uint16_t tag)
{
    size_t size = (bytes + HAK_GRANULE - 1) & ~(HAK_GRANULE - 1);
    uint64_t lost[HAK_MAX_INSTANCES + 1] = { 0 };
    hak_region_set(p, size, hak_region_entry(owner, tag), lost);
    account_lost(lost);
    account(owner, (int64_t)size);
}

static uint32_t svc_lookup(const void *p)
{
    return hak_region_lookup(p);
}

/* A fresh range for a move of p's pages: at the same offset within a 2 MB
 * page as p once the block spans one, so the kernel moves its huge pages
 * whole (a move to another offset splits every one of them). */
static void *map_congruent(const void *p, size_t bytes)
{
    if (bytes < HAK_HUGE_PAGE)
        return hak_os_map(bytes, HAK_GRANULE);
    size_t offset = (uintptr_t)p & (HAK_HUGE_PAGE - 1);
    char *q = hak_os_map(bytes + HAK_HUGE_PAGE, HAK_HUGE_PAGE);
    if (!q)
        return hak_os_map(bytes, HAK_GRANULE);
    if (offset)
        hak_os_unmap(q, offset);
    hak_os_unmap(q + offset + bytes, HAK_HUGE_PAGE - offset);
    return q + offset;
}

/* Move [src, src + len) onto dst with mremap, without a copy. mremap
 * moves one mapping (VMA) at a time, and a block may span several: large
 * reuses a cached extent by moving its pages into the front of a new
 * block, and the kernel keeps moved pages in a VMA of their own. Such a
 * range is refused with EFAULT; it is moved in halves (granule-aligned)
 * until every piece lies in one mapping. Before, the host fell back to a
 * copy: a 64 MB block grown to 128 MB touched all its 64 MB (RSS 5 ->
 * 71 MB for memory the program never wrote). On a failure nothing has
 * moved (pieces already moved go back). */
static int move_pieces(char *src, char *dst, size_t len)
{
    if (mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED)
        return 0;
    if (errno != EFAULT || len <= HAK_GRANULE)
        return -1;
    size_t half = (len / 2) & ~(size_t)(HAK_GRANULE - 1);
    if (half == 0)
        return -1;
    if (move_pieces(src, dst, half))
        return -1;
    if (move_pieces(src + half, dst + half, len - half) == 0)
        return 0;
    /* the dst range stays mapped behind the moved pages: move them back */
    if (move_pieces(dst, src, half))
        hak_logf("hakmem: a block's pages could not be moved back after a failed remap\n");
    return -1;
}

/* mremap to a granule-aligned place: grow in place if the kernel can;
 * otherwise reserve an aligned range and move the pages there (no copy). */
static void *remap(void *p, size_t old_bytes, size_t new_bytes, uint16_t owner, uint16_t tag)
{
    size_t old_size = (old_bytes + HAK_GRANULE - 1) & ~(HAK_GRANULE - 1);
    size_t new_size = (new_bytes + HAK_GRANULE - 1) & ~(HAK_GRANULE - 1);
    if (new_size < new_bytes || new_size == 0)
        return NULL;
    if (new_size == old_size)
        return p;
    uint32_t entry = hak_region_entry(owner, tag);
    if (new_size < old_size) {
        uint64_t lost[HAK_MAX_INSTANCES + 1] = { 0 };
        hak_region_set((char *)p + new_size, old_size - new_size, 0, lost);
        account_lost(lost);
        munmap((char *)p + new_size, old_size - new_size);
        emit(HAK_EV_UNMAP, owner, (char *)p + new_size, old_size - new_size);
        return p;
    }
    void *q = mremap(p, old_size, new_size, 0);
    if (q == MAP_FAILED) {
        void *target = map_congruent(p, new_size);
        if (!target)
            return NULL;
        /* Clear the old range BEFORE the move: once moved, the kernel may
         * hand the old addresses to another thread's map, whose entries a
         * later clear would wipe. The block is the caller's, so nobody else
         * looks it up meanwhile. */
        uint64_t lost[HAK_MAX_INSTANCES + 1] = { 0 };
        hak_region_set(p, old_size, 0, lost);
        /* the old pages over the front of target; its tail stays as mapped */
        if (move_pieces(p, target, old_size)) {
            hak_region_set(p, old_size, entry, NULL);
            hak_os_unmap(target, new_size);
            return NULL;
        }
        q = target;
        account_lost(lost);
    }
    hak_region_set(q, new_size, entry, NULL);
    account(owner, (int64_t)(q == p ? new_size - old_size : new_size));
    /* Observers see a move as the old span returned and the new one mapped,
     * a growth in place as the extra bytes mapped. */
    if (q != p) {
        emit(HAK_EV_UNMAP, owner, p, old_size);
        emit(HAK_EV_MAP, owner, q, new_size);
    } else {
        emit(HAK_EV_MAP, owner, (char *)q + old_size, new_size - old_size);
    }
    return q;
}

static void *svc_remap(void *p, size_t old_bytes, size_t new_bytes, uint16_t owner, uint16_t tag)
{
    KEEP_ERRNO_BEGIN;
    void *q = remap(p, old_bytes, new_bytes, owner, tag);
    KEEP_ERRNO_END;
    return q;
}

/* Pages of src onto dst, no copy; src leaves the region map (see the ABI). */
static int move(void *dst, void *src, size_t bytes)
{
    size_t size = (bytes + HAK_GRANULE - 1) & ~(HAK_GRANULE - 1);
    uint32_t entry = hak_region_lookup(src);
    uint64_t lost[HAK_MAX_INSTANCES + 1] = { 0 };
    /* Cleared before the move, as in svc_remap: once moved, the old
     * addresses may be mapped by another thread at once. */
    hak_region_set(src, size, 0, lost);
    if (move_pieces(src, dst, size)) {
        hak_region_set(src, size, entry, NULL);
        return -1;
    }
    account_lost(lost);
    emit(HAK_EV_UNMAP, (uint16_t)(entry >> 16), src, size);
    return 0;
}

static int svc_move(void *dst, void *src, size_t bytes)
{
    KEEP_ERRNO_BEGIN;
    int r = move(dst, src, bytes);
    KEEP_ERRNO_END;
    return r;
}

static void svc_decommit(void *p, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~(uintptr_t)(page - 1);
    if (end > start) {
        KEEP_ERRNO_BEGIN;
        madvise((void *)start, end - start, MADV_DONTNEED);
        KEEP_ERRNO_END;
    }
    emit(HAK_EV_UNMAP, (uint16_t)(hak_region_lookup(p) >> 16), p, bytes);
}

/* ---- transparent huge pages ----------------------------------------------- */

/* The sysfs mode, or never when this process has THP disabled (prctl). Read
 * once: the first caller is a box's create or a report, off any fast path. */
static int thp_mode_cached = -1;

int hak_thp_mode(void)
{
    int mode = __atomic_load_n(&thp_mode_cached, __ATOMIC_RELAXED);
    if (mode >= 0)
        return mode;
    mode = HAK_THP_NEVER;
    char text[128];
    int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0) {
        text[n] = '\0';
        /* "always [madvise] never": the bracketed word is the mode */
        if (strstr(text, "[always]"))
            mode = HAK_THP_ALWAYS;
        else if (strstr(text, "[madvise]"))
            mode = HAK_THP_MADVISE;
    }
    if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) > 0)
        mode = HAK_THP_NEVER;
    __atomic_store_n(&thp_mode_cached, mode, __ATOMIC_RELAXED);
    return mode;
}

/* The whole range is advised, not only its whole 2 MB pages: advising part
 * of a mapping splits its VMA, and a block spanning two VMAs can no longer
 * be remapped (large's realloc; mremap refuses). Parts smaller than a huge
 * page simply stay on 4 KB pages. */
static int svc_advise_huge(void *p, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)p + bytes + page - 1) & ~(uintptr_t)(page - 1);
    if (end <= start)
        return -1;
    KEEP_ERRNO_BEGIN;
    int r = madvise((void *)start, end - start, MADV_HUGEPAGE) == 0 ? 0 : -1;
    KEEP_ERRNO_END;
    return r;
}

/* ---- metadata: a bump allocator over 1 MB chunks ------------------------ */

#define meta_lock (hak_locks.meta.lock) /* on the lock page (internal.h) */
static char *meta_cursor, *meta_end;

void *hak_meta_alloc(size_t bytes)
{
    size_t size = (bytes + 63) & ~(size_t)63;
    if (size < bytes)
        return NULL;
    if (size >= 256 * 1024) {
        KEEP_ERRNO_BEGIN;
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        KEEP_ERRNO_END;
        if (m == MAP_FAILED)
            return NULL;
        hak_host_map_note(m, size); /* counted as the host's own resident memory */
        return m;
    }
    hak_spin_lock(&meta_lock);
    if (!meta_cursor || (size_t)(meta_end - meta_cursor) < size) {
        size_t chunk = 1u << 20;
        KEEP_ERRNO_BEGIN;
        void *m = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        KEEP_ERRNO_END;
        if (m == MAP_FAILED) {
            hak_spin_unlock(&meta_lock);
            return NULL;
        }
        hak_host_map_note(m, chunk);
        meta_cursor = m;
        meta_end = meta_cursor + chunk;
    }
    void *p = meta_cursor;
    meta_cursor += size;
    hak_spin_unlock(&meta_lock);
    return p;
}

/* ---- logging and misuse ------------------------------------------------- */

void hak_log_write(const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

void hak_logf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        hak_log_write(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void svc_log(int level, const char *box, const char *fmt, ...)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    char buf[1024];
    int used = snprintf(buf, sizeof buf, "hakmem: %s: %s: ", box ? box : "host",
                        names[level >= 0 && level <= HAK_LOG_DEBUG ? level : 0]);
    va_list ap;
    va_start(ap, fmt);
    if (used > 0 && (size_t)used < sizeof buf - 2)
        used += vsnprintf(buf + used, sizeof buf - 2 - (size_t)used, fmt, ap);
    va_end(ap);
    if (used < 0)
        return;
    if ((size_t)used > sizeof buf - 2)
        used = sizeof buf - 2;
    buf[used++] = '\n';
    hak_log_write(buf, (size_t)used);
}

static void svc_bad_free(const char *box, const char *problem, const void *p)
{
    hak_logf("hakmem: %s: %p (box %s)\n", problem, p, box ? box : "host");
    if (!hak_plan_active || hak_plan_active->bad_free_abort)
        abort();
}

/* ---- events ------------------------------------------------------------ */

static void svc_event(const struct hak_event *ev)
{
#ifdef HAKMEM_NO_TELEMETRY
    /* A host built without telemetry support: the baseline that shows a
     * config without a telemetry box pays nothing for it. */
    (void)ev;
    return;
#endif
    struct hak_plan *plan = hak_plan_active;
    if (!plan || !hak_observer_count)
        return;
    for (int i = 0; i < plan->instance_count; i++) {
        struct hak_instance *in = &plan->instances[i];
        if (in->inst && in->desc->ops.on_event)
            in->desc->ops.on_event(in->inst, ev);
    }
}

static uint64_t svc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- glibc's allocator ----------------------------------------------------- */

/* Looked up on first use (dlsym is 2K instructions, and most processes
 * never ask): threads racing here store the same pointer. */
static size_t (*_Atomic libc_usable)(void *);
static int (*_Atomic libc_trim)(size_t);

static void resolve_libc(void)
{
    if (!atomic_load_explicit(&libc_usable, memory_order_acquire))
        atomic_store_explicit(&libc_usable, (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size"),
                              memory_order_release);
    if (!atomic_load_explicit(&libc_trim, memory_order_acquire))
        atomic_store_explicit(&libc_trim, (int (*)(size_t))dlsym(RTLD_NEXT, "malloc_trim"),
                              memory_order_release);
}

size_t hak_libc_usable_size(void *p)
{
    size_t (*usable)(void *) = atomic_load_explicit(&libc_usable, memory_order_acquire);
    if (!usable) {
        resolve_libc();
        usable = atomic_load_explicit(&libc_usable, memory_order_acquire);
    }
    return usable ? usable(p) : 0;
}

int hak_libc_trim(size_t pad)
{
    int (*trim)(size_t) = atomic_load_explicit(&libc_trim, memory_order_acquire);
    if (!trim) {
        resolve_libc();
        trim = atomic_load_explicit(&libc_trim, memory_order_acquire);
    }
    return trim ? trim(pad) : 0;
}

static size_t libc_usable_size_service(void *p)
{
    return hak_libc_usable_size(p);
}

static void svc_set_thread_owner(const void *tls, void *p, size_t bytes)
{
    if (hak_region_fast_thread == HAK_TOKEN_SHARED)
        return; /* remote_frees = local: no marks */
    uint32_t token = tls ? hak_block_token(((const struct hak_tls_head *)tls)->block) : hak_region_orphan_thread;
    hak_region_set_thread(p, bytes, token);
}

static int svc_lend_slab(void *p, size_t bytes)
{
    if (hak_region_orphan_thread != HAK_TOKEN_ORPHAN)
        return 0; /* local: no marks; home: a sleeping owner's blocks still go home */
    hak_region_set_thread(p, bytes, HAK_TOKEN_ORPHAN);
    return 1;
}

struct hak_host hak_host_services = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_host),
    .page_size = 4096,
    .map = svc_map,
    .unmap = svc_unmap,
    .assign = svc_assign,
    .lookup = svc_lookup,
    .remap = svc_remap,
    .decommit = svc_decommit,
    .meta_alloc = hak_meta_alloc,
    .log = svc_log,
    .bad_free = svc_bad_free,
    .event = svc_event,
    .now_ns = svc_now_ns,
    .libc_malloc = __libc_malloc,
    .libc_free = __libc_free,
    .libc_memalign = __libc_memalign,
    .libc_realloc = __libc_realloc,
    .libc_usable_size = libc_usable_size_service,
    .move = svc_move,
    .thp_mode = hak_thp_mode,
    .advise_huge = svc_advise_huge,
    .set_thread_owner = svc_set_thread_owner,
    .lend_slab = svc_lend_slab,
    .growing = svc_growing,
    .lock_alloc = hak_lock_alloc,
};

void hak_services_fork_prepare(void)
{
    hak_spin_fork_prepare(&meta_lock);
    hak_region_fork_prepare();
}

void hak_services_fork_parent(void)
{
    hak_region_fork_parent();
    hak_spin_fork_parent(&meta_lock);
}

void hak_services_fork_child(void)
{
    hak_region_fork_child();
    hak_spin_fork_child(&meta_lock);
    atomic_store_explicit(&rss_sample, 0, memory_order_relaxed); /* the parent's */
}

void hak_services_resolve_libc(void) { resolve_libc(); }

/* The free-marker secret: from the kernel's AT_RANDOM bytes (no syscall, no
 * allocation), mixed, and odd so it is never 0. */
uint64_t hak_make_secret(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r)
        memcpy(&x, r, sizeof x);
    x ^= 0x68616b6d656d2d31ull; /* "hakmem-1" */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x | 1;
}
