/*
 * Build-time tool (host/CMakeLists.txt): a config file -> C source of its
 * parsed entries, so that libhakmem.so starts from entries rather than
 * parsing its embedded default at every start (48K instructions a
 * process). The very parser the host runs makes them.
 *
 *   hakmem_embed_config IN.ini OUT.c NAME
 */
#include "c_literal.h"
#include "internal.h"

#include <stdlib.h>

static struct hak_cfg_raw raw;
static char text[HAK_CONFIG_MAX];

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s IN.ini OUT.c NAME\n", argv[0]);
        return 2;
    }
    struct hak_error err = { "" };
    size_t len;
    if (hak_read_file(argv[1], text, sizeof text, &len, &err) ||
        hak_config_parse_text(&raw, text, len, argv[3], &err)) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        return 1;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    fprintf(out, "/* Generated from %s by hakmem_embed_config. */\n#include \"internal.h\"\n", argv[1]);
    fprintf(out, "const struct hak_cfg_text_entry hak_embedded_entries[] = {\n");
    for (int i = 0; i < raw.entry_count; i++) {
        const struct hak_cfg_entry *e = &raw.entries[i];
        fprintf(out, "    { ");
        hak_put_c_string(out, e->section);
        fprintf(out, ", ");
        hak_put_c_string(out, e->key);
        fprintf(out, ", ");
        hak_put_c_string(out, e->value);
        fprintf(out, ", %d },\n", e->line);
    }
    fprintf(out, "    { \"\", \"\", \"\", 0 },\n};\nconst int hak_embedded_entry_count = %d;\n", raw.entry_count);
    fprintf(out, "const char hak_embedded_name[] = ");
    hak_put_c_string(out, argv[3]);
    fprintf(out, ";\n");
    return fclose(out) ? 1 : 0;
}
