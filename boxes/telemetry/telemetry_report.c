/*
 * The exit report: a table on stderr and JSON to json_file. It runs inside
 * the allocator, late in the process: open/write through a small buffer on
 * the stack, snprintf for numbers, no stdio FILE and no malloc.
 *
 * The JSON format (read back by `hakmem report`):
 *   {"hakmem_telemetry":1, "instance":..., "config":..., "command":...,
 *    "pid":N, "events":bool,
 *    "process":{"minor_faults","major_faults","peak_rss_kb"} or null,
 *    "buckets":{"C0":{...}, ..., "LARGE":{...}, "OTHER":{...}},
 *    "boxes":[{"name","plugin","owner","roles",<struct hak_stats>,
 *              "bytes_mapped","peak_mapped",<event counters>,...}]}
 * Every bucket is always present; touches_per_page is null when unknown.
 */
#include "telemetry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- output ----------------------------------------------------------- */

void tel_out_flush(struct tel_out *o)
{
    const char *p = o->buf;
    size_t len = o->used;
    o->used = 0;
    while (len > 0 && o->fd >= 0) {
        ssize_t n = write(o->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

void tel_printf(struct tel_out *o, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t room = sizeof o->buf - o->used;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->used, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            o->used += (size_t)n;
            return;
        }
        if (attempt == 0 && o->used) {
            tel_out_flush(o); /* retry in an empty buffer */
            continue;
        }
        o->used = sizeof o->buf - 1; /* longer than the buffer: truncated */
        return;
    }
}

/* Length of the valid UTF-8 sequence at s, 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

void tel_json_string(struct tel_out *o, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c;) {
        if (*c == '"' || *c == '\\') {
            tel_printf(o, "\\%c", *c++);
        } else if (*c < 0x20 || *c == 0x7F) {
            tel_printf(o, "\\u%04x", *c++);
        } else if (*c < 0x80) {
            tel_printf(o, "%c", *c++);
        } else {
            size_t n = utf8_len(c);
            if (n) {
                tel_printf(o, "%.*s", (int)n, (const char *)c);
                c += n;
            } else {
                tel_printf(o, "\\ufffd"); /* not UTF-8: keep the JSON valid */
                c++;
            }
        }
    }
}

/* ---- shared helpers ------------------------------------------------------ */

struct tel_process {
    uint64_t minor_faults, major_faults, peak_rss_kb;
};

static void read_process(struct tel_process *p)
{
    struct rusage ru;
    memset(p, 0, sizeof *p);
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        p->minor_faults = (uint64_t)ru.ru_minflt;
        p->major_faults = (uint64_t)ru.ru_majflt;
        p->peak_rss_kb = (uint64_t)ru.ru_maxrss;
    }
}

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

static const char *milli_text(uint64_t milli, char *out, size_t len)
{
    snprintf(out, len, "%llu.%03llu", (unsigned long long)(milli / 1000),
             (unsigned long long)(milli % 1000));
    return out;
}

static const char *role_text(uint32_t roles, char *out, size_t len)
{
    snprintf(out, len, "%s%s%s%s%s", roles & HAK_ROLE_ALLOC ? "alloc" : "",
             (roles & HAK_ROLE_ALLOC) && (roles & ~HAK_ROLE_ALLOC) ? "," : "",
             roles & HAK_ROLE_PAGES ? "pages" : "",
             (roles & HAK_ROLE_PAGES) && (roles & HAK_ROLE_OBSERVER) ? "," : "",
             roles & HAK_ROLE_OBSERVER ? "observer" : "");
    return out;
}

static const char *mask_text(uint32_t mask, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int b = 0; b < HAK_BUCKET_COUNT && used < len; b++)
        if (mask & (1u << b)) {
            int n = snprintf(out + used, len - used, "%s%s", used ? "," : "", tel_bucket_names[b]);
            if (n > 0)
                used += (size_t)n;
        }
    return out;
}

/* Observers' own rows say nothing: leave them out. */
static bool shown_box(const struct hak_report_box *rb)
{
    return rb->roles != HAK_ROLE_OBSERVER;
}

/* Huge-page coverage per box: hosts with the thp_mode service fill it. */
static bool has_huge(const struct tel_inst *in, const struct hak_report_ctx *ctx)
{
    return HAK_HOST_HAS(in->host, thp_mode) && ctx->huge != NULL;
}

static const char *thp_text(uint32_t mode)
{
    static const char *const names[] = {"never", "madvise", "always"};
    return names[mode <= HAK_THP_ALWAYS ? mode : 0];
}

/* ---- text ------------------------------------------------------------- */

static void write_text(const struct tel_inst *in, const struct hak_report_ctx *ctx,
                       const struct tel_view *v, const struct tel_process *proc)
{
    struct tel_out o = {.fd = STDERR_FILENO};
    char a[24], b[24], c[24];
    tel_printf(&o, "hakmem telemetry (%s): config %s\n", in->name,
               ctx->config_name ? ctx->config_name : "?");
    if (ctx->command_line && ctx->command_line[0])
        tel_printf(&o, "command: %s\n", ctx->command_line);
    tel_printf(&o, "pid: %ld\n", (long)getpid()); /* which process, under a script */
    if (in->process)
        tel_printf(&o, "process: minor faults %llu, major faults %llu, peak RSS %llu KB\n",
                   (unsigned long long)proc->minor_faults, (unsigned long long)proc->major_faults,
                   (unsigned long long)proc->peak_rss_kb);
    if (v->has_resident)
        tel_printf(&o, "resident at exit: RSS %llu KB, the host's own %llu KB\n",
                   (unsigned long long)(ctx->process_rss >> 10),
                   (unsigned long long)(ctx->host_resident >> 10));
    bool huge = has_huge(in, ctx);
    if (huge)
        tel_printf(&o, "huge pages at exit: THP %s, process AnonHugePages %llu KB\n",
                   thp_text(ctx->thp_mode), (unsigned long long)(ctx->process_huge >> 10));
    if (!in->events)
        tel_printf(&o, "events: off\n");
    else {
        tel_printf(&o, "%-6s %9s %8s %8s %8s %8s %9s %9s %9s %11s %9s\n", "bucket", "fresh pg",
                   "mapped", "resident", "returned", "reuse", "refills", "drains", "remote",
                   "allocs", "touch/pg");
        for (int i = 0; i < HAK_BUCKET_COUNT; i++) {
            const struct tel_bucket_view *bk = &v->buckets[i];
            const struct tel_row *r = &bk->row;
            char allocs[24] = "-", touch[24] = "-";
            if (bk->alloc_box >= 0)
                snprintf(allocs, sizeof allocs, "%llu", (unsigned long long)bk->allocs);
            if (bk->touch_source != TOUCH_NONE) {
                milli_text(bk->touch_milli, a, sizeof a);
                snprintf(touch, sizeof touch, "%s%s", bk->touch_source == TOUCH_REFILLS ? "~" : "", a);
            }
            char res[24] = "-";
            if (v->has_resident)
                human(bk->resident, res, sizeof res);
            tel_printf(&o, "%-6s %9llu %8s %8s %8s %8llu %9llu %9llu %9llu %11s %9s\n",
                       tel_bucket_names[i], (unsigned long long)tel_pages(r->fresh_bytes),
                       human(r->mapped_bytes, b, sizeof b), res,
                       human(r->unmapped_bytes, c, sizeof c),
                       (unsigned long long)r->reuse_events, (unsigned long long)r->refills,
                       (unsigned long long)r->drains, (unsigned long long)r->remote_frees, allocs,
                       touch);
        }
        tel_printf(&o, "(touch/pg: allocations per fresh page; ~ = blocks refilled per fresh page, "
                       "a lower bound; - = unknown)\n");
    }
    if (in->boxes) {
        tel_printf(&o, "%-12s %-18s %11s %11s %8s %8s %8s %8s %8s %8s %8s %9s %9s\n", "box",
                   "plugin", "allocs", "frees", "refills", "drains", "remote", "mapped",
                   "resident", "huge", "peak", "fresh pg", "touch/pg");
        for (uint32_t i = 0; i < v->box_count; i++) {
            const struct hak_report_box *rb = &ctx->boxes[i];
            const struct tel_box_view *bv = &v->boxes[i];
            if (!shown_box(rb))
                continue;
            char touch[24] = "-";
            if (bv->has_touch)
                milli_text(bv->touch_milli, touch, sizeof touch);
            char res[24] = "-", hp[24] = "-";
            if (v->has_resident)
                human(bv->resident, res, sizeof res);
            if (huge)
                human(ctx->huge[i], hp, sizeof hp);
            tel_printf(&o,
                       "%-12s %-18s %11llu %11llu %8llu %8llu %8llu %8s %8s %8s %8s %9llu %9s\n",
                       rb->instance_name, rb->plugin, (unsigned long long)rb->stats.allocs,
                       (unsigned long long)rb->stats.frees, (unsigned long long)rb->stats.refills,
                       (unsigned long long)rb->stats.drains,
                       (unsigned long long)rb->stats.remote_frees,
                       human(rb->bytes_mapped, b, sizeof b), res, hp,
                       human(rb->peak_mapped, c, sizeof c),
                       (unsigned long long)tel_pages(bv->row.fresh_bytes), touch);
        }
    }
    tel_out_flush(&o);
}

/* ---- JSON ------------------------------------------------------------- */

static void json_row(struct tel_out *o, const struct tel_row *r)
{
    tel_printf(o,
               "\"fresh_pages\":%llu,\"fresh_bytes\":%llu,\"fresh_events\":%llu,"
               "\"mapped_bytes\":%llu,\"map_events\":%llu,\"unmapped_bytes\":%llu,"
               "\"unmap_events\":%llu,\"reuse_bytes\":%llu,\"reuse_events\":%llu,",
               (unsigned long long)tel_pages(r->fresh_bytes), (unsigned long long)r->fresh_bytes,
               (unsigned long long)r->fresh_events, (unsigned long long)r->mapped_bytes,
               (unsigned long long)r->map_events, (unsigned long long)r->unmapped_bytes,
               (unsigned long long)r->unmap_events, (unsigned long long)r->reuse_bytes,
               (unsigned long long)r->reuse_events);
    tel_printf(o,
               "\"refills\":%llu,\"refill_blocks\":%llu,\"drains\":%llu,\"drain_blocks\":%llu,"
               "\"remote_frees\":%llu",
               (unsigned long long)r->refills, (unsigned long long)r->refill_blocks,
               (unsigned long long)r->drains, (unsigned long long)r->drain_blocks,
               (unsigned long long)r->remote_frees);
}

/* "resident_bytes": null when the host did not count (an older host). */
static void json_resident(struct tel_out *o, bool known, uint64_t bytes)
{
    if (known)
        tel_printf(o, ",\"resident_bytes\":%llu", (unsigned long long)bytes);
    else
        tel_printf(o, ",\"resident_bytes\":null");
}

static void json_touch(struct tel_out *o, bool known, uint64_t milli)
{
    if (known)
        tel_printf(o, "\"touches_per_page\":%llu.%03llu", (unsigned long long)(milli / 1000),
                   (unsigned long long)(milli % 1000));
    else
        tel_printf(o, "\"touches_per_page\":null");
}

static void write_json(int fd, const struct tel_inst *in, const struct hak_report_ctx *ctx,
                       const struct tel_view *v, const struct tel_process *proc)
{
    static const char *const sources[] = {"none", "allocs", "refill_blocks"};
    struct tel_out o = {.fd = fd};
    char text[96];
    tel_printf(&o, "{\"hakmem_telemetry\":1,\"instance\":\"");
    tel_json_string(&o, in->name);
    tel_printf(&o, "\",\"config\":\"");
    tel_json_string(&o, ctx->config_name);
    tel_printf(&o, "\",\"command\":\"");
    tel_json_string(&o, ctx->command_line);
    tel_printf(&o, "\",\"pid\":%ld,\"events\":%s,\n\"process\":", (long)getpid(),
               in->events ? "true" : "false");
    if (in->process) {
        tel_printf(&o, "{\"minor_faults\":%llu,\"major_faults\":%llu,\"peak_rss_kb\":%llu",
                   (unsigned long long)proc->minor_faults, (unsigned long long)proc->major_faults,
                   (unsigned long long)proc->peak_rss_kb);
        if (v->has_resident)
            tel_printf(&o, ",\"rss_bytes\":%llu,\"host_resident_bytes\":%llu",
                       (unsigned long long)ctx->process_rss,
                       (unsigned long long)ctx->host_resident);
        if (has_huge(in, ctx))
            tel_printf(&o, ",\"thp_mode\":\"%s\",\"huge_bytes\":%llu",
                       thp_text(ctx->thp_mode), (unsigned long long)ctx->process_huge);
        tel_printf(&o, "}");
    } else
        tel_printf(&o, "null");
    tel_printf(&o, ",\n\"buckets\":{");
    for (int b = 0; b < HAK_BUCKET_COUNT; b++) {
        const struct tel_bucket_view *bk = &v->buckets[b];
        tel_printf(&o, "%s\n\"%s\":{", b ? "," : "", tel_bucket_names[b]);
        json_row(&o, &bk->row);
        json_resident(&o, v->has_resident, bk->resident);
        if (bk->alloc_box >= 0) {
            tel_printf(&o, ",\"allocs\":%llu,\"alloc_box\":\"", (unsigned long long)bk->allocs);
            tel_json_string(&o, ctx->boxes[bk->alloc_box].instance_name);
            tel_printf(&o, "\",");
        } else {
            tel_printf(&o, ",\"allocs\":null,\"alloc_box\":null,");
        }
        json_touch(&o, bk->touch_source != TOUCH_NONE, bk->touch_milli);
        tel_printf(&o, ",\"touches_source\":\"%s\"}", sources[bk->touch_source]);
    }
    tel_printf(&o, "},\n\"boxes\":[");
    int first = 1;
    for (uint32_t i = 0; in->boxes && i < v->box_count; i++) {
        const struct hak_report_box *rb = &ctx->boxes[i];
        const struct tel_box_view *bv = &v->boxes[i];
        const struct hak_stats *s = &rb->stats;
        if (!shown_box(rb))
            continue;
        tel_printf(&o, "%s\n{\"name\":\"", first ? "" : ",");
        first = 0;
        tel_json_string(&o, rb->instance_name);
        tel_printf(&o, "\",\"plugin\":\"");
        tel_json_string(&o, rb->plugin);
        tel_printf(&o, "\",\"owner\":%u,\"roles\":\"%s\",", rb->owner,
                   role_text(rb->roles, text, sizeof text));
        tel_printf(&o,
                   "\"allocs\":%llu,\"frees\":%llu,\"bytes_allocated\":%llu,\"bytes_freed\":%llu,"
                   "\"refills\":%llu,\"drains\":%llu,\"remote_frees\":%llu,\"cached_bytes\":%llu,"
                   "\"bytes_mapped\":%llu,\"peak_mapped\":%llu",
                   (unsigned long long)s->allocs, (unsigned long long)s->frees,
                   (unsigned long long)s->bytes_allocated, (unsigned long long)s->bytes_freed,
                   (unsigned long long)s->refills, (unsigned long long)s->drains,
                   (unsigned long long)s->remote_frees, (unsigned long long)s->cached_bytes,
                   (unsigned long long)rb->bytes_mapped, (unsigned long long)rb->peak_mapped);
        json_resident(&o, v->has_resident, bv->resident);
        if (has_huge(in, ctx))
            tel_printf(&o, ",\"huge_bytes\":%llu", (unsigned long long)ctx->huge[i]);
        else
            tel_printf(&o, ",\"huge_bytes\":null");
        tel_printf(&o, ",\"events\":{");
        json_row(&o, &bv->row);
        tel_printf(&o, "},\"buckets\":\"%s\",", mask_text(bv->bucket_mask, text, sizeof text));
        json_touch(&o, bv->has_touch, bv->touch_milli);
        tel_printf(&o, "}");
    }
    tel_printf(&o, "]}\n");
    tel_out_flush(&o);
}

void tel_report(void *inst, const struct hak_report_ctx *ctx)
{
    struct tel_inst *in = inst;
    struct tel_process proc;
    if (in->process)
        read_process(&proc);
    else
        memset(&proc, 0, sizeof proc);
    struct tel_view view;
    tel_view_build(in, ctx, &view);
    if (in->text)
        write_text(in, ctx, &view, &proc);
    if (in->json_file[0]) {
        char path[HAK_PARAM_STRING_MAX + 64];
        int fd = -1;
        if (hak_path_expand_pid(in->json_file, path, sizeof path) == 0)
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            in->host->log(HAK_LOG_WARN, in->name, "cannot write %s: %s", in->json_file,
                          strerror(errno));
            return;
        }
        write_json(fd, in, ctx, &view, &proc);
        close(fd);
    }
}
