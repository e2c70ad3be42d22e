/*
 * libhakmem_record.so: records every call of the malloc family a program
 * makes, preloaded in front of the allocator that serves them (glibc, or
 * libhakmem.so after it in LD_PRELOAD), which it reaches through
 * dlsym(RTLD_NEXT). `hakmem record` sets it up (host/cli/record.c); without
 * HAKMEM_RECORD_DIR in the environment it only forwards.
 *
 * Events go straight into a MAP_SHARED mapping of the raw file
 * (trace_format.h): each thread owns 16 KB chunks it reserves with one
 * atomic add, and stores a chunk's used length after every event, so the
 * file is whole whenever the process stops (exit, exec, _exit, a signal)
 * and the kernel writes it out: nothing to flush, no write(2) on the hot
 * path. One global atomic sequence number per event orders the threads.
 *
 * Fork: the child drops the parent's mapping (the parent's events stay in
 * the parent's file) and starts its own file on its next call. Exec: the
 * new program loads the recorder again (LD_PRELOAD is inherited) and writes
 * a new file for the same pid, image 1, 2, ...: the recording follows.
 */
#include "trace_format.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define WINDOW_BYTES ((size_t)64 << 20)           /* the file is mapped 64 MB at a time */
#define WINDOW_CHUNKS (WINDOW_BYTES / RAW_CHUNK_BYTES)
#define MAX_WINDOWS 1024                          /* 64 GB of events */
#define EVENT_MAX 64                              /* bytes of the longest event */

/* ---- the allocator under us ------------------------------------------- */

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_reallocarray)(void *, size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static size_t (*real_usable_size)(void *);

/* dlsym allocates (its error buffer) before the real functions are known:
 * those calls are served here and recognised by address at free. Each
 * block has its size in the 16 bytes before it. */
static _Alignas(64) unsigned char boot_arena[65536];
static _Atomic size_t boot_used;

static int is_boot(const void *p)
{
    return (const unsigned char *)p >= boot_arena && (const unsigned char *)p < boot_arena + sizeof boot_arena;
}

static void *boot_alloc(size_t n)
{
    size_t need = ((n + 15) & ~(size_t)15) + 16;
    size_t at = atomic_fetch_add(&boot_used, need);
    if (at + need > sizeof boot_arena)
        return NULL;
    memcpy(boot_arena + at, &n, sizeof n);
    return boot_arena + at + 16;
}

static size_t boot_size(const void *p)
{
    size_t n;
    memcpy(&n, (const unsigned char *)p - 16, sizeof n);
    return n;
}

/* ---- recorder state --------------------------------------------------- */

struct rec_thread {
    unsigned epoch;       /* == rec_epoch while the fields below are valid */
    unsigned tid;
    struct raw_chunk *chunk;
    uint8_t *pos, *limit;
    uint64_t prev_seq, prev_addr;
};

static TLS int tls_busy;  /* inside the recorder: forward, never record */
static TLS struct rec_thread tls_rec;

static _Atomic int resolve_state;     /* 0 none, 1 resolving, 2 done */
static _Atomic int file_state;        /* 0 not open, 1 opening, 2 recording, 3 off */
static _Atomic unsigned rec_epoch = 1;
static _Atomic uint64_t rec_seq;
static _Atomic uint64_t rec_next_chunk;
static _Atomic unsigned rec_next_tid;
static _Atomic(uint8_t *) rec_windows[MAX_WINDOWS];
static pthread_mutex_t window_lock = PTHREAD_MUTEX_INITIALIZER;
static int rec_fd = -1;
static struct raw_header *rec_header;
static unsigned rec_image;

static void resolve(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&resolve_state, &expected, 1)) {
        while (atomic_load(&resolve_state) != 2)
            sched_yield();
        return;
    }
    tls_busy++;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_reallocarray = dlsym(RTLD_NEXT, "reallocarray");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_valloc = dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    real_usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
    tls_busy--;
    atomic_store(&resolve_state, 2);
}

static void say(const char *msg)
{
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
}

static void child_after_fork(void)
{
    /* The mappings are the parent's file: drop them without writing. */
    for (size_t i = 0; i < MAX_WINDOWS; i++) {
        uint8_t *w = atomic_load(&rec_windows[i]);
        if (w)
            munmap(w, WINDOW_BYTES);
        atomic_store(&rec_windows[i], NULL);
    }
    if (rec_header)
        munmap(rec_header, RAW_HEADER_BYTES);
    rec_header = NULL;
    if (rec_fd >= 0)
        close(rec_fd);
    rec_fd = -1;
    pthread_mutex_init(&window_lock, NULL);
    atomic_store(&rec_next_chunk, 0);
    atomic_store(&rec_next_tid, 0);
    atomic_store(&rec_seq, 0);
    atomic_fetch_add(&rec_epoch, 1);
    rec_image = 0;
    atomic_store(&file_state, 0);
}

static void read_cmdline(struct raw_header *h)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, h->cmdline, sizeof h->cmdline);
    close(fd);
    h->cmdline_bytes = n > 0 ? (uint32_t)n : 0;
}

/* Open <dir>/<pid>.<image>.raw: the first free image number is this
 * program's place in the process's chain of execs. */
static void open_file(void)
{
    const char *dir = getenv("HAKMEM_RECORD_DIR");
    if (!dir || !*dir) {
        atomic_store(&file_state, 3);
        return;
    }
    char path[4096];
    int fd = -1;
    for (unsigned image = 0; image < 1000 && fd < 0; image++) {
        if (snprintf(path, sizeof path, "%s/%ld.%u.raw", dir, (long)getpid(), image) >= (int)sizeof path)
            break;
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            rec_image = image;
        else if (errno != EEXIST)
            break;
    }
    if (fd < 0 || ftruncate(fd, RAW_HEADER_BYTES)) {
        say("hakmem record: cannot create the raw trace in HAKMEM_RECORD_DIR; not recording\n");
        if (fd >= 0)
            close(fd);
        atomic_store(&file_state, 3);
        return;
    }
    struct raw_header *h = mmap(NULL, RAW_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        close(fd);
        atomic_store(&file_state, 3);
        return;
    }
    memcpy(h->magic, RAW_MAGIC, 8);
    h->version = RAW_VERSION;
    h->chunk_bytes = RAW_CHUNK_BYTES;
    h->pid = (uint64_t)getpid();
    h->ppid = (uint64_t)getppid();
    h->image = rec_image;
    read_cmdline(h);
    rec_header = h;
    rec_fd = fd;
    atomic_store(&file_state, 2);
}

static int ready(void)
{
    if (__builtin_expect(atomic_load_explicit(&file_state, memory_order_acquire) == 2, 1))
        return 1;
    if (atomic_load(&resolve_state) != 2)
        resolve();
    int expected = 0;
    if (atomic_compare_exchange_strong(&file_state, &expected, 1)) {
        tls_busy++;
        static int atfork_done;
        if (!atfork_done) {
            atfork_done = 1;
            pthread_atfork(NULL, NULL, child_after_fork);
        }
        open_file();
        tls_busy--;
    } else {
        while (atomic_load(&file_state) == 1)
            sched_yield();
    }
    return atomic_load(&file_state) == 2;
}

/* The window holding chunk `index`, mapped on first use (rare: under a
 * lock, with the file grown sparse to cover it). */
static uint8_t *window_for(uint64_t index)
{
    size_t w = index / WINDOW_CHUNKS;
    if (w >= MAX_WINDOWS)
        return NULL;
    uint8_t *base = atomic_load_explicit(&rec_windows[w], memory_order_acquire);
    if (base)
        return base;
    pthread_mutex_lock(&window_lock);
    base = atomic_load(&rec_windows[w]);
    if (!base) {
        off_t off = (off_t)RAW_HEADER_BYTES + (off_t)w * (off_t)WINDOW_BYTES;
        if (ftruncate(rec_fd, off + (off_t)WINDOW_BYTES) == 0) {
            void *m = mmap(NULL, WINDOW_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, rec_fd, off);
            if (m != MAP_FAILED) {
                base = m;
                atomic_store_explicit(&rec_windows[w], base, memory_order_release);
            }
        }
    }
    pthread_mutex_unlock(&window_lock);
    return base;
}

/* Room for one event in this thread's chunk; NULL when recording is off
 * or the file cannot grow (then the event is lost and said once). */
static uint8_t *event_begin(struct rec_thread *t)
{
    unsigned epoch = atomic_load_explicit(&rec_epoch, memory_order_relaxed);
    if (__builtin_expect(t->epoch == epoch && t->pos + EVENT_MAX <= t->limit, 1))
        return t->pos;
    if (t->epoch != epoch) {
        t->epoch = epoch;
        t->tid = atomic_fetch_add(&rec_next_tid, 1);
        t->chunk = NULL;
    }
    uint64_t index = atomic_fetch_add(&rec_next_chunk, 1);
    uint8_t *base = window_for(index);
    if (!base) {
        static _Atomic int said;
        if (!atomic_exchange(&said, 1))
            say("hakmem record: the raw trace cannot grow; later events are lost\n");
        t->chunk = NULL;
        t->pos = t->limit = NULL;
        return NULL;
    }
    struct raw_chunk *c = (struct raw_chunk *)(base + (index % WINDOW_CHUNKS) * RAW_CHUNK_BYTES);
    c->tid = t->tid;
    c->used = 0;
    c->events = 0;
    c->magic = RAW_CHUNK_MAGIC;
    t->chunk = c;
    t->pos = (uint8_t *)(c + 1);
    t->limit = (uint8_t *)c + RAW_CHUNK_BYTES;
    t->prev_seq = 0;
    t->prev_addr = 0;
    return t->pos;
}

static inline void event_end(struct rec_thread *t, uint8_t *p)
{
    t->pos = p;
    t->chunk->used = (uint32_t)(p - (uint8_t *)(t->chunk + 1));
    t->chunk->events++;
}

static inline uint8_t *put_seq(struct rec_thread *t, uint8_t *p, uint64_t seq)
{
    p = trace_put_varint(p, seq - t->prev_seq);
    t->prev_seq = seq;
    return p;
}

static inline uint8_t *put_addr(struct rec_thread *t, uint8_t *p, const void *addr)
{
    uint64_t a = (uint64_t)(uintptr_t)addr;
    p = trace_put_varint(p, trace_zigzag((int64_t)(a - t->prev_addr)));
    t->prev_addr = a;
    return p;
}

static inline uint64_t next_seq(void)
{
    return atomic_fetch_add_explicit(&rec_seq, 1, memory_order_relaxed);
}

/* kind, seq, up to three numbers, an address. */
static void record3(int kind, uint64_t seq, int nums, uint64_t a, uint64_t b, const void *addr)
{
    struct rec_thread *t = &tls_rec;
    uint8_t *p = event_begin(t);
    if (!p)
        return;
    *p++ = (uint8_t)kind;
    p = put_seq(t, p, seq);
    if (nums > 0)
        p = trace_put_varint(p, a);
    if (nums > 1)
        p = trace_put_varint(p, b);
    p = put_addr(t, p, addr);
    event_end(t, p);
}

static void record_realloc(int kind, uint64_t seq1, uint64_t seq2, const void *old, uint64_t n,
                           uint64_t size, const void *result)
{
    struct rec_thread *t = &tls_rec;
    uint8_t *p = event_begin(t);
    if (!p)
        return;
    *p++ = (uint8_t)kind;
    p = put_seq(t, p, seq1);
    p = put_addr(t, p, old);
    if (kind == TK_REALLOCARRAY)
        p = trace_put_varint(p, n);
    p = trace_put_varint(p, size);
    p = trace_put_varint(p, seq2 - seq1);
    t->prev_seq = seq2;
    p = put_addr(t, p, result);
    event_end(t, p);
}

static void record_usable(uint64_t seq, const void *addr, uint64_t result)
{
    struct rec_thread *t = &tls_rec;
    uint8_t *p = event_begin(t);
    if (!p)
        return;
    *p++ = TK_USABLE_SIZE;
    p = put_seq(t, p, seq);
    p = put_addr(t, p, addr);
    p = trace_put_varint(p, result);
    event_end(t, p);
}

/* Calls inside the recorder (dlsym, pthread_atfork), inside the allocator
 * under it (glibc's reallocarray calls realloc; a host starting up) or
 * before the real functions are known are forwarded unrecorded: only the
 * program's own calls are events. */
#define RECORDING() (!tls_busy && ready())

/* ---- the API ---------------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
    if (__builtin_expect(!real_malloc, 0)) {
        if (tls_busy || atomic_load(&resolve_state) == 1)
            return boot_alloc(n);
        resolve();
    }
    if (!RECORDING())
        return real_malloc(n);
    tls_busy++;
    void *p = real_malloc(n);
    tls_busy--;
    record3(TK_MALLOC, next_seq(), 1, n, 0, p);
    return p;
}

EXPORT void free(void *p)
{
    if (__builtin_expect(is_boot(p), 0))
        return;
    if (__builtin_expect(!real_free, 0))
        resolve();
    if (!RECORDING()) {
        real_free(p);
        return;
    }
    /* The sequence number before the call: another thread that gets this
     * block from the allocator afterwards takes a later one. */
    record3(TK_FREE, next_seq(), 0, 0, 0, p);
    tls_busy++;
    real_free(p);
    tls_busy--;
}

EXPORT void *calloc(size_t n, size_t size)
{
    if (__builtin_expect(!real_calloc, 0)) {
        if (tls_busy || atomic_load(&resolve_state) == 1) {
            size_t total;
            if (__builtin_mul_overflow(n, size, &total))
                return NULL;
            return boot_alloc(total); /* static: already zero */
        }
        resolve();
    }
    if (!RECORDING())
        return real_calloc(n, size);
    tls_busy++;
    void *p = real_calloc(n, size);
    tls_busy--;
    record3(TK_CALLOC, next_seq(), 2, n, size, p);
    return p;
}

static void *realloc_boot(void *p, size_t size)
{
    void *q = malloc(size);
    if (q) {
        size_t old = boot_size(p);
        memcpy(q, p, old < size ? old : size);
    }
    return q;
}

EXPORT void *realloc(void *p, size_t size)
{
    if (__builtin_expect(is_boot(p), 0))
        return realloc_boot(p, size);
    if (__builtin_expect(!real_realloc, 0)) {
        if (tls_busy || atomic_load(&resolve_state) == 1)
            return p ? NULL : boot_alloc(size);
        resolve();
    }
    if (!RECORDING())
        return real_realloc(p, size);
    uint64_t seq1 = next_seq();
    tls_busy++;
    void *q = real_realloc(p, size);
    tls_busy--;
    record_realloc(TK_REALLOC, seq1, next_seq(), p, 0, size, q);
    return q;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    if (__builtin_expect(is_boot(p), 0)) {
        size_t total;
        if (__builtin_mul_overflow(n, size, &total)) {
            errno = ENOMEM;
            return NULL;
        }
        return realloc_boot(p, total);
    }
    if (__builtin_expect(!real_reallocarray, 0))
        resolve();
    if (!RECORDING())
        return real_reallocarray(p, n, size);
    uint64_t seq1 = next_seq();
    tls_busy++; /* glibc's reallocarray calls realloc */
    void *q = real_reallocarray(p, n, size);
    tls_busy--;
    record_realloc(TK_REALLOCARRAY, seq1, next_seq(), p, n, size, q);
    return q;
}

EXPORT void *memalign(size_t align, size_t size)
{
    if (__builtin_expect(!real_memalign, 0))
        resolve();
    if (!RECORDING())
        return real_memalign(align, size);
    tls_busy++;
    void *p = real_memalign(align, size);
    tls_busy--;
    record3(TK_MEMALIGN, next_seq(), 2, align, size, p);
    return p;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
    if (__builtin_expect(!real_aligned_alloc, 0))
        resolve();
    if (!RECORDING())
        return real_aligned_alloc(align, size);
    tls_busy++;
    void *p = real_aligned_alloc(align, size);
    tls_busy--;
    record3(TK_ALIGNED_ALLOC, next_seq(), 2, align, size, p);
    return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (__builtin_expect(!real_posix_memalign, 0))
        resolve();
    if (!RECORDING())
        return real_posix_memalign(out, align, size);
    void *p = NULL;
    tls_busy++;
    int rc = real_posix_memalign(&p, align, size);
    tls_busy--;
    if (rc == 0)
        *out = p;
    record3(TK_POSIX_MEMALIGN, next_seq(), 2, align, size, rc == 0 ? p : NULL);
    return rc;
}

EXPORT void *valloc(size_t size)
{
    if (__builtin_expect(!real_valloc, 0))
        resolve();
    if (!RECORDING())
        return real_valloc(size);
    tls_busy++;
    void *p = real_valloc(size);
    tls_busy--;
    record3(TK_VALLOC, next_seq(), 1, size, 0, p);
    return p;
}

EXPORT void *pvalloc(size_t size)
{
    if (__builtin_expect(!real_pvalloc, 0))
        resolve();
    if (!RECORDING())
        return real_pvalloc(size);
    tls_busy++;
    void *p = real_pvalloc(size);
    tls_busy--;
    record3(TK_PVALLOC, next_seq(), 1, size, 0, p);
    return p;
}

EXPORT size_t malloc_usable_size(void *p)
{
    if (__builtin_expect(is_boot(p), 0))
        return boot_size(p);
    if (__builtin_expect(!real_usable_size, 0))
        resolve();
    if (!RECORDING())
        return real_usable_size(p);
    tls_busy++;
    size_t n = real_usable_size(p);
    tls_busy--;
    record_usable(next_seq(), p, n);
    return n;
}

/* At exit: mark the file as ended cleanly and cut it to what was used.
 * Calls after this (other destructors) are still recorded: the file is cut
 * at the chunks reserved so far, and the mapping stays. */
__attribute__((destructor)) static void recorder_at_exit(void)
{
    if (atomic_load(&file_state) != 2 || !rec_header)
        return;
    pthread_mutex_lock(&window_lock);
    rec_header->chunks = atomic_load(&rec_next_chunk);
    rec_header->flags |= RAW_FLAG_CLEAN_EXIT;
    pthread_mutex_unlock(&window_lock);
}
