/*
 * Raw entries -> a validated plan. Every check names file:line, the section
 * and key, and what was expected: an experiment must never run silently on
 * something other than what its config says.
 */
#include "internal.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define FAIL(e, ...) do { hak_error_set(err, (e)->source, (e)->line, __VA_ARGS__); return -1; } while (0)

int hak_instance_find(const struct hak_plan *plan, const char *name)
{
    for (int i = 0; i < plan->instance_count; i++)
        if (!strcmp(plan->instances[i].name, name))
            return i;
    return -1;
}

const char *hak_role_names(uint32_t roles, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s",
             roles & HAK_ROLE_ALLOC ? "alloc" : "",
             (roles & HAK_ROLE_ALLOC) && (roles & ~HAK_ROLE_ALLOC) ? "," : "",
             roles & HAK_ROLE_PAGES ? "pages" : "",
             (roles & HAK_ROLE_PAGES) && (roles & HAK_ROLE_OBSERVER) ? "," : "",
             roles & HAK_ROLE_OBSERVER ? "observer" : "");
    return buf;
}

/* Bounded copy of n bytes of src (truncated to fit) and a NUL: snprintf
 * costs about a thousand instructions a call, and start-up makes dozens. */
static void copy_text(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* `bytes` of the plan's pool aligned to `align` (a power of two), or NULL
 * when it is full (only an absurd config fills it). */
static void *plan_take(struct hak_plan *plan, size_t bytes, size_t align)
{
    size_t at = (plan->pool_used + align - 1) & ~(align - 1);
    if (at > sizeof plan->pool || bytes > sizeof plan->pool - at)
        return NULL;
    plan->pool_used = at + bytes;
    return plan->pool + at;
}

/* n bytes of src as a string in the plan's pool (at most PATH_MAX - 1,
 * as the fixed arrays these replaced), or NULL when the pool is full. */
static const char *plan_text(struct hak_plan *plan, const char *src, size_t n)
{
    if (n >= PATH_MAX)
        n = PATH_MAX - 1;
    char *t = plan_take(plan, n + 1, 1);
    if (!t)
        return NULL;
    memcpy(t, src, n);
    t[n] = '\0';
    return t;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = { "1", "on", "true", "yes" };
    static const char *const no[] = { "0", "off", "false", "no" };
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) { *out = 1; return 0; }
        if (!strcasecmp(v, no[i])) { *out = 0; return 0; }
    }
    return -1;
}

static int parse_int(const char *v, int64_t *out)
{
    const char *s = v;
    int neg = 0;
    if (*s == '-') { neg = 1; s++; }
    /* Digits, then at most blanks: no size suffix on an integer. */
    const char *q = s;
    while (*q >= '0' && *q <= '9')
        q++;
    while (*q == ' ' || *q == '\t')
        q++;
    uint64_t u;
    if (*s < '0' || *s > '9' || *q || hak_parse_size(s, &u) || u > INT64_MAX)
        return -1;
    *out = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

/* Index of word in a '|'-separated list, or -1. */
static int enum_index(const char *choices, const char *word)
{
    int index = 0;
    const char *p = choices;
    size_t n = strlen(word);
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncasecmp(p, word, n))
            return index;
        index++;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

static const char *type_expectation(const struct hak_param *p, char *buf, size_t len)
{
    switch (p->type) {
    case HAK_PARAM_INT:
        snprintf(buf, len, "an integer in %lld..%lld", (long long)p->min, (long long)p->max);
        break;
    case HAK_PARAM_SIZE:
        snprintf(buf, len, "a size in %lld..%lld bytes (K/M/G suffixes allowed)",
                 (long long)p->min, (long long)p->max);
        break;
    case HAK_PARAM_BOOL:
        snprintf(buf, len, "on or off");
        break;
    case HAK_PARAM_ENUM:
        snprintf(buf, len, "one of %s", p->choices ? p->choices : "(none)");
        break;
    case HAK_PARAM_STRING:
        snprintf(buf, len, "text of at most %d bytes", HAK_PARAM_STRING_MAX);
        break;
    case HAK_PARAM_SIZE_LIST:
        snprintf(buf, len, "up to %d increasing sizes in %lld..%lld, comma-separated",
                 HAK_PARAM_LIST_MAX, (long long)p->min, (long long)p->max);
        break;
    }
    return buf;
}

/* Parse one parameter value; -1 if it does not fit the schema. */
static int parse_value(const struct hak_param *p, const char *text, struct hak_value *v,
                       uint64_t *list_store)
{
    memset(v, 0, sizeof *v);
    v->s = text;
    switch (p->type) {
    case HAK_PARAM_INT:
        if (parse_int(text, &v->i) || v->i < p->min || v->i > p->max)
            return -1;
        return 0;
    case HAK_PARAM_SIZE: {
        uint64_t u;
        if (hak_parse_size(text, &u) || u > INT64_MAX || (int64_t)u < p->min || (int64_t)u > p->max)
            return -1;
        v->i = (int64_t)u;
        return 0;
    }
    case HAK_PARAM_BOOL: {
        int b;
        if (parse_bool(text, &b))
            return -1;
        v->i = b;
        return 0;
    }
    case HAK_PARAM_ENUM:
        v->i = enum_index(p->choices, text);
        return v->i < 0 ? -1 : 0;
    case HAK_PARAM_STRING:
        return strlen(text) > HAK_PARAM_STRING_MAX ? -1 : 0;
    case HAK_PARAM_SIZE_LIST: {
        const char *s = text;
        uint32_t n = 0;
        while (*s) {
            char item[32];
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            if (len == 0 || len >= sizeof item || n == HAK_PARAM_LIST_MAX)
                return -1;
            memcpy(item, s, len);
            item[len] = '\0';
            uint64_t u;
            if (hak_parse_size(item, &u) || (int64_t)u < p->min || (int64_t)u > p->max ||
                (n && u <= list_store[n - 1]))
                return -1;
            list_store[n++] = u;
            s = comma ? comma + 1 : s + len;
        }
        if (n == 0)
            return -1;
        v->list = list_store;
        v->count = n;
        return 0;
    }
    }
    return -1;
}

/* Keep a parameter's text in the plan's pool and parse it there. -1 when it
 * does not fit the schema (or, for absurd configs, the pool is full). */
static int store_value(struct hak_plan *plan, struct hak_instance *in, uint32_t p, const char *text,
                       int is_default)
{
    const char *copy = text;
    if (!is_default) { /* a default is the descriptor's constant: no copy */
        size_t len = strlen(text) + 1;
        char *t = plan_take(plan, len, 1);
        if (!t)
            return -1;
        copy = memcpy(t, text, len);
    }
    in->value_text[p] = copy;
    /* room for the longest list; what the value does not use is given back */
    uint64_t *lists = plan_take(plan, HAK_PARAM_LIST_MAX * sizeof(uint64_t), sizeof(uint64_t));
    if (!lists)
        return -1;
    if (parse_value(&in->desc->params[p], copy, &in->values[p], lists))
        return -1;
    plan->pool_used = (size_t)((unsigned char *)(lists + in->values[p].count) - plan->pool);
    return 0;
}

static int set_name(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

enum hak_on_error hak_config_error_policy(const struct hak_cfg_raw *raw)
{
    for (int i = 0; i < raw->entry_count; i++) {
        const struct hak_cfg_entry *e = &raw->entries[i];
        if (!strcmp(e->section, "host") && !strcmp(e->key, "on_config_error") &&
            !strcasecmp(e->value, "fallback"))
            return HAK_ON_ERROR_FALLBACK;
    }
    return HAK_ON_ERROR_EXIT;
}

static int host_key(struct hak_plan *plan, const struct hak_cfg_entry *e, struct hak_error *err)
{
    const char *v = e->value;
    if (!strcmp(e->key, "stats")) {
        int i = enum_index("off|text|json", v);
        if (i < 0)
            FAIL(e, "[host] stats: expected off, text or json, got '%s'", v);
        plan->stats = (enum hak_stats_mode)i;
    } else if (!strcmp(e->key, "stats_file")) {
        if (!(plan->stats_file = plan_text(plan, v, strlen(v))))
            FAIL(e, "[host] stats_file: the config's texts are too long in all");
    } else if (!strcmp(e->key, "on_config_error")) {
        int i = enum_index("exit|fallback", v);
        if (i < 0)
            FAIL(e, "[host] on_config_error: expected exit or fallback, got '%s'", v);
        plan->on_config_error = (enum hak_on_error)i;
    } else if (!strcmp(e->key, "on_bad_free")) {
        int i = enum_index("abort|warn", v);
        if (i < 0)
            FAIL(e, "[host] on_bad_free: expected abort or warn, got '%s'", v);
        plan->bad_free_abort = i == 0;
    } else if (!strcmp(e->key, "hardened")) {
        if (parse_bool(v, &plan->hardened))
            FAIL(e, "[host] hardened: expected on or off, got '%s'", v);
    } else if (!strcmp(e->key, "remote_frees")) {
        int i = enum_index("local|home|live_home", v);
        if (i < 0)
            FAIL(e, "[host] remote_frees: expected local, home or live_home, got '%s'", v);
        plan->remote_frees = (enum hak_remote_frees)i;
    } else if (!strcmp(e->key, "builtin_boxes")) {
        if (parse_bool(v, &hak_plugin_builtins_enabled))
            FAIL(e, "[host] builtin_boxes: expected on or off, got '%s'", v);
    } else if (!strcmp(e->key, "box_dir")) {
        if (!(plan->box_dir = plan_text(plan, v, strlen(v))))
            FAIL(e, "[host] box_dir: the config's texts are too long in all");
    } else if (!strcmp(e->key, "terminal")) {
        /* resolved once the boxes are known */
    } else {
        FAIL(e, "[host] unknown key '%s' (expected stats, stats_file, on_config_error, "
                "on_bad_free, hardened, remote_frees, box_dir, builtin_boxes or terminal)", e->key);
    }
    return 0;
}

/* First pass over [box.NAME]: create the instance and load its plugin. */
static int declare_boxes(struct hak_plan *plan, const struct hak_cfg_raw *raw, const char *lib_dir,
                         struct hak_error *err)
{
    const struct hak_cfg_entry *prev = NULL;
    for (int i = 0; i < raw->entry_count; i++) {
        const struct hak_cfg_entry *e = &raw->entries[i];
        if (strncmp(e->section, "box.", 4))
            continue;
        const char *name = e->section + 4;
        /* The next key of the section just declared (the usual case). */
        int same = prev && !strcmp(prev->section, e->section);
        prev = e;
        if (same || hak_instance_find(plan, name) >= 0)
            continue;
        if (plan->instance_count == HAK_MAX_INSTANCES)
            FAIL(e, "[%s]: more than %d boxes", e->section, HAK_MAX_INSTANCES);
        struct hak_instance *in = &plan->instances[plan->instance_count];
        memset(in, 0, offsetof(struct hak_instance, name));
        if (set_name(in->name, sizeof in->name, name))
            FAIL(e, "[%s]: a box name is letters, digits, '_' or '-' (at most %d)", e->section,
                 HAK_NAME_MAX - 1);
        copy_text(in->plugin, sizeof in->plugin, name, strlen(name));
        in->line = e->line;
        for (int j = i; j < raw->entry_count; j++) {
            const struct hak_cfg_entry *k = &raw->entries[j];
            /* The key's first letter first: this scan is boxes x entries. */
            if (k->key[0] == 'p' && !strcmp(k->key, "plugin") && !strcmp(k->section, e->section)) {
                if (strlen(k->value) == 0 || strlen(k->value) >= sizeof in->plugin)
                    FAIL(k, "[%s] plugin: expected a plugin name such as superslab", k->section);
                copy_text(in->plugin, sizeof in->plugin, k->value, strlen(k->value));
                in->line = k->line;
            }
        }
        char path[PATH_MAX];
        in->desc = hak_plugin_load(in->plugin, plan->config_dir, plan->box_dir, lib_dir, path,
                                   sizeof path, err, e->source, in->line);
        if (!in->desc)
            return -1;
        uint32_t params = in->desc->param_count;
        size_t path_len = strlen(path) + 1;
        struct hak_value *values = plan_take(plan, params * sizeof *values, _Alignof(struct hak_value));
        const char **texts = plan_take(plan, params * sizeof *texts, _Alignof(const char *));
        int *lines = plan_take(plan, params * sizeof *lines, _Alignof(int));
        char *path_copy = plan_take(plan, path_len, 1);
        if (!values || !texts || !lines || !path_copy)
            FAIL(e, "[%s]: the boxes have too many parameters in all", e->section);
        in->path = memcpy(path_copy, path, path_len);
        in->values = values;
        in->value_text = texts;
        in->value_line = lines;
        memset(in->value_line, 0, params * sizeof *in->value_line);
        in->owner = (uint16_t)(plan->instance_count + 1);
        for (int l = 0; l < HAK_MAX_LINKS; l++)
            in->link_target[l] = -1;
        in->front_above = -1;
        plan->instance_count++;
    }
    return 0;
}

static void list_keys(const struct hak_box_desc *d, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < d->param_count + d->link_count; i++) {
        const char *n = i < d->param_count ? d->params[i].name : d->links[i - d->param_count].name;
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", n);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
    if (!used)
        snprintf(buf, len, "none");
}

/* Second pass: parameters and links of each box. */
static int box_keys(struct hak_plan *plan, const struct hak_cfg_raw *raw, struct hak_error *err)
{
    const struct hak_cfg_entry *prev = NULL; /* a section's keys come in a row */
    int index = -1;
    for (int i = 0; i < raw->entry_count; i++) {
        const struct hak_cfg_entry *e = &raw->entries[i];
        if (strncmp(e->section, "box.", 4) || !strcmp(e->key, "plugin") || !e->key[0])
            continue;
        if (!prev || strcmp(prev->section, e->section))
            index = hak_instance_find(plan, e->section + 4);
        prev = e;
        struct hak_instance *in = &plan->instances[index];
        const struct hak_box_desc *d = in->desc;
        int done = 0;
        for (uint32_t l = 0; l < d->link_count && !done; l++) {
            if (strcmp(d->links[l].name, e->key))
                continue;
            int target = hak_instance_find(plan, e->value);
            if (target < 0)
                FAIL(e, "[%s] %s: no box named '%s' (declare it with [box.%s])", e->section, e->key,
                     e->value, e->value);
            const struct hak_box_desc *td = plan->instances[target].desc;
            if (!(td->roles & d->links[l].role)) {
                char want[32], have[32];
                FAIL(e, "[%s] %s: box '%s' (plugin %s) has roles %s, expected a box with role %s",
                     e->section, e->key, e->value, plan->instances[target].plugin,
                     hak_role_names(td->roles, have, sizeof have),
                     hak_role_names(d->links[l].role, want, sizeof want));
            }
            if (target == in - plan->instances)
                FAIL(e, "[%s] %s: a box cannot link to itself", e->section, e->key);
            in->link_target[l] = target;
            done = 1;
        }
        for (uint32_t p = 0; p < d->param_count && !done; p++) {
            if (strcmp(d->params[p].name, e->key))
                continue;
            if (store_value(plan, in, p, e->value, 0)) {
                char want[160];
                FAIL(e, "[%s] %s: expected %s, got '%s'", e->section, e->key,
                     type_expectation(&d->params[p], want, sizeof want), e->value);
            }
            in->value_line[p] = e->line;
            done = 1;
        }
        if (!done) {
            char keys[512];
            list_keys(d, keys, sizeof keys);
            FAIL(e, "[%s] unknown key '%s' for plugin %s (expected plugin, %s)", e->section, e->key,
                 in->plugin, keys);
        }
    }
    /* Defaults, and required links. */
    for (int i = 0; i < plan->instance_count; i++) {
        struct hak_instance *in = &plan->instances[i];
        const struct hak_box_desc *d = in->desc;
        for (uint32_t p = 0; p < d->param_count; p++) {
            if (in->value_line[p])
                continue;
            const char *def = d->params[p].default_value ? d->params[p].default_value : "";
            if (store_value(plan, in, p, def, 1)) {
                hak_error_set(err, in->path, 0, "plugin %s: default '%s' of parameter %s does not fit its own schema",
                              in->plugin, def, d->params[p].name);
                return -1;
            }
        }
        for (uint32_t l = 0; l < d->link_count; l++)
            if (d->links[l].required && in->link_target[l] < 0) {
                hak_error_set(err, raw->file, in->line, "[box.%s] missing key '%s': plugin %s needs a link to a box with role %s",
                              in->name, d->links[l].name, in->plugin,
                              d->links[l].role == HAK_ROLE_PAGES ? "pages" : "alloc");
                return -1;
            }
    }
    return 0;
}

/* Links must not form a cycle: depth-first, colours 0 new, 1 open, 2 done. */
static int visit(struct hak_plan *plan, int i, int *colour, int *out, int *n, struct hak_error *err,
                 const char *file)
{
    if (colour[i] == 2)
        return 0;
    if (colour[i] == 1) {
        hak_error_set(err, file, plan->instances[i].line, "[box.%s]: its links form a cycle",
                      plan->instances[i].name);
        return -1;
    }
    colour[i] = 1;
    for (uint32_t l = 0; l < plan->instances[i].desc->link_count; l++) {
        int t = plan->instances[i].link_target[l];
        if (t >= 0 && visit(plan, t, colour, out, n, err, file))
            return -1;
    }
    colour[i] = 2;
    out[(*n)++] = i; /* post-order: a box after everything it links to */
    return 0;
}

static int order_boxes(struct hak_plan *plan, const char *file, struct hak_error *err)
{
    int colour[HAK_MAX_INSTANCES] = { 0 }, post[HAK_MAX_INSTANCES], n = 0;
    for (int i = 0; i < plan->instance_count; i++)
        if (visit(plan, i, colour, post, &n, err, file))
            return -1;
    /* Chain order is the reverse: fronts before what they sit on, pages last;
     * observers (no links, nothing links to them) go to the very end. */
    int k = 0;
    for (int i = n - 1; i >= 0; i--)
        if (plan->instances[post[i]].desc->roles != HAK_ROLE_OBSERVER)
            plan->order[k++] = post[i];
    for (int i = n - 1; i >= 0; i--)
        if (plan->instances[post[i]].desc->roles == HAK_ROLE_OBSERVER)
            plan->order[k++] = post[i];
    return 0;
}

static int fronts_and_links(struct hak_plan *plan, const char *file, struct hak_error *err)
{
    for (int i = 0; i < plan->instance_count; i++) {
        struct hak_instance *in = &plan->instances[i];
        in->free_entry = i;
        if (!(in->desc->flags & HAK_BOX_FLAG_FRONT))
            continue;
        int below = -1;
        for (uint32_t l = 0; l < in->desc->link_count; l++)
            if (!strcmp(in->desc->links[l].name, "below"))
                below = in->link_target[l];
        if (below < 0) {
            hak_error_set(err, file, in->line, "[box.%s]: front box %s needs 'below = BOX'", in->name, in->plugin);
            return -1;
        }
        struct hak_instance *b = &plan->instances[below];
        if (!(b->desc->roles & HAK_ROLE_ALLOC) || !b->desc->ops.alloc_batch || !b->desc->ops.free_batch ||
            !b->desc->ops.class_count || !b->desc->ops.class_size) {
            hak_error_set(err, file, in->line,
                          "[box.%s] below: box '%s' (plugin %s) has no class interface for a front to sit on",
                          in->name, b->name, b->plugin);
            return -1;
        }
        if (b->front_above >= 0) {
            hak_error_set(err, file, in->line, "[box.%s] below: box '%s' already has front '%s' above it",
                          in->name, b->name, plan->instances[b->front_above].name);
            return -1;
        }
        b->front_above = i;
    }
    /* The free entry of an owner is the topmost front of its stack. */
    for (int i = 0; i < plan->instance_count; i++) {
        int top = i, guard = 0;
        while (plan->instances[top].front_above >= 0 && guard++ < HAK_MAX_INSTANCES)
            top = plan->instances[top].front_above;
        plan->instances[i].free_entry = top;
    }
    return 0;
}

static int parse_route_key(const char *key, uint64_t *lo, uint64_t *hi)
{
    const char *dash = strchr(key, '-');
    if (!dash || dash == key)
        return -1;
    char a[32];
    size_t n = (size_t)(dash - key);
    if (n >= sizeof a)
        return -1;
    memcpy(a, key, n);
    a[n] = '\0';
    if (hak_parse_size(a, lo))
        return -1;
    const char *b = dash + 1;
    while (*b == ' ')
        b++;
    if (!strcasecmp(b, "max"))
        *hi = UINT64_MAX;
    else if (hak_parse_size(b, hi))
        return -1;
    return *hi < *lo ? -1 : 0;
}

static int routes(struct hak_plan *plan, const struct hak_cfg_raw *raw, struct hak_error *err)
{
    const struct hak_cfg_entry *route_entry[HAK_MAX_ROUTES];
    for (int i = 0; i < raw->entry_count; i++) {
        const struct hak_cfg_entry *e = &raw->entries[i];
        if (strcmp(e->section, "route") || !e->key[0])
            continue;
        if (plan->route_count == HAK_MAX_ROUTES)
            FAIL(e, "[route]: more than %d routes", HAK_MAX_ROUTES);
        struct hak_route *r = &plan->routes[plan->route_count];
        memset(r, 0, sizeof *r);
        if (parse_route_key(e->key, &r->lo, &r->hi))
            FAIL(e, "[route] '%s': expected a size range LO-HI such as 1-1K or 2M-max", e->key);
        if (r->lo == 0)
            r->lo = 1; /* malloc(0) is served as malloc(1) */
        if (r->hi < r->lo) /* 0-0: malloc(0) is malloc(1), so no size is left */
            FAIL(e, "[route] '%s': the range holds no size (malloc(0) is served as malloc(1))", e->key);
        r->line = e->line;
        char list[HAK_VALUE_MAX];
        copy_text(list, sizeof list, e->value, strlen(e->value));
        char *save = NULL;
        for (char *tok = strtok_r(list, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            int t = hak_instance_find(plan, tok);
            if (t < 0)
                FAIL(e, "[route] %s: no box named '%s' (declare it with [box.%s])", e->key, tok, tok);
            if (!(plan->instances[t].desc->roles & HAK_ROLE_ALLOC))
                FAIL(e, "[route] %s: box '%s' (plugin %s) has no alloc role", e->key, tok,
                     plan->instances[t].plugin);
            if (r->chain_len == HAK_MAX_CHAIN - 1)
                FAIL(e, "[route] %s: more than %d boxes", e->key, HAK_MAX_CHAIN - 1);
            r->chain[r->chain_len++] = t;
        }
        if (r->chain_len == 0)
            FAIL(e, "[route] %s: expected a box name", e->key);
        route_entry[plan->route_count++] = e;
    }
    if (plan->route_count == 0) {
        hak_error_set(err, raw->file, 0, "[route]: no routes (expected e.g. '1-max = large')");
        return -1;
    }
    /* Sort by lo (insertion sort: a handful of routes). */
    for (int i = 1; i < plan->route_count; i++)
        for (int j = i; j > 0 && plan->routes[j].lo < plan->routes[j - 1].lo; j--) {
            struct hak_route t = plan->routes[j];
            plan->routes[j] = plan->routes[j - 1];
            plan->routes[j - 1] = t;
            const struct hak_cfg_entry *te = route_entry[j];
            route_entry[j] = route_entry[j - 1];
            route_entry[j - 1] = te;
        }
    if (plan->routes[0].lo != 1)
        FAIL(route_entry[0], "[route] %s: sizes 1..%llu have no route (the first range must start at 0 or 1)",
             route_entry[0]->key, (unsigned long long)plan->routes[0].lo - 1);
    for (int i = 1; i < plan->route_count; i++) {
        const struct hak_route *a = &plan->routes[i - 1], *b = &plan->routes[i];
        if (b->lo <= a->hi)
            FAIL(route_entry[i], "[route] %s: overlaps %s (line %d)", route_entry[i]->key,
                 route_entry[i - 1]->key, a->line);
        if (b->lo != a->hi + 1)
            FAIL(route_entry[i], "[route] %s: gap after %s (line %d): sizes %llu..%llu have no route",
                 route_entry[i]->key, route_entry[i - 1]->key, a->line,
                 (unsigned long long)a->hi + 1, (unsigned long long)b->lo - 1);
    }
    const struct hak_route *last = &plan->routes[plan->route_count - 1];
    if (last->hi != UINT64_MAX)
        FAIL(route_entry[plan->route_count - 1],
             "[route] %s: sizes above %llu have no route (the last range must end at max)",
             route_entry[plan->route_count - 1]->key, (unsigned long long)last->hi);
    return 0;
}

static int terminal(struct hak_plan *plan, const struct hak_cfg_raw *raw, struct hak_error *err)
{
    const struct hak_cfg_entry *te = NULL;
    for (int i = 0; i < raw->entry_count; i++)
        if (!strcmp(raw->entries[i].section, "host") && !strcmp(raw->entries[i].key, "terminal"))
            te = &raw->entries[i];
    const struct hak_route *last = &plan->routes[plan->route_count - 1];
    int t = te ? hak_instance_find(plan, te->value) : last->chain[last->chain_len - 1];
    if (te && t < 0)
        FAIL(te, "[host] terminal: no box named '%s'", te->value);
    if (!(plan->instances[t].desc->flags & HAK_BOX_FLAG_TERMINAL)) {
        if (te)
            FAIL(te, "[host] terminal: box '%s' (plugin %s) does not serve every size and alignment "
                     "(expected a terminal box such as large or system)", te->value, plan->instances[t].plugin);
        hak_error_set(err, raw->file, last->line,
                      "[route]: the box serving max, '%s' (plugin %s), is not a terminal box; route max "
                      "to large or system, or set [host] terminal", plan->instances[t].name,
                      plan->instances[t].plugin);
        return -1;
    }
    plan->terminal = t;
    for (int i = 0; i < plan->route_count; i++) {
        struct hak_route *r = &plan->routes[i];
        if (r->chain[r->chain_len - 1] != t)
            r->chain[r->chain_len++] = t;
    }
    return 0;
}

static int resolve(struct hak_plan *plan, const struct hak_cfg_raw *raw, const char *lib_dir,
                   struct hak_error *err)
{
    /* Zero the header, not the pools and instance array: each instance is
     * cleared when declared, and untouched static pages cost no RSS. */
    memset(plan, 0, offsetof(struct hak_plan, instances));
    plan->stats_file = plan->box_dir = "";
    plan->config_name = plan_text(plan, raw->file, strlen(raw->file));
    const char *slash = strrchr(raw->file, '/');
    if (slash && raw->file[0] != '(')
        plan->config_dir = plan_text(plan, raw->file, (size_t)(slash - raw->file));
    else
        plan->config_dir = ".";
    plan->stats = HAK_STATS_OFF;
    plan->bad_free_abort = 1;
    hak_plugin_builtins_enabled = 1;
    for (int i = 0; i < raw->entry_count; i++) {
        const struct hak_cfg_entry *e = &raw->entries[i];
        if (!strcmp(e->section, "host")) {
            if (e->key[0] && host_key(plan, e, err))
                return -1;
        } else if (strcmp(e->section, "route") && strncmp(e->section, "box.", 4)) {
            FAIL(e, "unknown section [%s] (expected [host], [route] or [box.NAME])", e->section);
        }
    }
    if (declare_boxes(plan, raw, lib_dir, err) || box_keys(plan, raw, err) ||
        order_boxes(plan, raw->file, err) || fronts_and_links(plan, raw->file, err) ||
        routes(plan, raw, err) || terminal(plan, raw, err))
        return -1;
    /* Thread block layout: the host's bytes (an always-empty fast stack
     * for routes without one, the thread's token, always-full stacks:
     * internal.h), then one cache-line-aligned slice per instance. */
    uint32_t offset = HAK_BLOCK_HOST_BYTES;
    for (int i = 0; i < plan->instance_count; i++) {
        struct hak_instance *in = &plan->instances[i];
        in->tls_offset = offset;
        offset += (in->desc->tls_size + 63u) & ~63u;
        for (uint32_t l = 0; l < in->desc->link_count; l++)
            in->links[l].desc = NULL;
    }
    for (int i = 0; i < plan->instance_count; i++) {
        struct hak_instance *in = &plan->instances[i];
        for (uint32_t l = 0; l < in->desc->link_count; l++) {
            int t = in->link_target[l];
            if (t < 0)
                continue;
            in->links[l].desc = plan->instances[t].desc;
            in->links[l].tls_offset = plan->instances[t].tls_offset;
            in->links[l].owner = plan->instances[t].owner;
        }
    }
    plan->tls_size = offset;
    if (plan->tls_size > HAK_NULL_BLOCK_BYTES) {
        hak_error_set(err, raw->file, 0, "the boxes want %u bytes of per-thread state, more than %u",
                      plan->tls_size, HAK_NULL_BLOCK_BYTES);
        return -1;
    }
    return 0;
}

int hak_plan_resolve(struct hak_plan *plan, const struct hak_cfg_raw *raw, const char *lib_dir,
                     struct hak_error *err)
{
    hak_plugin_search_begin();
    int rc = resolve(plan, raw, lib_dir, err);
    hak_plugin_search_end();
    return rc;
}

int hak_plan_load(struct hak_plan *plan, struct hak_cfg_raw *raw, const char *text, size_t len,
                  const char *file, const char *overrides, const char *lib_dir, struct hak_error *err)
{
    if (hak_config_parse_text(raw, text, len, file, err) ||
        hak_config_apply_overrides(raw, overrides, err))
        return -1;
    return hak_plan_resolve(plan, raw, lib_dir, err);
}
