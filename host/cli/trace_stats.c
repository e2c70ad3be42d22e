/*
 * hakmem trace stats FILE [--json] [--chart PNG]: what is in a trace: calls
 * per kind, sizes, lifetimes (in calls), live bytes over the run, threads,
 * cross-thread frees, misbehaving calls. The threads' events are merged by
 * sequence number, so "live bytes" is the program's, call by call.
 * hakmem trace convert RAW OUT: a raw recording (the recorder preloaded by
 * hand, without hakmem record) into a trace.
 */
#include "cli.h"
#include "trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUCKETS 64
#define SAMPLES 400

struct tstats {
    uint64_t calls[TK_COUNT], null_results, bad[TK_COUNT], waits;
    uint64_t bytes, size_hist[BUCKETS], life_hist[BUCKETS];
    uint64_t live, peak_live, peak_at, live_blocks, peak_blocks, never_freed, never_freed_bytes;
    uint64_t cross_frees, cross_reallocs, cross_usable;
    uint64_t sample_seq[SAMPLES + 2], sample_live[SAMPLES + 2];
    size_t samples;
};

struct sblock {
    uint64_t size, born;
    uint32_t thread;
    uint8_t live;
};

static unsigned bucket(uint64_t v) { return v < 2 ? 0 : 63 - (unsigned)__builtin_clzll(v); }

struct merge {
    struct trace_cursor *cur;
    struct trace_event *ev;
    unsigned *heap;
    size_t n;
};

static int ev_less(struct merge *m, size_t a, size_t b) { return m->ev[m->heap[a]].seq < m->ev[m->heap[b]].seq; }

static void sift(struct merge *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->n && ev_less(m, l, s))
            s = l;
        if (r < m->n && ev_less(m, r, s))
            s = r;
        if (s == i)
            return;
        unsigned t = m->heap[i];
        m->heap[i] = m->heap[s];
        m->heap[s] = t;
        i = s;
    }
}

static void block_born(struct tstats *s, struct sblock *b, uint64_t size, uint64_t seq, unsigned thread)
{
    b->size = size;
    b->born = seq;
    b->thread = thread;
    b->live = 1;
    s->live += size;
    s->live_blocks++;
}

static void block_dies(struct tstats *s, struct sblock *b, uint64_t seq)
{
    s->live -= b->size;
    s->live_blocks--;
    s->life_hist[bucket(seq - b->born)]++;
    b->live = 0;
}

static void account(struct tstats *s, struct sblock *blocks, const struct trace_event *ev, unsigned thread)
{
    s->calls[ev->kind]++;
    if (ev->flags & TF_WAIT)
        s->waits++;
    if (ev->flags & TF_BAD) {
        s->bad[ev->kind]++;
    }
    if (ev->flags & TF_NULL)
        s->null_results++;
    if (trace_kind_allocates(ev->kind)) {
        s->bytes += ev->size;
        s->size_hist[bucket(ev->size)]++;
    }
    int good_old = ev->old_slot >= 0 && !(ev->flags & TF_BAD);
    struct sblock *old = good_old ? &blocks[ev->old_slot] : NULL;
    switch (ev->kind) {
    case TK_FREE:
        if (old) {
            s->cross_frees += old->thread != thread;
            block_dies(s, old, ev->seq);
        }
        break;
    case TK_USABLE_SIZE:
        if (old)
            s->cross_usable += old->thread != thread;
        break;
    case TK_REALLOC:
    case TK_REALLOCARRAY:
        if (old) {
            s->cross_reallocs += old->thread != thread;
            if (ev->slot < 0 && ev->size == 0 && (ev->flags & TF_NULL)) {
                block_dies(s, old, ev->seq);
            } else if (!(ev->flags & TF_NULL)) {
                s->live += ev->size - old->size;
                old->size = ev->size;
            }
        } else if (ev->slot >= 0) {
            block_born(s, &blocks[ev->slot], ev->size, ev->seq, thread);
        }
        break;
    default:
        if (ev->slot >= 0)
            block_born(s, &blocks[ev->slot], ev->size, ev->seq, thread);
    }
    if (s->live > s->peak_live) {
        s->peak_live = s->live;
        s->peak_at = ev->seq;
    }
    if (s->live_blocks > s->peak_blocks)
        s->peak_blocks = s->live_blocks;
}

static int gather(const struct trace *t, struct tstats *s, char *err)
{
    memset(s, 0, sizeof *s);
    struct sblock *blocks = calloc((size_t)t->slots + 1, sizeof *blocks);
    struct merge m = { calloc(t->threads + 1, sizeof *m.cur), calloc(t->threads + 1, sizeof *m.ev),
                       calloc(t->threads + 1, sizeof *m.heap), 0 };
    int rc = -1;
    if (!blocks || !m.cur || !m.ev || !m.heap) {
        snprintf(err, TRACE_ERR_MAX, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < t->threads; i++) {
        trace_cursor_init(&m.cur[i], t, i);
        int r = trace_next(&m.cur[i], &m.ev[i], err);
        if (r < 0)
            goto out;
        if (r)
            m.heap[m.n++] = i;
    }
    for (size_t i = m.n; i-- > 0;)
        sift(&m, i);
    /* Each sample is the highest live count of its window of calls, so
     * the chart shows the peaks the sampling would skip. */
    uint64_t every = t->events / SAMPLES + 1, window_max = 0;
    while (m.n) {
        unsigned i = m.heap[0];
        account(s, blocks, &m.ev[i], i);
        if (s->live > window_max)
            window_max = s->live;
        if (m.ev[i].seq % every == 0 && s->samples < SAMPLES + 1) {
            s->sample_seq[s->samples] = m.ev[i].seq;
            s->sample_live[s->samples++] = window_max;
            window_max = s->live;
        }
        int r = trace_next(&m.cur[i], &m.ev[i], err);
        if (r < 0)
            goto out;
        if (!r)
            m.heap[0] = m.heap[--m.n];
        sift(&m, 0);
    }
    s->sample_seq[s->samples] = t->events;
    s->sample_live[s->samples++] = s->live;
    for (uint32_t k = 0; k < t->slots; k++)
        if (blocks[k].live) {
            s->never_freed++;
            s->never_freed_bytes += blocks[k].size;
        }
    rc = 0;
out:
    for (unsigned i = 0; m.cur && i < t->threads; i++)
        trace_cursor_release(&m.cur[i]);
    free(blocks);
    free(m.cur);
    free(m.ev);
    free(m.heap);
    return rc;
}

static void print_cmdline(FILE *f, const struct trace *t, int json)
{
    for (uint32_t i = 0; i < t->cmdline_bytes; i++) {
        char c = t->cmdline[i] ? t->cmdline[i] : ' ';
        if (i + 1 == t->cmdline_bytes && c == ' ')
            break;
        if (json && (c == '"' || c == '\\'))
            fputc('\\', f);
        fputc((unsigned char)c < 32 ? '?' : c, f);
    }
}

static void print_text(const struct trace *t, const struct tstats *s)
{
    printf("trace: version %u, pid %llu%s, ", t->version, (unsigned long long)t->pid, t->image ? " (after exec)" : "");
    print_cmdline(stdout, t, 0);
    printf("\n%s\n", (t->flags & TRACE_FLAG_CLEAN_EXIT) ? "ended by exit" : "ended without exit (exec, _exit or a signal)");
    printf("calls: %llu, threads: %u, blocks: %u slots\n", (unsigned long long)t->events, t->threads, t->slots);
    printf("\n%-20s %12s %10s\n", "kind", "calls", "bad");
    for (int k = 1; k < TK_COUNT; k++)
        if (s->calls[k])
            printf("%-20s %12llu %10llu\n", trace_kind_names[k], (unsigned long long)s->calls[k],
                   (unsigned long long)s->bad[k]);
    printf("\nbytes asked: %llu; NULL results: %llu\n", (unsigned long long)s->bytes,
           (unsigned long long)s->null_results);
    printf("peak live: %llu bytes at call %llu, %llu blocks; at the end: %llu bytes in %llu blocks never freed\n",
           (unsigned long long)s->peak_live, (unsigned long long)s->peak_at, (unsigned long long)s->peak_blocks,
           (unsigned long long)s->never_freed_bytes, (unsigned long long)s->never_freed);
    printf("cross-thread: %llu frees, %llu reallocs, %llu usable_size; %llu calls wait for another thread\n",
           (unsigned long long)s->cross_frees, (unsigned long long)s->cross_reallocs,
           (unsigned long long)s->cross_usable, (unsigned long long)s->waits);
    printf("\n%-22s %12s   %-22s %12s\n", "size (bytes)", "allocations", "lifetime (calls)", "blocks");
    for (int b = 0; b < BUCKETS; b++) {
        if (!s->size_hist[b] && !s->life_hist[b])
            continue;
        char sz[32], lf[32];
        snprintf(sz, sizeof sz, "%llu-%llu", b ? 1ull << b : 0ull, (2ull << b) - 1);
        snprintf(lf, sizeof lf, "%llu-%llu", b ? 1ull << b : 0ull, (2ull << b) - 1);
        printf("%-22s %12llu   %-22s %12llu\n", sz, (unsigned long long)s->size_hist[b], lf,
               (unsigned long long)s->life_hist[b]);
    }
    printf("\n%-8s %12s %16s %16s\n", "thread", "calls", "first call", "last call");
    for (uint32_t i = 0; i < t->threads; i++)
        printf("%-8u %12llu %16llu %16llu\n", i, (unsigned long long)t->thread[i].events,
               (unsigned long long)t->thread[i].first_seq, (unsigned long long)t->thread[i].last_seq);
}

static void print_json(const struct trace *t, const struct tstats *s)
{
    printf("{\"version\": %u, \"pid\": %llu, \"image\": %u, \"clean_exit\": %s, \"command\": \"", t->version,
           (unsigned long long)t->pid, t->image, (t->flags & TRACE_FLAG_CLEAN_EXIT) ? "true" : "false");
    print_cmdline(stdout, t, 1);
    printf("\",\n \"calls\": %llu, \"threads\": %u, \"slots\": %u,\n \"kinds\": {", (unsigned long long)t->events,
           t->threads, t->slots);
    for (int k = 1; k < TK_COUNT; k++)
        printf("%s\"%s\": %llu", k > 1 ? ", " : "", trace_kind_names[k], (unsigned long long)s->calls[k]);
    printf("},\n \"bad\": {");
    for (int k = 1; k < TK_COUNT; k++)
        printf("%s\"%s\": %llu", k > 1 ? ", " : "", trace_kind_names[k], (unsigned long long)s->bad[k]);
    printf("},\n \"bytes\": %llu, \"null_results\": %llu, \"peak_live_bytes\": %llu, \"peak_live_at\": %llu, "
           "\"peak_live_blocks\": %llu, \"never_freed_blocks\": %llu, \"never_freed_bytes\": %llu,\n"
           " \"cross_thread_frees\": %llu, \"cross_thread_reallocs\": %llu, \"cross_thread_usable_size\": %llu, "
           "\"waits\": %llu,\n",
           (unsigned long long)s->bytes, (unsigned long long)s->null_results, (unsigned long long)s->peak_live,
           (unsigned long long)s->peak_at, (unsigned long long)s->peak_blocks, (unsigned long long)s->never_freed,
           (unsigned long long)s->never_freed_bytes, (unsigned long long)s->cross_frees,
           (unsigned long long)s->cross_reallocs, (unsigned long long)s->cross_usable,
           (unsigned long long)s->waits);
    printf(" \"size_histogram_log2\": [");
    for (int b = 0; b < BUCKETS; b++)
        printf("%s%llu", b ? ", " : "", (unsigned long long)s->size_hist[b]);
    printf("],\n \"lifetime_histogram_log2\": [");
    for (int b = 0; b < BUCKETS; b++)
        printf("%s%llu", b ? ", " : "", (unsigned long long)s->life_hist[b]);
    printf("],\n \"live_bytes_max_per_window\": [");
    for (size_t i = 0; i < s->samples; i++)
        printf("%s[%llu, %llu]", i ? ", " : "", (unsigned long long)s->sample_seq[i],
               (unsigned long long)s->sample_live[i]);
    printf("],\n \"thread_table\": [");
    for (uint32_t i = 0; i < t->threads; i++)
        printf("%s{\"calls\": %llu, \"first\": %llu, \"last\": %llu}", i ? ", " : "",
               (unsigned long long)t->thread[i].events, (unsigned long long)t->thread[i].first_seq,
               (unsigned long long)t->thread[i].last_seq);
    printf("]}\n");
}

/* Live bytes over the run and the size histogram, with gnuplot (as the
 * bench's chart): PNG, with .dat and .gp beside it. */
static int write_chart(const char *png, const struct tstats *s)
{
    char dat[PATH_MAX + 8], gp[PATH_MAX + 8];
    snprintf(dat, sizeof dat, "%s.dat", png);
    snprintf(gp, sizeof gp, "%s.gp", png);
    FILE *f = fopen(dat, "w");
    if (!f)
        return -1;
    fprintf(f, "# call live_bytes (the most of the window ending there)\n");
    for (size_t i = 0; i < s->samples; i++)
        fprintf(f, "%llu %llu\n", (unsigned long long)s->sample_seq[i], (unsigned long long)s->sample_live[i]);
    fprintf(f, "\n\n# log2(size) allocations\n");
    for (int b = 0; b < BUCKETS; b++)
        if (s->size_hist[b])
            fprintf(f, "%d %llu\n", b, (unsigned long long)s->size_hist[b]);
    fclose(f);
    f = fopen(gp, "w");
    if (!f)
        return -1;
    fprintf(f, "set terminal pngcairo size 1000,800 noenhanced\nset output '%s'\nset multiplot layout 2,1\n"
               "set title 'live bytes over the run'\nset xlabel 'call'\nset ylabel 'MB'\n"
               "plot '%s' index 0 using 1:($2/1048576) with lines notitle\n"
               "set title 'allocations by size'\nset xlabel 'log2(size)'\nset ylabel 'calls'\nset logscale y\n"
               "set style fill solid 0.5\nplot '%s' index 1 using 1:2 with boxes notitle\nunset multiplot\n",
            png, dat, dat);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", gp, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        return -2;
    return 0;
}

static int trace_stats(int argc, char **argv)
{
    const char *path = NULL, *chart = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--chart") && i + 1 < argc)
            chart = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "hakmem trace stats: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: hakmem trace stats FILE [--json] [--chart PNG]\n");
        return 2;
    }
    struct trace t;
    char err[TRACE_ERR_MAX];
    if (trace_open(path, &t, err)) {
        fprintf(stderr, "hakmem trace: %s\n", err);
        return 1;
    }
    struct tstats *s = calloc(1, sizeof *s);
    if (!s || trace_validate(&t, err) || gather(&t, s, err)) {
        fprintf(stderr, "hakmem trace: %s: %s\n", path, s ? err : "out of memory");
        trace_close(&t);
        free(s);
        return 1;
    }
    if (json)
        print_json(&t, s);
    else
        print_text(&t, s);
    int rc = 0;
    if (chart) {
        int r = write_chart(chart, s);
        if (r) {
            fprintf(stderr, "hakmem trace: chart %s: %s\n", chart,
                    r == -2 ? "gnuplot failed or is missing (bench/setup.sh installs gnuplot-nox)" : strerror(errno));
            rc = 1;
        } else {
            fprintf(stderr, "hakmem trace: wrote %s\n", chart);
        }
    }
    trace_close(&t);
    free(s);
    return rc;
}

int cmd_trace(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "stats"))
        return trace_stats(argc - 1, argv + 1);
    if (argc == 4 && !strcmp(argv[1], "convert")) {
        struct convert_info info;
        char err[TRACE_ERR_MAX] = "";
        if (trace_convert(argv[2], argv[3], &info, err)) {
            fprintf(stderr, "hakmem trace convert: %s\n", err);
            return 1;
        }
        fprintf(stderr, "hakmem trace convert: wrote %s: %llu calls, %llu threads\n", argv[3],
                (unsigned long long)info.events, (unsigned long long)info.threads);
        return 0;
    }
    fprintf(stderr, "usage: hakmem trace stats FILE [--json] [--chart PNG]\n"
                    "       hakmem trace convert RAW OUT\n");
    return 2;
}
