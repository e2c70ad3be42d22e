#include "pages_test.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *pa_alloc(const char *inst, size_t bytes, size_t align, uint16_t owner, uint16_t tag)
{
    return harness_desc(inst)->ops.pages_alloc(harness_tls(inst), bytes, align, owner, tag);
}

void pa_free(const char *inst, void *p, size_t bytes)
{
    harness_desc(inst)->ops.pages_free(harness_tls(inst), p, bytes);
}

uint16_t owner_of(const void *p) { return (uint16_t)(harness_lookup(p) >> 16); }

uint32_t entry(uint16_t owner, uint16_t tag) { return ((uint32_t)owner << 16) | tag; }

size_t page_count(size_t bytes)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + ps - 1) / ps;
}

size_t resident_pages(const void *p, size_t bytes)
{
    static unsigned char vec[(64u << 20) / 4096];
    size_t n = page_count(bytes);
    CHECK(n <= sizeof vec);
    CHECK(mincore((void *)p, bytes, vec) == 0);
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        r += vec[i] & 1;
    return r;
}

int all_bytes(const void *p, size_t n, unsigned char c)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}

int pages_thp_never(void)
{
    char text[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(text, sizeof text, f))
            text[0] = '\0';
        fclose(f);
    }
    return !strstr(text, "[madvise]") && !strstr(text, "[always]");
}
