/*
 * hakmem report A.json [B.json] [--all]: the telemetry box's JSON (see
 * boxes/telemetry/README.md) as tables, or two runs side by side with the
 * difference of every counter, for OFF/ON experiments.
 *
 * A small JSON reader for that format lives here (objects, arrays, strings,
 * numbers, true/false/null); numbers keep their exact integer value when
 * they are integers.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON values ---------------------------------------------------------- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jtype type;
    int boolean;
    int is_int;     /* J_NUM: an integer that fits int64 */
    int64_t i;
    double d;
    char *str;      /* J_STR */
    size_t n;       /* J_ARR / J_OBJ: items */
    struct jval *items;
    char **keys;    /* J_OBJ */
};

struct jparser {
    const char *s, *end;
    const char *err;
};

static void skip_ws(struct jparser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int fail(struct jparser *p, const char *what)
{
    if (!p->err)
        p->err = what;
    return -1;
}

static void put_utf8(char *out, size_t *len, unsigned cp)
{
    if (cp < 0x80) {
        out[(*len)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*len)++] = (char)(0xC0 | cp >> 6);
        out[(*len)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*len)++] = (char)(0xE0 | cp >> 12);
        out[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*len)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int parse_string(struct jparser *p, char **out)
{
    if (p->s >= p->end || *p->s != '"')
        return fail(p, "expected a string");
    p->s++;
    /* The escaped text is never shorter than what it decodes to. */
    const char *q = p->s;
    while (q < p->end && *q != '"')
        q += *q == '\\' && q + 1 < p->end ? 2 : 1;
    char *buf = malloc((size_t)(q - p->s) + 1);
    if (!buf)
        return fail(p, "out of memory");
    size_t len = 0;
    while (p->s < p->end && *p->s != '"') {
        char c = *p->s++;
        if (c != '\\') {
            buf[len++] = c;
            continue;
        }
        if (p->s >= p->end)
            break;
        c = *p->s++;
        switch (c) {
        case 'n': buf[len++] = '\n'; break;
        case 't': buf[len++] = '\t'; break;
        case 'r': buf[len++] = '\r'; break;
        case 'b': buf[len++] = '\b'; break;
        case 'f': buf[len++] = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            for (int k = 0; k < 4; k++, p->s++) {
                if (p->s >= p->end) {
                    free(buf);
                    return fail(p, "bad \\u escape");
                }
                char h = *p->s;
                cp = cp * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0'
                                          : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
            }
            put_utf8(buf, &len, cp); /* surrogate pairs: not written by the box */
            break;
        }
        default: buf[len++] = c; break;
        }
    }
    if (p->s >= p->end) {
        free(buf);
        return fail(p, "unterminated string");
    }
    p->s++;
    buf[len] = '\0';
    *out = buf;
    return 0;
}

static int parse_value(struct jparser *p, struct jval *v, int depth);

/* A new, empty last item (counted at once, so an error part-way through
 * still frees everything); NULL when out of memory. */
static struct jval *append_item(struct jparser *p, struct jval *v, size_t *cap)
{
    if (v->n == *cap) {
        size_t bigger = *cap ? *cap * 2 : 8;
        struct jval *items = realloc(v->items, bigger * sizeof *items);
        if (items)
            v->items = items;
        if (items && v->type == J_OBJ) {
            char **keys = realloc(v->keys, bigger * sizeof *keys);
            if (keys)
                v->keys = keys;
            else
                items = NULL;
        }
        if (!items) {
            fail(p, "out of memory");
            return NULL;
        }
        *cap = bigger;
    }
    memset(&v->items[v->n], 0, sizeof v->items[0]);
    if (v->keys)
        v->keys[v->n] = NULL;
    return &v->items[v->n++];
}

static int parse_container(struct jparser *p, struct jval *v, int depth)
{
    char close = *p->s == '{' ? '}' : ']';
    v->type = close == '}' ? J_OBJ : J_ARR;
    p->s++;
    size_t cap = 0;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        struct jval *item = append_item(p, v, &cap);
        if (!item)
            return -1;
        if (v->type == J_OBJ) {
            if (parse_string(p, &v->keys[v->n - 1]))
                return -1;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':')
                return fail(p, "expected ':'");
            p->s++;
        }
        if (parse_value(p, item, depth + 1))
            return -1;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            return 0;
        }
        return fail(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_number(struct jparser *p, struct jval *v)
{
    const char *start = p->s;
    while (p->s < p->end && strchr("+-0123456789.eE", *p->s))
        p->s++;
    char text[64];
    size_t len = (size_t)(p->s - start);
    if (len == 0 || len >= sizeof text)
        return fail(p, "bad number");
    memcpy(text, start, len);
    text[len] = '\0';
    char *end;
    v->type = J_NUM;
    v->d = strtod(text, &end);
    if (*end)
        return fail(p, "bad number");
    if (!strpbrk(text, ".eE")) {
        errno = 0;
        long long i = strtoll(text, &end, 10);
        if (!errno && !*end) {
            v->is_int = 1;
            v->i = i;
        }
    }
    return 0;
}

static int parse_value(struct jparser *p, struct jval *v, int depth)
{
    skip_ws(p);
    if (depth > 32)
        return fail(p, "nested too deep");
    if (p->s >= p->end)
        return fail(p, "unexpected end");
    char c = *p->s;
    if (c == '{' || c == '[')
        return parse_container(p, v, depth);
    if (c == '"') {
        v->type = J_STR;
        return parse_string(p, &v->str);
    }
    static const struct { const char *word; enum jtype type; int b; } words[] = {
        {"null", J_NULL, 0}, {"true", J_BOOL, 1}, {"false", J_BOOL, 0}};
    for (size_t k = 0; k < sizeof words / sizeof *words; k++) {
        size_t n = strlen(words[k].word);
        if ((size_t)(p->end - p->s) >= n && !memcmp(p->s, words[k].word, n)) {
            p->s += n;
            v->type = words[k].type;
            v->boolean = words[k].b;
            return 0;
        }
    }
    return parse_number(p, v);
}

static void jfree(struct jval *v)
{
    for (size_t k = 0; k < v->n; k++) {
        jfree(&v->items[k]);
        if (v->keys)
            free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static const struct jval *jget(const struct jval *obj, const char *key)
{
    if (!obj || obj->type != J_OBJ)
        return NULL;
    for (size_t k = 0; k < obj->n; k++)
        if (!strcmp(obj->keys[k], key))
            return &obj->items[k];
    return NULL;
}

static const char *jstr(const struct jval *obj, const char *key)
{
    const struct jval *v = jget(obj, key);
    return v && v->type == J_STR ? v->str : "";
}

/* ---- a telemetry file ------------------------------------------------------- */

struct run {
    const char *path;
    char *text;
    struct jval root;
};

static int load_run(struct run *r, const char *path)
{
    r->path = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hakmem report: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    r->text = malloc(cap);
    size_t n;
    while (r->text && (n = fread(r->text + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *bigger = realloc(r->text, cap *= 2);
            if (!bigger) {
                free(r->text);
                r->text = NULL;
            }
            r->text = bigger;
        }
    }
    fclose(f);
    if (!r->text) {
        fprintf(stderr, "hakmem report: %s: out of memory\n", path);
        return -1;
    }
    struct jparser p = {r->text, r->text + len, NULL};
    if (parse_value(&p, &r->root, 0) == 0) {
        skip_ws(&p);
        if (p.s != p.end)
            fail(&p, "text after the JSON value");
    }
    if (p.err) {
        fprintf(stderr, "hakmem report: %s: not valid JSON at byte %ld: %s\n", path,
                (long)(p.s - r->text), p.err);
        return -1;
    }
    const struct jval *tag = jget(&r->root, "hakmem_telemetry");
    if (!tag || tag->type != J_NUM || !jget(&r->root, "buckets")) {
        fprintf(stderr, "hakmem report: %s: not a telemetry file (no \"hakmem_telemetry\"; "
                        "write one with [box.telemetry] json_file = PATH)\n", path);
        return -1;
    }
    return 0;
}

/* ---- one run as tables ------------------------------------------------------- */

static const char *human(const struct jval *v, char *out, size_t len)
{
    if (!v || v->type != J_NUM) {
        snprintf(out, len, "-");
        return out;
    }
    double b = v->d;
    if (b >= 10.0 * (1ull << 30))
        snprintf(out, len, "%.0fG", b / (1ull << 30));
    else if (b >= 10.0 * (1ull << 20))
        snprintf(out, len, "%.0fM", b / (1ull << 20));
    else if (b >= 10.0 * (1ull << 10))
        snprintf(out, len, "%.0fK", b / (1ull << 10));
    else
        snprintf(out, len, "%.0f", b);
    return out;
}

/* A number as text: integers exactly, others with 3 decimals (as the box
 * writes them), null as -. */
static const char *num(const struct jval *v, char *out, size_t len)
{
    if (!v || v->type != J_NUM)
        snprintf(out, len, "-");
    else if (v->is_int)
        snprintf(out, len, "%" PRId64, v->i);
    else
        snprintf(out, len, "%.3f", v->d);
    return out;
}

static void print_header(const char *label, const struct run *r)
{
    const struct jval *root = &r->root;
    printf("%s%s: config %s\n", label, r->path, jstr(root, "config"));
    const char *cmd = jstr(root, "command");
    if (*cmd)
        printf("%*scommand: %s\n", (int)strlen(label), "", cmd);
}

static void print_one(const struct run *r)
{
    const struct jval *root = &r->root;
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32], h[32], k[32];
    print_header("", r);
    const struct jval *proc = jget(root, "process");
    if (proc && proc->type == J_OBJ)
        printf("process: minor faults %s, major faults %s, peak RSS %s KB\n",
               num(jget(proc, "minor_faults"), a, sizeof a),
               num(jget(proc, "major_faults"), b, sizeof b),
               num(jget(proc, "peak_rss_kb"), c, sizeof c));
    const struct jval *ev = jget(root, "events");
    if (ev && ev->type == J_BOOL && !ev->boolean)
        printf("events: off\n");
    const struct jval *buckets = jget(root, "buckets");
    printf("\n%-6s %9s %8s %8s %8s %9s %9s %9s %11s %9s\n", "bucket", "fresh pg", "mapped",
           "returned", "reuse", "refills", "drains", "remote", "allocs", "touch/pg");
    for (size_t i = 0; buckets && buckets->type == J_OBJ && i < buckets->n; i++) {
        const struct jval *bk = &buckets->items[i];
        char touch[40];
        num(jget(bk, "touches_per_page"), k, sizeof k);
        snprintf(touch, sizeof touch, "%s%s",
                 !strcmp(jstr(bk, "touches_source"), "refill_blocks") ? "~" : "", k);
        printf("%-6s %9s %8s %8s %8s %9s %9s %9s %11s %9s\n", buckets->keys[i],
               num(jget(bk, "fresh_pages"), a, sizeof a), human(jget(bk, "mapped_bytes"), b, sizeof b),
               human(jget(bk, "unmapped_bytes"), c, sizeof c),
               num(jget(bk, "reuse_events"), d, sizeof d), num(jget(bk, "refills"), e, sizeof e),
               num(jget(bk, "drains"), f, sizeof f), num(jget(bk, "remote_frees"), g, sizeof g),
               num(jget(bk, "allocs"), h, sizeof h), touch);
    }
    printf("(touch/pg: allocations per fresh page; ~ = blocks refilled per fresh page, a lower "
           "bound; - = unknown)\n");
    const struct jval *boxes = jget(root, "boxes");
    if (!boxes || boxes->type != J_ARR || !boxes->n)
        return;
    printf("\n%-12s %-18s %11s %11s %8s %8s %8s %8s %8s %9s %9s\n", "box", "plugin", "allocs",
           "frees", "refills", "drains", "remote", "mapped", "peak", "fresh pg", "touch/pg");
    for (size_t i = 0; i < boxes->n; i++) {
        const struct jval *bx = &boxes->items[i];
        printf("%-12s %-18s %11s %11s %8s %8s %8s %8s %8s %9s %9s\n", jstr(bx, "name"),
               jstr(bx, "plugin"), num(jget(bx, "allocs"), a, sizeof a),
               num(jget(bx, "frees"), b, sizeof b), num(jget(bx, "refills"), c, sizeof c),
               num(jget(bx, "drains"), d, sizeof d), num(jget(bx, "remote_frees"), e, sizeof e),
               human(jget(bx, "bytes_mapped"), f, sizeof f),
               human(jget(bx, "peak_mapped"), g, sizeof g),
               num(jget(jget(bx, "events"), "fresh_pages"), h, sizeof h),
               num(jget(bx, "touches_per_page"), k, sizeof k));
    }
}

/* ---- two runs side by side ----------------------------------------------------- */

/* Every counter of a run, named by its place: process.minor_faults,
 * LARGE.fresh_pages, box.large.allocs, box.large.events.mapped_bytes. */
struct metric {
    char name[160];
    const struct jval *a, *b;
};

struct metrics {
    struct metric *m;
    size_t n, cap;
};

static struct metric *metric_slot(struct metrics *ms, const char *name)
{
    for (size_t i = 0; i < ms->n; i++)
        if (!strcmp(ms->m[i].name, name))
            return &ms->m[i];
    if (ms->n == ms->cap) {
        ms->cap = ms->cap ? ms->cap * 2 : 256;
        struct metric *m = realloc(ms->m, ms->cap * sizeof *m);
        if (!m) {
            fprintf(stderr, "hakmem report: out of memory\n");
            exit(1);
        }
        ms->m = m;
    }
    struct metric *m = &ms->m[ms->n++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    return m;
}

static void add_leaves(struct metrics *ms, const char *prefix, const struct jval *obj, int side)
{
    for (size_t i = 0; obj && obj->type == J_OBJ && i < obj->n; i++) {
        const struct jval *v = &obj->items[i];
        const char *key = obj->keys[i];
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (v->type == J_OBJ) {
            add_leaves(ms, name, v, side);
            continue;
        }
        /* numbers, and null where a number is unknown; ids are not counters */
        if ((v->type != J_NUM && v->type != J_NULL) || !strcmp(key, "owner"))
            continue;
        struct metric *m = metric_slot(ms, name);
        if (side == 0)
            m->a = v;
        else
            m->b = v;
    }
}

static void add_run(struct metrics *ms, const struct run *r, int side)
{
    add_leaves(ms, "process", jget(&r->root, "process"), side);
    add_leaves(ms, "", jget(&r->root, "buckets"), side);
    const struct jval *boxes = jget(&r->root, "boxes");
    for (size_t i = 0; boxes && boxes->type == J_ARR && i < boxes->n; i++) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "box.%s", jstr(&boxes->items[i], "name"));
        add_leaves(ms, prefix, &boxes->items[i], side);
    }
}

static int is_zero(const struct jval *v)
{
    return !v || v->type != J_NUM || v->d == 0;
}

static void print_diff(const struct run *ra, const struct run *rb, int all)
{
    struct metrics ms = {0};
    add_run(&ms, ra, 0);
    add_run(&ms, rb, 1);
    print_header("A: ", ra);
    print_header("B: ", rb);
    printf("\n%-40s %14s %14s %14s %9s\n", "counter", "A", "B", "B-A", "B-A %");
    size_t hidden = 0;
    for (size_t i = 0; i < ms.n; i++) {
        const struct metric *m = &ms.m[i];
        if (!all && is_zero(m->a) && is_zero(m->b)) {
            hidden++;
            continue;
        }
        char a[32], b[32], d[32] = "-", pct[32] = "-";
        num(m->a, a, sizeof a);
        num(m->b, b, sizeof b);
        if (m->a && m->b && m->a->type == J_NUM && m->b->type == J_NUM) {
            if (m->a->is_int && m->b->is_int)
                snprintf(d, sizeof d, "%+" PRId64, m->b->i - m->a->i);
            else
                snprintf(d, sizeof d, "%+.3f", m->b->d - m->a->d);
            if (m->a->d != 0)
                snprintf(pct, sizeof pct, "%+.1f%%", (m->b->d - m->a->d) * 100.0 / m->a->d);
            else
                snprintf(pct, sizeof pct, m->b->d == 0 ? "0.0%%" : "new");
        }
        printf("%-40s %14s %14s %14s %9s\n", m->name, a, b, d, pct);
    }
    if (hidden)
        printf("(%zu counters zero in both runs not shown; --all shows them)\n", hidden);
    free(ms.m);
}

int cmd_report(int argc, char **argv)
{
    const char *files[2];
    int nfiles = 0, all = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) {
            all = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: hakmem report A.json [B.json] [--all]\n"
                   "  one telemetry file: its buckets and boxes as tables;\n"
                   "  two: every counter side by side with B-A and the change in %%\n"
                   "  (--all: also counters zero in both)\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hakmem report: unknown option %s\n", argv[i]);
            return 2;
        } else if (nfiles < 2) {
            files[nfiles++] = argv[i];
        } else {
            nfiles = 3;
        }
    }
    if (nfiles < 1 || nfiles > 2) {
        fprintf(stderr, "usage: hakmem report A.json [B.json] [--all]\n");
        return 2;
    }
    struct run runs[2];
    memset(runs, 0, sizeof runs);
    for (int i = 0; i < nfiles; i++)
        if (load_run(&runs[i], files[i])) {
            for (int k = 0; k <= i; k++) {
                jfree(&runs[k].root);
                free(runs[k].text);
            }
            return 1;
        }
    if (nfiles == 1)
        print_one(&runs[0]);
    else
        print_diff(&runs[0], &runs[1], all);
    for (int i = 0; i < nfiles; i++) {
        jfree(&runs[i].root);
        free(runs[i].text);
    }
    return 0;
}
