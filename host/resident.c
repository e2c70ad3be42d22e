/*
 * Resident memory at report time: per box and per granule tag, from the
 * region map, by mincore(2) over the granules each box owns; and the host's
 * own (region map leaves, metadata chunks, libhakmem.so's data and BSS),
 * beside the process's RSS read at the same moment.
 *
 * Report-time only (exit report, malloc_stats, malloc_info): a walk of the
 * map's top level and of every leaf, one mincore per run of granules with
 * the same entry. No lock is taken: leaves are never freed, and a granule
 * unmapped while it is counted makes mincore fail for that run, which is
 * then counted granule by granule, skipping what is gone. No allocation.
 * Huge-page coverage per box comes from /proc/self/smaps (measure_huge).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the host's own mappings ---------------------------------------------- */

#define HOST_MAPS 512

static struct {
    void *_Atomic p;
    size_t bytes;
} host_maps[HOST_MAPS];
static _Atomic unsigned host_map_count;
static _Atomic uint64_t host_unlisted_bytes; /* past HOST_MAPS: mapped, not scanned */

void hak_host_map_note(void *p, size_t bytes)
{
    unsigned i = atomic_fetch_add_explicit(&host_map_count, 1, memory_order_relaxed);
    if (i >= HOST_MAPS) {
        atomic_fetch_add_explicit(&host_unlisted_bytes, bytes, memory_order_relaxed);
        return;
    }
    host_maps[i].bytes = bytes;
    atomic_store_explicit(&host_maps[i].p, p, memory_order_release);
}

/* ---- mincore ----------------------------------------------------------------- */

/* Threads growing at once may all ask first (the growth check samples
 * statm from any thread): relaxed atomics, each stores the same value. */
static size_t page_bytes(void)
{
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

static uint64_t count_vec(const unsigned char *vec, size_t n)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += vec[i] & 1;
    return k;
}

/* Whether a page holds anything but zeros. A private anonymous page that
 * was only ever read is mapped to the kernel's shared zero page: mincore
 * calls it resident, RSS does not count it. The page is read as raw
 * memory, padding between globals included (sanitizers' redzones) and
 * words other threads may be writing (any value will do): not
 * instrumented. */
__attribute__((no_sanitize("address", "thread"))) static int page_written(uintptr_t a, size_t page)
{
    const uint64_t *w = (const uint64_t *)a;
    for (size_t i = 0; i < page / sizeof *w; i++)
        if (w[i])
            return 1;
    return 0;
}

static uint64_t count_written(const unsigned char *vec, uintptr_t a, size_t n, size_t page)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (vec[i] & 1) && page_written(a + i * page, page);
    return k;
}

/* Resident bytes of [p, p + bytes): what is unmapped meanwhile counts 0.
 * written: only pages holding data count, for the host's own memory, whose
 * lookups read pages never written (region map leaves, static tables);
 * the boxes' memory is not read through, which would cost as much as the
 * heap is large. */
static uint64_t resident_pages(const void *p, size_t bytes, int written)
{
    const size_t page = page_bytes();
    unsigned char vec[1024];
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)p + bytes + page - 1) & ~(uintptr_t)(page - 1);
    size_t step = sizeof vec * page;
    uint64_t pages = 0;
    while (a < end) {
        size_t chunk = end - a < step ? end - a : step;
        if (mincore((void *)a, chunk, vec) == 0) {
            pages += written ? count_written(vec, a, chunk / page, page) : count_vec(vec, chunk / page);
            a += chunk;
        } else if (step > page) {
            step = step > HAK_GRANULE ? HAK_GRANULE : page; /* narrow down past the hole */
        } else {
            a += chunk; /* this page is gone */
        }
    }
    return pages * page;
}

static uint64_t resident_of(const void *p, size_t bytes) { return resident_pages(p, bytes, 0); }
static uint64_t written_of(const void *p, size_t bytes) { return resident_pages(p, bytes, 1); }

/* ---- libhakmem.so's writable segments ----------------------------------------- */

struct own_object {
    uintptr_t probe;
    uint64_t resident, mapped;
};

static int object_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct own_object *o = arg;
    int mine = 0;
    for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        mine = ph->p_type == PT_LOAD && o->probe >= lo && o->probe < lo + ph->p_memsz;
    }
    if (!mine)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        o->resident += written_of((const void *)lo, ph->p_memsz);
        o->mapped += ph->p_memsz;
    }
    return 1;
}

/* ---- the walk ----------------------------------------------------------------- */

/* Resident bytes of the process (statm's second field), or 0 when unknown.
 * Also read on growth (services.c), inside malloc: no allocation, errno
 * kept (a malloc that succeeds leaves it alone), and the file opened and
 * closed each time (a descriptor kept open would be closed or reused by
 * programs that close every descriptor, and a fork would inherit the
 * parent's). */
uint64_t hak_process_rss(void)
{
    char text[128];
    int saved_errno = errno;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    ssize_t n = -1;
    if (fd >= 0) {
        n = read(fd, text, sizeof text - 1);
        close(fd);
    }
    errno = saved_errno;
    if (n <= 0)
        return 0;
    text[n] = '\0';
    const char *s = text;
    while (*s && *s != ' ')
        s++; /* size */
    uint64_t pages = 0;
    while (*s == ' ')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        pages = pages * 10 + (uint64_t)(*s - '0');
    return pages * page_bytes();
}

/* ---- huge-page coverage: AnonHugePages of the boxes' ranges ------------------ */

/* smaps gives AnonHugePages per VMA, and a VMA may hold several boxes'
 * mappings (the kernel merges neighbours with the same flags). A huge page
 * is a 2 MB-aligned block inside the VMA and wholly resident, so the
 * VMA's count is attributed to such blocks, granule by granule to their
 * owners: exact when every such block is huge (the usual case), shared out
 * evenly among them when there are more candidates than huge pages. */
static int block_resident(uintptr_t a)
{
    const size_t page = page_bytes();
    unsigned char vec[HAK_HUGE_PAGE / 4096];
    if (HAK_HUGE_PAGE / page > sizeof vec || mincore((void *)a, HAK_HUGE_PAGE, vec) != 0)
        return 0;
    return count_vec(vec, HAK_HUGE_PAGE / page) == HAK_HUGE_PAGE / page;
}

static void attribute_vma(struct hak_resident_report *out, uintptr_t lo, uintptr_t hi,
                          uint64_t huge_bytes)
{
    out->process_huge += huge_bytes;
    uintptr_t first = (lo + HAK_HUGE_PAGE - 1) & ~(uintptr_t)(HAK_HUGE_PAGE - 1);
    uint64_t candidates = 0;
    for (uintptr_t a = first; a + HAK_HUGE_PAGE <= hi; a += HAK_HUGE_PAGE)
        candidates += (uint64_t)block_resident(a);
    if (!candidates)
        return;
    uint64_t pages = huge_bytes / HAK_HUGE_PAGE;
    if (pages > candidates)
        pages = candidates;
    for (uintptr_t a = first; a + HAK_HUGE_PAGE <= hi; a += HAK_HUGE_PAGE) {
        if (!block_resident(a))
            continue;
        for (uintptr_t g = a; g < a + HAK_HUGE_PAGE; g += HAK_GRANULE) {
            uint32_t owner = hak_region_lookup((const void *)g) >> 16;
            if (owner && owner <= HAK_MAX_INSTANCES)
                out->huge[owner] += (uint64_t)HAK_GRANULE * pages / candidates;
        }
    }
}

static uint64_t parse_hex(const char **s)
{
    uint64_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v << 4 | (uint64_t)d;
    }
}

/* One smaps line: a VMA header ("lo-hi perms ...") or a field. */
static void smaps_line(struct hak_resident_report *out, const char *line, uintptr_t *lo,
                       uintptr_t *hi)
{
    static const char field[] = "AnonHugePages:";
    if (!strncmp(line, field, sizeof field - 1)) {
        const char *s = line + sizeof field - 1;
        while (*s == ' ')
            s++;
        uint64_t kb = 0;
        for (; *s >= '0' && *s <= '9'; s++)
            kb = kb * 10 + (uint64_t)(*s - '0');
        if (kb && *hi > *lo)
            attribute_vma(out, *lo, *hi, kb << 10);
        return;
    }
    const char *s = line;
    uint64_t a = parse_hex(&s);
    if (s > line && *s == '-') {
        s++;
        const char *t = s;
        uint64_t b = parse_hex(&s);
        if (s > t && *s == ' ') {
            *lo = (uintptr_t)a;
            *hi = (uintptr_t)b;
        }
    }
}

static void measure_huge(struct hak_resident_report *out)
{
    out->thp_mode = hak_thp_mode();
    int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[8192];
    size_t have = 0;
    uintptr_t lo = 0, hi = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
            *nl = '\0';
            smaps_line(out, line, &lo, &hi);
            line = nl + 1;
        }
        have -= (size_t)(line - buf);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0; /* a line longer than the buffer: a path; drop it */
    }
    close(fd);
}

void hak_resident_measure(struct hak_resident_report *out)
{
    memset(out, 0, sizeof *out);
    const uint32_t leaf_entries = 1u << HAK_REGION_LEAF_BITS;
    const size_t run_max = 64; /* granules per mincore: a 1 KB vector */
    for (size_t top = 0; top < (1u << HAK_REGION_TOP_BITS); top++) {
        struct hak_region_slot *leaf = atomic_load_explicit(&hak_region_top[top], memory_order_acquire);
        if (!leaf)
            continue;
        out->host += written_of(leaf, sizeof *leaf * leaf_entries);
        out->host_mapped += sizeof *leaf * leaf_entries;
        for (uint32_t i = 0; i < leaf_entries;) {
            uint32_t e = __atomic_load_n(&leaf[i].entry, __ATOMIC_RELAXED) & ~HAK_REGION_FAST;
            if (!e) {
                i++;
                continue;
            }
            uint32_t j = i + 1;
            while (j < leaf_entries && j - i < run_max &&
                   (__atomic_load_n(&leaf[j].entry, __ATOMIC_RELAXED) & ~HAK_REGION_FAST) == e)
                j++;
            uintptr_t addr = ((uintptr_t)top << 32) | ((uintptr_t)i << HAK_GRANULE_SHIFT);
            uint64_t r = resident_of((const void *)addr, (size_t)(j - i) << HAK_GRANULE_SHIFT);
            uint32_t owner = e >> 16, tag = e & 0xFFFFu;
            if (owner <= HAK_MAX_INSTANCES) {
                struct hak_resident *b = &out->box[owner];
                b->bytes += r;
                if (tag < HAK_RESIDENT_TAGS)
                    b->by_tag[tag] += r;
                else
                    b->other_tags += r;
            }
            i = j;
        }
    }
    unsigned maps = atomic_load_explicit(&host_map_count, memory_order_relaxed);
    for (unsigned i = 0; i < maps && i < HOST_MAPS; i++) {
        void *p = atomic_load_explicit(&host_maps[i].p, memory_order_acquire);
        if (!p)
            continue; /* being noted right now */
        out->host += written_of(p, host_maps[i].bytes);
        out->host_mapped += host_maps[i].bytes;
    }
    out->host_mapped += atomic_load_explicit(&host_unlisted_bytes, memory_order_relaxed);
    struct own_object self = {.probe = (uintptr_t)&hak_region_top};
    dl_iterate_phdr(object_segments, &self);
    out->host += self.resident;
    out->host_mapped += self.mapped;
    out->process_rss = hak_process_rss();
    measure_huge(out);
}
