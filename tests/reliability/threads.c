/*
 * Threads under the preloaded host, with any config:
 *   cross   objects made by some threads and freed by others, in rounds;
 *           after malloc_trim, memory after the last round must not exceed
 *           the first by more than 16 MB (nothing leaks across threads);
 *   churn   2000 short-lived threads that allocate, leave blocks behind for
 *           the main thread to free, and exit; RSS after 2000 threads must
 *           not exceed RSS after 500 by much;
 *   fork    fork from a secondary thread while others allocate, while
 *           threads are being created and exiting, and fork in a child:
 *           each child frees its parent's blocks, allocates in every tier,
 *           starts threads, and exits cleanly.
 * `rel_threads ci` is the CI size; `rel_threads stress` moves millions of
 * objects across threads and runs more of everything (label stress).
 * The host suite (tests/host/threads_fork.c) covers the simpler cases.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s: ", \
    __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

static struct {
    long cross_objects, cross_rounds;
    int churn_threads;
    int fork_rounds;
} scale;

/* ---- helpers ------------------------------------------------------------ */

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Mostly tiny blocks, some mid, a few 64 KB..1 MB, rare large ones. */
static size_t pick_size(uint64_t *s, int allow_large)
{
    uint64_t r = next_rand(s);
    unsigned kind = (unsigned)(r % 1000);
    r >>= 10;
    if (kind < 800)
        return (size_t)(r % 1024) + 1;
    if (kind < 970)
        return (size_t)(r % (52 * 1024 - 1024)) + 1025;
    if (kind < 998 || !allow_large)
        return (size_t)(r % (1024 * 1024 - 65536)) + 65536;
    return (size_t)(r % (4 << 20)) + (2 << 20) + 1;
}

/* A block carries its size and a stamp at both ends. */
struct stamp {
    uint32_t size, tag;
};

static void *make_block(size_t n, uint32_t tag)
{
    if (n < sizeof(struct stamp) + 1)
        n = sizeof(struct stamp) + 1;
    unsigned char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu)", n);
    struct stamp st = { (uint32_t)n, tag };
    memcpy(p, &st, sizeof st);
    p[n - 1] = (unsigned char)tag;
    return p;
}

static void check_and_free(void *block)
{
    unsigned char *p = block;
    struct stamp st;
    memcpy(&st, p, sizeof st);
    CHECK(st.size >= sizeof st + 1 && st.size <= (64u << 20), "block %p has a bad size stamp %u", block, st.size);
    CHECK(p[st.size - 1] == (unsigned char)st.tag, "block %p (%u bytes, tag %u): last byte overwritten",
          block, st.size, st.tag);
    free(p);
}

struct mem {
    long size_kb, resident_kb;
};

static struct mem mem_now(void)
{
    struct mem m = { 0, 0 };
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL, "cannot open /proc/self/statm");
    long size = 0, resident = 0;
    CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2, "cannot read /proc/self/statm");
    fclose(f);
    long page_kb = sysconf(_SC_PAGESIZE) / 1024;
    m.size_kb = size * page_kb;
    m.resident_kb = resident * page_kb;
    return m;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ---- cross-thread frees ------------------------------------------------- */

enum { BATCH = 64, QUEUE_BATCHES = 64, PRODUCERS = 3, CONSUMERS = 3 };

struct batch {
    void *blocks[BATCH];
    int count;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct batch *slots[QUEUE_BATCHES];
    int head, tail, producers_left;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static void queue_put(struct batch *b)
{
    pthread_mutex_lock(&q.lock);
    while (q.head - q.tail == QUEUE_BATCHES)
        pthread_cond_wait(&q.changed, &q.lock);
    q.slots[q.head++ % QUEUE_BATCHES] = b;
    pthread_cond_broadcast(&q.changed);
    pthread_mutex_unlock(&q.lock);
}

static struct batch *queue_get(void)
{
    pthread_mutex_lock(&q.lock);
    while (q.head == q.tail && q.producers_left > 0)
        pthread_cond_wait(&q.changed, &q.lock);
    struct batch *b = q.head == q.tail ? NULL : q.slots[q.tail++ % QUEUE_BATCHES];
    pthread_cond_broadcast(&q.changed);
    pthread_mutex_unlock(&q.lock);
    return b;
}

struct producer_arg {
    long count;
    uint64_t seed;
};

static void *produce(void *arg)
{
    struct producer_arg *a = arg;
    uint64_t s = a->seed;
    for (long done = 0; done < a->count;) {
        /* The batch itself is heap memory: freed by the consumer too. */
        struct batch *b = malloc(sizeof *b);
        CHECK(b != NULL, "malloc(batch)");
        b->count = 0;
        while (b->count < BATCH && done < a->count) {
            b->blocks[b->count++] = make_block(pick_size(&s, 0), (uint32_t)done);
            done++;
        }
        queue_put(b);
    }
    pthread_mutex_lock(&q.lock);
    q.producers_left--;
    pthread_cond_broadcast(&q.changed);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void *consume(void *arg)
{
    long *freed = arg;
    struct batch *b;
    while ((b = queue_get()) != NULL) {
        for (int i = 0; i < b->count; i++)
            check_and_free(b->blocks[i]);
        *freed += b->count;
        free(b);
    }
    return NULL;
}

/* Every thread allocates a stripe of a shared table; after a barrier each
 * frees the stripe of the next thread. */
enum { STRIPE_THREADS = 4, STRIPE = 20000 };
static void *stripes[STRIPE_THREADS][STRIPE];
static pthread_barrier_t stripe_barrier;

static void *stripe_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
    for (int i = 0; i < STRIPE; i++)
        stripes[t][i] = make_block(pick_size(&s, 0) % 2048 + 1, (uint32_t)i);
    pthread_barrier_wait(&stripe_barrier);
    int victim = (t + 1) % STRIPE_THREADS;
    for (int i = 0; i < STRIPE; i++)
        check_and_free(stripes[victim][i]);
    return NULL;
}

static void cross_thread_frees(void)
{
    long per_round = scale.cross_objects / scale.cross_rounds;
    struct mem first = { 0, 0 }, last = { 0, 0 };
    for (long round = 0; round < scale.cross_rounds; round++) {
        q.head = q.tail = 0;
        q.producers_left = PRODUCERS;
        pthread_t prod[PRODUCERS], cons[CONSUMERS];
        struct producer_arg pa[PRODUCERS];
        long freed[CONSUMERS] = { 0 };
        for (int i = 0; i < PRODUCERS; i++) {
            pa[i] = (struct producer_arg){ per_round / PRODUCERS, 0x1234567ull * (uint64_t)(round * 7 + i + 1) };
            CHECK(pthread_create(&prod[i], NULL, produce, &pa[i]) == 0, "pthread_create");
        }
        for (int i = 0; i < CONSUMERS; i++)
            CHECK(pthread_create(&cons[i], NULL, consume, &freed[i]) == 0, "pthread_create");
        for (int i = 0; i < PRODUCERS; i++)
            pthread_join(prod[i], NULL);
        long total = 0;
        for (int i = 0; i < CONSUMERS; i++) {
            pthread_join(cons[i], NULL);
            total += freed[i];
        }
        CHECK(total == (per_round / PRODUCERS) * PRODUCERS, "round %ld: %ld of %ld blocks came through",
              round, total, (per_round / PRODUCERS) * PRODUCERS);

        pthread_t th[STRIPE_THREADS];
        pthread_barrier_init(&stripe_barrier, NULL, STRIPE_THREADS);
        for (int t = 0; t < STRIPE_THREADS; t++)
            CHECK(pthread_create(&th[t], NULL, stripe_worker, (void *)(intptr_t)t) == 0, "pthread_create");
        for (int t = 0; t < STRIPE_THREADS; t++)
            pthread_join(th[t], NULL);
        pthread_barrier_destroy(&stripe_barrier);

        /* Every box keeps freed memory in caches bounded by budgets (pool's
         * dirty_max, large's extent cache, span caches) that fill over the
         * first rounds and decay with time: what must not climb is what
         * stays after the caches are given back. */
        struct mem cached = mem_now();
        malloc_trim(0);
        if (round == 0)
            first = mem_now();
        last = mem_now();
        say("cross: round %ld: %ld KB resident, %ld KB mapped (before malloc_trim: %ld KB "
            "resident)\n", round + 1, last.resident_kb, last.size_kb, cached.resident_kb);
    }
    say("cross: %ld objects in %ld rounds; after round 1: %ld KB resident, %ld KB mapped; "
        "after round %ld: %ld KB resident, %ld KB mapped\n",
        scale.cross_objects, scale.cross_rounds, first.resident_kb, first.size_kb, scale.cross_rounds,
        last.resident_kb, last.size_kb);
    /* Same work every round: memory must settle, not climb. */
    CHECK(last.resident_kb <= first.resident_kb + 16 * 1024,
          "resident memory grew from %ld KB to %ld KB over the rounds", first.resident_kb, last.resident_kb);
    CHECK(last.size_kb <= first.size_kb + 1024 * 1024,
          "mapped memory grew from %ld KB to %ld KB over the rounds", first.size_kb, last.size_kb);
}

/* ---- short-lived threads ------------------------------------------------ */

enum { WAVE = 4, LEFT_BEHIND = 8 };
static void *left_behind[WAVE][LEFT_BEHIND];

struct churn_arg {
    int slot, serial;
    void *from_main;
};

static void *short_lived(void *arg)
{
    struct churn_arg *a = arg;
    uint64_t s = 0xabcdef12345ull + (uint64_t)a->serial * 0x9e3779b97f4a7c15ull;
    /* Some threads never allocate; some allocate once. */
    if (a->serial % 17 == 0)
        return NULL;
    check_and_free(a->from_main);
    int n = a->serial % 13 == 0 ? 1 : 200;
    void *live[200];
    for (int i = 0; i < n; i++)
        live[i] = make_block(pick_size(&s, a->serial % 8 == 0), (uint32_t)i);
    for (int i = 0; i < n; i++) {
        if (i < LEFT_BEHIND && n > LEFT_BEHIND)
            left_behind[a->slot][i] = live[i]; /* the main thread frees these after we exit */
        else
            check_and_free(live[i]);
    }
    return NULL;
}

static void thread_churn(void)
{
    struct mem at500 = { 0, 0 }, end;
    for (int serial = 0; serial < scale.churn_threads; serial += WAVE) {
        pthread_t th[WAVE];
        struct churn_arg args[WAVE];
        memset(left_behind, 0, sizeof left_behind);
        for (int w = 0; w < WAVE; w++) {
            args[w] = (struct churn_arg){ w, serial + w, make_block((size_t)(serial + w) % 3000 + 16, 7) };
            CHECK(pthread_create(&th[w], NULL, short_lived, &args[w]) == 0, "pthread_create: %s",
                  strerror(errno));
        }
        for (int w = 0; w < WAVE; w++) {
            pthread_join(th[w], NULL);
            if ((serial + w) % 17 == 0)
                check_and_free(args[w].from_main); /* that thread never ran its body */
        }
        for (int w = 0; w < WAVE; w++)
            for (int i = 0; i < LEFT_BEHIND; i++)
                if (left_behind[w][i])
                    check_and_free(left_behind[w][i]);
        if (serial + WAVE == 500)
            at500 = mem_now();
    }
    end = mem_now();
    say("churn: %d threads; after 500: %ld KB resident, %ld KB mapped; after %d: %ld KB resident, "
        "%ld KB mapped\n", scale.churn_threads, at500.resident_kb, at500.size_kb, scale.churn_threads,
        end.resident_kb, end.size_kb);
    /* A thread's state must be recycled: 1500 more threads may not cost
     * more than 32 MB of RSS (about 20 KB each), nor 512 MB of mappings. */
    CHECK(end.resident_kb <= at500.resident_kb + 32 * 1024,
          "resident memory grew from %ld KB after 500 threads to %ld KB after %d",
          at500.resident_kb, end.resident_kb, scale.churn_threads);
    CHECK(end.size_kb <= at500.size_kb + 512 * 1024,
          "mapped memory grew from %ld KB after 500 threads to %ld KB after %d",
          at500.size_kb, end.size_kb, scale.churn_threads);
}

/* ---- fork ------------------------------------------------------------ */

static atomic_int stop_threads;

static void *churn_forever(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x2545f4914f6cdd1dull + 1;
    void *slots[128] = { 0 };
    while (!atomic_load(&stop_threads)) {
        unsigned i = (unsigned)(next_rand(&s) % 128);
        if (slots[i])
            check_and_free(slots[i]);
        slots[i] = make_block(pick_size(&s, 1), i);
    }
    for (int i = 0; i < 128; i++)
        if (slots[i])
            check_and_free(slots[i]);
    return NULL;
}

static void *spawn_and_exit(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_threads)) {
        pthread_t t;
        struct churn_arg a = { 0, 1, make_block(64, 7) };
        if (pthread_create(&t, NULL, short_lived, &a) == 0) {
            pthread_join(t, NULL);
            for (int i = 0; i < LEFT_BEHIND; i++)
                if (left_behind[0][i]) {
                    check_and_free(left_behind[0][i]);
                    left_behind[0][i] = NULL;
                }
        } else {
            check_and_free(a.from_main);
        }
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg + 99;
    for (int i = 0; i < 500; i++)
        check_and_free(make_block(pick_size(&s, 1), (uint32_t)i));
    return NULL;
}

/* What a child does: use and free the parent's blocks (owned, in the
 * parent, by threads that do not exist here), allocate in every tier, run
 * threads, fork once more if asked, and leave through exit(). */
enum { INHERITED = 2000 };
static void *inherited[INHERITED];

static void child_work(int depth, int round)
{
    alarm(30); /* a deadlocked child dies of SIGALRM: the parent reports it */
    for (int i = 0; i < INHERITED; i++)
        if (inherited[i] && i % 2 == round % 2) {
            check_and_free(inherited[i]);
            inherited[i] = NULL;
        }
    static const size_t sizes[] = { 1, 16, 100, 1024, 1500, 8192, 40000, 70000, 300000, 1 << 20,
                                    (2 << 20) + 1, 5 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *p = make_block(sizes[i], (uint32_t)i);
        void *r = realloc(p, sizes[i] * 2 + 8);
        CHECK(r != NULL, "realloc in a child");
        free(r);
    }
    pthread_t th[3];
    for (int t = 0; t < 3; t++)
        CHECK(pthread_create(&th[t], NULL, child_thread, (void *)(intptr_t)t) == 0, "pthread_create in a child");
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    if (depth == 0 && round % 4 == 0) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork in a child: %s", strerror(errno));
        if (pid == 0) {
            child_work(1, round + 1);
            exit(0);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "grandchild: status 0x%x", status);
    }
    malloc_trim(0);
}

static void fork_one(int round, const char *how)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        child_work(0, round);
        exit(0); /* atexit handlers, the host's destructor, stats */
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    if (WIFSIGNALED(status))
        CHECK(0, "child of round %d (%s) died of signal %d%s", round, how, WTERMSIG(status),
              WTERMSIG(status) == SIGALRM ? " (deadlock: it hung for 30 s)" : "");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child of round %d (%s) exited with %d", round,
          how, WEXITSTATUS(status));
}

static void *forking_thread(void *arg)
{
    int rounds = (int)(intptr_t)arg;
    for (int round = 0; round < rounds; round++)
        fork_one(round, "forked by a secondary thread");
    return NULL;
}

static void fork_cases(void)
{
    uint64_t s = 77;
    for (int i = 0; i < INHERITED; i++)
        inherited[i] = make_block(pick_size(&s, 1), (uint32_t)i);

    /* 1: a secondary thread forks while three threads allocate. */
    atomic_store(&stop_threads, 0);
    pthread_t churners[3], forker;
    for (int t = 0; t < 3; t++)
        CHECK(pthread_create(&churners[t], NULL, churn_forever, (void *)(intptr_t)(t + 1)) == 0, "pthread_create");
    CHECK(pthread_create(&forker, NULL, forking_thread, (void *)(intptr_t)scale.fork_rounds) == 0, "pthread_create");
    pthread_join(forker, NULL);

    /* 2: the main thread forks while threads are created and exit. */
    pthread_t spawner;
    CHECK(pthread_create(&spawner, NULL, spawn_and_exit, NULL) == 0, "pthread_create");
    for (int round = 0; round < scale.fork_rounds; round++)
        fork_one(round, "while threads start and exit");
    atomic_store(&stop_threads, 1);
    pthread_join(spawner, NULL);
    for (int t = 0; t < 3; t++)
        pthread_join(churners[t], NULL);
    for (int i = 0; i < INHERITED; i++)
        check_and_free(inherited[i]);
    say("fork: %d rounds from a secondary thread, %d while threads start and exit: children clean\n",
        scale.fork_rounds, scale.fork_rounds);
}

int main(int argc, char **argv)
{
    int stress = argc > 1 && !strcmp(argv[1], "stress");
    if (stress) {
        scale.cross_objects = 30000000;
        scale.cross_rounds = 10;
        scale.churn_threads = 10000;
        scale.fork_rounds = 200;
        alarm(1500);
    } else {
        scale.cross_objects = 600000;
        scale.cross_rounds = 3;
        scale.churn_threads = 2000;
        scale.fork_rounds = 12;
        alarm(240); /* a deadlock fails the test instead of hanging CI */
    }
    cross_thread_frees();
    thread_churn();
    fork_cases();
    say("threads: all checks passed\n");
    return 0;
}
