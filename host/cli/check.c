/*
 * hakmem check FILE: validate a config exactly as the host would (same code:
 * hakmem_core) and print the resolved chain. hakmem boxes: list every box
 * found with its parameters.
 */
#include "cli.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(enum hak_param_type t)
{
    switch (t) {
    case HAK_PARAM_INT: return "int";
    case HAK_PARAM_SIZE: return "size";
    case HAK_PARAM_BOOL: return "bool";
    case HAK_PARAM_ENUM: return "enum";
    case HAK_PARAM_STRING: return "string";
    case HAK_PARAM_SIZE_LIST: return "size list";
    }
    return "?";
}

static void print_size(char *out, size_t len, uint64_t v)
{
    if (v == UINT64_MAX)
        snprintf(out, len, "max");
    else if (v && v % (1u << 30) == 0)
        snprintf(out, len, "%lluG", (unsigned long long)(v >> 30));
    else if (v && v % (1u << 20) == 0)
        snprintf(out, len, "%lluM", (unsigned long long)(v >> 20));
    else if (v && v % 1024 == 0)
        snprintf(out, len, "%lluK", (unsigned long long)(v >> 10));
    else
        snprintf(out, len, "%llu", (unsigned long long)v);
}

static void print_plan(const struct hak_plan *plan)
{
    static const char *const stats[] = { "off", "text", "json" };
    static const char *const remote[] = { "local", "home", "live_home" };
    printf("config: %s\n", plan->config_name);
    printf("host: stats=%s%s%s on_config_error=%s on_bad_free=%s hardened=%s remote_frees=%s terminal=%s\n",
           stats[plan->stats], plan->stats_file[0] ? " stats_file=" : "", plan->stats_file,
           plan->on_config_error == HAK_ON_ERROR_FALLBACK ? "fallback" : "exit",
           plan->bad_free_abort ? "abort" : "warn", plan->hardened ? "on" : "off",
           remote[plan->remote_frees], plan->instances[plan->terminal].name);
    printf("routes:\n");
    for (int i = 0; i < plan->route_count; i++) {
        const struct hak_route *r = &plan->routes[i];
        char lo[32], hi[32];
        print_size(lo, sizeof lo, r->lo);
        print_size(hi, sizeof hi, r->hi);
        printf("  %8s .. %-8s ", lo, hi);
        for (int c = 0; c < r->chain_len; c++) {
            /* Show the front stack under the routed box: tiny -> superslab. */
            const struct hak_instance *in = &plan->instances[r->chain[c]];
            printf("%s%s", c ? "  | then " : "", in->name);
            const struct hak_instance *cur = in;
            while (cur->desc->flags & HAK_BOX_FLAG_FRONT) {
                int below = -1;
                for (uint32_t l = 0; l < cur->desc->link_count; l++)
                    if (!strcmp(cur->desc->links[l].name, "below"))
                        below = cur->link_target[l];
                if (below < 0)
                    break;
                cur = &plan->instances[below];
                printf(" -> %s", cur->name);
            }
        }
        printf("\n");
    }
    printf("boxes (chain order):\n");
    for (int k = 0; k < plan->instance_count; k++) {
        const struct hak_instance *in = &plan->instances[plan->order[k]];
        char roles[32];
        printf("  %s: plugin %s [%s%s%s] owner %u, %u bytes per thread\n    file %s\n", in->name, in->plugin,
               hak_role_names(in->desc->roles, roles, sizeof roles),
               in->desc->flags & HAK_BOX_FLAG_FRONT ? ", front" : "",
               in->desc->flags & HAK_BOX_FLAG_TERMINAL ? ", terminal" : "", in->owner,
               in->desc->tls_size, in->path);
        for (uint32_t l = 0; l < in->desc->link_count; l++)
            printf("    %-22s = %s\n", in->desc->links[l].name,
                   in->link_target[l] >= 0 ? plan->instances[in->link_target[l]].name : "(none)");
        for (uint32_t p = 0; p < in->desc->param_count; p++)
            printf("    %-22s = %-18s %s\n", in->desc->params[p].name, in->value_text[p],
                   in->value_line[p] ? "" : "(default)");
    }
}

static int load_file_plan(const char *path, const char *overrides, struct hak_plan *plan, struct hak_cfg_raw *raw)
{
    static char text[HAK_CONFIG_MAX];
    size_t len = 0;
    struct hak_error err = { "" };
    if (hak_read_file(path, text, sizeof text, &len, &err) ||
        hak_plan_load(plan, raw, text, len, path, overrides, cli_lib_dir(), &err)) {
        fprintf(stderr, "hakmem: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int cmd_check(int argc, char **argv)
{
    const char *file = NULL;
    char overrides[4096] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            size_t used = strlen(overrides);
            snprintf(overrides + used, sizeof overrides - used, "%s%s", used ? "," : "", argv[++i]);
        } else if (!file && argv[i][0] != '-') {
            file = argv[i];
        } else {
            fprintf(stderr, "usage: hakmem check FILE [-s key=value]...\n");
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: hakmem check FILE [-s key=value]...\n");
        return 2;
    }
    static struct hak_plan plan;
    static struct hak_cfg_raw raw;
    if (load_file_plan(file, overrides[0] ? overrides : NULL, &plan, &raw))
        return HAK_EXIT_CONFIG;
    print_plan(&plan);
    printf("ok\n");
    return 0;
}

static void print_box(const char *path, const struct hak_box_desc *d)
{
    char roles[32];
    printf("%s [%s%s%s]\n  %s\n  file %s, %u bytes per thread\n", d->name,
           hak_role_names(d->roles, roles, sizeof roles), d->flags & HAK_BOX_FLAG_FRONT ? ", front" : "",
           d->flags & HAK_BOX_FLAG_TERMINAL ? ", terminal" : "", d->summary ? d->summary : "", path, d->tls_size);
    for (uint32_t l = 0; l < d->link_count; l++)
        printf("  link  %-20s %s box%s: %s\n", d->links[l].name,
               d->links[l].role == HAK_ROLE_PAGES ? "pages" : "alloc", d->links[l].required ? ", required" : "",
               d->links[l].doc ? d->links[l].doc : "");
    for (uint32_t p = 0; p < d->param_count; p++) {
        const struct hak_param *pa = &d->params[p];
        char range[96] = "";
        if (pa->type == HAK_PARAM_INT || pa->type == HAK_PARAM_SIZE || pa->type == HAK_PARAM_SIZE_LIST)
            snprintf(range, sizeof range, " [%lld..%lld]", (long long)pa->min, (long long)pa->max);
        else if (pa->type == HAK_PARAM_ENUM)
            snprintf(range, sizeof range, " [%s]", pa->choices ? pa->choices : "");
        printf("  param %-20s %s = %s%s: %s\n", pa->name, type_name(pa->type),
               pa->default_value ? pa->default_value : "", range, pa->doc ? pa->doc : "");
    }
}

static int list_dir(const char *dir, int *found)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char *names[256];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 256;) {
        size_t len = strlen(e->d_name);
        if (!strncmp(e->d_name, "hakbox_", 7) && len > 10 && !strcmp(e->d_name + len - 3, ".so"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j], names[j - 1]) < 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], plugin[HAK_NAME_MAX];
        snprintf(plugin, sizeof plugin, "%.*s", (int)(strlen(names[i]) - 10), names[i] + 7);
        struct hak_error err = { "" };
        char resolved[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        const struct hak_box_desc *desc =
            hak_plugin_load(path, NULL, NULL, NULL, resolved, sizeof resolved, &err, path, 0);
        if (desc)
            print_box(resolved, desc);
        else
            printf("%s: not usable: %s\n", plugin, err.msg);
        printf("\n");
        (*found)++;
        free(names[i]);
    }
    return 0;
}

int cmd_boxes(int argc, char **argv)
{
    int found = 0;
    const char *dir = argc > 2 && !strcmp(argv[1], "--dir") ? argv[2] : cli_lib_dir();
    list_dir(dir, &found);
    const char *env = getenv("HAKMEM_BOX_PATH");
    if (env && *env) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", env);
        char *save = NULL;
        for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
            if (strcmp(p, dir))
                list_dir(p, &found);
    }
    if (!found) {
        fprintf(stderr, "hakmem boxes: no hakbox_*.so in %s\n", dir);
        return 1;
    }
    return 0;
}
