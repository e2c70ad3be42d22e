/*
 * hakmem boxtest: the pages-role cases (spans of 1..N granules, alignment,
 * ownership handed over and back, reuse, other threads, stress, fork) and
 * the observer-role case (events and the report).
 */
#include "boxtest.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ================================================================================
 * pages role
 * ================================================================================ */

#define G HAK_GRANULE

static uint16_t consumer; /* the owner spans are handed to: the terminal box */

struct span {
    char *p;
    size_t bytes;
    uint16_t tag;
    uint32_t seed;
};

static void pages_start(void)
{
    consumer = terminal_in->owner;
}

static void *pa_alloc(size_t bytes, size_t align, uint16_t tag)
{
    char *block = hak_thread_acquire();
    void *p = box->desc->ops.pages_alloc(box_tls(block), bytes, align, consumer, tag);
    hak_thread_release(block);
    return p;
}

static void pa_free(void *p, size_t bytes)
{
    char *block = hak_thread_acquire();
    box->desc->ops.pages_free(box_tls(block), p, bytes);
    hak_thread_release(block);
}

/* Every granule of the span is the consumer's with this tag; mark each page. */
static struct span take_span(const char *what, void *p, size_t bytes, size_t align, uint16_t tag, uint32_t seed)
{
    EXPECT(p, "%s: pages_alloc(%zu bytes, align %zu) returned NULL", what, bytes, align);
    size_t want = align > G ? align : G;
    EXPECT(((uintptr_t)p & (want - 1)) == 0, "%s: span %p (%zu bytes) is not aligned to %zu", what, p, bytes, want);
    for (size_t off = 0; off < bytes; off += G) {
        uint32_t e = hak_region_lookup((char *)p + off);
        EXPECT(e == ((uint32_t)consumer << 16 | tag),
               "%s: granule %zu of span %p (%zu bytes) is recorded as (%s, tag %u), expected (%s, tag %u): "
               "pages_alloc must assign the span to the consumer", what, off / G, p, bytes,
               owner_name((uint16_t)(e >> 16)), e & 0xffff, owner_name(consumer), tag);
    }
    for (size_t off = 0; off < bytes; off += 4096)
        *(uint64_t *)((char *)p + off) = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + off;
    return (struct span){ p, bytes, tag, seed };
}

static void verify_span(const char *what, const struct span *s)
{
    for (size_t off = 0; off < s->bytes; off += 4096)
        EXPECT(*(uint64_t *)(s->p + off) == (uint64_t)s->seed * 0x9E3779B97F4A7C15ULL + off,
               "%s: span %p (%zu bytes) was overwritten at offset %zu: handed out twice?", what, s->p, s->bytes, off);
    uint32_t e = hak_region_lookup(s->p);
    EXPECT(e == ((uint32_t)consumer << 16 | s->tag), "%s: span %p changed owner while in use: now %s tag %u", what,
           s->p, owner_name((uint16_t)(e >> 16)), e & 0xffff);
}

/* After pages_free: the consumer owns none of it any more. */
static void expect_handed_back(const char *what, const struct span *s)
{
    for (size_t off = 0; off < s->bytes; off += G) {
        uint16_t owner = (uint16_t)(hak_region_lookup(s->p + off) >> 16);
        EXPECT(owner_after_free[owner] && owner != consumer,
               "%s: after pages_free(%p, %zu), granule %zu is still owned by %s (expected the page box, one below "
               "it, or nobody)", what, s->p, s->bytes, off / G, owner_name(owner));
    }
}

static int span_by_address(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

static void expect_spans_disjoint(const char *what, struct span *spans, size_t n)
{
    if (n < 2)
        return;
    struct span *sorted = malloc(n * sizeof *sorted);
    EXPECT(sorted, "out of memory");
    memcpy(sorted, spans, n * sizeof *spans);
    qsort(sorted, n, sizeof *sorted, span_by_address);
    for (size_t i = 1; i < n; i++)
        EXPECT(sorted[i - 1].p + sorted[i - 1].bytes <= sorted[i].p, "%s: live spans overlap: %p (%zu) and %p (%zu)",
               what, sorted[i - 1].p, sorted[i - 1].bytes, sorted[i].p, sorted[i].bytes);
    free(sorted);
}

void case_pages_spans(void)
{
    pages_start();
    static struct span live[1024];
    size_t n = 0;
    for (unsigned g = 1; g <= opt.max_granules; g++) {
        void *p = pa_alloc(g * G, 0, (uint16_t)g);
        live[n] = take_span("spans", p, g * G, 0, (uint16_t)g, g);
        n++;
    }
    expect_spans_disjoint("spans", live, n);
    for (size_t i = 0; i < n; i++)
        verify_span("spans", &live[i]);
    for (size_t i = n; i-- > 0;) {
        pa_free(live[i].p, live[i].bytes);
        expect_handed_back("spans", &live[i]);
    }
    summary("spans of 1..%u granules: granule aligned, every granule assigned to the consumer with its tag, "
            "disjoint, handed back on pages_free", opt.max_granules);
}

void case_pages_alignment(void)
{
    pages_start();
    static const size_t aligns[] = { 2 * G, 4 * G, 8 * G, 16 * G, 32 * G, 64 * G };
    static const size_t grans[] = { 1, 2, 5, 33 };
    unsigned n = 0;
    for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++)
        for (size_t g = 0; g < sizeof grans / sizeof *grans; g++) {
            void *p = pa_alloc(grans[g] * G, aligns[a], 3);
            struct span s = take_span("alignment", p, grans[g] * G, aligns[a], 3, (uint32_t)(a * 16 + g));
            verify_span("alignment", &s);
            pa_free(s.p, s.bytes);
            expect_handed_back("alignment", &s);
            n++;
        }
    summary("%u spans aligned to 128K..4M", n);
}

static uint64_t total_mapped(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < bt_plan.instance_count; i++)
        sum += atomic_load(&bt_plan.instances[i].bytes_mapped);
    return sum;
}

void case_pages_reuse(void)
{
    pages_start();
    /* one span freed and asked again, retagged: either reused (then the new
     * tag must show) or fresh */
    void *p = pa_alloc(2 * G, 0, 5);
    struct span a = take_span("reuse", p, 2 * G, 0, 5, 1);
    pa_free(a.p, a.bytes);
    expect_handed_back("reuse", &a);
    void *q = pa_alloc(2 * G, 0, 9);
    struct span b = take_span("reuse", q, 2 * G, 0, 9, 2);
    int same = q == p;
    pa_free(b.p, b.bytes);
    /* a loop of alloc/free must not keep mapping: spans are reused or returned */
    uint64_t before = total_mapped();
    const unsigned loops = 2000;
    for (unsigned i = 0; i < loops; i++) {
        size_t bytes = (size_t)(1 + i % 3) * G;
        void *r = pa_alloc(bytes, 0, (uint16_t)(i & 0xff));
        struct span s = take_span("reuse loop", r, bytes, 0, (uint16_t)(i & 0xff), i);
        pa_free(s.p, s.bytes);
    }
    uint64_t after = total_mapped();
    EXPECT(after < before + (uint64_t)loops / 2 * G,
           "reuse: %u alloc/free pairs grew the mapped bytes from %llu to %llu: freed spans are neither reused nor "
           "returned", loops, (unsigned long long)before, (unsigned long long)after);
    summary("a freed span %s; %u alloc/free pairs keep mapped memory bounded (%llu KB held after)",
            same ? "came back retagged for the next request" : "was not reused at once (fresh span given)", loops,
            (unsigned long long)(after / KB));
}

static struct span thread_spans[64];

static void *pages_alloc_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 64; i++) {
        size_t bytes = (size_t)(1 + i % 4) * G;
        thread_spans[i] = take_span("threads", pa_alloc(bytes, 0, 4), bytes, 0, 4, (uint32_t)i);
    }
    /* a few freed here: whatever the box caches per thread stays behind */
    for (int i = 0; i < 16; i++) {
        pa_free(thread_spans[i].p, thread_spans[i].bytes);
        thread_spans[i].p = NULL;
    }
    return NULL;
}

static void *pages_free_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 64; i++)
        if (thread_spans[i].p) {
            verify_span("free from another thread", &thread_spans[i]);
            pa_free(thread_spans[i].p, thread_spans[i].bytes);
            thread_spans[i].p = NULL;
        }
    return NULL;
}

void case_pages_threads(void)
{
    pages_start();
    run_thread(pages_alloc_thread, NULL); /* exits with 48 spans live */
    for (int i = 16; i < 40; i++) {
        verify_span("free after the allocating thread exited", &thread_spans[i]);
        pa_free(thread_spans[i].p, thread_spans[i].bytes);
        expect_handed_back("free after the allocating thread exited", &thread_spans[i]);
        thread_spans[i].p = NULL;
    }
    run_thread(pages_free_thread, NULL);
    hak_thread_exit_now();
    run_thread(pages_alloc_thread, NULL);
    run_thread(pages_free_thread, NULL);
    summary("spans freed after their thread exited, and by another thread; thread_exit then reuse");
}

struct pages_stress_thread {
    int index;
    uint64_t rnd;
    struct span slots[128];
    long allocs;
};

static void *pages_stress_main(void *arg)
{
    struct pages_stress_thread *me = arg;
    static const size_t aligns[] = { 0, 0, 0, 2 * G, 32 * G };
    long ops = opt.ops / 10 + 1;
    for (long op = 0; op < ops; op++) {
        struct span *s = &me->slots[rnd_next(&me->rnd) % 128];
        if (s->p) {
            verify_span("stress", s);
            pa_free(s->p, s->bytes);
            s->p = NULL;
            continue;
        }
        size_t bytes = (size_t)(1 + rnd_next(&me->rnd) % 8) * G;
        size_t align = aligns[rnd_next(&me->rnd) % 5];
        uint16_t tag = (uint16_t)(me->index * 1000 + op % 1000);
        *s = take_span("stress", pa_alloc(bytes, align, tag), bytes, align, tag, (uint32_t)(op * 8 + me->index));
        me->allocs++;
    }
    for (int i = 0; i < 128; i++)
        if (me->slots[i].p) {
            verify_span("stress", &me->slots[i]);
            pa_free(me->slots[i].p, me->slots[i].bytes);
        }
    return NULL;
}

void case_pages_stress(void)
{
    pages_start();
    struct pages_stress_thread *th = calloc((size_t)opt.threads, sizeof *th);
    EXPECT(th, "out of memory");
    pthread_t t[64];
    for (int i = 0; i < opt.threads; i++) {
        th[i].index = i;
        th[i].rnd = rnd_seed(200 + (uint64_t)i);
        EXPECT(pthread_create(&t[i], NULL, pages_stress_main, &th[i]) == 0, "pthread_create failed");
    }
    long allocs = 0;
    for (int i = 0; i < opt.threads; i++) {
        pthread_join(t[i], NULL);
        allocs += th[i].allocs;
    }
    summary("seed %llu, %d threads: %ld spans of 1..8 granules, some aligned to 128K or 2M",
            (unsigned long long)opt.seed, opt.threads, allocs);
}

void case_pages_fork(void)
{
    pages_start();
    for (int round = 0; round < 5; round++) {
        struct span s = take_span("fork", pa_alloc(2 * G, 0, 1), 2 * G, 0, 1, (uint32_t)round);
        fflush(stdout);
        pid_t pid = fork();
        EXPECT(pid >= 0, "fork failed");
        if (pid == 0) {
            alarm(20);
            verify_span("fork child", &s);
            pa_free(s.p, s.bytes);
            struct span c = take_span("fork child", pa_alloc(3 * G, 0, 2), 3 * G, 0, 2, 99);
            pa_free(c.p, c.bytes);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork round %d: the child failed (status 0x%x)", round,
               status);
        pa_free(s.p, s.bytes);
    }
    summary("5 forks: the child frees the parent's span and allocates");
}

/* ================================================================================
 * observer role
 * ================================================================================ */

static void *observer_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        void *p = hak_malloc((size_t)(i + 1) * 100 * KB);
        EXPECT(p, "malloc returned NULL");
        hak_free(p);
    }
    return NULL;
}

void case_observer(void)
{
    for (int i = 0; i < 4; i++)
        run_thread(observer_thread, NULL);
    for (int i = 0; i < 200; i++) {
        void *p = hak_malloc((size_t)(i % 40 + 1) * 64 * KB);
        EXPECT(p, "malloc returned NULL");
        hak_free(p);
    }
    hak_observers_report(&bt_plan, "hakmem boxtest");
    summary("on_event took the events of 400 big mallocs over 5 threads; report() ran");
}
