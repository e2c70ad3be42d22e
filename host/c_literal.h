/* Writing a string as a C string literal, for the tools that generate C
 * (embed_config at build time, `hakmem bundle`). */
#ifndef HAKMEM_HOST_C_LITERAL_H
#define HAKMEM_HOST_C_LITERAL_H

#include <stdio.h>

static inline void hak_put_c_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
            fprintf(out, "\\%03o", (unsigned char)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

#endif
