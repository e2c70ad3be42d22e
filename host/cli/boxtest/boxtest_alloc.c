/*
 * hakmem boxtest: the start case (every role) and the alloc-role cases:
 * sizes, alignment, the malloc API through the host, frees from another
 * thread, thread exit, fork, a seeded randomized stress.
 */
#include "boxtest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ================================================================================
 * alloc role
 * ================================================================================ */

void case_start(void)
{
    const struct hak_box_desc *d = box->desc;
    char *block = hak_thread_acquire();
    struct hak_stats st = { 0 };
    if (d->ops.stats) {
        d->ops.stats(box->inst, box_tls(block), &st);
        d->ops.stats(box->inst, NULL, &st);
    }
    hak_thread_release(block);
    for (uint32_t p = 0; p < d->param_count; p++)
        EXPECT(d->params[p].name && d->params[p].doc, "parameter %u has no name or no doc line", p);
    for (uint32_t l = 0; l < d->link_count; l++)
        EXPECT(d->links[l].name && d->links[l].role, "link %u has no name or no role", l);
    if (d->roles & HAK_ROLE_ALLOC) {
        EXPECT(!(d->flags & HAK_BOX_FLAG_FRONT) || class_in, "a front box needs a class box below it");
        if (!opt.range_given) {
            /* The box's own classes say which sizes it serves. */
            if (class_in) {
                uint32_t n = class_in->desc->ops.class_count(class_in->inst);
                EXPECT(n > 0, "class_count() is 0");
                printf("@range 1 %zu class interface of %s\n", class_in->desc->ops.class_size(class_in->inst, n - 1),
                       class_in->name);
            } else if (d->flags & HAK_BOX_FLAG_TERMINAL) {
                printf("@range 1 max terminal box\n");
            } else {
                printf("@range 1 1024 default: pass --range LO-HI\n");
            }
        }
    }
    summary("create()%s ran; %u parameters, %u links, %u bytes per thread",
            d->ops.thread_init ? " and thread_init()" : "", d->param_count, d->link_count, d->tls_size);
}

void case_sizes(void)
{
    static size_t sizes[4096];
    static struct blk ring[256];
    size_t n = size_list(sizes, sizeof sizes / sizeof *sizes);
    size_t head = 0, count = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        while (count && (count == 256 || bytes + sizes[i] > LIVE_BYTES_CAP)) {
            struct blk *b = &ring[(head + 256 - count) % 256];
            bytes -= b->usable;
            free_block("sizes", b);
            count--;
        }
        void *p = box_alloc(sizes[i]);
        EXPECT(p, "sizes: alloc(%zu) returned NULL for a size in the box's range", sizes[i]);
        ring[head] = take_block("sizes", p, sizes[i], HAK_MIN_ALIGN, (uint32_t)i, 0);
        bytes += ring[head].usable;
        head = (head + 1) % 256;
        count++;
        if (i % 128 == 127 || i == n - 1) {
            struct blk live[256];
            for (size_t k = 0; k < count; k++) {
                live[k] = ring[(head + 256 - count + k) % 256];
                verify_block("sizes", &live[k]);
            }
            expect_no_overlap("sizes", live, count);
        }
    }
    while (count) {
        free_block("sizes", &ring[(head + 256 - count) % 256]);
        count--;
    }
    summary("%zu sizes from %zu to %zu: 16-byte aligned, owned, usable_size >= request, no overlap", n, sizes[0],
            sizes[n - 1]);
}

void case_alignment(void)
{
    static const size_t aligns[] = { 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536 };
    uint64_t hi = hi_capped();
    size_t sizes[6] = { (size_t)opt.lo, (size_t)(opt.lo + 40 < hi ? opt.lo + 40 : hi),
                        (size_t)(opt.lo + (hi - opt.lo) / 3), (size_t)(hi > 4096 && opt.lo <= 4096 ? 4096 : hi),
                        (size_t)(hi - (hi - opt.lo) / 8), (size_t)hi };
    unsigned served = 0, asked = 0, host = 0;
    for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++) {
        for (size_t s = 0; s < 6; s++) {
            size_t size = sizes[s], align = aligns[a];
            if (box->desc->ops.alloc_aligned) {
                asked++;
                void *p = box_alloc_aligned(size, align);
                if (p) {
                    served++;
                    struct blk b = take_block("alloc_aligned", p, size, align, (uint32_t)(a * 8 + s), 0);
                    free_block("alloc_aligned", &b);
                }
            }
            /* memalign through the host: the box, or its fallback */
            void *q = hak_memalign(align, size);
            EXPECT(q, "memalign(%zu, %zu) through the host returned NULL", align, size);
            struct blk b = take_block("memalign", q, size, align, (uint32_t)(a * 8 + s), 1);
            if ((hak_region_lookup(q) >> 16) != terminal_in->owner)
                host++;
            free_block("memalign", &b);
        }
    }
    EXPECT(!asked || served, "alloc_aligned is present but returned NULL for all %u requests "
           "(alignments 32..64K): leave it NULL if the box cannot align", asked);
    if (box->desc->ops.alloc_aligned)
        summary("alloc_aligned served %u of %u (size, alignment 32..64K) requests; host memalign: %u of %u by the box",
                served, asked, host, (unsigned)(6 * sizeof aligns / sizeof *aligns));
    else
        summary("no alloc_aligned: host memalign served %u of %u (size, alignment) requests through the box, "
                "the rest by %s", host, (unsigned)(6 * sizeof aligns / sizeof *aligns), terminal_in->name);
}

void case_malloc_api(void)
{
    static size_t sizes[4096];
    static struct blk blocks[512];
    size_t n = size_list(sizes, sizeof sizes / sizeof *sizes);
    size_t step = n / 400 + 1, count = 0, by_box = 0, bytes = 0;
    /* malloc through the host's route table: it must reach the box */
    for (size_t i = 0; i < n; i += step) {
        void *p = hak_malloc(sizes[i]);
        EXPECT(p, "malloc(%zu) returned NULL", sizes[i]);
        blocks[count] = take_block("malloc", p, sizes[i], HAK_MIN_ALIGN, (uint32_t)i, 1);
        bytes += blocks[count].usable;
        if (hak_region_lookup(p) >> 16 != terminal_in->owner)
            by_box++;
        memset(p, 0xA5, blocks[count].usable < 64 * KB ? blocks[count].usable : 64 * KB);
        blocks[count].seed = 0; /* garbage now, not the pattern */
        if (++count == 512 || bytes > LIVE_BYTES_CAP / 2 || i + step >= n) {
            while (count)
                hak_free(blocks[--count].p);
            bytes = 0;
        }
    }
    EXPECT(by_box, "malloc: every request in the range fell back to %s: the box returned NULL for all",
           terminal_in->name);
    /* calloc after the box got garbage back: zeros */
    for (size_t i = 0; i < n; i += step) {
        unsigned char *p = hak_calloc(1, sizes[i]);
        EXPECT(p, "calloc(1, %zu) returned NULL", sizes[i]);
        size_t limit = sizes[i] < 256 * KB ? sizes[i] : 256 * KB;
        for (size_t k = 0; k < limit; k++)
            EXPECT(p[k] == 0, "calloc(1, %zu) = %p: byte %zu is 0x%02x, not zero", sizes[i], (void *)p, k, p[k]);
        hak_free(p);
    }
    /* realloc through the host: grow from the bottom of the range past its top,
     * then shrink back; contents kept at every step */
    uint64_t hi = hi_capped();
    size_t size = (size_t)opt.lo, steps = 0;
    char *p = hak_malloc(size);
    EXPECT(p, "malloc(%zu) returned NULL", size);
    fill(p, size, 7);
    for (int dir = 0; dir < 2; dir++) {
        for (;;) {
            size_t next = dir == 0 ? size + size / 2 + 16 : size - size / 3 - 1;
            if (dir == 0 && (next > hi + hi / 4 + 64 || next > SIZE_CAP + SIZE_CAP / 4))
                break;
            if (dir == 1 && (next < opt.lo || next > size))
                break;
            char *q = hak_realloc(p, next);
            EXPECT(q, "realloc(%p, %zu) returned NULL", (void *)p, next);
            long bad = check_prefix(q, next, 7, size);
            EXPECT(bad < 0, "realloc from %zu to %zu bytes lost the contents at offset %ld", size, next, bad);
            EXPECT(hak_usable_size(q) >= next, "realloc to %zu: usable_size %zu", next, hak_usable_size(q));
            fill(q, next, 7);
            p = q;
            size = next;
            steps++;
        }
    }
    hak_free(p);
    /* the box's own realloc, when it has one */
    unsigned direct = 0;
    if (box->desc->ops.realloc) {
        uint64_t rnd = rnd_seed(3);
        for (int i = 0; i < 200; i++) {
            size_t from = rnd_size(&rnd, 256 * KB), to = rnd_size(&rnd, 256 * KB);
            char *a = box_alloc(from);
            EXPECT(a, "alloc(%zu) returned NULL", from);
            fill(a, from, 9);
            uint32_t e = hak_region_lookup(a);
            char *block = hak_thread_acquire();
            char *b = box->desc->ops.realloc(box_tls(block), a, (uint16_t)e, to);
            hak_thread_release(block);
            if (!b) {
                EXPECT(check(a, from, 9) < 0, "realloc(%zu -> %zu) returned NULL but changed the block", from, to);
                hak_free(a);
                continue;
            }
            direct++;
            EXPECT(check_prefix(b, to, 9, from) < 0, "the box's realloc(%zu -> %zu) lost the contents", from, to);
            struct blk blk = take_block("realloc", b, to, HAK_MIN_ALIGN, 11, 0);
            free_block("realloc", &blk);
        }
    }
    summary("malloc: %zu of %zu sizes served by the box; calloc zeroed; realloc kept contents over %zu steps%s",
            by_box, (n + step - 1) / step, steps,
            box->desc->ops.realloc ? (direct ? "; the box's realloc checked" : "; the box's realloc always declined")
                                   : "");
}

/* ---- frees from another thread ----------------------------------------------------- */

static struct batch shared_batch;
static pthread_barrier_t barrier;

static void *free_all_thread(void *arg)
{
    (void)arg;
    batch_free_rest(&shared_batch, "remote free");
    return NULL;
}

static void *alloc_then_reuse_thread(void *arg)
{
    (void)arg;
    batch_alloc(&shared_batch, "remote free", 1000, 5000);
    pthread_barrier_wait(&barrier); /* main frees them */
    pthread_barrier_wait(&barrier);
    static struct batch again;
    again.rnd = rnd_seed(21);
    batch_alloc(&again, "alloc after remote frees", 1000, 7000);
    batch_free_rest(&again, "alloc after remote frees");
    return NULL;
}

void case_remote_free(void)
{
    shared_batch.rnd = rnd_seed(11);
    batch_alloc(&shared_batch, "remote free", 1000, 1000);
    size_t n1 = shared_batch.n;
    run_thread(free_all_thread, NULL);
    /* the other way: a thread allocates, main frees while it is alive */
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, alloc_then_reuse_thread, NULL) == 0, "pthread_create failed");
    pthread_barrier_wait(&barrier);
    size_t n2 = shared_batch.n;
    batch_free_rest(&shared_batch, "remote free");
    pthread_barrier_wait(&barrier);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&barrier);
    static struct batch again;
    again.rnd = rnd_seed(12);
    batch_alloc(&again, "alloc after remote frees", 1000, 9000);
    batch_free_rest(&again, "alloc after remote frees");
    summary("%zu blocks freed by another thread, %zu freed by main while their thread ran; both sides allocate again",
            n1, n2);
}

/* ---- thread exit -------------------------------------------------------------------- */

static struct batch leftovers[9];

static void *leave_blocks_thread(void *arg)
{
    struct batch *bt = arg;
    batch_alloc(bt, "thread exit", 600, 100);
    batch_free(bt, "thread exit", 0, 2); /* half freed: caches filled */
    return NULL;                         /* exits with the other half live */
}

void case_thread_exit(void)
{
    size_t left = 0;
    for (int i = 0; i < 9; i++) {
        leftovers[i].rnd = rnd_seed(40 + (uint64_t)i);
        run_thread(leave_blocks_thread, &leftovers[i]);
    }
    for (int i = 0; i < 9; i++)
        for (size_t k = 0; k < leftovers[i].n; k++)
            if (leftovers[i].b[k].p) {
                free_block("free after the allocating thread exited", &leftovers[i].b[k]);
                left++;
            }
    /* the host's own exit path on this thread, then carry on */
    static struct batch mine;
    mine.rnd = rnd_seed(50);
    batch_alloc(&mine, "thread exit", 500, 200);
    hak_thread_exit_now();
    batch_free_rest(&mine, "free after thread_exit on the same thread");
    batch_alloc(&mine, "alloc after thread_exit", 500, 300);
    batch_free_rest(&mine, "alloc after thread_exit");
    size_t trimmed = 0;
    if (box->desc->ops.trim) {
        char *block = hak_thread_acquire();
        trimmed = box->desc->ops.trim(box->inst, box_tls(block));
        hak_thread_release(block);
        batch_alloc(&mine, "alloc after trim", 200, 400);
        batch_free_rest(&mine, "alloc after trim");
    }
    summary("9 threads exited with %zu blocks live, freed later; thread_exit on a live thread%s", left,
            box->desc->ops.trim ? "; trim, then alloc again" : "");
    (void)trimmed;
}

/* ---- fork ------------------------------------------------------------------------------ */

static _Atomic int stop_churn;

static void *churn_thread(void *arg)
{
    uint64_t rnd = rnd_seed((uint64_t)(uintptr_t)arg);
    while (!atomic_load(&stop_churn)) {
        size_t size = rnd_size(&rnd, 64 * KB);
        void *p = box_alloc(size);
        if (p)
            hak_free(p);
    }
    return NULL;
}

void case_fork(void)
{
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, churn_thread, (void *)(uintptr_t)60) == 0, "pthread_create failed");
    static struct batch mine;
    mine.rnd = rnd_seed(61);
    for (int round = 0; round < 10; round++) {
        batch_alloc(&mine, "fork", 50, (uint32_t)round * 100);
        fflush(stdout);
        pid_t pid = fork();
        EXPECT(pid >= 0, "fork failed: %s", strerror(errno));
        if (pid == 0) {
            alarm(20);
            batch_free_rest(&mine, "free in the fork child");
            batch_alloc(&mine, "alloc in the fork child", 100, 9000);
            batch_free_rest(&mine, "alloc in the fork child");
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "fork round %d: the child %s %d (deadlock on a box lock after fork? see fork_prepare/child)", round,
               WIFSIGNALED(status) ? "was killed by signal" : "exited with", WIFSIGNALED(status) ? WTERMSIG(status)
                                                                                              : WEXITSTATUS(status));
        batch_free_rest(&mine, "free in the fork parent");
    }
    atomic_store(&stop_churn, 1);
    pthread_join(t, NULL);
    summary("10 forks while another thread allocates: the children free the parent's blocks and allocate");
}

/* ---- randomized stress ------------------------------------------------------------------ */

#define SLOTS 1024
#define MAILBOX 2048

struct mailbox {
    pthread_mutex_t lock;
    struct blk items[MAILBOX];
    size_t n;
};

struct stress_thread {
    int index;
    uint64_t rnd;
    struct blk slots[SLOTS];
    struct blk live[SLOTS];
    struct mailbox inbox;
    long allocs, remote, fallback, reallocs;
};

static struct stress_thread *stress;

static void drain_inbox(struct stress_thread *me)
{
    pthread_mutex_lock(&me->inbox.lock);
    for (size_t i = 0; i < me->inbox.n; i++)
        free_block("stress: free of another thread's block", &me->inbox.items[i]);
    me->inbox.n = 0;
    pthread_mutex_unlock(&me->inbox.lock);
}

static void *stress_thread_main(void *arg)
{
    struct stress_thread *me = arg;
    struct stress_thread *peer = &stress[(me->index + 1) % opt.threads];
    size_t cap = hi_capped() > 1 * MB ? 1 * MB : (size_t)hi_capped();
    for (long op = 0; op < opt.ops; op++) {
        struct blk *s = &me->slots[rnd_next(&me->rnd) % SLOTS];
        uint64_t r = rnd_next(&me->rnd);
        if (s->p) {
            if (r % 64 == 0) {
                /* realloc within the range */
                size_t to = rnd_size(&me->rnd, cap);
                verify_block("stress: before realloc", s);
                char *q = hak_realloc(s->p, to);
                EXPECT(q, "stress: realloc(%zu -> %zu) returned NULL", s->size, to);
                EXPECT(check_prefix(q, to, s->seed, s->usable) < 0, "stress: realloc(%zu -> %zu) lost the contents",
                       s->size, to);
                *s = take_block("stress: realloc", q, to, HAK_MIN_ALIGN, s->seed, 1);
                me->reallocs++;
            } else if (r % 8 == 0 && opt.threads > 1) {
                int sent = 0;
                pthread_mutex_lock(&peer->inbox.lock);
                if (peer->inbox.n < MAILBOX) {
                    peer->inbox.items[peer->inbox.n++] = *s;
                    sent = 1;
                }
                pthread_mutex_unlock(&peer->inbox.lock);
                if (!sent)
                    free_block("stress: free", s);
                me->remote += sent;
                s->p = NULL;
            } else {
                free_block("stress: free", s);
                s->p = NULL;
            }
        } else {
            size_t size = rnd_size(&me->rnd, cap);
            void *p = hak_malloc(size);
            EXPECT(p, "stress: malloc(%zu) returned NULL", size);
            *s = take_block("stress: malloc", p, size, HAK_MIN_ALIGN, (uint32_t)(op * 4 + me->index), 1);
            if (hak_region_lookup(p) >> 16 == terminal_in->owner)
                me->fallback++;
            me->allocs++;
        }
        if (op % 256 == 0)
            drain_inbox(me);
        if (op % 32768 == 0) {
            size_t n = 0;
            for (size_t i = 0; i < SLOTS; i++)
                if (me->slots[i].p)
                    me->live[n++] = me->slots[i];
            expect_no_overlap("stress", me->live, n);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (me->slots[i].p)
            free_block("stress: final free", &me->slots[i]);
    return NULL;
}

void case_stress(void)
{
    stress = calloc((size_t)opt.threads, sizeof *stress);
    EXPECT(stress, "out of memory");
    pthread_t t[64];
    for (int i = 0; i < opt.threads; i++) {
        stress[i].index = i;
        stress[i].rnd = rnd_seed(100 + (uint64_t)i);
        pthread_mutex_init(&stress[i].inbox.lock, NULL);
    }
    for (int i = 0; i < opt.threads; i++)
        EXPECT(pthread_create(&t[i], NULL, stress_thread_main, &stress[i]) == 0, "pthread_create failed");
    for (int i = 0; i < opt.threads; i++)
        pthread_join(t[i], NULL);
    long allocs = 0, remote = 0, fallback = 0, reallocs = 0;
    for (int i = 0; i < opt.threads; i++) {
        drain_inbox(&stress[i]); /* what arrived after its thread finished */
        allocs += stress[i].allocs;
        remote += stress[i].remote;
        fallback += stress[i].fallback;
        reallocs += stress[i].reallocs;
    }
    EXPECT(fallback < allocs, "stress: every malloc fell back to %s", terminal_in->name);
    summary("seed %llu, %d threads x %ld ops: %ld mallocs (%ld fell back to %s), %ld remote frees, %ld reallocs",
            (unsigned long long)opt.seed, opt.threads, opt.ops, allocs, fallback, terminal_in->name, remote, reallocs);
}
