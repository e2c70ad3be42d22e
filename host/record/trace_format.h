/*
 * The two trace formats (docs/replay.md has the full description):
 *
 * - raw: what the recorder (libhakmem_record.so) writes while the program
 *   runs, one file per program image: a 4 KB header, then fixed-size chunks,
 *   each owned by one thread, holding that thread's events with their global
 *   sequence numbers and the addresses the allocator returned or took.
 * - trace: what `hakmem record` makes of it once the program has exited
 *   (convert.c): per-thread streams in blocks with CRCs, addresses replaced by
 *   dense block slots, each cross-thread dependency spelled out, a version
 *   header and a trailer. The replayer and `hakmem trace stats` read this.
 *
 * Both are little-endian; numbers inside events are LEB128 varints.
 */
#ifndef HAKMEM_TRACE_FORMAT_H
#define HAKMEM_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* ---- the calls -------------------------------------------------------- */

enum trace_kind {
    TK_NONE = 0, /* never an event: a zero byte ends a raw chunk */
    TK_MALLOC = 1,
    TK_CALLOC = 2,
    TK_REALLOC = 3,
    TK_REALLOCARRAY = 4,
    TK_FREE = 5,
    TK_MEMALIGN = 6,
    TK_POSIX_MEMALIGN = 7,
    TK_ALIGNED_ALLOC = 8,
    TK_VALLOC = 9,
    TK_PVALLOC = 10,
    TK_USABLE_SIZE = 11,
    TK_COUNT = 12
};

static const char *const trace_kind_names[TK_COUNT] = {
    "none", "malloc", "calloc", "realloc", "reallocarray", "free", "memalign",
    "posix_memalign", "aligned_alloc", "valloc", "pvalloc", "malloc_usable_size",
};

/* ---- raw (recorder) --------------------------------------------------- */

#define RAW_MAGIC "HAKRAW\0\0"
#define RAW_VERSION 1u
#define RAW_HEADER_BYTES 4096u
#define RAW_CHUNK_BYTES 16384u
#define RAW_CHUNK_MAGIC 0x4b43484bu /* "KHCK" */
#define RAW_FLAG_CLEAN_EXIT 1u      /* the recorder's destructor ran (exit, not exec/_exit/signal) */
#define RAW_CMDLINE_MAX 3968u

struct raw_header {
    char magic[8];
    uint32_t version;
    uint32_t chunk_bytes;
    uint64_t pid, ppid;
    uint32_t image;      /* 0: the process's first program; n: after its n-th exec */
    uint32_t flags;      /* RAW_FLAG_* */
    uint64_t chunks;     /* chunks reserved at exit (0 if it did not exit cleanly) */
    uint32_t cmdline_bytes;
    uint32_t reserved;
    char cmdline[RAW_CMDLINE_MAX]; /* NUL-separated argv, like /proc/self/cmdline */
};

/* A chunk: its header, then events until `used` bytes. `used` is stored
 * after every event, so a chunk is consistent whenever the process stops. */
struct raw_chunk {
    uint32_t magic;
    uint32_t tid;
    uint32_t used;   /* payload bytes */
    uint32_t events;
};

/* Raw events: a kind byte, varint seq delta (from the thread's previous
 * event in this chunk; the first is absolute), then
 *   malloc/valloc/pvalloc: size addr      calloc: n size addr
 *   memalign/aligned_alloc/posix_memalign: align size addr (0 if it failed)
 *   realloc: old size seq2-seq1 new        reallocarray: old n size seq2-seq1 new
 *   free: addr                             malloc_usable_size: addr result
 * Addresses are zigzag deltas from the thread's previous address in the
 * chunk. realloc takes two sequence numbers: seq1 before the call (its
 * release of old) and seq2 after (its acquisition of new). */

/* ---- trace (replayer) ------------------------------------------------- */

#define TRACE_MAGIC "HAKTRACE"
#define TRACE_TRAILER_MAGIC "HAKTEND\0"
#define TRACE_VERSION 1u
#define TRACE_HEADER_BYTES 64u
#define TRACE_THREAD_BYTES 56u
#define TRACE_BLOCK_MAX 65536u      /* events of one block, before compression */
#define TRACE_BLOCK_ZSTD 0x80000000u /* in a block's length word: the payload is a zstd frame */
#define TRACE_FLAG_CLEAN_EXIT 1u

/* Header, 64 bytes at offset 0 (fields at fixed offsets, read with
 * trace_get32/64): magic[8], version u32 @8, header_bytes u32 @12,
 * events u64 @16, threads u32 @24, slots u32 @28, pid u64 @32,
 * table_offset u64 @40, flags u32 @48, cmdline_bytes u32 @52, image u32 @56,
 * crc32 of bytes 0-59 u32 @60. The command line follows at 64.
 *
 * Streams: blocks of {payload_bytes u32, crc32 of the payload u32, payload};
 * no event spans two blocks; with TRACE_BLOCK_ZSTD set in the length word
 * the payload is one zstd frame of up to TRACE_BLOCK_MAX bytes of events. Thread table at table_offset, 56 bytes per thread:
 * stream_offset u64, stream_bytes u64, events u64, first_seq u64,
 * last_seq u64, blocks u32, reserved u32, crc32 of the first 52 bytes u32.
 * Trailer, the last 16 bytes: "HAKTEND\0", table_offset u64. */

/* Trace events: a tag byte (kind in bits 0-3, TF_* flags above), varint
 * seq delta (seq - previous seq of the thread - 1; the first is seq), then
 * if TF_WAIT: varint count (wait until the slot has seen that many events),
 *   malloc/valloc/pvalloc: size [slot]      calloc: n size [slot]
 *   memalign/aligned_alloc/posix_memalign: align size [slot]
 *   realloc: old+1 size [slot if old is 0]  reallocarray: old+1 n size [slot if old is 0]
 *   free: slot+1 (0: free(NULL))            malloc_usable_size: slot+1 result
 * [slot] is absent when TF_NULL (the call returned NULL / failed).
 * TF_BAD: a free/realloc/usable_size of an address that was not a live
 * block: the slot+1 field is the block it last was (a double free) or 0 (an
 * address never returned), followed by the address as recorded. */
#define TF_KIND_MASK 0x0fu
#define TF_WAIT 0x10u
#define TF_NULL 0x20u
#define TF_BAD 0x40u

/* ---- helpers ---------------------------------------------------------- */

static inline uint8_t *trace_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a varint from [*p, end); returns -1 if it runs past end or is
 * longer than 10 bytes. */
static inline int trace_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *q = *p;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (q >= end)
            return -1;
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline uint64_t trace_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t trace_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static inline uint32_t trace_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t trace_get64(const uint8_t *p)
{
    return (uint64_t)trace_get32(p) | (uint64_t)trace_get32(p + 4) << 32;
}

static inline void trace_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void trace_put64(uint8_t *p, uint64_t v)
{
    trace_put32(p, (uint32_t)v);
    trace_put32(p + 4, (uint32_t)(v >> 32));
}

/* CRC-32 (IEEE), table-driven: trace_crc.c. */
uint32_t trace_crc32(const void *data, size_t len);

#endif
