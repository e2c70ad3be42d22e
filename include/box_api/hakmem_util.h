/*
 * Small inline helpers shared by boxes: part of the box kit, so a box needs
 * nothing but include/box_api/. Everything here is header-only and has no
 * state, so boxes stay independent .so files.
 */
#ifndef HAKMEM_UTIL_H
#define HAKMEM_UTIL_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_lock.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* The lock boxes use (spin, then futex sleep; fork-aware): hakmem_lock.h. */

static inline size_t hak_align_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

static inline int hak_is_pow2(size_t n) { return n && !(n & (n - 1)); }

/* Index of the highest set bit; n must be non-zero. */
static inline unsigned hak_log2(size_t n)
{
    return (unsigned)(63 - __builtin_clzll((unsigned long long)n));
}

/* Add one slice's counters into a stats() output (boxes keep a struct
 * hak_stats per slice; the host sums slices). */
static inline void hak_stats_add(struct hak_stats *out, const struct hak_stats *s)
{
    out->allocs += s->allocs;
    out->frees += s->frees;
    out->bytes_allocated += s->bytes_allocated;
    out->bytes_freed += s->bytes_freed;
    out->refills += s->refills;
    out->drains += s->drains;
    out->remote_frees += s->remote_frees;
    out->cached_bytes += s->cached_bytes;
}

/* A file name pattern with %p replaced by a pid and %% by %, so each
 * process of a script or a forking program writes its own report (the
 * host's stats_file, telemetry's json_file, `hakmem record`'s traces).
 * had_pid (if not NULL) tells whether %p was there. Returns -1 if it does
 * not fit. */
static inline int hak_path_expand(const char *pattern, unsigned long long pid, char *out,
                                  size_t len, int *had_pid)
{
    size_t used = 0;
    if (had_pid)
        *had_pid = 0;
    for (const char *p = pattern; *p; p++) {
        int n;
        if (p[0] == '%' && p[1] == 'p') {
            n = snprintf(out + used, len - used, "%llu", pid);
            if (had_pid)
                *had_pid = 1;
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            n = snprintf(out + used, len - used, "%%");
            p++;
        } else {
            n = snprintf(out + used, len - used, "%c", *p);
        }
        if (n < 0 || (size_t)n >= len - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

/* The same with this process's pid. */
static inline int hak_path_expand_pid(const char *pattern, char *out, size_t len)
{
    return hak_path_expand(pattern, (unsigned long long)getpid(), out, len, NULL);
}

#endif
