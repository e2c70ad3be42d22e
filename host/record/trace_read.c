/*
 * Reading a trace (trace_format.h): the header, the thread table and the
 * trailer are checked at open; trace_validate checks every block's CRC and
 * decodes every event before a replay issues any call. Every error names
 * the byte offset where the file stops making sense.
 */
#include "trace.h"

#include <errno.h>
#ifdef HAKMEM_TRACE_ZSTD
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_initStaticDCtx: a context in memory we map */
#include <zstd.h>
#endif
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TRACE_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

#define ULL(x) ((unsigned long long)(x))

int trace_open(const char *path, struct trace *t, char *err)
{
    memset(t, 0, sizeof *t);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return fail(err, "%s: %s", path, strerror(errno));
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return fail(err, "%s: truncated at byte offset %zu: not even the 8-byte magic", path, size);
    }
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return fail(err, "%s: mmap: %s", path, strerror(errno));
    t->base = m;
    t->size = size;
    const uint8_t *b = m;
    if (memcmp(b, TRACE_MAGIC, 8)) {
        int raw = !memcmp(b, RAW_MAGIC, 8);
        trace_close(t);
        if (raw)
            return fail(err, "%s: byte offset 0: a raw recording, not a trace (convert it: hakmem trace convert)", path);
        return fail(err, "%s: byte offset 0: not a hakmem trace (magic is not HAKTRACE)", path);
    }
    if (size < TRACE_HEADER_BYTES + 16) {
        trace_close(t);
        return fail(err, "%s: truncated at byte offset %zu: the header and trailer need %u bytes", path, size,
                    TRACE_HEADER_BYTES + 16);
    }
    t->version = trace_get32(b + 8);
    if (t->version != TRACE_VERSION) {
        trace_close(t);
        return fail(err, "%s: byte offset 8: trace format version %u; this hakmem reads version %u", path,
                    t->version, TRACE_VERSION);
    }
    if (trace_get32(b + 12) != TRACE_HEADER_BYTES || trace_get32(b + 60) != trace_crc32(b, 60)) {
        trace_close(t);
        return fail(err, "%s: byte offset 0: the header is corrupt (CRC mismatch)", path);
    }
    t->events = trace_get64(b + 16);
    t->threads = trace_get32(b + 24);
    t->slots = trace_get32(b + 28);
    t->pid = trace_get64(b + 32);
    uint64_t table = trace_get64(b + 40);
    t->flags = trace_get32(b + 48);
    t->cmdline_bytes = trace_get32(b + 52);
    t->image = trace_get32(b + 56);
    t->cmdline = (const char *)b + TRACE_HEADER_BYTES;
    uint64_t table_end = table + (uint64_t)t->threads * TRACE_THREAD_BYTES;
    if (table < TRACE_HEADER_BYTES + t->cmdline_bytes || table_end + 16 != size) {
        trace_close(t);
        if (table_end + 16 > size)
            return fail(err, "%s: truncated at byte offset %zu: the header says the file ends at %llu", path, size,
                        ULL(table_end + 16));
        return fail(err, "%s: byte offset %zu: %llu bytes after the end the header gives (%llu)", path,
                    (size_t)(table_end + 16), ULL(size - table_end - 16), ULL(table_end + 16));
    }
    if (memcmp(b + size - 16, TRACE_TRAILER_MAGIC, 8) || trace_get64(b + size - 8) != table) {
        trace_close(t);
        return fail(err, "%s: byte offset %zu: the trailer is corrupt", path, size - 16);
    }
    t->thread = calloc(t->threads ? t->threads : 1, sizeof *t->thread);
    if (!t->thread) {
        trace_close(t);
        return fail(err, "out of memory");
    }
    uint64_t expect = TRACE_HEADER_BYTES + t->cmdline_bytes;
    for (uint32_t i = 0; i < t->threads; i++) {
        const uint8_t *e = b + table + (uint64_t)i * TRACE_THREAD_BYTES;
        size_t at = (size_t)(e - b);
        if (trace_get32(e + 52) != trace_crc32(e, 52)) {
            trace_close(t);
            return fail(err, "%s: byte offset %zu: thread %u's table entry is corrupt (CRC mismatch)", path, at, i);
        }
        struct trace_thread *th = &t->thread[i];
        th->offset = trace_get64(e);
        th->bytes = trace_get64(e + 8);
        th->events = trace_get64(e + 16);
        th->first_seq = trace_get64(e + 24);
        th->last_seq = trace_get64(e + 32);
        th->blocks = trace_get32(e + 40);
        if (th->offset != expect || th->offset + th->bytes > table) {
            trace_close(t);
            return fail(err, "%s: byte offset %zu: thread %u's stream (%llu bytes at %llu) is out of place", path,
                        at, i, ULL(th->bytes), ULL(th->offset));
        }
        expect += th->bytes;
    }
    if (expect != table) {
        trace_close(t);
        return fail(err, "%s: byte offset %llu: %llu bytes between the streams and the thread table", path,
                    ULL(expect), ULL(table - expect));
    }
    return 0;
}

void trace_close(struct trace *t)
{
    if (t->base)
        munmap((void *)t->base, t->size);
    free(t->thread);
    t->base = NULL;
    t->thread = NULL;
}

void trace_cursor_init(struct trace_cursor *c, const struct trace *t, unsigned thread)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->thread = thread;
    c->next = c->p = c->block_end = t->base + t->thread[thread].offset;
    c->stream_end = c->next + t->thread[thread].bytes;
}

void trace_cursor_release(struct trace_cursor *c)
{
    if (c->buf)
        munmap(c->buf, TRACE_BLOCK_MAX);
    if (c->dctx)
        munmap(c->dctx, c->dctx_bytes);
    c->buf = NULL;
    c->dctx = NULL;
}

/* Where an event starts, as a file offset: inside a compressed block, the
 * block's own offset. */
static size_t off_of(const struct trace_cursor *c, const uint8_t *at)
{
    return c->compressed ? (size_t)c->block_offset : (size_t)(at - c->t->base);
}

/* A compressed block into c->buf. The context and the buffer are mmap'd:
 * the replayer never allocates from the allocator under test. */
static int inflate_block(struct trace_cursor *c, const uint8_t *src, uint32_t len, char *err)
{
#ifdef HAKMEM_TRACE_ZSTD
    if (!c->buf) {
        c->dctx_bytes = ZSTD_estimateDCtxSize();
        void *b = mmap(NULL, TRACE_BLOCK_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        void *w = mmap(NULL, c->dctx_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED || w == MAP_FAILED)
            return fail(err, "cannot map a block buffer: %s", strerror(errno));
        c->buf = b;
        c->dctx = w;
        if (!ZSTD_initStaticDCtx(w, c->dctx_bytes))
            return fail(err, "zstd: cannot set up a decompression context");
    }
    size_t n = ZSTD_decompressDCtx(c->dctx, c->buf, TRACE_BLOCK_MAX, src, len);
    if (ZSTD_isError(n))
        return fail(err, "byte offset %llu: thread %u's compressed block does not decompress (%s)",
                    ULL(c->block_offset), c->thread, ZSTD_getErrorName(n));
    c->p = c->buf;
    c->block_end = c->buf + n;
    return 0;
#else
    (void)src;
    (void)len;
    return fail(err, "byte offset %llu: thread %u's block is zstd-compressed; this hakmem was built without "
                "libzstd (tests/deps.sh installs libzstd-dev)", ULL(c->block_offset), c->thread);
#endif
}

/* The block headers are checked by trace_validate; a replay that did not
 * validate still stops at a block that runs past its stream. */
static int next_block(struct trace_cursor *c, char *err)
{
    c->block_offset = (uint64_t)(c->next - c->t->base);
    if (c->stream_end - c->next < 8)
        return fail(err, "byte offset %llu: thread %u's stream ends inside a block header", ULL(c->block_offset),
                    c->thread);
    uint32_t word = trace_get32(c->next), len = word & ~TRACE_BLOCK_ZSTD;
    if ((size_t)(c->stream_end - c->next - 8) < len || (!(word & TRACE_BLOCK_ZSTD) && len > TRACE_BLOCK_MAX))
        return fail(err, "byte offset %llu: thread %u's block of %u bytes runs past its stream", ULL(c->block_offset),
                    c->thread, len);
    const uint8_t *payload = c->next + 8;
    c->next = payload + len;
    c->compressed = !!(word & TRACE_BLOCK_ZSTD);
    if (c->compressed)
        return inflate_block(c, payload, len, err);
    c->p = payload;
    c->block_end = payload + len;
    return 0;
}

static int field(struct trace_cursor *c, uint64_t *v, const uint8_t *start, char *err)
{
    if (trace_get_varint(&c->p, c->block_end, v))
        return fail(err, "byte offset %zu: thread %u's event %llu is cut short by its block's end",
                    off_of(c, start), c->thread, ULL(c->index));
    return 0;
}

static int slot_field(struct trace_cursor *c, int64_t *slot, int plus_one, const uint8_t *start, char *err)
{
    uint64_t v;
    if (field(c, &v, start, err))
        return -1;
    if (plus_one) {
        if (v > c->t->slots)
            return fail(err, "byte offset %zu: thread %u's event %llu names block %llu of %u", off_of(c, start),
                        c->thread, ULL(c->index), ULL(v - 1), c->t->slots);
        *slot = (int64_t)v - 1;
    } else {
        if (v >= c->t->slots)
            return fail(err, "byte offset %zu: thread %u's event %llu names block %llu of %u", off_of(c, start),
                        c->thread, ULL(c->index), ULL(v), c->t->slots);
        *slot = (int64_t)v;
    }
    return 0;
}

int trace_next(struct trace_cursor *c, struct trace_event *ev, char *err)
{
    while (c->p >= c->block_end) {
        if (c->next >= c->stream_end)
            return 0;
        if (next_block(c, err))
            return -1;
    }
    const uint8_t *start = c->p;
    memset(ev, 0, sizeof *ev);
    ev->offset = off_of(c, start);
    ev->slot = ev->old_slot = -1;
    uint8_t tag = *c->p++;
    ev->kind = tag & TF_KIND_MASK;
    ev->flags = tag & ~TF_KIND_MASK;
    if (ev->kind == TK_NONE || ev->kind >= TK_COUNT || (tag & 0x80))
        return fail(err, "byte offset %zu: thread %u's event %llu has the unknown tag 0x%02x", (size_t)ev->offset,
                    c->thread, ULL(c->index), tag);
    uint64_t d;
    if (field(c, &d, start, err))
        return -1;
    ev->seq = c->started ? c->prev_seq + 1 + d : d;
    if (ev->seq < c->prev_seq || ev->seq >= c->t->events)
        return fail(err, "byte offset %zu: thread %u's event %llu has sequence number %llu (of %llu)",
                    (size_t)ev->offset, c->thread, ULL(c->index), ULL(ev->seq), ULL(c->t->events));
    c->prev_seq = ev->seq;
    c->started = 1;
    if ((ev->flags & TF_WAIT) && field(c, &ev->wait, start, err))
        return -1;
    int bad = !!(ev->flags & TF_BAD), null = !!(ev->flags & TF_NULL);
    switch (ev->kind) {
    case TK_MALLOC:
    case TK_VALLOC:
    case TK_PVALLOC:
        if (field(c, &ev->size, start, err))
            return -1;
        break;
    case TK_CALLOC:
        if (field(c, &ev->n, start, err) || field(c, &ev->unit, start, err))
            return -1;
        if (__builtin_mul_overflow(ev->n, ev->unit, &ev->size))
            ev->size = UINT64_MAX;
        break;
    case TK_MEMALIGN:
    case TK_ALIGNED_ALLOC:
    case TK_POSIX_MEMALIGN:
        if (field(c, &ev->align, start, err) || field(c, &ev->size, start, err))
            return -1;
        break;
    case TK_REALLOC:
    case TK_REALLOCARRAY:
        if (slot_field(c, &ev->old_slot, 1, start, err))
            return -1;
        if (ev->kind == TK_REALLOCARRAY) {
            if (field(c, &ev->n, start, err) || field(c, &ev->unit, start, err))
                return -1;
            if (__builtin_mul_overflow(ev->n, ev->unit, &ev->size))
                ev->size = UINT64_MAX;
        } else if (field(c, &ev->size, start, err)) {
            return -1;
        }
        if (bad && field(c, &ev->bad_addr, start, err))
            return -1;
        if (!null) {
            if (ev->old_slot >= 0 && !bad)
                ev->slot = ev->old_slot;
            else if (slot_field(c, &ev->slot, 0, start, err))
                return -1;
        }
        c->index++;
        return 1;
    case TK_FREE:
        if (slot_field(c, &ev->old_slot, 1, start, err) || (bad && field(c, &ev->bad_addr, start, err)))
            return -1;
        c->index++;
        return 1;
    case TK_USABLE_SIZE:
        if (slot_field(c, &ev->old_slot, 1, start, err) || field(c, &ev->result, start, err) ||
            (bad && field(c, &ev->bad_addr, start, err)))
            return -1;
        c->index++;
        return 1;
    }
    if (!null && slot_field(c, &ev->slot, 0, start, err))
        return -1;
    c->index++;
    return 1;
}

/* Memory the checks below need, mapped (the replayer never allocates
 * from the allocator under test). */
static void *map_zero(size_t bytes)
{
    void *m = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

struct order_check {
    struct trace_cursor *cur;
    struct trace_event *ev;
    uint32_t *heap, *count, *last;
    uint8_t *live;
    size_t n;
};

static int oc_less(const struct order_check *o, size_t a, size_t b)
{
    return o->ev[o->heap[a]].seq < o->ev[o->heap[b]].seq;
}

static void oc_sift(struct order_check *o, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < o->n && oc_less(o, l, m))
            m = l;
        if (r < o->n && oc_less(o, r, m))
            m = r;
        if (m == i)
            return;
        uint32_t x = o->heap[i];
        o->heap[i] = o->heap[m];
        o->heap[m] = x;
        i = m;
    }
}

/* One event against the blocks' state, in trace order: a replay of a trace
 * that passes cannot wait forever or take a block another thread holds. */
static int oc_event(struct order_check *o, const struct trace *t, unsigned th, const struct trace_event *ev,
                    char *err)
{
    int bad = !!(ev->flags & TF_BAD);
    int64_t old = ev->old_slot, slot = ev->slot;
    const char *kind = trace_kind_names[ev->kind];
    if (old >= 0) {
        if (ev->flags & TF_WAIT) {
            if (o->count[old] != ev->wait)
                return fail(err, "byte offset %llu: call %llu (thread %u, %s) waits for block %lld's event %llu, "
                            "which is its event %u in the trace's order", ULL(ev->offset), ULL(ev->seq), th, kind,
                            (long long)old, ULL(ev->wait), o->count[old]);
        } else if (o->count[old] && o->last[old] != th) {
            return fail(err, "byte offset %llu: call %llu (thread %u, %s) takes block %lld from thread %u without "
                        "waiting for it", ULL(ev->offset), ULL(ev->seq), th, kind, (long long)old, o->last[old]);
        }
        if (!bad && !o->live[old])
            return fail(err, "byte offset %llu: call %llu (thread %u, %s) takes block %lld, which is not live",
                        ULL(ev->offset), ULL(ev->seq), th, kind, (long long)old);
    }
    if (slot >= 0 && slot != old) {
        if (o->live[slot])
            return fail(err, "byte offset %llu: call %llu (thread %u, %s) returns block %lld, which is still live",
                        ULL(ev->offset), ULL(ev->seq), th, kind, (long long)slot);
        uint32_t prev = o->last[slot];
        if (o->count[slot] && prev != th && t->thread[prev].last_seq >= t->thread[th].first_seq)
            return fail(err, "byte offset %llu: call %llu (thread %u, %s) returns block %lld of thread %u, which "
                        "had not ended when thread %u started", ULL(ev->offset), ULL(ev->seq), th, kind,
                        (long long)slot, prev, th);
    }
    if (old >= 0) {
        o->count[old]++;
        o->last[old] = th;
    }
    if (slot >= 0 && slot != old) {
        o->count[slot]++;
        o->last[slot] = th;
        o->live[slot] = 1;
    }
    if (old >= 0 && !bad) {
        int freed = ev->kind == TK_FREE ||
                    ((ev->kind == TK_REALLOC || ev->kind == TK_REALLOCARRAY) && (ev->flags & TF_NULL) && !ev->size);
        if (freed)
            o->live[old] = 0;
    }
    return 0;
}

static int check_order(const struct trace *t, char *err)
{
    struct order_check o = { 0 };
    size_t nt = t->threads + 1, ns = (size_t)t->slots + 1;
    o.cur = map_zero(nt * sizeof *o.cur);
    o.ev = map_zero(nt * sizeof *o.ev);
    o.heap = map_zero(nt * sizeof *o.heap);
    o.count = map_zero(ns * sizeof *o.count);
    o.last = map_zero(ns * sizeof *o.last);
    o.live = map_zero(ns);
    int rc = -1;
    if (!o.cur || !o.ev || !o.heap || !o.count || !o.last || !o.live) {
        fail(err, "cannot map %zu bytes to check the trace's order", ns * 9 + nt * 256);
        goto out;
    }
    for (uint32_t i = 0; i < t->threads; i++) {
        trace_cursor_init(&o.cur[i], t, i);
        int r = trace_next(&o.cur[i], &o.ev[i], err);
        if (r < 0)
            goto out;
        if (r)
            o.heap[o.n++] = i;
    }
    for (size_t i = o.n; i-- > 0;)
        oc_sift(&o, i);
    for (uint64_t seq = 0; o.n; seq++) {
        uint32_t th = o.heap[0];
        if (o.ev[th].seq != seq) {
            fail(err, "byte offset %llu: thread %u's event has sequence number %llu where %llu comes next",
                 ULL(o.ev[th].offset), th, ULL(o.ev[th].seq), ULL(seq));
            goto out;
        }
        if (oc_event(&o, t, th, &o.ev[th], err))
            goto out;
        int r = trace_next(&o.cur[th], &o.ev[th], err);
        if (r < 0)
            goto out;
        if (!r)
            o.heap[0] = o.heap[--o.n];
        oc_sift(&o, 0);
    }
    rc = 0;
out:
    for (uint32_t i = 0; o.cur && i < t->threads; i++)
        trace_cursor_release(&o.cur[i]);
    if (o.cur)
        munmap(o.cur, nt * sizeof *o.cur);
    if (o.ev)
        munmap(o.ev, nt * sizeof *o.ev);
    if (o.heap)
        munmap(o.heap, nt * sizeof *o.heap);
    if (o.count)
        munmap(o.count, ns * sizeof *o.count);
    if (o.last)
        munmap(o.last, ns * sizeof *o.last);
    if (o.live)
        munmap(o.live, ns);
    return rc;
}

int trace_validate(const struct trace *t, char *err)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < t->threads; i++) {
        const struct trace_thread *th = &t->thread[i];
        const uint8_t *p = t->base + th->offset, *end = p + th->bytes;
        uint32_t blocks = 0;
        while (p < end) {
            size_t at = (size_t)(p - t->base);
            if (end - p < 8)
                return fail(err, "byte offset %zu: thread %u's stream ends inside a block header", at, i);
            uint32_t word = trace_get32(p), len = word & ~TRACE_BLOCK_ZSTD;
            if ((!(word & TRACE_BLOCK_ZSTD) && len > TRACE_BLOCK_MAX) || (size_t)(end - p - 8) < len)
                return fail(err, "byte offset %zu: thread %u's block %u claims %u bytes, past its stream", at, i,
                            blocks, len);
            if (trace_get32(p + 4) != trace_crc32(p + 8, len))
                return fail(err, "byte offset %zu: thread %u's block %u (bytes %zu-%zu) is corrupt (CRC mismatch)",
                            at, i, blocks, at + 8, at + 8 + len);
            p += 8 + len;
            blocks++;
        }
        if (blocks != th->blocks)
            return fail(err, "byte offset %llu: thread %u has %u blocks, its table entry says %u",
                        ULL(th->offset), i, blocks, th->blocks);
        struct trace_cursor c;
        struct trace_event ev;
        trace_cursor_init(&c, t, i);
        int r;
        uint64_t n = 0, last = 0;
        while ((r = trace_next(&c, &ev, err)) == 1) {
            if (n == 0 && ev.seq != th->first_seq) {
                trace_cursor_release(&c);
                return fail(err, "byte offset %llu: thread %u starts at sequence %llu, its table entry says %llu",
                            ULL(ev.offset), i, ULL(ev.seq), ULL(th->first_seq));
            }
            last = ev.seq;
            n++;
        }
        trace_cursor_release(&c);
        if (r < 0)
            return -1;
        if (n != th->events || (n && last != th->last_seq))
            return fail(err, "byte offset %llu: thread %u has %llu events ending at sequence %llu; its table entry says "
                        "%llu ending at %llu", ULL(th->offset), i, ULL(n), ULL(last), ULL(th->events),
                        ULL(th->last_seq));
        total += n;
    }
    if (total != t->events)
        return fail(err, "byte offset 16: the header counts %llu events, the streams hold %llu", ULL(t->events),
                    ULL(total));
    return check_order(t, err);
}
