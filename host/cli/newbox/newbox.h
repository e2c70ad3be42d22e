/*
 * hakmem new-box: the templates it writes, compiled in from
 * host/cli/templates/ by cmake/EmbedDir.cmake (host/cli/CMakeLists.txt).
 * Each file's path is relative to templates/: "alloc/sample_alloc.c",
 * "common/.gitignore", ...
 */
#ifndef HAKMEM_NEWBOX_H
#define HAKMEM_NEWBOX_H

#include <stddef.h>

struct template_file {
    const char *path;
    const char *data; /* len bytes and a NUL */
    size_t len;
};

extern const struct template_file newbox_templates[];
extern const size_t newbox_templates_count;

#endif
