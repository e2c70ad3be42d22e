/*
 * telemetry: internal declarations shared by telemetry_box.c (descriptor,
 * event counting), telemetry_view.c (what the counters mean at exit:
 * attribution to buckets) and telemetry_report.c (the text table and JSON).
 */
#ifndef HAKBOX_TELEMETRY_H
#define HAKBOX_TELEMETRY_H

#include <box_api/hakmem_box.h>
#include <box_api/hakmem_util.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Owner ids the box keeps apart; events of larger ids share slot 0. The
 * host has at most 32 instances, ids 1..32. */
#define TEL_MAX_OWNERS 64
#define TEL_PAGE 4096u

/* Per event type: how many events, the sum of their `bytes` and of their
 * `count`. */
enum { TEL_EVENTS, TEL_BYTES, TEL_BLOCKS, TEL_FIELDS };

struct tel_counters {
    _Atomic uint64_t v[HAK_EV_TYPE_COUNT][TEL_FIELDS];
};

struct tel_inst {
    const struct hak_host *host;
    char name[64];
    uint16_t owner;
    bool events, process, boxes, text;
    char json_file[HAK_PARAM_STRING_MAX + 1];
    /* Events that named a bucket. */
    struct tel_counters bucket[HAK_BUCKET_COUNT];
    /* Events with bucket OTHER, by owner: attributed to a bucket at exit,
     * when the owner turns out to serve one bucket only (host MAP/UNMAP,
     * page boxes' REUSE/DRAIN). */
    struct tel_counters loose[TEL_MAX_OWNERS];
    /* Every event, by owner: the per-box view. */
    struct tel_counters by_owner[TEL_MAX_OWNERS];
    /* Buckets each owner named, bit per enum hak_bucket. */
    _Atomic uint32_t owner_buckets[TEL_MAX_OWNERS];
};

static inline unsigned tel_owner_slot(uint16_t owner)
{
    return owner < TEL_MAX_OWNERS ? owner : 0;
}

/* Counters of one bucket (or one box) as the report shows them. */
struct tel_row {
    uint64_t fresh_bytes, fresh_events;
    uint64_t mapped_bytes, map_events, unmapped_bytes, unmap_events;
    uint64_t reuse_bytes, reuse_events;
    uint64_t refills, refill_blocks, drains, drain_blocks, remote_frees;
};

enum tel_touch_source { TOUCH_NONE, TOUCH_ALLOCS, TOUCH_REFILLS };

struct tel_bucket_view {
    struct tel_row row;
    uint64_t allocs;    /* valid when alloc_box >= 0 */
    int alloc_box;      /* index in ctx->boxes the allocations come from */
    enum tel_touch_source touch_source;
    uint64_t touch_milli; /* touches per page * 1000 */
    uint64_t resident;  /* bytes resident at exit (host's count per box, attributed) */
};

struct tel_box_view {
    struct tel_row row;
    int bucket;         /* the one bucket the box serves, -1 if not one */
    uint32_t bucket_mask;
    bool has_touch;
    uint64_t touch_milli;
    uint64_t resident;  /* bytes resident at exit, from the host */
};

struct tel_view {
    struct tel_bucket_view buckets[HAK_BUCKET_COUNT];
    struct tel_box_view boxes[TEL_MAX_OWNERS]; /* by index in ctx->boxes */
    uint32_t box_count;
    bool has_resident;  /* the host counted resident memory (ctx->resident) */
};

extern const char *const tel_bucket_names[HAK_BUCKET_COUNT];

static inline uint64_t tel_pages(uint64_t bytes)
{
    return (bytes + TEL_PAGE - 1) / TEL_PAGE;
}

/* telemetry_view.c */
void tel_view_build(const struct tel_inst *in, const struct hak_report_ctx *ctx,
                    struct tel_view *view);

/* telemetry_report.c */
void tel_report(void *inst, const struct hak_report_ctx *ctx);

/* A small buffered writer over a file descriptor: no stdio, no malloc. */
struct tel_out {
    int fd;
    size_t used;
    char buf[2048];
};

void tel_out_flush(struct tel_out *o);
void tel_printf(struct tel_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string body (quotes not included), valid UTF-8 only. */
void tel_json_string(struct tel_out *o, const char *s);

#endif
