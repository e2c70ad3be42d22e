/*
 * The exit report: per box, allocations, frees, bytes in use, bytes mapped.
 * Counters live in the boxes' slices (no shared counter on any fast path);
 * they are summed here, once, at exit. Written with write(2) from a stack
 * buffer: stdio would allocate, and exit may be late in teardown.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

struct box_row {
    struct hak_stats s;
    uint64_t mapped, peak;
};

static void collect(const struct hak_plan *plan, struct box_row *rows)
{
    for (int i = 0; i < plan->instance_count; i++) {
        hak_stats_collect(plan, i, &rows[i].s);
        rows[i].mapped = atomic_load(&plan->instances[i].bytes_mapped);
        rows[i].peak = atomic_load(&plan->instances[i].peak_mapped);
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

int hak_stats_format_text(const struct hak_plan *plan, char *buf, size_t cap)
{
    struct box_row rows[HAK_MAX_INSTANCES];
    collect(plan, rows);
    size_t used = 0;
    APPEND("hakmem stats (config %s)\n", plan->config_name);
    APPEND("%-12s %-20s %12s %12s %10s %10s %10s\n", "box", "plugin", "allocs", "frees", "in use",
           "mapped", "peak map");
    for (int k = 0; k < plan->instance_count; k++) {
        int i = plan->order[k];
        const struct hak_instance *in = &plan->instances[i];
        const struct box_row *r = &rows[i];
        char a[32], b[32], c[32];
        uint64_t in_use = r->s.bytes_allocated > r->s.bytes_freed ? r->s.bytes_allocated - r->s.bytes_freed : 0;
        APPEND("%-12s %-20s %12llu %12llu %10s %10s %10s\n", in->name, in->plugin,
               (unsigned long long)r->s.allocs, (unsigned long long)r->s.frees,
               human(in_use, a, sizeof a), human(r->mapped, b, sizeof b), human(r->peak, c, sizeof c));
    }
    return (int)used;
}

static int format_json(const struct hak_plan *plan, const char *command_line, char *buf, size_t cap)
{
    struct box_row rows[HAK_MAX_INSTANCES];
    collect(plan, rows);
    size_t used = 0;
    APPEND("{\"config\":\"");
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
        const struct box_row *r = &rows[i];
        APPEND("%s{\"name\":\"%s\",\"plugin\":\"%s\",\"allocs\":%llu,\"frees\":%llu,"
               "\"bytes_allocated\":%llu,\"bytes_freed\":%llu,\"refills\":%llu,\"drains\":%llu,"
               "\"remote_frees\":%llu,\"cached_bytes\":%llu,\"bytes_mapped\":%llu,\"peak_mapped\":%llu}",
               k ? "," : "", in->name, in->plugin, (unsigned long long)r->s.allocs,
               (unsigned long long)r->s.frees, (unsigned long long)r->s.bytes_allocated,
               (unsigned long long)r->s.bytes_freed, (unsigned long long)r->s.refills,
               (unsigned long long)r->s.drains, (unsigned long long)r->s.remote_frees,
               (unsigned long long)r->s.cached_bytes, (unsigned long long)r->mapped,
               (unsigned long long)r->peak);
    }
    APPEND("]}\n");
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

void hak_stats_report(const struct hak_plan *plan, const char *command_line)
{
    if (plan->stats == HAK_STATS_OFF)
        return;
    char buf[16384];
    int n = plan->stats == HAK_STATS_JSON ? format_json(plan, command_line, buf, sizeof buf)
                                          : hak_stats_format_text(plan, buf, sizeof buf);
    if (n <= 0)
        return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    int fd = STDERR_FILENO;
    if (plan->stats_file[0]) {
        fd = open(plan->stats_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            hak_logf("hakmem: cannot write stats to %s: %s\n", plan->stats_file, strerror(errno));
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
    struct box_row rows[HAK_MAX_INSTANCES];
    struct hak_report_box boxes[HAK_MAX_INSTANCES];
    collect(plan, rows);
    for (int i = 0; i < plan->instance_count; i++) {
        const struct hak_instance *in = &plan->instances[i];
        boxes[i] = (struct hak_report_box){
            .instance_name = in->name, .plugin = in->plugin, .owner = in->owner,
            .roles = in->desc->roles, .stats = rows[i].s, .bytes_mapped = rows[i].mapped,
            .peak_mapped = rows[i].peak,
        };
    }
    struct hak_report_ctx ctx = {
        .config_name = plan->config_name, .command_line = command_line,
        .box_count = (uint32_t)plan->instance_count, .boxes = boxes,
    };
    for (int i = 0; i < plan->instance_count; i++) {
        const struct hak_instance *in = &plan->instances[i];
        if (in->inst && in->desc->ops.report)
            in->desc->ops.report(in->inst, &ctx);
    }
}
