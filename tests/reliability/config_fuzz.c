/*
 * libFuzzer harness over the config loader: INI text -> raw entries
 * (hak_config_parse_text), HAKMEM_SET overrides (hak_config_apply_overrides)
 * and the validated plan (hak_plan_resolve), with the real box plugins of
 * the build (REL_LIB_DIR) so schemas, links and routes resolve for real.
 *
 * Input: the config text, optionally followed by a NUL byte and a
 * HAKMEM_SET string. The text is copied into a buffer of exactly its
 * length, so ASan catches a read past the end.
 *
 * Besides "no crash, no leak, no hang", every outcome is checked: a failure
 * leaves a one-line message; a success leaves a plan the runtime can trust
 * (routes contiguous from 1 to max, every chain ending with the terminal
 * box, links resolved, slices laid out without overlap).
 *
 * Plugins are dlopen'ed by path, so the harness keeps the fuzzer from
 * naming arbitrary files: absolute plugin paths and box_dir values are
 * dropped, and the config pretends to live in a folder that does not
 * exist, so relative paths (with "..") cannot resolve either.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef REL_LIB_DIR
#error "REL_LIB_DIR: the folder of the build's hakbox_*.so"
#endif

static struct hak_cfg_raw raw;
static struct hak_plan plan;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "config_fuzz: %s: ", #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv("HAKMEM_BOX_PATH"); /* plugins from the build's lib/ only */
    return 0;
}

/* set: the HAKMEM_SET text, which may itself hold a newline. */
static void check_message(const struct hak_error *err, const char *set)
{
    size_t n = strnlen(err->msg, sizeof err->msg);
    CHECK(n > 0 && n < sizeof err->msg, "a failure leaves a message (length %zu)", n);
    if (!set || !strchr(set, '\n'))
        CHECK(!strchr(err->msg, '\n'), "the message is one line: %s", err->msg);
}

static int unsafe_path_entry(const struct hak_cfg_raw *r)
{
    for (int i = 0; i < r->entry_count; i++) {
        const struct hak_cfg_entry *e = &r->entries[i];
        if (!strcmp(e->key, "plugin") && e->value[0] == '/')
            return 1;
        if (!strcmp(e->section, "host") && !strcmp(e->key, "box_dir") && e->value[0] == '/')
            return 1;
    }
    return 0;
}

static void check_plan(const struct hak_plan *p)
{
    CHECK(p->instance_count >= 1 && p->instance_count <= HAK_MAX_INSTANCES, "%d instances", p->instance_count);
    CHECK(p->route_count >= 1 && p->route_count <= HAK_MAX_ROUTES, "%d routes", p->route_count);
    CHECK(p->terminal >= 0 && p->terminal < p->instance_count, "terminal %d", p->terminal);
    CHECK(p->instances[p->terminal].desc->flags & HAK_BOX_FLAG_TERMINAL, "the terminal box is terminal");
    CHECK(p->routes[0].lo == 1, "routes start at 1, not %llu", (unsigned long long)p->routes[0].lo);
    for (int r = 0; r < p->route_count; r++) {
        const struct hak_route *rt = &p->routes[r];
        CHECK(rt->lo <= rt->hi, "route %d is a range", r);
        if (r > 0)
            CHECK(rt->lo == p->routes[r - 1].hi + 1, "route %d follows route %d", r, r - 1);
        CHECK(rt->chain_len >= 1 && rt->chain_len <= HAK_MAX_CHAIN, "route %d: chain of %d", r, rt->chain_len);
        CHECK(rt->chain[rt->chain_len - 1] == p->terminal, "route %d ends with the terminal box", r);
        for (int c = 0; c < rt->chain_len; c++) {
            CHECK(rt->chain[c] >= 0 && rt->chain[c] < p->instance_count, "route %d: box %d", r, rt->chain[c]);
            CHECK(p->instances[rt->chain[c]].desc->roles & HAK_ROLE_ALLOC, "route %d: an alloc box", r);
        }
    }
    CHECK(p->routes[p->route_count - 1].hi == UINT64_MAX, "routes end at max");

    int seen[HAK_MAX_INSTANCES] = { 0 };
    for (int k = 0; k < p->instance_count; k++) {
        CHECK(p->order[k] >= 0 && p->order[k] < p->instance_count && !seen[p->order[k]],
              "chain order is a permutation");
        seen[p->order[k]] = 1;
    }
    for (int i = 0; i < p->instance_count; i++) {
        const struct hak_instance *in = &p->instances[i];
        const struct hak_box_desc *d = in->desc;
        CHECK(d != NULL && in->owner == i + 1, "instance %d: owner %u", i, in->owner);
        CHECK(in->name[0] && strnlen(in->name, sizeof in->name) < sizeof in->name, "instance %d named", i);
        /* Slices: cache-line aligned, inside the block, no two overlap. */
        uint32_t end = in->tls_offset + d->tls_size;
        CHECK(in->tls_offset % 64 == 0 && end <= p->tls_size, "slice of %s at %u..%u in a block of %u", in->name,
              in->tls_offset, end, p->tls_size);
        for (int j = 0; j < i; j++) {
            const struct hak_instance *o = &p->instances[j];
            CHECK(end <= o->tls_offset || o->tls_offset + o->desc->tls_size <= in->tls_offset,
                  "slices of %s and %s overlap", in->name, o->name);
        }
        CHECK(in->free_entry >= 0 && in->free_entry < p->instance_count, "free entry of %s", in->name);
        for (uint32_t l = 0; l < d->link_count; l++) {
            int t = in->link_target[l];
            if (d->links[l].required)
                CHECK(t >= 0, "required link %s of %s is set", d->links[l].name, in->name);
            if (t < 0)
                continue;
            CHECK(t < p->instance_count && t != i, "link %s of %s: %d", d->links[l].name, in->name, t);
            CHECK(p->instances[t].desc->roles & d->links[l].role, "link %s of %s has the role", d->links[l].name,
                  in->name);
            CHECK(in->links[l].desc == p->instances[t].desc && in->links[l].owner == p->instances[t].owner &&
                      in->links[l].tls_offset == p->instances[t].tls_offset,
                  "link %s of %s resolved", d->links[l].name, in->name);
        }
        for (uint32_t q = 0; q < d->param_count; q++) {
            const struct hak_param *sp = &d->params[q];
            const struct hak_value *v = &in->values[q];
            CHECK(v->s != NULL, "parameter %s of %s has text", sp->name, in->name);
            if (sp->type == HAK_PARAM_INT || sp->type == HAK_PARAM_SIZE)
                CHECK(v->i >= sp->min && v->i <= sp->max, "parameter %s of %s = %lld in range", sp->name,
                      in->name, (long long)v->i);
            if (sp->type == HAK_PARAM_SIZE_LIST) {
                CHECK(v->count >= 1 && v->count <= HAK_PARAM_LIST_MAX, "list %s of %s: %u items", sp->name,
                      in->name, v->count);
                for (uint32_t j = 1; j < v->count; j++)
                    CHECK(v->list[j] > v->list[j - 1], "list %s of %s increases", sp->name, in->name);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HAK_CONFIG_MAX)
        return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    char *text = malloc(text_len ? text_len : 1);
    if (!text)
        return 0;
    memcpy(text, data, text_len);
    char *set = NULL;
    if (nul) {
        size_t set_len = size - text_len - 1;
        set = malloc(set_len + 1);
        if (!set) {
            free(text);
            return 0;
        }
        memcpy(set, nul + 1, set_len);
        set[set_len] = '\0';
    }

    struct hak_error err = { "" };
    /* A folder that does not exist: relative plugin paths resolve nowhere. */
    const char *file = "/nonexistent-hakmem-fuzz/fuzz.ini";
    if (hak_config_parse_text(&raw, text, text_len, file, &err)) {
        check_message(&err, set);
    } else if (hak_config_apply_overrides(&raw, set, &err)) {
        check_message(&err, set);
    } else if (!unsafe_path_entry(&raw)) {
        CHECK(raw.entry_count >= 0 && raw.entry_count <= HAK_MAX_ENTRIES, "%d entries", raw.entry_count);
        if (hak_plan_resolve(&plan, &raw, REL_LIB_DIR, &err))
            check_message(&err, set);
        else
            check_plan(&plan);
    }
    free(set);
    free(text);
    return 0;
}
