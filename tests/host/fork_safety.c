/*
 * fork() never hangs a program under the preloaded host (issue [fork]).
 *
 *   fork_safety stdio     threads fork in a loop while others read lines
 *                         with getline (realloc under a FILE lock) and call
 *                         fflush(NULL) (the libio list lock), as glibc's
 *                         tst-mallocfork3 does: the stdio/atfork lock cycle.
 *   fork_safety signal    one thread loops on malloc/free of every tier while
 *                         another process signals it; the handler forks and
 *                         the child _exits (glibc's tst-mallocfork2).
 *   fork_safety stress    all of it: threads on every tier doing stdio,
 *                         forking threads whose children allocate and free
 *                         their parent's blocks, and a thread whose signal
 *                         handler forks (in turns with the forking threads);
 *                         blocks are checked for corruption.
 *
 * Each mode runs for a fixed time (argv[2] seconds, default 2). A watchdog
 * alarm fails the test with a message instead of letting CI hang, and the
 * parent kills children that do not exit.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_SECONDS 60

static const char *mode = "?";
static double run_seconds = 2.0;
static _Atomic int stop;

#define FAIL(...) do { fprintf(stderr, "fork_safety %s: ", mode); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); _exit(1); } while (0)
#define CHECK(cond) do { if (!(cond)) FAIL("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); } while (0)

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "fork_safety: WATCHDOG: no allocation round finished for 60 s: "
                              "a fork, a child or a thread hangs (deadlock)\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    kill(0, SIGKILL); /* children too; this process last */
    _exit(3);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A size from every tier: tiny (<= 1 KB), pool (to 52 KB), l25 (to 2 MB),
 * large (above). Mostly small, as programs are. */
static size_t tier_size(uint32_t r)
{
    switch (r % 16) {
    case 0: case 1: case 2: return 1024 + r % (52 * 1024);
    case 3: return 64 * 1024 + r % (1024 * 1024);
    case 4: if ((r >> 8) % 8 == 0) return 2 * 1024 * 1024 + r % (2 * 1024 * 1024); /* fallthrough */
    default: return 1 + r % 1024;
    }
}

/* In `signal` mode half the requests go to l25 and large sizes, whose
 * shared paths take a box lock on most calls: where a signal is likeliest
 * to interrupt a call holding a lock (the case the fork must not wait on). */
static int lock_heavy;

static size_t pick_size(uint32_t r)
{
    if (lock_heavy && (r & 1))
        return (r & 2) ? 64 * 1024 + r % (1984 * 1024) : 2 * 1024 * 1024 + r % (2 * 1024 * 1024);
    return tier_size(r);
}

/* Blocks carry their size and a pattern so a child or a thread can check
 * them. */
struct slot { unsigned char *p; size_t n; };

static unsigned char mark(size_t n) { return (unsigned char)(n * 7 + 1); }

static void fill(unsigned char *p, size_t n)
{
    p[0] = p[n / 2] = p[n - 1] = mark(n);
    if (n >= 40) /* clear of n / 2 */
        memcpy(p + 8, &n, sizeof n);
}

static int intact(const unsigned char *p, size_t n)
{
    size_t head = n;
    if (n >= 40) /* clear of n / 2 */
        memcpy(&head, p + 8, sizeof head);
    return head == n && p[0] == mark(n) && p[n / 2] == mark(n) && p[n - 1] == mark(n);
}

/* The watchdog fires after WATCHDOG_SECONDS without progress: every round
 * of allocation re-arms it, so a slow (loaded) machine is not a failure but
 * a deadlock, which stops every round, is. */
static void progress(void) { alarm(WATCHDOG_SECONDS); }

static void churn(struct slot *slots, int count, uint32_t *seed, int steps)
{
    progress();
    for (int i = 0; i < steps; i++) {
        uint32_t r = xorshift(seed);
        struct slot *s = &slots[r % (uint32_t)count];
        if (s->p) {
            if (!intact(s->p, s->n))
                FAIL("block %p of %zu bytes corrupted", (void *)s->p, s->n);
            if (r & 0x100) {
                free(s->p);
                s->p = NULL;
                continue;
            }
            size_t n = pick_size(xorshift(seed));
            unsigned char *q = realloc(s->p, n);
            CHECK(q);
            s->p = q;
            s->n = n;
            fill(q, n);
        } else {
            size_t n = pick_size(xorshift(seed));
            s->p = (r & 0x200) ? calloc(1, n) : malloc(n);
            CHECK(s->p);
            if (r & 0x200)
                CHECK(s->p[n - 1] == 0);
            s->n = n;
            fill(s->p, n);
        }
    }
}

static void free_all(struct slot *slots, int count)
{
    for (int i = 0; i < count; i++) {
        if (slots[i].p && !intact(slots[i].p, slots[i].n))
            FAIL("block of %zu bytes corrupted at the end", slots[i].n);
        free(slots[i].p);
        slots[i].p = NULL;
    }
}

/* Reap a child, killing it if it has not exited within a few seconds:
 * a child that hangs after fork is the failure this test looks for. */
static void reap(pid_t pid)
{
    for (int waited_ms = 0;; waited_ms++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                FAIL("child %d ended with status 0x%x", (int)pid, status);
            return;
        }
        CHECK(r == 0 || errno == EINTR);
        if (waited_ms > 20000) {
            kill(pid, SIGKILL);
            FAIL("child %d did not exit within 20 s after fork (hang in the child)", (int)pid);
        }
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
}

/* ---- stdio: getline + fflush(NULL) + fork ------------------------------- */

static char lines_path[64];

static void *getline_thread(void *arg)
{
    (void)arg;
    FILE *f = fopen(lines_path, "r");
    CHECK(f);
    while (!atomic_load(&stop)) {
        char *line = NULL; /* a new buffer each line: getline mallocs and reallocs */
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        if (n < 0)
            rewind(f);
        free(line);
    }
    fclose(f);
    return NULL;
}

static void *fflush_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        fflush(NULL);
    return NULL;
}

static _Atomic long forks_done;

static void *fork_thread(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
    struct slot mine[8] = { { 0 } };
    while (!atomic_load(&stop)) {
        churn(mine, 8, &seed, 4);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(0);
        reap(pid);
        atomic_fetch_add(&forks_done, 1);
    }
    free_all(mine, 8);
    return NULL;
}

static void write_lines_file(void)
{
    snprintf(lines_path, sizeof lines_path, "/tmp/hakmem_fork_lines_%d", (int)getpid());
    FILE *f = fopen(lines_path, "w");
    CHECK(f);
    for (int i = 0; i < 2000; i++) {
        int len = 1 + (i * 37) % 700; /* long lines make getline realloc */
        for (int k = 0; k < len; k++)
            fputc('a' + (i + k) % 26, f);
        fputc('\n', f);
    }
    CHECK(fclose(f) == 0);
}

static void run_stdio(void)
{
    write_lines_file();
    pthread_t th[8];
    int n = 0;
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&th[n++], NULL, fork_thread, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[n++], NULL, getline_thread, NULL) == 0);
    CHECK(pthread_create(&th[n++], NULL, fflush_thread, NULL) == 0);
    struct slot slots[256] = { { 0 } };
    uint32_t seed = 99;
    double end = now() + run_seconds;
    while (now() < end)
        churn(slots, 256, &seed, 64);
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    free_all(slots, 256);
    unlink(lines_path);
    CHECK(forks_done > 0);
    printf("stdio: %ld forks from 4 threads beside getline and fflush(NULL)\n", (long)forks_done);
}

/* ---- signal: fork from a handler that interrupted malloc/free ------------ */

static _Atomic long handler_forks;
static volatile sig_atomic_t in_handler_children_failed;

/* When set (stress mode), handlers past this CLOCK_MONOTONIC time return
 * without forking: each fork write-protects the whole heap, so back-to-back
 * handler forks can starve the interrupted thread's phase (one phase ran
 * 2.6 s instead of 0.1 s on a loaded machine and the test hit CI's timeout). */
static _Atomic double handler_deadline;

static void on_fork_signal(int sig)
{
    (void)sig;
    int saved = errno;
    double deadline = atomic_load(&handler_deadline);
    if (deadline > 0 && now() >= deadline) {
        errno = saved;
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0) {
        int status;
        /* waitpid is async-signal-safe; the child only _exits. */
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            in_handler_children_failed = 1;
        atomic_fetch_add(&handler_forks, 1);
    }
    errno = saved;
}

/* A process that sends SIGUSR1 to `target` (a thread id) every `gap_us`
 * microseconds until killed. */
static pid_t start_signaller(pid_t tgid, pid_t target_tid, long gap_us)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (;;) {
            if (syscall(SYS_tgkill, tgid, target_tid, SIGUSR1) != 0)
                _exit(0); /* the target is gone */
            struct timespec pause = { 0, gap_us * 1000 };
            nanosleep(&pause, NULL);
        }
    }
    return pid;
}

static void stop_signaller(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void install_fork_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fork_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
}

static void signalled_loop(uint32_t seed)
{
    struct slot slots[64] = { { 0 } };
    double end = now() + run_seconds;
    while (now() < end)
        churn(slots, 64, &seed, 32);
    free_all(slots, 64);
}

static void run_signal(void)
{
    lock_heavy = 1;
    install_fork_handler();
    pid_t sig = start_signaller(getpid(), (pid_t)syscall(SYS_gettid), 20);
    signalled_loop(7);
    /* Block further signals before the signaller goes. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    stop_signaller(sig);
    CHECK(!in_handler_children_failed);
    CHECK(handler_forks > 0);
    printf("signal: %ld forks from a handler interrupting malloc/free\n", (long)handler_forks);
}

/* ---- stress: all of it ------------------------------------------------------ */

enum { SHARED = 128 };
static struct slot shared[SHARED];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
/* Thread forks and handler forks take turns (phases of 100 ms): a handler
 * fork that interrupted an allocator call holding a lock cannot finish
 * while another thread's fork waits for that lock (host/fork.c). */
static pthread_mutex_t fork_gate = PTHREAD_MUTEX_INITIALIZER;

/* Allocating threads on every tier that also write and read their own
 * FILE (stdio's per-FILE lock and buffers), and trade blocks through
 * `shared` so frees cross threads. */
static void *stress_worker(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 40503u + 17;
    struct slot mine[32] = { { 0 } };
    FILE *f = tmpfile();
    CHECK(f);
    while (!atomic_load(&stop)) {
        churn(mine, 32, &seed, 32);
        fprintf(f, "%u %s\n", seed, "stress");
        if ((seed & 7) == 0) {
            rewind(f);
            char *line = NULL;
            size_t cap = 0;
            while (getline(&line, &cap, f) > 0)
                ;
            free(line);
            rewind(f);
        }
        uint32_t r = xorshift(&seed);
        pthread_mutex_lock(&shared_lock);
        struct slot *s = &shared[r % SHARED];
        struct slot *m = &mine[(r >> 9) % 32];
        struct slot t = *s;
        *s = *m;
        *m = t;
        pthread_mutex_unlock(&shared_lock);
        if (m->p && !intact(m->p, m->n))
            FAIL("a block from another thread is corrupted");
    }
    fclose(f);
    free_all(mine, 32);
    return NULL;
}

/* Forks; the child allocates, frees its parent's blocks (taken under the
 * shared lock, which the forking thread holds across fork so the child sees
 * the array whole) and exits. */
static void *stress_forker(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 69069u + 3;
    while (!atomic_load(&stop)) {
        pthread_mutex_lock(&fork_gate);
        pthread_mutex_lock(&shared_lock);
        pid_t pid = fork();
        if (pid == 0) {
            struct slot kids[32] = { { 0 } };
            churn(kids, 32, &seed, 200);
            for (int i = 0; i < SHARED; i++) {
                if (shared[i].p && !intact(shared[i].p, shared[i].n))
                    FAIL("child: a parent's block is corrupted");
                free(shared[i].p);
            }
            free_all(kids, 32);
            char *msg = NULL;
            if (asprintf(&msg, "child %d done", (int)getpid()) < 0)
                _exit(5);
            free(msg);
            _exit(0);
        }
        pthread_mutex_unlock(&shared_lock);
        pthread_mutex_unlock(&fork_gate);
        CHECK(pid > 0);
        reap(pid);
        atomic_fetch_add(&forks_done, 1);
    }
    return NULL;
}

static _Atomic pid_t signalled_tid;

/* The only thread that takes the fork signal, and only in its phases:
 * it holds the fork gate while SIGUSR1 is unblocked. */
static void *stress_signalled(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg;
    struct slot slots[64] = { { 0 } };
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    atomic_store(&signalled_tid, (pid_t)syscall(SYS_gettid));
    double end = now() + run_seconds;
    for (int phase = 0; now() < end; phase++) {
        double phase_end = now() + 0.1;
        if (phase & 1) {
            pthread_mutex_lock(&fork_gate);
            atomic_store(&handler_deadline, phase_end);
            pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        }
        while (now() < phase_end)
            churn(slots, 64, &seed, 32);
        if (phase & 1) {
            pthread_sigmask(SIG_BLOCK, &set, NULL);
            pthread_mutex_unlock(&fork_gate);
        }
    }
    free_all(slots, 64);
    return NULL;
}

static void run_stress(void)
{
    install_fork_handler();
    /* The fork signal goes to one thread only (tgkill), which never does
     * stdio: see host/fork.c for why a handler's fork must not meet a
     * thread in fflush(NULL). Every other thread blocks it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t th[8];
    int n = 0;
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&th[n++], NULL, stress_worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[n++], NULL, stress_forker, (void *)(uintptr_t)(i + 1)) == 0);
    pthread_t sig_thread;
    CHECK(pthread_create(&sig_thread, NULL, stress_signalled, (void *)(uintptr_t)11) == 0);
    while (!atomic_load(&signalled_tid))
        sched_yield();
    /* Fewer signals than in `signal` mode: each handler fork copies a
     * threaded process's whole address space, and a thread that spends all
     * its time in handlers starves the phases. */
    pid_t signaller = start_signaller(getpid(), atomic_load(&signalled_tid), 500);
    CHECK(pthread_join(sig_thread, NULL) == 0);
    stop_signaller(signaller);
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    free_all(shared, SHARED);
    CHECK(!in_handler_children_failed);
    CHECK(forks_done > 0 && handler_forks > 0);
    printf("stress: %ld thread forks, %ld handler forks\n", (long)forks_done, (long)handler_forks);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: fork_safety stdio|signal|stress [seconds]");
    mode = argv[1];
    if (argc > 2)
        run_seconds = atof(argv[2]);
    signal(SIGALRM, on_watchdog);
    progress();
    setpgid(0, 0);
    if (!strcmp(mode, "stdio"))
        run_stdio();
    else if (!strcmp(mode, "signal"))
        run_signal();
    else if (!strcmp(mode, "stress"))
        run_stress();
    else
        FAIL("unknown mode (stdio, signal, stress)");
    return 0;
}
