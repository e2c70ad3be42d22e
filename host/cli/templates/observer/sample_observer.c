/*
 * sample_observer: a hakmem box of role observer, as `hakmem new-box` writes it from its
 * template (host/cli/templates/observer/ in hakmem's source).
 *
 * What it does: counts the events boxes report (fresh memory carved,
 * mappings, refills, drains, remote frees, reuse) per type and size bucket,
 * and at exit logs one line per event type seen and one per box with its
 * counters. Events come on slow paths only, from any thread, so the counters
 * are atomics; the host calls on_event only when an observer is configured.
 *
 * Rules every box keeps (docs/writing-a-box.md): no malloc/free/printf/mmap,
 * no __thread variables; write reports through host->log (or to a file
 * with open/write), never through stdio.
 */
#include <box_api/hakmem_box.h>

#include <stdatomic.h>
#include <stdio.h> /* snprintf, for create()'s error text only */

enum { P_PER_BOX, P_COUNT };

static const struct hak_param box_params[P_COUNT] = {
    [P_PER_BOX] = {"per_box", HAK_PARAM_BOOL, "on", 0, 1, NULL, "also report each box's counters at exit"},
};

static const char *const event_names[HAK_EV_TYPE_COUNT] = {
    "fresh", "map", "unmap", "refill", "drain", "remote_free", "reuse",
};

struct box_inst {
    const struct hak_host *host;
    char name[64];
    int per_box;
    _Atomic uint64_t count[HAK_EV_TYPE_COUNT][HAK_BUCKET_COUNT];
    _Atomic uint64_t bytes[HAK_EV_TYPE_COUNT][HAK_BUCKET_COUNT];
};

/* ---- lifecycle -------------------------------------------------------------- */

static void *box_create(const struct hak_host *host, const struct hak_box_config *cfg, char *err,
                        size_t err_len)
{
    struct box_inst *in = host->meta_alloc(sizeof *in);
    if (!in) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->per_box = (int)cfg->values[P_PER_BOX].i;
    return in;
}

static void box_destroy(void *inst)
{
    (void)inst;
}

/* ---- the observer role ---------------------------------------------------------- */

/* Any thread, slow paths only: keep it short and lock-free. */
static void box_on_event(void *inst, const struct hak_event *ev)
{
    struct box_inst *in = inst;
    if (ev->type >= HAK_EV_TYPE_COUNT || ev->bucket >= HAK_BUCKET_COUNT)
        return;
    atomic_fetch_add_explicit(&in->count[ev->type][ev->bucket], ev->count ? ev->count : 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&in->bytes[ev->type][ev->bucket], ev->bytes, memory_order_relaxed);
}

/* At exit: the event totals, then (per_box) every box's counters. */
static void box_report(void *inst, const struct hak_report_ctx *ctx)
{
    struct box_inst *in = inst;
    const struct hak_host *h = in->host;
    h->log(HAK_LOG_INFO, in->name, "report for %s (config %s)", ctx->command_line ? ctx->command_line : "?",
           ctx->config_name);
    for (int type = 0; type < HAK_EV_TYPE_COUNT; type++) {
        uint64_t n = 0, b = 0;
        for (int bucket = 0; bucket < HAK_BUCKET_COUNT; bucket++) {
            n += atomic_load_explicit(&in->count[type][bucket], memory_order_relaxed);
            b += atomic_load_explicit(&in->bytes[type][bucket], memory_order_relaxed);
        }
        if (n)
            h->log(HAK_LOG_INFO, in->name, "events %-11s %10llu  %12llu bytes", event_names[type],
                   (unsigned long long)n, (unsigned long long)b);
    }
    if (!in->per_box)
        return;
    for (uint32_t i = 0; i < ctx->box_count; i++) {
        const struct hak_report_box *bx = &ctx->boxes[i];
        h->log(HAK_LOG_INFO, in->name, "box %-16s allocs %llu frees %llu mapped %llu KB (peak %llu KB)",
               bx->instance_name, (unsigned long long)bx->stats.allocs, (unsigned long long)bx->stats.frees,
               (unsigned long long)(bx->bytes_mapped >> 10), (unsigned long long)(bx->peak_mapped >> 10));
    }
}

/* ---- the descriptor ----------------------------------------------------------- */

static const struct hak_box_desc box_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "sample_observer",
    .summary = "sample_observer: counts events per type and reports them at exit (from the hakmem new-box template)",
    .roles = HAK_ROLE_OBSERVER,
    .flags = 0,
    .params = box_params,
    .param_count = P_COUNT,
    .links = NULL,
    .link_count = 0,
    .tls_size = sizeof(struct hak_tls_head), /* no per-thread state */
    .ops = {
        /* lifecycle: no per-thread state, no locks, nothing cached, so
         * thread_init/exit, fork_*, stats and trim stay NULL */
        .create = box_create,
        .destroy = box_destroy,
        /* observer role */
        .on_event = box_on_event,
        .report = box_report,
        /* The other roles' functions stay NULL: this box has neither the alloc
         * role (`hakmem new-box --role alloc`) nor the pages role. */
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void)
{
    return &box_desc;
}
