/*
 * Reading and making traces (trace_format.h): the library behind
 * `hakmem record`, `hakmem trace` and the replayer (bench_replay).
 */
#ifndef HAKMEM_TRACE_H
#define HAKMEM_TRACE_H

#include "trace_format.h"

#include <stdio.h>

#define TRACE_ERR_MAX 512

/* ---- convert.c: raw file -> trace ------------------------------------- */

struct convert_info {
    uint64_t pid, ppid;
    unsigned image;
    int clean_exit;
    uint64_t events, threads, slots;
    uint64_t bad_calls;         /* frees of non-blocks etc., kept in the trace */
    uint64_t reappeared;        /* an address returned while still live: its free was out of sight */
    uint64_t torn_chunks;       /* chunks whose last event was cut (the process stopped mid-event) */
    char cmdline[256];          /* argv joined by spaces, shortened */
};

/* Converts the raw file at raw_path into a trace at out_path. Returns 0, or
 * -1 with a message in err. */
int trace_convert(const char *raw_path, const char *out_path, struct convert_info *info, char *err);
/* Reads the header of a raw file (pid, image) without converting it. */
int trace_raw_identity(const char *raw_path, uint64_t *pid, uint64_t *ppid, unsigned *image, char *err);

/* ---- trace_read.c: a trace, validated --------------------------------- */

struct trace_thread {
    uint64_t offset, bytes, events, first_seq, last_seq;
    uint32_t blocks;
};

struct trace {
    const uint8_t *base;   /* the file, mapped read-only */
    size_t size;
    uint32_t version, flags, image;
    uint64_t events, pid;
    uint32_t threads, slots;
    const char *cmdline;   /* NUL-separated argv */
    uint32_t cmdline_bytes;
    struct trace_thread *thread;
};

struct trace_event {
    unsigned kind, flags;
    uint64_t seq;
    uint64_t wait;         /* TF_WAIT: the slot's event count to wait for */
    uint64_t align, n, unit;  /* calloc / reallocarray: n x unit */
    uint64_t size;         /* bytes asked (n x unit, saturated, for calloc / reallocarray) */
    int64_t slot;          /* block the call returns or takes; -1 for none */
    int64_t old_slot;      /* realloc: the block it takes (-1: NULL) */
    uint64_t result;       /* malloc_usable_size's recorded result */
    uint64_t bad_addr;     /* TF_BAD: the address as recorded */
    uint64_t offset;       /* byte offset of the event in the file */
};

struct trace_cursor {
    const struct trace *t;
    unsigned thread;
    const uint8_t *p, *block_end;   /* events of the current block (in the file, or in buf) */
    const uint8_t *next, *stream_end; /* the next block's header in the file */
    uint64_t prev_seq, index;
    uint64_t block_offset;          /* file offset of the current block */
    int started, compressed;
    uint8_t *buf;                   /* a decompressed block (mmap'd on first use) */
    void *dctx;                     /* zstd's context, in mmap'd memory */
    size_t dctx_bytes;
};

/* Maps and checks the header, thread table and trailer. Returns 0, or -1
 * with err naming what is wrong and the byte offset. */
int trace_open(const char *path, struct trace *t, char *err);
/* Checks every block's CRC and decodes every event (slots in range, seqs
 * increasing, kinds known): 0, or -1 with the offset in err. */
int trace_validate(const struct trace *t, char *err);
void trace_close(struct trace *t);

void trace_cursor_init(struct trace_cursor *c, const struct trace *t, unsigned thread);
/* Unmaps what the cursor mapped for compressed blocks. */
void trace_cursor_release(struct trace_cursor *c);
/* The thread's next event: 1, 0 at the end of its stream, -1 with err. */
int trace_next(struct trace_cursor *c, struct trace_event *ev, char *err);

/* Bytes an allocation event asks for (0 for free / usable_size). */
static inline uint64_t trace_event_bytes(const struct trace_event *ev)
{
    return ev->size;
}

static inline int trace_kind_allocates(unsigned kind)
{
    return kind != TK_FREE && kind != TK_USABLE_SIZE && kind != TK_NONE;
}

#endif
