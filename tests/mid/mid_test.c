#include "mid_test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *mid_config(const char *host_extra, const char *pool_extra, const char *l25_extra)
{
    static char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "[host]\non_bad_free = abort\n%s\n"
                     "[box.os]\nplugin = os_pages\n"
                     "[box.large]\n"
                     "[box.pool]\nplugin = pool_tls_arena\npages = os\n%s\n"
                     "[box.l25]\npages = os\n%s\n"
                     "[route]\n"
                     "1-1024 = large\n"
                     "1025-52K = pool\n"
                     "53249-2M = l25\n"
                     "2097153-max = large\n",
                     host_extra, pool_extra, l25_extra);
    CHECK(n > 0 && (size_t)n < sizeof buf);
    return buf;
}

uint16_t owner_of(const void *p) { return (uint16_t)(harness_lookup(p) >> 16); }

static inline uint64_t pattern_word(uint32_t seed, size_t i)
{
    uint64_t x = ((uint64_t)seed << 32) ^ (i * 0x9E3779B97F4A7C15ull);
    return x ^ (x >> 29);
}

void fill(void *p, size_t n, uint32_t seed)
{
    unsigned char *c = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w = pattern_word(seed, i);
        memcpy(c + i * 8, &w, 8);
    }
    for (size_t i = words * 8; i < n; i++)
        c[i] = (unsigned char)(seed + i);
}

int check_fill(const void *p, size_t n, uint32_t seed)
{
    const unsigned char *c = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, c + i * 8, 8);
        if (w != pattern_word(seed, i))
            return 0;
    }
    for (size_t i = words * 8; i < n; i++)
        if (c[i] != (unsigned char)(seed + i))
            return 0;
    return 1;
}

void touch_pages(void *p, size_t n, uint32_t seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i += 4096)
        c[i] = (unsigned char)(seed + i / 4096);
    c[n - 1] = (unsigned char)(seed ^ 0x5a);
}

int check_pages(const void *p, size_t n, uint32_t seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i += 4096)
        if (i != n - 1 && c[i] != (unsigned char)(seed + i / 4096))
            return 0;
    return c[n - 1] == (unsigned char)(seed ^ 0x5a);
}

size_t resident_bytes(const void *p, size_t n)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)(ps - 1);
    uintptr_t end = ((uintptr_t)p + n + ps - 1) & ~(uintptr_t)(ps - 1);
    size_t total = 0;
    unsigned char vec[16];
    /* 16 pages at a time, so an unmapped stretch costs only itself */
    for (uintptr_t a = start; a < end; a += 16 * ps) {
        size_t len = end - a < 16 * ps ? end - a : 16 * ps;
        if (mincore((void *)a, len, vec) != 0)
            continue;
        for (size_t i = 0; i < len / ps; i++)
            total += (vec[i] & 1) ? ps : 0;
    }
    return total;
}

uint32_t rng_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

size_t box_trim(const char *instance)
{
    const struct hak_box_desc *d = harness_desc(instance);
    return d->ops.trim(harness_inst(instance), harness_tls(instance));
}
