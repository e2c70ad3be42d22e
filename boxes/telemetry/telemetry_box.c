/*
 * telemetry: an observer box. The host calls on_event for events boxes
 * report on their slow paths (fresh memory carved, spans mapped and
 * returned, refills, drains, remote frees, reuse) and report once at exit
 * with every box's counters. This file counts; telemetry_view.c attributes
 * the counts to size buckets; telemetry_report.c writes them out.
 *
 * on_event runs on any thread, inside the allocator: relaxed atomic adds on
 * counters in the instance (metadata memory), no lock, no malloc.
 */
#include "telemetry.h"

#include <stdio.h>
#include <string.h>

enum { P_EVENTS, P_PROCESS, P_BOXES, P_TEXT, P_JSON_FILE, P_COUNT };

static const struct hak_param tel_params[P_COUNT] = {
    [P_EVENTS] = {"events", HAK_PARAM_BOOL, "on", 0, 0, NULL,
                  "count events per size bucket and per box"},
    [P_PROCESS] = {"process", HAK_PARAM_BOOL, "on", 0, 0, NULL,
                   "report minor/major page faults and peak RSS (getrusage at exit)"},
    [P_BOXES] = {"boxes", HAK_PARAM_BOOL, "on", 0, 0, NULL,
                 "report every box's counters"},
    [P_TEXT] = {"text", HAK_PARAM_BOOL, "on", 0, 0, NULL, "print a table on stderr at exit"},
    [P_JSON_FILE] = {"json_file", HAK_PARAM_STRING, "", 0, 0, NULL,
                     "write JSON here at exit (%p: the pid); empty: no JSON"},
};

const char *const tel_bucket_names[HAK_BUCKET_COUNT] = {
    "C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "MID", "L25", "SSM", "LARGE", "OTHER",
};

/* An observer keeps nothing per thread; the host still makes a slice. */
struct tel_tls {
    struct hak_tls_head head;
};

static void *tel_create(const struct hak_host *host, const struct hak_box_config *cfg,
                        char *err, size_t err_len)
{
    struct tel_inst *in = host->meta_alloc(sizeof *in);
    if (!in) {
        snprintf(err, err_len, "out of metadata memory");
        return NULL;
    }
    in->host = host;
    in->owner = cfg->owner;
    snprintf(in->name, sizeof in->name, "%s", cfg->instance_name);
    in->events = cfg->values[P_EVENTS].i != 0;
    in->process = cfg->values[P_PROCESS].i != 0;
    in->boxes = cfg->values[P_BOXES].i != 0;
    in->text = cfg->values[P_TEXT].i != 0;
    const char *path = cfg->values[P_JSON_FILE].s;
    snprintf(in->json_file, sizeof in->json_file, "%s", path ? path : "");
    return in;
}

static inline void add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static void count_into(struct tel_counters *c, const struct hak_event *ev)
{
    add(&c->v[ev->type][TEL_EVENTS], 1);
    if (ev->bytes)
        add(&c->v[ev->type][TEL_BYTES], ev->bytes);
    if (ev->count)
        add(&c->v[ev->type][TEL_BLOCKS], ev->count);
}

static void tel_on_event(void *inst, const struct hak_event *ev)
{
    struct tel_inst *in = inst;
    if (!in->events || ev->type >= HAK_EV_TYPE_COUNT)
        return;
    unsigned slot = tel_owner_slot(ev->owner);
    unsigned bucket = ev->bucket < HAK_BUCKET_COUNT ? ev->bucket : HAK_BUCKET_OTHER;
    count_into(&in->by_owner[slot], ev);
    if (bucket == HAK_BUCKET_OTHER) {
        count_into(&in->loose[slot], ev);
        return;
    }
    count_into(&in->bucket[bucket], ev);
    uint32_t bit = 1u << bucket;
    if (!(atomic_load_explicit(&in->owner_buckets[slot], memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(&in->owner_buckets[slot], bit, memory_order_relaxed);
}

static const struct hak_box_desc tel_desc = {
    .abi_version = HAK_BOX_ABI_VERSION,
    .struct_size = sizeof(struct hak_box_desc),
    .name = "telemetry",
    .summary = "pages touched, bytes mapped and returned per size bucket; faults and RSS at exit",
    .roles = HAK_ROLE_OBSERVER,
    .params = tel_params,
    .param_count = P_COUNT,
    .tls_size = sizeof(struct tel_tls),
    .ops = {
        .create = tel_create,
        .on_event = tel_on_event,
        .report = tel_report,
    },
};

HAK_BOX_EXPORT const struct hak_box_desc *hak_box_describe(void) { return &tel_desc; }
