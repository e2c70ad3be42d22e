/*
 * The reports: the exit report (host.stats = text | json), malloc_stats()
 * and malloc_info()'s XML, mallinfo2's totals. Per box: allocations, frees,
 * bytes in use, mapped, resident and on huge pages (resident.c), peak mapped;
 * the header names the process (pid, command line).
 *
 * Counters live in the boxes' slices (no shared counter on any fast path);
 * they are summed here, at report time. Everything is formatted with
 * snprintf into a caller's buffer and written with write(2): stdio would
 * allocate, exit may be late in teardown, and malloc_stats/malloc_info are
 * called by programs that may hold their own locks. No host lock is held
 * while anything is written.
 */
#include "internal.h"

#include <box_api/hakmem_util.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct box_row {
    struct hak_stats s;
    uint64_t mapped, peak, in_use;
    const struct hak_resident *resident;
    uint64_t huge; /* of its resident bytes, on huge pages */
};

struct report {
    struct box_row rows[HAK_MAX_INSTANCES];
    struct hak_resident_report res;
    uint64_t mapped, peak, in_use, cached, resident, huge;
};

/* The program's bytes in use: a tier under a front counts the blocks it gave
 * the front (in use or cached there), and a page box the spans it gave the
 * tiers, so only alloc boxes with no front above count. */
static int counts_for_program(const struct hak_instance *in)
{
    return (in->desc->roles & HAK_ROLE_ALLOC) && in->front_above < 0;
}

static void collect(const struct hak_plan *plan, struct report *r, int with_resident)
{
    memset(&r->mapped, 0, sizeof *r - offsetof(struct report, mapped));
    if (with_resident)
        hak_resident_measure(&r->res);
    else
        memset(&r->res, 0, sizeof r->res);
    for (int i = 0; i < plan->instance_count; i++) {
        const struct hak_instance *in = &plan->instances[i];
        struct box_row *row = &r->rows[i];
        hak_stats_collect(plan, i, &row->s);
        row->mapped = atomic_load(&in->bytes_mapped);
        row->peak = atomic_load(&in->peak_mapped);
        row->in_use = row->s.bytes_allocated > row->s.bytes_freed
                          ? row->s.bytes_allocated - row->s.bytes_freed : 0;
        row->resident = &r->res.box[in->owner <= HAK_MAX_INSTANCES ? in->owner : 0];
        row->huge = r->res.huge[in->owner <= HAK_MAX_INSTANCES ? in->owner : 0];
        r->huge += row->huge;
        r->mapped += row->mapped;
        r->peak += row->peak;
        r->cached += row->s.cached_bytes;
        r->resident += row->resident->bytes;
        if (counts_for_program(in))
            r->in_use += row->in_use;
    }
}

#define APPEND(...) do { \
    int w_ = snprintf(buf + used, cap > used ? cap - used : 0, __VA_ARGS__); \
    if (w_ > 0) used += (size_t)w_; } while (0)

static const char *human(uint64_t bytes, char *out, size_t len)
{
    if (bytes >= (10ull << 30))
        snprintf(out, len, "%lluG", (unsigned long long)(bytes >> 30));
    else if (bytes >= (10ull << 20))
        snprintf(out, len, "%lluM", (unsigned long long)(bytes >> 20));
    else if (bytes >= (10ull << 10))
        snprintf(out, len, "%lluK", (unsigned long long)(bytes >> 10));
    else
        snprintf(out, len, "%llu", (unsigned long long)bytes);
    return out;
}

int hak_read_cmdline(char *out, size_t len)
{
    out[0] = '\0';
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, out, len - 1);
    close(fd);
    if (n < 0)
        n = 0;
    for (ssize_t i = 0; i < n - 1; i++)
        if (out[i] == '\0')
            out[i] = ' ';
    out[n] = '\0';
    return 0;
}

static int format_text(const struct hak_plan *plan, const struct report *r,
                       const char *command_line, char *buf, size_t cap)
{
    size_t used = 0;
    char a[32], b[32], c[32], d[32], e[32];
    static const char *const thp_names[] = {"never", "madvise", "always"};
    APPEND("hakmem stats: pid %ld, command: %s\n", (long)getpid(),
           command_line && *command_line ? command_line : "?");
    APPEND("config: %s\n", plan->config_name);
    APPEND("%-12s %-20s %12s %12s %10s %10s %10s %10s %10s\n", "box", "plugin", "allocs",
           "frees", "in use", "mapped", "resident", "huge", "peak map");
    for (int k = 0; k < plan->instance_count; k++) {
        int i = plan->order[k];
        const struct hak_instance *in = &plan->instances[i];
        const struct box_row *row = &r->rows[i];
        APPEND("%-12s %-20s %12llu %12llu %10s %10s %10s %10s %10s\n", in->name, in->plugin,
               (unsigned long long)row->s.allocs, (unsigned long long)row->s.frees,
               human(row->in_use, a, sizeof a), human(row->mapped, b, sizeof b),
               human(row->resident->bytes, c, sizeof c), human(row->huge, e, sizeof e),
               human(row->peak, d, sizeof d));
    }
    uint64_t rest = r->res.process_rss > r->resident + r->res.host
                        ? r->res.process_rss - r->resident - r->res.host : 0;
    APPEND("resident: boxes %s, host %s (region map, metadata, its data), process RSS %s "
           "(rest %s: program, libraries, stacks)\n",
           human(r->resident, a, sizeof a), human(r->res.host, b, sizeof b),
           human(r->res.process_rss, c, sizeof c), human(rest, d, sizeof d));
    APPEND("huge pages (THP %s): boxes %s of their %s resident (%llu%%), process %s\n",
           thp_names[r->res.thp_mode >= 0 && r->res.thp_mode <= 2 ? r->res.thp_mode : 0],
           human(r->huge, a, sizeof a), human(r->resident, b, sizeof b),
           (unsigned long long)(r->resident ? r->huge * 100 / r->resident : 0),
           human(r->res.process_huge, c, sizeof c));
    return (int)used;
}

int hak_stats_format_text(const struct hak_plan *plan, const char *command_line, char *buf,
                          size_t cap)
{
    struct report r;
    collect(plan, &r, 1);
    return format_text(plan, &r, command_line, buf, cap);
}

static int format_json(const struct hak_plan *plan, const struct report *r,
                       const char *command_line, char *buf, size_t cap)
{
    size_t used = 0;
    APPEND("{\"pid\":%ld,\"config\":\"", (long)getpid());
    for (const char *c = plan->config_name; *c; c++)
        APPEND(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
    APPEND("\",\"command\":\"");
    for (const char *c = command_line ? command_line : ""; *c; c++) {
        if (*c == '"' || *c == '\\')
            APPEND("\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            APPEND("\\u%04x", *c);
        else
            APPEND("%c", *c);
    }
    APPEND("\",\"boxes\":[");
    for (int k = 0; k < plan->instance_count; k++) {
        int i = plan->order[k];
        const struct hak_instance *in = &plan->instances[i];
        const struct box_row *row = &r->rows[i];
        APPEND("%s{\"name\":\"%s\",\"plugin\":\"%s\",\"allocs\":%llu,\"frees\":%llu,"
               "\"bytes_allocated\":%llu,\"bytes_freed\":%llu,\"refills\":%llu,\"drains\":%llu,"
               "\"remote_frees\":%llu,\"cached_bytes\":%llu,\"bytes_mapped\":%llu,"
               "\"resident_bytes\":%llu,\"huge_bytes\":%llu,\"peak_mapped\":%llu}",
               k ? "," : "", in->name, in->plugin, (unsigned long long)row->s.allocs,
               (unsigned long long)row->s.frees, (unsigned long long)row->s.bytes_allocated,
               (unsigned long long)row->s.bytes_freed, (unsigned long long)row->s.refills,
               (unsigned long long)row->s.drains, (unsigned long long)row->s.remote_frees,
               (unsigned long long)row->s.cached_bytes, (unsigned long long)row->mapped,
               (unsigned long long)row->resident->bytes, (unsigned long long)row->huge,
               (unsigned long long)row->peak);
    }
    static const char *const thp_names[] = {"never", "madvise", "always"};
    APPEND("],\"resident_bytes\":%llu,\"host_resident_bytes\":%llu,\"host_mapped_bytes\":%llu,"
           "\"process_rss_bytes\":%llu,\"huge_bytes\":%llu,\"process_huge_bytes\":%llu,"
           "\"thp_mode\":\"%s\"}\n",
           (unsigned long long)r->resident, (unsigned long long)r->res.host,
           (unsigned long long)r->res.host_mapped, (unsigned long long)r->res.process_rss,
           (unsigned long long)r->huge, (unsigned long long)r->res.process_huge,
           thp_names[r->res.thp_mode >= 0 && r->res.thp_mode <= 2 ? r->res.thp_mode : 0]);
    return (int)used;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* stats_file with %p replaced by the pid (the box kit's expansion, which
 * telemetry's json_file uses too). */
int hak_stats_path(const char *pattern, char *out, size_t len)
{
    return hak_path_expand_pid(pattern, out, len);
}

void hak_stats_report(const struct hak_plan *plan, const char *command_line)
{
    if (plan->stats == HAK_STATS_OFF)
        return;
    static struct report r; /* at exit, once per process: off the stack */
    char buf[16384];
    collect(plan, &r, 1);
    int n = plan->stats == HAK_STATS_JSON ? format_json(plan, &r, command_line, buf, sizeof buf)
                                          : format_text(plan, &r, command_line, buf, sizeof buf);
    if (n <= 0)
        return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    int fd = STDERR_FILENO;
    if (plan->stats_file[0]) {
        char path[PATH_MAX];
        fd = hak_stats_path(plan->stats_file, path, sizeof path) == 0
                 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        if (fd < 0) {
            hak_logf("hakmem: cannot write stats to %s: %s\n", plan->stats_file,
                     strerror(errno ? errno : ENAMETOOLONG));
            fd = STDERR_FILENO;
        }
    }
    write_all(fd, buf, len);
    if (fd != STDERR_FILENO)
        close(fd);
}

/* Observers (telemetry) get every box's counters at exit. */
void hak_observers_report(const struct hak_plan *plan, const char *command_line)
{
    if (!hak_observer_count)
        return;
    static struct report r;
    struct hak_report_box boxes[HAK_MAX_INSTANCES];
    struct hak_resident resident[HAK_MAX_INSTANCES];
    uint64_t huge[HAK_MAX_INSTANCES];
    collect(plan, &r, 1);
    for (int i = 0; i < plan->instance_count; i++) {
        const struct hak_instance *in = &plan->instances[i];
        boxes[i] = (struct hak_report_box){
            .instance_name = in->name, .plugin = in->plugin, .owner = in->owner,
            .roles = in->desc->roles, .stats = r.rows[i].s, .bytes_mapped = r.rows[i].mapped,
            .peak_mapped = r.rows[i].peak,
        };
        resident[i] = *r.rows[i].resident;
        huge[i] = r.rows[i].huge;
    }
    struct hak_report_ctx ctx = {
        .config_name = plan->config_name, .command_line = command_line,
        .box_count = (uint32_t)plan->instance_count, .boxes = boxes,
        .resident = resident, .host_resident = r.res.host, .process_rss = r.res.process_rss,
        .thp_mode = (uint32_t)r.res.thp_mode, .huge = huge, .process_huge = r.res.process_huge,
    };
    for (int i = 0; i < plan->instance_count; i++) {
        const struct hak_instance *in = &plan->instances[i];
        if (in->inst && in->desc->ops.report)
            in->desc->ops.report(in->inst, &ctx);
    }
}

/* ---- glibc's statistics calls ------------------------------------------- */

void hak_stats_totals(const struct hak_plan *plan, struct hak_totals *t)
{
    memset(t, 0, sizeof *t);
    if (!plan)
        return;
    /* Counters only, the sums collect() makes: mallinfo2 may be called
     * often, the resident walk is for the reports. */
    for (int i = 0; i < plan->instance_count; i++) {
        const struct hak_instance *in = &plan->instances[i];
        struct hak_stats s;
        hak_stats_collect(plan, i, &s);
        t->mapped += atomic_load(&in->bytes_mapped);
        t->peak += atomic_load(&in->peak_mapped);
        t->cached += s.cached_bytes;
        if (counts_for_program(in) && s.bytes_allocated > s.bytes_freed)
            t->in_use += s.bytes_allocated - s.bytes_freed;
    }
}

/* The report buffers are mapped, not on the stack (a caller's thread may
 * have a small one) and not static (two threads may call at once). */
static char *report_buffer(size_t bytes)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

#define REPORT_BUFFER (256u * 1024u)

void hak_malloc_stats(const struct hak_plan *plan)
{
    char *mem = report_buffer(REPORT_BUFFER + sizeof(struct report));
    if (!mem)
        return;
    struct report *r = (struct report *)mem;
    char *buf = mem + sizeof *r, cmd[1024];
    hak_read_cmdline(cmd, sizeof cmd);
    int n = 0;
    if (plan) {
        collect(plan, r, 1);
        n = format_text(plan, r, cmd, buf, REPORT_BUFFER);
    } else {
        n = snprintf(buf, REPORT_BUFFER, "hakmem stats: pid %ld, command: %s\n"
                     "hakmem is not running (config error with on_config_error = fallback, "
                     "or not started): glibc serves this process\n", (long)getpid(), cmd);
    }
    if (n > 0)
        write_all(STDERR_FILENO, buf, (size_t)n < REPORT_BUFFER ? (size_t)n : REPORT_BUFFER - 1);
    munmap(mem, REPORT_BUFFER + sizeof(struct report));
}

/* An attribute value: a plugin may be a path, which may hold & < > or ". */
static const char *xml_attr(const char *s, char *out, size_t len)
{
    size_t used = 0;
    for (; *s && used + 7 < len; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                      : *s == '"' ? "&quot;" : NULL;
        if (e) {
            memcpy(out + used, e, strlen(e));
            used += strlen(e);
        } else if ((unsigned char)*s >= 0x20) {
            out[used++] = *s;
        }
    }
    out[used] = '\0';
    return out;
}

static int format_xml(const struct hak_plan *plan, const struct report *r, char *buf, size_t cap)
{
    char name[HAK_NAME_MAX * 6], plugin[HAK_VALUE_MAX * 6];
    size_t used = 0;
    APPEND("<malloc version=\"1\">\n");
    int nr = 0;
    for (int k = 0; plan && k < plan->instance_count; k++) {
        int i = plan->order[k];
        const struct hak_instance *in = &plan->instances[i];
        const struct box_row *row = &r->rows[i];
        if (in->desc->roles == HAK_ROLE_OBSERVER)
            continue;
        uint64_t free_bytes = row->mapped > row->in_use ? row->mapped - row->in_use : 0;
        /* glibc's elements, so its readers keep working; name and plugin
         * are hakmem's additions. */
        APPEND("<heap nr=\"%d\" name=\"%s\" plugin=\"%s\">\n<sizes>\n</sizes>\n", nr++,
               xml_attr(in->name, name, sizeof name), xml_attr(in->plugin, plugin, sizeof plugin));
        APPEND("<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
               "<total type=\"rest\" count=\"0\" size=\"%llu\"/>\n"
               "<system type=\"current\" size=\"%llu\"/>\n"
               "<system type=\"max\" size=\"%llu\"/>\n"
               "<aspace type=\"total\" size=\"%llu\"/>\n"
               "<aspace type=\"mprotect\" size=\"%llu\"/>\n",
               (unsigned long long)free_bytes, (unsigned long long)row->mapped,
               (unsigned long long)row->peak, (unsigned long long)row->mapped,
               (unsigned long long)row->mapped);
        APPEND("<hakmem allocs=\"%llu\" frees=\"%llu\" in_use=\"%llu\" cached=\"%llu\" "
               "resident=\"%llu\" huge=\"%llu\"/>\n</heap>\n",
               (unsigned long long)row->s.allocs, (unsigned long long)row->s.frees,
               (unsigned long long)row->in_use, (unsigned long long)row->s.cached_bytes,
               (unsigned long long)row->resident->bytes, (unsigned long long)row->huge);
    }
    uint64_t free_bytes = r->mapped > r->in_use ? r->mapped - r->in_use : 0;
    APPEND("<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
           "<total type=\"rest\" count=\"0\" size=\"%llu\"/>\n"
           "<total type=\"mmap\" count=\"0\" size=\"0\"/>\n"
           "<system type=\"current\" size=\"%llu\"/>\n"
           "<system type=\"max\" size=\"%llu\"/>\n"
           "<aspace type=\"total\" size=\"%llu\"/>\n"
           "<aspace type=\"mprotect\" size=\"%llu\"/>\n",
           (unsigned long long)free_bytes, (unsigned long long)r->mapped,
           (unsigned long long)r->peak, (unsigned long long)r->mapped,
           (unsigned long long)r->mapped);
    APPEND("<hakmem pid=\"%ld\" in_use=\"%llu\" cached=\"%llu\" resident=\"%llu\" "
           "host_resident=\"%llu\" process_rss=\"%llu\"/>\n</malloc>\n", (long)getpid(),
           (unsigned long long)r->in_use, (unsigned long long)r->cached,
           (unsigned long long)r->resident, (unsigned long long)r->res.host,
           (unsigned long long)r->res.process_rss);
    return (int)used;
}

/* The XML into a mapped buffer; *len its length. The caller writes it out
 * (to a FILE: stdio may allocate, which is fine once this returns) and
 * frees it with hak_report_free. NULL when no memory. */
char *hak_malloc_info_xml(const struct hak_plan *plan, size_t *len)
{
    char *mem = report_buffer(REPORT_BUFFER + sizeof(struct report));
    if (!mem)
        return NULL;
    struct report *r = (struct report *)mem;
    char *buf = mem + sizeof *r;
    if (plan)
        collect(plan, r, 1);
    int n = format_xml(plan, r, buf, REPORT_BUFFER);
    *len = n > 0 ? ((size_t)n < REPORT_BUFFER ? (size_t)n : REPORT_BUFFER - 1) : 0;
    return buf;
}

void hak_report_free(char *buf)
{
    munmap(buf - sizeof(struct report), REPORT_BUFFER + sizeof(struct report));
}
