/*
 * INI text -> raw entries, each remembering its file and line.
 *
 * inih is used through ini_parse_stream with our own line reader, for three
 * reasons: ini_parse() would fopen (stdio allocates, and we may be inside
 * malloc's start-up); Debian's inih is built without line numbers for the
 * handler, and our reader knows the current line; and inih treats an
 * indented line as the continuation of the previous value, which surprises
 * people who indent keys, so the reader strips leading blanks.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

void hak_error_set(struct hak_error *err, const char *file, int line, const char *fmt, ...)
{
    if (!err)
        return;
    size_t used = 0;
    if (file && line > 0)
        used = (size_t)snprintf(err->msg, sizeof err->msg, "%s:%d: ", file, line);
    else if (file)
        used = (size_t)snprintf(err->msg, sizeof err->msg, "%s: ", file);
    if (used >= sizeof err->msg)
        used = sizeof err->msg - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + used, sizeof err->msg - used, fmt, ap);
    va_end(ap);
}

int hak_read_file(const char *path, char *buf, size_t cap, size_t *len, struct hak_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hak_error_set(err, path, 0, "cannot open config file: %s", strerror(errno));
        return -1;
    }
    size_t used = 0;
    for (;;) {
        if (used == cap) {
            close(fd);
            hak_error_set(err, path, 0, "config file larger than %zu bytes", cap);
            return -1;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            hak_error_set(err, path, 0, "cannot read config file: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    *len = used;
    return 0;
}

/* Sizes: decimal, optional K/M/G (powers of 1024), optional trailing B. */
int hak_parse_size(const char *text, uint64_t *out)
{
    const char *s = text;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        /* overflow checks without a division per digit (start-up parses
         * every default of every box) */
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
            return -1;
        s++;
    }
    unsigned shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    default: break;
    }
    if (*s == 'b' || *s == 'B')
        s++;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

struct parse_ctx {
    struct hak_cfg_raw *raw;
    struct hak_error *err;
    const char *text;
    size_t len, pos;
    int line;        /* line most recently handed to inih */
    int failed;
};

/* ini_reader: hands inih one line at a time, counting lines. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_ctx *ctx = stream;
    if (ctx->pos >= ctx->len || ctx->failed)
        return NULL;
    const char *start = ctx->text + ctx->pos;
    const char *nl = memchr(start, '\n', ctx->len - ctx->pos);
    size_t line_len = nl ? (size_t)(nl - start) + 1 : ctx->len - ctx->pos;
    ctx->pos += line_len;
    ctx->line++;
    /* Strip leading blanks: an indented key is a key, not a continuation. */
    while (line_len > 0 && (*start == ' ' || *start == '\t')) {
        start++;
        line_len--;
    }
    /* inih reports no event for a section header, and an empty [box.x]
     * still declares a box: record each header as an entry with no key. */
    if (line_len > 2 && start[0] == '[') {
        const char *close = memchr(start, ']', line_len);
        if (close && close > start + 1 && (size_t)(close - start - 1) < HAK_NAME_MAX &&
            ctx->raw->entry_count < HAK_MAX_ENTRIES) {
            int i = ctx->raw->entry_count++;
            struct hak_cfg_entry *e = &ctx->raw->entries[i];
            struct hak_cfg_text *t = &ctx->raw->text[i];
            memcpy(t->section, start + 1, (size_t)(close - start - 1));
            t->section[close - start - 1] = '\0';
            e->section = t->section;
            e->key = e->value = "";
            e->source = ctx->raw->file;
            e->line = ctx->line;
        }
    }
    if (line_len + 1 > (size_t)num) {
        hak_error_set(ctx->err, ctx->raw->file, ctx->line,
                      "line longer than %d characters", num - 2);
        ctx->failed = 1;
        return NULL;
    }
    memcpy(str, start, line_len);
    str[line_len] = '\0';
    return str;
}

static int copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* Copy the given strings (NULL: keep the entry's) into entry i's text
 * store and point the entry at the copies. */
static int store_entry(struct hak_cfg_raw *raw, int i, const char *section, const char *key,
                       const char *value)
{
    struct hak_cfg_entry *e = &raw->entries[i];
    struct hak_cfg_text *t = &raw->text[i];
    if ((section && copy_field(t->section, sizeof t->section, section)) ||
        (key && copy_field(t->key, sizeof t->key, key)) ||
        (value && copy_field(t->value, sizeof t->value, value)))
        return -1;
    if (section)
        e->section = t->section;
    if (key)
        e->key = t->key;
    if (value)
        e->value = t->value;
    return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *ctx = user;
    if (ctx->failed)
        return 0;
    struct hak_cfg_raw *raw = ctx->raw;
    if (!*section) {
        hak_error_set(ctx->err, raw->file, ctx->line,
                      "key '%s' outside any section (expected [host], [route] or [box.NAME] first)", name);
        ctx->failed = 1;
        return 0;
    }
    for (int i = 0; i < raw->entry_count; i++) {
        struct hak_cfg_entry *e = &raw->entries[i];
        if (e->key[0] && !strcmp(e->section, section) && !strcmp(e->key, name)) {
            hak_error_set(ctx->err, raw->file, ctx->line,
                          "[%s] %s: set twice (first on line %d)", section, name, e->line);
            ctx->failed = 1;
            return 0;
        }
    }
    if (raw->entry_count == HAK_MAX_ENTRIES) {
        hak_error_set(ctx->err, raw->file, ctx->line, "more than %d keys", HAK_MAX_ENTRIES);
        ctx->failed = 1;
        return 0;
    }
    struct hak_cfg_entry *e = &raw->entries[raw->entry_count];
    if (store_entry(raw, raw->entry_count, section, name, value)) {
        hak_error_set(ctx->err, raw->file, ctx->line, "[%s] %s: name or value too long", section, name);
        ctx->failed = 1;
        return 0;
    }
    e->source = raw->file;
    e->line = ctx->line;
    raw->entry_count++;
    return 1;
}

int hak_config_parse_text(struct hak_cfg_raw *raw, const char *text, size_t len,
                          const char *file, struct hak_error *err)
{
    /* Not a memset of the whole table (200 KB of static storage): entries
     * are written whole as they are added. */
    raw->entry_count = 0;
    size_t file_len = strlen(file) < sizeof raw->file ? strlen(file) : sizeof raw->file - 1;
    memcpy(raw->file, file, file_len); /* not snprintf: a thousand instructions */
    raw->file[file_len] = '\0';
    struct parse_ctx ctx = { .raw = raw, .err = err, .text = text, .len = len };
    int rc = ini_parse_stream(read_line, &ctx, on_entry, &ctx);
    if (ctx.failed)
        return -1;
    if (rc > 0) {
        hak_error_set(err, raw->file, rc, "syntax error (expected '[section]' or 'key = value')");
        return -1;
    }
    if (rc < 0) {
        hak_error_set(err, raw->file, 0, "cannot parse config");
        return -1;
    }
    return 0;
}

int hak_config_from_entries(struct hak_cfg_raw *raw, const char *file,
                            const struct hak_cfg_text_entry *entries, int count,
                            struct hak_error *err)
{
    size_t file_len = strlen(file) < sizeof raw->file ? strlen(file) : sizeof raw->file - 1;
    memcpy(raw->file, file, file_len);
    raw->file[file_len] = '\0';
    raw->entry_count = 0;
    for (int i = 0; i < count; i++) {
        if (i == HAK_MAX_ENTRIES) {
            hak_error_set(err, raw->file, entries[i].line, "more than %d keys", HAK_MAX_ENTRIES);
            return -1;
        }
        struct hak_cfg_entry *e = &raw->entries[i];
        /* The table's strings, not copies (they live as long as the
         * library); only their lengths are checked, as a parse would. */
        if (strlen(entries[i].section) >= HAK_NAME_MAX || strlen(entries[i].key) >= HAK_NAME_MAX ||
            strlen(entries[i].value) >= HAK_VALUE_MAX) {
            hak_error_set(err, raw->file, entries[i].line, "name or value too long");
            return -1;
        }
        e->section = entries[i].section;
        e->key = entries[i].key;
        e->value = entries[i].value;
        e->source = raw->file;
        e->line = entries[i].line;
        raw->entry_count++;
    }
    return 0;
}

/* HAKMEM_SET="box.tiny.capacity=64,host.stats=json": each item sets or
 * replaces one key; the last dot before '=' separates section and key. */
int hak_config_apply_overrides(struct hak_cfg_raw *raw, const char *set, struct hak_error *err)
{
    if (!set)
        return 0;
    int item = 0;
    const char *p = set;
    while (*p) {
        /* A comma ends the item only if what follows it looks like another
         * item (has an '=' before the next comma): list values such as
         * box.ss.classes=16,32,64 keep their commas. */
        const char *end = strchr(p, ',');
        while (end) {
            const char *next = strchr(end + 1, ',');
            const char *eq = strchr(end + 1, '=');
            if (eq && (!next || eq < next))
                break;
            end = next;
        }
        size_t n = end ? (size_t)(end - p) : strlen(p);
        item++;
        char buf[HAK_NAME_MAX * 2 + HAK_VALUE_MAX];
        if (n == 0 || n >= sizeof buf) {
            hak_error_set(err, "HAKMEM_SET", item, "item %d is empty or too long", item);
            return -1;
        }
        memcpy(buf, p, n);
        buf[n] = '\0';
        char *eq = strchr(buf, '=');
        char *dot = NULL;
        for (char *q = buf; eq && q < eq; q++)
            if (*q == '.')
                dot = q;
        if (!eq || !dot) {
            hak_error_set(err, "HAKMEM_SET", item,
                          "'%s': expected section.key=value (e.g. box.tiny.capacity=64)", buf);
            return -1;
        }
        *eq = '\0';
        *dot = '\0';
        const char *section = buf, *key = dot + 1, *value = eq + 1;
        int at = -1;
        for (int i = 0; i < raw->entry_count; i++)
            if (!strcmp(raw->entries[i].section, section) && !strcmp(raw->entries[i].key, key))
                at = i;
        if (at < 0) {
            if (raw->entry_count == HAK_MAX_ENTRIES) {
                hak_error_set(err, "HAKMEM_SET", item, "too many keys");
                return -1;
            }
            at = raw->entry_count++;
            if (store_entry(raw, at, section, key, NULL)) {
                hak_error_set(err, "HAKMEM_SET", item, "name too long");
                return -1;
            }
        }
        struct hak_cfg_entry *e = &raw->entries[at];
        if (store_entry(raw, at, NULL, NULL, value)) {
            hak_error_set(err, "HAKMEM_SET", item, "value too long");
            return -1;
        }
        e->source = "HAKMEM_SET";
        e->line = item;
        p = end ? end + 1 : p + n;
    }
    return 0;
}
