/*
 * Raw file (what the recorder wrote) -> trace (what the replayer reads).
 *
 * The threads' events are merged by their global sequence numbers, so an
 * address reused after a free names a new block: every block gets a dense
 * slot (a thread reuses the slots it freed), and every event on a slot that
 * another thread touched last carries the slot's event count to wait for.
 * realloc is two points in the order: its release of the old block (seq1,
 * before the call) and its acquisition of the new one (seq2, after).
 */
#include "addr_map.h"
#include "trace.h"

#ifdef HAKMEM_TRACE_ZSTD
#include <zstd.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENT_BYTES_MAX 96

struct raw_event {
    unsigned kind;
    uint64_t seq, seq2, n, unit, size, align, addr, old, result; /* size: n x unit for calloc, reallocarray */
};

struct growbuf {
    uint8_t *data;
    size_t len, cap;
};

static int gb_reserve(struct growbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

struct rthread {
    uint64_t *chunks; /* file offsets, in file order (the thread's own order) */
    size_t nchunks, capchunks, next_chunk;
    const uint8_t *p, *end;
    uint64_t prev_seq, prev_addr;
    struct raw_event ev;
    int phase;        /* 0: ev not handled; 1: realloc's acquisition pending */
    int done;
    int64_t old_slot; /* phase 1: the block realloc took (-1: none) */
    int old_bad;
    /* output */
    int out_index;    /* -1 until its first event */
    struct growbuf out;
    size_t block_start;
    uint64_t out_prev_seq, events, first_seq, last_seq, blocks;
    uint32_t *free_slots;
    size_t nfree, capfree;
};

struct slot_state {
    uint32_t count;    /* events on the slot so far */
    int32_t last_tid;  /* raw tid of the thread that touched it last */
    uint8_t live;
};

struct conv {
    const uint8_t *base;
    size_t size;
    struct rthread *th;
    size_t nth;
    size_t *heap; /* thread indices, keyed by their next seq */
    size_t nheap;
    struct addr_map live, freed;
    struct slot_state *slots;
    size_t nslots, capslots;
    uint64_t emitted;
    /* Slots freed by threads that have ended, oldest first, with the
     * sequence number at which they were retired. */
    struct { uint32_t slot; uint64_t seq; } *retired;
    size_t retired_head, nretired, capretired;
    int nout;
    struct convert_info *info;
    char *err;
};

static int conv_fail(struct conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static int conv_fail(struct conv *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, TRACE_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- reading the raw events of one thread ------------------------------ */

static int get_addr(struct rthread *t, uint64_t *out)
{
    uint64_t v;
    if (trace_get_varint(&t->p, t->end, &v))
        return -1;
    t->prev_addr += (uint64_t)trace_unzigzag(v);
    *out = t->prev_addr;
    return 0;
}

static int decode_one(struct rthread *t, struct raw_event *e)
{
    uint64_t d;
    if (t->p >= t->end || !*t->p || *t->p >= TK_COUNT)
        return -1;
    e->kind = *t->p++;
    if (trace_get_varint(&t->p, t->end, &d))
        return -1;
    e->seq = t->prev_seq + d;
    t->prev_seq = e->seq;
    e->seq2 = e->seq;
    e->n = e->unit = e->size = e->align = e->addr = e->old = e->result = 0;
    const uint8_t **p = &t->p;
    switch (e->kind) {
    case TK_MALLOC:
    case TK_VALLOC:
    case TK_PVALLOC:
        return trace_get_varint(p, t->end, &e->size) || get_addr(t, &e->addr) ? -1 : 0;
    case TK_CALLOC:
        if (trace_get_varint(p, t->end, &e->n) || trace_get_varint(p, t->end, &e->unit) || get_addr(t, &e->addr))
            return -1;
        if (__builtin_mul_overflow(e->n, e->unit, &e->size))
            e->size = UINT64_MAX;
        return 0;
    case TK_MEMALIGN:
    case TK_ALIGNED_ALLOC:
    case TK_POSIX_MEMALIGN:
        return trace_get_varint(p, t->end, &e->align) || trace_get_varint(p, t->end, &e->size) ||
                       get_addr(t, &e->addr) ? -1 : 0;
    case TK_REALLOC:
    case TK_REALLOCARRAY:
        if (get_addr(t, &e->old))
            return -1;
        if (e->kind == TK_REALLOCARRAY && trace_get_varint(p, t->end, &e->n))
            return -1;
        if (trace_get_varint(p, t->end, e->kind == TK_REALLOCARRAY ? &e->unit : &e->size) ||
            trace_get_varint(p, t->end, &d))
            return -1;
        if (e->kind == TK_REALLOCARRAY && __builtin_mul_overflow(e->n, e->unit, &e->size))
            e->size = UINT64_MAX;
        e->seq2 = e->seq + d;
        t->prev_seq = e->seq2;
        return get_addr(t, &e->addr);
    case TK_FREE:
        return get_addr(t, &e->addr);
    case TK_USABLE_SIZE:
        return get_addr(t, &e->addr) || trace_get_varint(p, t->end, &e->result) ? -1 : 0;
    }
    return -1;
}

/* Loads the thread's next event into t->ev; sets done at its end. */
static void advance(struct conv *c, struct rthread *t)
{
    for (;;) {
        if (t->p < t->end) {
            const uint8_t *at = t->p;
            if (decode_one(t, &t->ev) == 0) {
                t->phase = 0;
                return;
            }
            (void)at;
            c->info->torn_chunks++;
            t->p = t->end;
        }
        if (t->next_chunk >= t->nchunks) {
            t->done = 1;
            return;
        }
        const struct raw_chunk *ch = (const void *)(c->base + t->chunks[t->next_chunk++]);
        size_t room = RAW_CHUNK_BYTES - sizeof *ch;
        t->p = (const uint8_t *)(ch + 1);
        t->end = t->p + (ch->used < room ? ch->used : room);
        t->prev_seq = 0;
        t->prev_addr = 0;
    }
}

static uint64_t key_of(const struct rthread *t)
{
    return t->phase ? t->ev.seq2 : t->ev.seq;
}

/* ---- the heap of threads by next seq ---------------------------------- */

static int heap_less(struct conv *c, size_t a, size_t b)
{
    return key_of(&c->th[c->heap[a]]) < key_of(&c->th[c->heap[b]]);
}

static void heap_swap(struct conv *c, size_t a, size_t b)
{
    size_t t = c->heap[a];
    c->heap[a] = c->heap[b];
    c->heap[b] = t;
}

static void heap_down(struct conv *c, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->nheap && heap_less(c, l, m))
            m = l;
        if (r < c->nheap && heap_less(c, r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(c, i, m);
        i = m;
    }
}

static void heap_up(struct conv *c, size_t i)
{
    while (i && heap_less(c, i, (i - 1) / 2)) {
        heap_swap(c, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* ---- slots ------------------------------------------------------------- */

static int64_t slot_new(struct conv *c, struct rthread *t)
{
    if (t->nfree)
        return t->free_slots[--t->nfree];
    /* A slot an ended thread freed: only for a thread whose first event
     * comes after that thread's last one, which the replayer starts only
     * once the other has ended (so the alloc needs no wait). */
    uint64_t first = t->out_index >= 0 ? t->first_seq : c->emitted;
    if (c->retired_head < c->nretired && c->retired[c->retired_head].seq <= first)
        return c->retired[c->retired_head++].slot;
    if (c->nslots == c->capslots) {
        size_t cap = c->capslots ? c->capslots * 2 : 1024;
        struct slot_state *s = realloc(c->slots, cap * sizeof *s);
        if (!s)
            return -1;
        c->slots = s;
        c->capslots = cap;
    }
    c->slots[c->nslots] = (struct slot_state){ 0, -1, 0 };
    return (int64_t)c->nslots++;
}

static int slot_release(struct conv *c, struct rthread *t, uint32_t slot)
{
    c->slots[slot].live = 0;
    if (t->nfree == t->capfree) {
        size_t cap = t->capfree ? t->capfree * 2 : 64;
        uint32_t *f = realloc(t->free_slots, cap * sizeof *f);
        if (!f)
            return -1;
        t->free_slots = f;
        t->capfree = cap;
    }
    t->free_slots[t->nfree++] = slot;
    return 0;
}

/* The thread has ended: its freed slots go to the others. */
static int retire_slots(struct conv *c, struct rthread *t)
{
    if (c->nretired + t->nfree > c->capretired) {
        size_t cap = c->capretired ? c->capretired : 1024;
        while (cap < c->nretired + t->nfree)
            cap *= 2;
        void *r = realloc(c->retired, cap * sizeof *c->retired);
        if (!r)
            return -1;
        c->retired = r;
        c->capretired = cap;
    }
    for (size_t i = 0; i < t->nfree; i++) {
        c->retired[c->nretired].slot = t->free_slots[i];
        c->retired[c->nretired++].seq = c->emitted;
    }
    t->nfree = 0;
    return 0;
}

/* A block returned at addr: a new slot (an address still live had its
 * free out of sight: its old block stays live, unreferenced). */
static int64_t acquire(struct conv *c, struct rthread *t, uint64_t addr)
{
    if (addr_map_del(&c->live, addr) >= 0)
        c->info->reappeared++;
    addr_map_del(&c->freed, addr);
    int64_t s = slot_new(c, t);
    if (s < 0 || addr_map_put(&c->live, addr, (uint32_t)s))
        return -1;
    c->slots[s].live = 1;
    return s;
}

/* ---- writing a thread's events ----------------------------------------- */

/* A block's events are compressed as one zstd frame when that is smaller
 * (the replayer decompresses a block at a time: docs/replay.md). */
static int close_block(struct rthread *t)
{
    size_t payload = t->out.len - t->block_start - 8;
    uint8_t *h = t->out.data + t->block_start;
    uint32_t word = (uint32_t)payload;
#ifdef HAKMEM_TRACE_ZSTD
    static uint8_t frame[TRACE_BLOCK_MAX + 1024];
    size_t n = payload >= 64 ? ZSTD_compress(frame, sizeof frame, h + 8, payload, 3) : 0;
    if (payload >= 64 && !ZSTD_isError(n) && n < payload) {
        memcpy(h + 8, frame, n);
        t->out.len = t->block_start + 8 + n;
        payload = n;
        word = (uint32_t)n | TRACE_BLOCK_ZSTD;
    }
#endif
    trace_put32(h, word);
    trace_put32(h + 4, trace_crc32(h + 8, payload));
    t->blocks++;
    return 0;
}

static int open_block(struct rthread *t)
{
    if (gb_reserve(&t->out, 8))
        return -1;
    t->block_start = t->out.len;
    memset(t->out.data + t->out.len, 0, 8);
    t->out.len += 8;
    return 0;
}

/* Appends one event (tag, seq, optional wait, then the fields in buf). */
static int emit(struct conv *c, struct rthread *t, unsigned tag, int64_t wait_slot, const uint8_t *fields,
                size_t nfields)
{
    uint8_t ev[EVENT_BYTES_MAX];
    uint64_t seq = c->emitted++;
    if (t->out_index < 0) {
        t->out_index = c->nout++;
        t->first_seq = seq;
        t->out_prev_seq = 0;
        if (open_block(t))
            return -1;
    }
    uint64_t wait = 0;
    if (wait_slot >= 0) {
        struct slot_state *s = &c->slots[wait_slot];
        if (s->last_tid >= 0 && s->last_tid != (int32_t)(t - c->th)) {
            tag |= TF_WAIT;
            wait = s->count;
        }
    }
    uint8_t *p = ev;
    *p++ = (uint8_t)tag;
    p = trace_put_varint(p, t->events ? seq - t->out_prev_seq - 1 : seq);
    if (tag & TF_WAIT)
        p = trace_put_varint(p, wait);
    memcpy(p, fields, nfields);
    p += nfields;
    size_t len = (size_t)(p - ev);
    if (t->out.len - t->block_start - 8 + len > TRACE_BLOCK_MAX) {
        close_block(t);
        if (open_block(t))
            return -1;
    }
    if (gb_reserve(&t->out, len))
        return -1;
    memcpy(t->out.data + t->out.len, ev, len);
    t->out.len += len;
    t->out_prev_seq = seq;
    t->last_seq = seq;
    t->events++;
    return 0;
}

/* The slot's event count moves on after every event on it. */
static void touched(struct conv *c, struct rthread *t, int64_t slot)
{
    if (slot < 0)
        return;
    c->slots[slot].count++;
    c->slots[slot].last_tid = (int32_t)(t - c->th);
}

/* The block at addr for a call that takes one: its slot, or -1 (and *bad
 * set, *stale the slot it last was, if any) when it is not a live block. */
static int64_t taken(struct conv *c, uint64_t addr, int *bad, int64_t *stale)
{
    int64_t s = addr_map_get(&c->live, addr);
    *bad = s < 0;
    *stale = -1;
    if (s < 0) {
        int64_t f = addr_map_get(&c->freed, addr);
        if (f >= 0 && !c->slots[f].live)
            *stale = f;
    }
    return s;
}

static int handle(struct conv *c, struct rthread *t)
{
    struct raw_event *e = &t->ev;
    uint8_t f[EVENT_BYTES_MAX], *p = f;
    int bad;
    int64_t stale, s;
    switch (e->kind) {
    case TK_FREE:
        if (!e->addr)
            return emit(c, t, TK_FREE, -1, (const uint8_t[]){ 0 }, 1);
        s = taken(c, e->addr, &bad, &stale);
        if (bad) {
            c->info->bad_calls++;
            p = trace_put_varint(p, (uint64_t)(stale + 1));
            p = trace_put_varint(p, e->addr);
            if (emit(c, t, TK_FREE | TF_BAD, stale, f, (size_t)(p - f)))
                return -1;
            touched(c, t, stale);
            return 0;
        }
        p = trace_put_varint(p, (uint64_t)s + 1);
        if (emit(c, t, TK_FREE, s, f, (size_t)(p - f)))
            return -1;
        touched(c, t, s);
        addr_map_del(&c->live, e->addr);
        if (addr_map_put(&c->freed, e->addr, (uint32_t)s))
            return -1;
        return slot_release(c, t, (uint32_t)s);
    case TK_USABLE_SIZE:
        s = taken(c, e->addr, &bad, &stale);
        if (bad) {
            c->info->bad_calls++;
            p = trace_put_varint(p, (uint64_t)(stale + 1));
            p = trace_put_varint(p, e->result);
            p = trace_put_varint(p, e->addr);
            if (emit(c, t, TK_USABLE_SIZE | TF_BAD, stale, f, (size_t)(p - f)))
                return -1;
            touched(c, t, stale);
            return 0;
        }
        p = trace_put_varint(p, (uint64_t)s + 1);
        p = trace_put_varint(p, e->result);
        if (emit(c, t, TK_USABLE_SIZE, s, f, (size_t)(p - f)))
            return -1;
        touched(c, t, s);
        return 0;
    case TK_REALLOC:
    case TK_REALLOCARRAY:
        if (t->phase == 0) {
            /* seq1: the old block is released (an address another thread
             * gets from now on is a new block). */
            t->old_slot = -1;
            t->old_bad = 0;
            if (e->old) {
                s = taken(c, e->old, &bad, &stale);
                if (bad) {
                    c->info->bad_calls++;
                    t->old_bad = 1;
                    t->old_slot = stale;
                } else {
                    addr_map_del(&c->live, e->old);
                    t->old_slot = s;
                }
            }
            t->phase = 1;
            return 1; /* back into the heap at seq2 */
        }
        {
            unsigned tag = e->kind;
            int64_t slot = -1;
            int good_old = t->old_slot >= 0 && !t->old_bad;
            if (!e->addr)
                tag |= TF_NULL;
            if (t->old_bad)
                tag |= TF_BAD;
            p = trace_put_varint(p, (uint64_t)(t->old_slot + 1));
            if (e->kind == TK_REALLOCARRAY)
                p = trace_put_varint(p, e->n);
            p = trace_put_varint(p, e->kind == TK_REALLOCARRAY ? e->unit : e->size);
            if (t->old_bad)
                p = trace_put_varint(p, e->old);
            if (e->addr) {
                if (good_old) {
                    slot = t->old_slot;
                    addr_map_del(&c->freed, e->addr);
                    if (addr_map_del(&c->live, e->addr) >= 0)
                        c->info->reappeared++;
                    if (addr_map_put(&c->live, e->addr, (uint32_t)slot))
                        return -1;
                } else {
                    slot = acquire(c, t, e->addr);
                    if (slot < 0)
                        return -1;
                    p = trace_put_varint(p, (uint64_t)slot);
                }
            }
            /* Wait on the old block; a new slot is this thread's own. */
            if (emit(c, t, tag, t->old_slot, f, (size_t)(p - f)))
                return -1;
            if (t->old_slot >= 0)
                touched(c, t, t->old_slot);
            if (slot >= 0 && slot != t->old_slot)
                touched(c, t, slot);
            if (good_old && !e->addr) {
                if (e->size == 0) {
                    /* realloc(p, 0) returning NULL freed p (glibc). */
                    if (addr_map_put(&c->freed, e->old, (uint32_t)t->old_slot))
                        return -1;
                    return slot_release(c, t, (uint32_t)t->old_slot);
                }
                /* It failed: the old block is still live. */
                return addr_map_put(&c->live, e->old, (uint32_t)t->old_slot);
            }
            return 0;
        }
    default: {
        unsigned tag = e->kind;
        if (e->kind == TK_CALLOC) {
            p = trace_put_varint(p, e->n);
            p = trace_put_varint(p, e->unit);
        } else if (e->kind == TK_MEMALIGN || e->kind == TK_ALIGNED_ALLOC || e->kind == TK_POSIX_MEMALIGN) {
            p = trace_put_varint(p, e->align);
            p = trace_put_varint(p, e->size);
        } else {
            p = trace_put_varint(p, e->size);
        }
        s = -1;
        if (!e->addr) {
            tag |= TF_NULL;
        } else {
            s = acquire(c, t, e->addr);
            if (s < 0)
                return -1;
            p = trace_put_varint(p, (uint64_t)s);
        }
        if (emit(c, t, tag, -1, f, (size_t)(p - f)))
            return -1;
        touched(c, t, s);
        return 0;
    }
    }
}

/* ---- the file ---------------------------------------------------------- */

static int map_raw(const char *path, const uint8_t **base, size_t *size, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, TRACE_ERR_MAX, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || (size_t)st.st_size < RAW_HEADER_BYTES) {
        snprintf(err, TRACE_ERR_MAX, "%s: not a raw trace (%lld bytes, the header alone is %u)", path,
                 (long long)st.st_size, RAW_HEADER_BYTES);
        close(fd);
        return -1;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, TRACE_ERR_MAX, "%s: mmap: %s", path, strerror(errno));
        return -1;
    }
    const struct raw_header *h = m;
    if (memcmp(h->magic, RAW_MAGIC, 8) || h->version != RAW_VERSION || h->chunk_bytes != RAW_CHUNK_BYTES) {
        snprintf(err, TRACE_ERR_MAX, "%s: not a raw trace of version %u (offset 0)", path, RAW_VERSION);
        munmap(m, (size_t)st.st_size);
        return -1;
    }
    *base = m;
    *size = (size_t)st.st_size;
    return 0;
}

int trace_raw_identity(const char *raw_path, uint64_t *pid, uint64_t *ppid, unsigned *image, char *err)
{
    const uint8_t *base;
    size_t size;
    if (map_raw(raw_path, &base, &size, err))
        return -1;
    const struct raw_header *h = (const void *)base;
    *pid = h->pid;
    *ppid = h->ppid;
    *image = h->image;
    munmap((void *)base, size);
    return 0;
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int write_trace(struct conv *c, const char *out_path, const struct raw_header *h)
{
    FILE *f = fopen(out_path, "wb");
    if (!f)
        return conv_fail(c, "%s: %s", out_path, strerror(errno));
    uint32_t cmd_bytes = h->cmdline_bytes < RAW_CMDLINE_MAX ? h->cmdline_bytes : RAW_CMDLINE_MAX;
    uint64_t off = TRACE_HEADER_BYTES + cmd_bytes;
    /* Threads in the order of their first event. */
    struct rthread **order = calloc((size_t)c->nout + 1, sizeof *order);
    if (!order) {
        fclose(f);
        return conv_fail(c, "out of memory");
    }
    for (size_t i = 0; i < c->nth; i++)
        if (c->th[i].out_index >= 0) {
            close_block(&c->th[i]);
            order[c->th[i].out_index] = &c->th[i];
        }
    uint64_t table = off;
    for (int i = 0; i < c->nout; i++)
        table += order[i]->out.len;
    uint8_t hdr[TRACE_HEADER_BYTES] = { 0 };
    memcpy(hdr, TRACE_MAGIC, 8);
    trace_put32(hdr + 8, TRACE_VERSION);
    trace_put32(hdr + 12, TRACE_HEADER_BYTES);
    trace_put64(hdr + 16, c->emitted);
    trace_put32(hdr + 24, (uint32_t)c->nout);
    trace_put32(hdr + 28, (uint32_t)c->nslots);
    trace_put64(hdr + 32, h->pid);
    trace_put64(hdr + 40, table);
    trace_put32(hdr + 48, (h->flags & RAW_FLAG_CLEAN_EXIT) ? TRACE_FLAG_CLEAN_EXIT : 0);
    trace_put32(hdr + 52, cmd_bytes);
    trace_put32(hdr + 56, h->image);
    trace_put32(hdr + 60, trace_crc32(hdr, 60));
    int failed = write_all(f, hdr, sizeof hdr) || write_all(f, h->cmdline, cmd_bytes);
    for (int i = 0; i < c->nout && !failed; i++)
        failed = write_all(f, order[i]->out.data, order[i]->out.len);
    for (int i = 0; i < c->nout && !failed; i++) {
        uint8_t e[TRACE_THREAD_BYTES] = { 0 };
        struct rthread *t = order[i];
        trace_put64(e, off);
        trace_put64(e + 8, t->out.len);
        trace_put64(e + 16, t->events);
        trace_put64(e + 24, t->first_seq);
        trace_put64(e + 32, t->last_seq);
        trace_put32(e + 40, (uint32_t)t->blocks);
        trace_put32(e + 52, trace_crc32(e, 52));
        off += t->out.len;
        failed = write_all(f, e, sizeof e);
    }
    uint8_t trailer[16];
    memcpy(trailer, TRACE_TRAILER_MAGIC, 8);
    trace_put64(trailer + 8, table);
    if (!failed)
        failed = write_all(f, trailer, sizeof trailer);
    free(order);
    if (fclose(f) || failed)
        return conv_fail(c, "%s: write failed: %s", out_path, strerror(errno));
    return 0;
}

static void fill_cmdline(struct convert_info *info, const struct raw_header *h)
{
    size_t n = h->cmdline_bytes < RAW_CMDLINE_MAX ? h->cmdline_bytes : RAW_CMDLINE_MAX;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof info->cmdline; i++)
        info->cmdline[k++] = h->cmdline[i] ? h->cmdline[i] : ' ';
    while (k && info->cmdline[k - 1] == ' ')
        k--;
    info->cmdline[k] = '\0';
}

int trace_convert(const char *raw_path, const char *out_path, struct convert_info *info, char *err)
{
    struct conv c;
    memset(&c, 0, sizeof c);
    memset(info, 0, sizeof *info);
    c.info = info;
    c.err = err;
    if (map_raw(raw_path, &c.base, &c.size, err))
        return -1;
    const struct raw_header *h = (const void *)c.base;
    info->pid = h->pid;
    info->ppid = h->ppid;
    info->image = h->image;
    info->clean_exit = !!(h->flags & RAW_FLAG_CLEAN_EXIT);
    fill_cmdline(info, h);
    int rc = -1;
    if (addr_map_init(&c.live, 1 << 16) || addr_map_init(&c.freed, 1 << 16)) {
        conv_fail(&c, "out of memory");
        goto out;
    }
    /* Chunks, grouped by thread in file order. Unreserved chunks are zero. */
    for (uint64_t off = RAW_HEADER_BYTES; off + RAW_CHUNK_BYTES <= c.size; off += RAW_CHUNK_BYTES) {
        const struct raw_chunk *ch = (const void *)(c.base + off);
        if (ch->magic != RAW_CHUNK_MAGIC)
            continue;
        if (ch->tid > 1u << 24) {
            conv_fail(&c, "%s: chunk at offset %llu names thread %u", raw_path, (unsigned long long)off, ch->tid);
            goto out;
        }
        if (ch->tid >= c.nth) {
            size_t n = ch->tid + 1;
            struct rthread *th = realloc(c.th, n * sizeof *th);
            if (!th) {
                conv_fail(&c, "out of memory");
                goto out;
            }
            memset(th + c.nth, 0, (n - c.nth) * sizeof *th);
            for (size_t i = c.nth; i < n; i++)
                th[i].out_index = -1;
            c.th = th;
            c.nth = n;
        }
        struct rthread *t = &c.th[ch->tid];
        if (t->nchunks == t->capchunks) {
            size_t cap = t->capchunks ? t->capchunks * 2 : 16;
            uint64_t *chs = realloc(t->chunks, cap * sizeof *chs);
            if (!chs) {
                conv_fail(&c, "out of memory");
                goto out;
            }
            t->chunks = chs;
            t->capchunks = cap;
        }
        t->chunks[t->nchunks++] = off;
    }
    c.heap = calloc(c.nth + 1, sizeof *c.heap);
    if (!c.heap) {
        conv_fail(&c, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c.nth; i++) {
        advance(&c, &c.th[i]);
        if (!c.th[i].done) {
            c.heap[c.nheap++] = i;
            heap_up(&c, c.nheap - 1);
        }
    }
    while (c.nheap) {
        struct rthread *t = &c.th[c.heap[0]];
        int r = handle(&c, t);
        if (r < 0) {
            if (!err[0])
                conv_fail(&c, "out of memory");
            goto out;
        }
        if (r == 0)
            advance(&c, t);
        if (t->done) {
            c.heap[0] = c.heap[--c.nheap];
            if (retire_slots(&c, t)) {
                conv_fail(&c, "out of memory");
                goto out;
            }
        }
        heap_down(&c, 0);
    }
    info->events = c.emitted;
    info->threads = (uint64_t)c.nout;
    info->slots = c.nslots;
    rc = write_trace(&c, out_path, h);
out:
    for (size_t i = 0; i < c.nth; i++) {
        free(c.th[i].chunks);
        free(c.th[i].out.data);
        free(c.th[i].free_slots);
    }
    free(c.th);
    free(c.heap);
    free(c.retired);
    free(c.slots);
    addr_map_free(&c.live);
    addr_map_free(&c.freed);
    munmap((void *)c.base, c.size);
    return rc;
}
