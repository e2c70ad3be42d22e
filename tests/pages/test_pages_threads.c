/* Several threads on the page chain and on large at once: ownership at
 * every hand-over, no span handed to two threads (each writes its id and
 * checks it), clean counts at the end. Meant for the TSan build. */
#include "pages_test.h"

#include <pthread.h>
#include <string.h>

enum { THREADS = 4, ROUNDS = 300, HELD = 6 };

static const char *ini =
    "[route]\n1-max = large\n"
    "[box.large]\ncache_slots = 4\n"
    "[box.hot]\nplugin = page_hot\nbelow = warm\ntls_slots = 4\nhot_size = 16\nidle_ms = 1\n"
    "[box.warm]\nplugin = span_warm\nbelow = os\nwarm_64k = 8\nwarm_128k = 4\nwarm_2m = 2\nidle_ms = 1\n"
    "[box.os]\nplugin = os_pages\n";

static uint16_t consumer;

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    static const size_t sizes[] = {64 * KB, 64 * KB, 128 * KB, 2 * MB, 192 * KB};
    char *held[HELD] = {0};
    size_t held_n[HELD] = {0};
    unsigned rng = id * 2654435761u + 1;
    for (int r = 0; r < ROUNDS; r++) {
        rng = rng * 1103515245u + 12345u;
        int slot = (int)((rng >> 8) % HELD);
        if (held[slot]) {
            CHECK_EQ(harness_lookup(held[slot]), entry(consumer, (uint16_t)id));
            CHECK(held[slot][0] == (char)id && held[slot][held_n[slot] - 1] == (char)id);
            pa_free("hot", held[slot], held_n[slot]);
            held[slot] = NULL;
        } else {
            size_t n = sizes[(rng >> 16) % 5];
            char *p = pa_alloc("hot", n, 0, consumer, (uint16_t)id);
            CHECK(p);
            CHECK_EQ(harness_lookup(p + n - 1), entry(consumer, (uint16_t)id));
            p[0] = (char)id;
            p[n - 1] = (char)id;
            held[slot] = p;
            held_n[slot] = n;
        }
        if (r % 16 == 0) {
            size_t n = 2 * MB + (rng % 4) * MB;
            char *b = harness_malloc(n);
            CHECK(b);
            memset(b, (int)id, 4096);
            b = harness_realloc(b, n + MB);
            CHECK(b && b[4095] == (char)id);
            harness_free(b);
        }
    }
    for (int i = 0; i < HELD; i++)
        if (held[i])
            pa_free("hot", held[i], held_n[i]);
    return NULL;
}

static void case_threads(void)
{
    harness_open(ini);
    consumer = harness_owner("large");
    pthread_t th[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (unsigned i = 0; i < THREADS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    struct hak_stats hot = harness_stats("hot");
    CHECK_EQ(hot.allocs, hot.frees);
    CHECK_EQ(hot.bytes_allocated, hot.bytes_freed);
    struct hak_stats large = harness_stats("large");
    CHECK_EQ(large.allocs, large.frees);
    /* every span is either cached by a page box or gone back to the OS */
    uint64_t cached = harness_stats("hot").cached_bytes + harness_stats("warm").cached_bytes;
    CHECK_EQ(harness_bytes_mapped("hot") + harness_bytes_mapped("warm"), cached);
    CHECK_EQ(harness_bytes_mapped("os"), 0);
}

int main(void)
{
    run_case("page chain and large from 4 threads", case_threads);
    return 0;
}
