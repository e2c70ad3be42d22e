#include "tiny_test.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum tiny_stack tiny_stack_now;

const char *tiny_stack_name(enum tiny_stack s)
{
    static const char *names[] = {"superslab", "unified", "ring", "ring+unified"};
    return names[s];
}

const char *tiny_top(void) { return tiny_stack_now == STACK_SS ? "ss" : "tiny"; }

void tiny_open(enum tiny_stack s, const char *host_extra, const char *ss_extra,
               const char *front_extra)
{
    static char text[4096];
    const char *front = NULL, *front_below = "ss";
    tiny_stack_now = s;
    switch (s) {
    case STACK_SS: break;
    case STACK_UC: front = "tiny_unified_cache"; break;
    case STACK_RING: front = "tiny_hot_ring"; break;
    case STACK_RING_UC: front = "tiny_hot_ring"; front_below = "uc"; break;
    default: CHECK(0);
    }
    int n = snprintf(text, sizeof text,
                     "[host]\n%s\n"
                     "[route]\n1-1K = %s\n1025-max = large\n"
                     "[box.ss]\nplugin = superslab\npages = os\n%s\n%s\n"
                     "[box.os]\nplugin = os_pages\n"
                     "[box.large]\nplugin = large\n",
                     host_extra ? host_extra : "", tiny_top(),
                     ss_extra && strstr(ss_extra, "classes") ? "" : "classes = " TINY_CLASS_LIST,
                     ss_extra ? ss_extra : "");
    if (front)
        n += snprintf(text + n, sizeof text - (size_t)n, "[box.tiny]\nplugin = %s\nbelow = %s\n%s\n",
                      front, front_below, front_extra ? front_extra : "");
    if (s == STACK_RING_UC)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "[box.uc]\nplugin = tiny_unified_cache\nbelow = ss\n");
    CHECK(n > 0 && (size_t)n < sizeof text);
    harness_open(text);
}

size_t tiny_class_size(unsigned cls) { return (size_t)16 << cls; }

unsigned tiny_class_of(size_t size)
{
    unsigned c = 0;
    while (tiny_class_size(c) < size)
        c++;
    return c;
}

void run_thread(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    CHECK(pthread_create(&th, NULL, fn, arg) == 0);
    CHECK(pthread_join(th, NULL) == 0);
}

void fill_block(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    unsigned x = (unsigned)((uintptr_t)p >> 4) * 2654435761u + seed;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(x + i * 7);
}

int block_intact(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = p;
    unsigned x = (unsigned)((uintptr_t)p >> 4) * 2654435761u + seed;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(x + i * 7))
            return 0;
    return 1;
}

uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Cases print the stack they run on: "ok name [unified]". */
static const char *tiny_case_label(void) { return tiny_stack_name(tiny_stack_now); }
__attribute__((constructor)) static void tiny_case_label_init(void) { case_label = tiny_case_label; }
