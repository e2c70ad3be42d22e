/*
 * The telemetry box through the harness: known workloads give known counts.
 * `large` maps one mapping per block (64-byte header, rounded up to 64 KB
 * granules), so N blocks of S bytes are exactly N * align_up(64 + S, 64K)
 * bytes of fresh memory, mapped and (with cache_slots = 0) returned.
 * Page boxes are driven through their ops to check attribution by owner.
 *
 * Each case runs in a forked child (one harness per process) and calls the
 * box's report op itself, with a context built from the harness's counters,
 * as the host does at exit.
 *
 * `test_telemetry --write DIR` writes off.json / on.json (the large cache
 * off and on, same workload) for the `hakmem report` test.
 */
#include "box_harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)
#define ALIGN_UP(n, a) (((n) + (a) - 1) / (a) * (a))
/* What large maps for a block of s bytes. */
#define LARGE_MAP(s) ALIGN_UP((size_t)64 + (s), HAK_GRANULE)

static char tmp_dir[256];
static char json_path[512];

/* ---- plumbing ------------------------------------------------------------ */

static void run_case(const char *name, void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "case %s failed (status 0x%x)\n", name, status);
        abort();
    }
    printf("ok %s\n", name);
}

/* A config with a telemetry box writing JSON to json_path. */
static void open_with(const char *boxes_and_route, const char *telemetry_extra)
{
    char ini[4096];
    const char *extra = telemetry_extra ? telemetry_extra : "";
    snprintf(ini, sizeof ini, "%s\n[box.telemetry]\nplugin = telemetry\njson_file = %s\n%s%s\n",
             boxes_and_route, json_path, strstr(extra, "text =") ? "" : "text = off\n", extra);
    harness_open(ini);
}

/* Call the report op as the host does at exit, for the named instances. */
static void report_now(const char *const *names, const char *command)
{
    struct hak_report_box boxes[16];
    uint32_t n = 0;
    for (; names[n]; n++) {
        const struct hak_box_desc *d = harness_desc(names[n]);
        boxes[n] = (struct hak_report_box){
            .instance_name = names[n], .plugin = d->name, .owner = harness_owner(names[n]),
            .roles = d->roles, .stats = harness_stats(names[n]),
            .bytes_mapped = harness_bytes_mapped(names[n]),
        };
    }
    struct hak_report_ctx ctx = {.config_name = "(test config)", .command_line = command,
                                 .box_count = n, .boxes = boxes};
    const struct hak_box_desc *t = harness_desc("telemetry");
    CHECK(t->ops.report);
    t->ops.report(harness_inst("telemetry"), &ctx);
}

static const char *read_text(const char *path)
{
    static char buf[1 << 18];
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n, len = 0;
    while ((n = read(fd, buf + len, sizeof buf - 1 - (size_t)len)) > 0)
        len += n;
    close(fd);
    buf[len] = '\0';
    return buf;
}

/* The number after `"key":` that first follows anchor (and anchor2, if
 * given) in the JSON; -1 for null. Enough for the format the box writes. */
static long long jnum(const char *json, const char *anchor, const char *anchor2, const char *key)
{
    const char *p = strstr(json, anchor);
    if (!p) {
        fprintf(stderr, "no %s in:\n%s\n", anchor, json);
        abort();
    }
    if (anchor2) {
        p = strstr(p, anchor2);
        CHECK(p);
    }
    char k[96];
    snprintf(k, sizeof k, "\"%s\":", key);
    p = strstr(p, k);
    if (!p) {
        fprintf(stderr, "no %s after %s in:\n%s\n", k, anchor, json);
        abort();
    }
    p += strlen(k);
    if (!strncmp(p, "null", 4))
        return -1;
    return strtoll(p, NULL, 10);
}

static long long bucket(const char *json, const char *name, const char *key)
{
    char anchor[32];
    snprintf(anchor, sizeof anchor, "\"%s\":{", name);
    return jnum(json, anchor, NULL, key);
}

static long long box(const char *json, const char *name, const char *key)
{
    char anchor[96];
    snprintf(anchor, sizeof anchor, "{\"name\":\"%s\"", name);
    return jnum(json, anchor, NULL, key);
}

static long long box_event(const char *json, const char *name, const char *key)
{
    char anchor[96];
    snprintf(anchor, sizeof anchor, "{\"name\":\"%s\"", name);
    return jnum(json, anchor, "\"events\":{", key);
}

static const char *const all_buckets[] = {"C0", "C1", "C2", "C3", "C4", "C5", "C6",
                                          "C7", "MID", "L25", "SSM", "LARGE", "OTHER"};

static void check_quiet_except(const char *json, const char *busy)
{
    for (size_t i = 0; i < sizeof all_buckets / sizeof *all_buckets; i++) {
        if (busy && !strcmp(all_buckets[i], busy))
            continue;
        CHECK_EQ(bucket(json, all_buckets[i], "fresh_pages"), 0);
        CHECK_EQ(bucket(json, all_buckets[i], "mapped_bytes"), 0);
        CHECK_EQ(bucket(json, all_buckets[i], "unmapped_bytes"), 0);
        CHECK_EQ(bucket(json, all_buckets[i], "reuse_events"), 0);
    }
}

/* python3's json module reads the file; every bucket is there; config and
 * command made it through. */
static void check_with_python(const char *path, const char *command)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 %s/check_json.py '%s' '(test config)' '%s'", TEL_TEST_DIR,
             path, command);
    int rc = system(cmd);
    CHECK(rc != -1 && WIFEXITED(rc));
    CHECK_EQ(WEXITSTATUS(rc), 0);
}

#define LARGE_ONLY(extra) \
    "[route]\n1-max = large\n[box.large]\nplugin = large\ncache_idle_ms = 0\n" extra

/* ---- cases ------------------------------------------------------------------ */

/* N fresh blocks -> N mappings -> exact pages; frees counted exactly. */
static void case_large_fresh_pages(void)
{
    open_with(LARGE_ONLY("cache_slots = 0\n"), NULL);
    enum { N = 10 };
    const size_t size = 3 * MB, mapped = LARGE_MAP(3 * MB);
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = harness_malloc(size);
        CHECK(p[i]);
        memset(p[i], 1, 4096);
    }
    for (int i = 0; i < N; i++)
        harness_free(p[i]);
    static const char *const names[] = {"large", "telemetry", NULL};
    /* quotes, a backslash, a tab, a non-UTF-8 byte: the JSON stays valid */
    report_now(names, "prog \"a b\" c\\d\t\xff");
    const char *j = read_text(json_path);
    CHECK_EQ(bucket(j, "LARGE", "fresh_pages"), N * mapped / 4096);
    CHECK_EQ(bucket(j, "LARGE", "fresh_pages"), 7840);
    CHECK_EQ(bucket(j, "LARGE", "fresh_events"), N);
    CHECK_EQ(bucket(j, "LARGE", "mapped_bytes"), N * mapped);
    CHECK_EQ(bucket(j, "LARGE", "map_events"), N);
    CHECK_EQ(bucket(j, "LARGE", "unmapped_bytes"), N * mapped);
    CHECK_EQ(bucket(j, "LARGE", "unmap_events"), N);
    CHECK_EQ(bucket(j, "LARGE", "reuse_events"), 0);
    CHECK_EQ(bucket(j, "LARGE", "allocs"), N);
    CHECK(strstr(j, "\"alloc_box\":\"large\""));
    CHECK(strstr(j, "\"touches_per_page\":0.001,\"touches_source\":\"allocs\""));
    check_quiet_except(j, "LARGE");
    CHECK_EQ(box(j, "large", "allocs"), N);
    CHECK_EQ(box(j, "large", "frees"), N);
    CHECK_EQ(box(j, "large", "bytes_mapped"), 0);
    CHECK_EQ(box_event(j, "large", "fresh_pages"), 7840);
    CHECK_EQ(box_event(j, "large", "mapped_bytes"), N * mapped);
    CHECK(!strstr(j, "{\"name\":\"telemetry\"")); /* observers are not listed */
    CHECK(jnum(j, "\"process\":{", NULL, "minor_faults") > 0);
    CHECK(jnum(j, "\"process\":{", NULL, "peak_rss_kb") > 0);
    check_with_python(json_path, "prog \"a b\" c\\d\t\xef\xbf\xbd");
}

/* The cache on: the second round reuses every mapping: no fresh pages. */
static void case_large_reuse(void)
{
    open_with(LARGE_ONLY("cache_slots = 8\n"), NULL);
    enum { N = 4 };
    const size_t mapped = LARGE_MAP(3 * MB);
    void *p[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++)
            CHECK((p[i] = harness_malloc(3 * MB)));
        for (int i = 0; i < N; i++)
            harness_free(p[i]);
    }
    static const char *const names[] = {"large", NULL};
    report_now(names, "reuse");
    const char *j = read_text(json_path);
    CHECK_EQ(bucket(j, "LARGE", "fresh_pages"), N * mapped / 4096);
    CHECK_EQ(bucket(j, "LARGE", "mapped_bytes"), N * mapped);
    CHECK_EQ(bucket(j, "LARGE", "unmapped_bytes"), 0);
    CHECK_EQ(bucket(j, "LARGE", "reuse_events"), N);
    CHECK_EQ(bucket(j, "LARGE", "reuse_bytes"), N * mapped);
    CHECK_EQ(bucket(j, "LARGE", "allocs"), 2 * N);
    CHECK_EQ(box(j, "large", "frees"), 2 * N);
    CHECK_EQ(box(j, "large", "bytes_mapped"), N * mapped);
    check_quiet_except(j, "LARGE");
}

enum { THREADS = 4, PER_THREAD = 25 };

static void *thread_body(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char *p = harness_malloc(200 * KB);
        CHECK(p);
        p[0] = 1;
        harness_free(p);
    }
    return NULL;
}

/* Events from several threads at once are all counted. */
static void case_threads(void)
{
    open_with(LARGE_ONLY("cache_slots = 0\n"), NULL);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, thread_body, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    const long long n = THREADS * PER_THREAD, mapped = (long long)LARGE_MAP(200 * KB);
    static const char *const names[] = {"large", NULL};
    report_now(names, "threads");
    const char *j = read_text(json_path);
    CHECK_EQ(bucket(j, "LARGE", "fresh_pages"), n * mapped / 4096);
    CHECK_EQ(bucket(j, "LARGE", "fresh_pages"), 6400);
    CHECK_EQ(bucket(j, "LARGE", "fresh_events"), n);
    CHECK_EQ(bucket(j, "LARGE", "mapped_bytes"), n * mapped);
    CHECK_EQ(bucket(j, "LARGE", "unmapped_bytes"), n * mapped);
    CHECK_EQ(bucket(j, "LARGE", "unmap_events"), n);
    CHECK_EQ(box(j, "large", "allocs"), n);
    CHECK_EQ(box(j, "large", "frees"), n);
    CHECK(strstr(j, "\"touches_per_page\":0.016,")); /* 100 / 6400 */
}

static void *pa_alloc(const char *inst, size_t bytes, uint16_t owner)
{
    return harness_desc(inst)->ops.pages_alloc(harness_tls(inst), bytes, 0, owner, 0);
}

static void pa_free(const char *inst, void *p, size_t bytes)
{
    harness_desc(inst)->ops.pages_free(harness_tls(inst), p, bytes);
}

/* Spans through page_hot -> os_pages: the host's MAP/UNMAP and the page
 * boxes' REUSE/DRAIN carry bucket OTHER and an owner. They stay in OTHER
 * until their owner names a bucket; then they count there. */
static void case_page_boxes(void)
{
    open_with("[route]\n1-max = large\n[box.large]\nplugin = large\ncache_slots = 0\n"
              "[box.os]\nplugin = os_pages\n"
              "[box.hot]\nplugin = page_hot\nbelow = os\ntls_slots = 4\nhot_size = 8\n"
              "idle_ms = 0\n",
              NULL);
    enum { K = 4 };
    const uint16_t consumer = harness_owner("large");
    void *s[K];
    for (int round = 0; round < 2; round++) { /* round 0 maps, round 1 reuses */
        for (int i = 0; i < K; i++)
            CHECK((s[i] = pa_alloc("hot", HAK_GRANULE, consumer)));
        for (int i = 0; i < K; i++)
            pa_free("hot", s[i], HAK_GRANULE);
    }
    /* malloc_trim's path: the cached spans go down to os_pages, unmapped */
    harness_desc("hot")->ops.trim(harness_inst("hot"), harness_tls("hot"));
    static const char *const names[] = {"large", "hot", "os", NULL};
    report_now(names, "pages");
    const char *j = read_text(json_path);
    const long long span = HAK_GRANULE;
    CHECK_EQ(bucket(j, "OTHER", "mapped_bytes"), K * span);
    CHECK_EQ(bucket(j, "OTHER", "map_events"), K);
    CHECK_EQ(bucket(j, "OTHER", "reuse_events"), K);
    CHECK_EQ(bucket(j, "OTHER", "reuse_bytes"), K * span);
    CHECK_EQ(bucket(j, "OTHER", "unmapped_bytes"), K * span);
    CHECK_EQ(bucket(j, "OTHER", "drain_blocks"), K);
    CHECK_EQ(bucket(j, "OTHER", "fresh_pages"), 0);
    check_quiet_except(j, "OTHER");
    /* per box: mapped to the consumer, reused and returned by page_hot */
    CHECK_EQ(box_event(j, "large", "mapped_bytes"), K * span);
    CHECK_EQ(box_event(j, "hot", "reuse_events"), K);
    CHECK_EQ(box_event(j, "hot", "unmapped_bytes"), K * span);
    CHECK_EQ(box_event(j, "hot", "mapped_bytes"), 0);
    CHECK_EQ(box(j, "hot", "allocs"), 2 * K);
    CHECK_EQ(box(j, "hot", "refills"), K);

    /* large now names LARGE: its owner's mappings, spans included, count there */
    void *big = harness_malloc(3 * MB);
    CHECK(big);
    report_now(names, "pages");
    j = read_text(json_path);
    CHECK_EQ(bucket(j, "LARGE", "mapped_bytes"), K * span + (long long)LARGE_MAP(3 * MB));
    CHECK_EQ(bucket(j, "LARGE", "fresh_pages"), LARGE_MAP(3 * MB) / 4096);
    CHECK_EQ(bucket(j, "OTHER", "mapped_bytes"), 0);
    CHECK_EQ(bucket(j, "OTHER", "reuse_events"), K); /* page_hot's own: still OTHER */
    CHECK_EQ(bucket(j, "OTHER", "unmapped_bytes"), K * span);
    harness_free(big);
}

/* Parameters choose what is collected; every bucket is still written. */
static void case_params_off(void)
{
    open_with(LARGE_ONLY("cache_slots = 0\n"), "events = off\nprocess = off\nboxes = off\n");
    void *p = harness_malloc(3 * MB);
    harness_free(p);
    static const char *const names[] = {"large", NULL};
    report_now(names, "off");
    const char *j = read_text(json_path);
    CHECK(strstr(j, "\"events\":false"));
    CHECK(strstr(j, "\"process\":null"));
    CHECK(strstr(j, "\"boxes\":[]"));
    check_quiet_except(j, NULL);
    check_with_python(json_path, "off");
}

/* The table on stderr, and json_file's %p. */
static void case_text_and_pid(void)
{
    char pattern[600], path[600], err_path[600];
    snprintf(pattern, sizeof pattern, "%s/run-%%p.json", tmp_dir);
    snprintf(path, sizeof path, "%s/run-%ld.json", tmp_dir, (long)getpid());
    snprintf(err_path, sizeof err_path, "%s/stderr-%ld.txt", tmp_dir, (long)getpid());
    snprintf(json_path, sizeof json_path, "%s", pattern);
    open_with(LARGE_ONLY("cache_slots = 0\n"), "text = on\n");
    for (int i = 0; i < 10; i++)
        harness_free(harness_malloc(3 * MB));
    int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    int saved = dup(2);
    CHECK(dup2(fd, 2) == 2);
    static const char *const names[] = {"large", NULL};
    report_now(names, "text");
    CHECK(dup2(saved, 2) == 2);
    close(fd);
    close(saved);
    const char *t = read_text(err_path);
    CHECK(strstr(t, "hakmem telemetry (telemetry): config (test config)\n"));
    CHECK(strstr(t, "command: text\n"));
    CHECK(strstr(t, "process: minor faults "));
    const char *row = strstr(t, "\nLARGE ");
    CHECK(row);
    unsigned long long pages = 0;
    CHECK(sscanf(row + 1, "LARGE %llu", &pages) == 1);
    CHECK_EQ(pages, 7840);
    CHECK(strstr(t, "\nOTHER "));
    const char *boxrow = strstr(t, "\nlarge ");
    CHECK(boxrow);
    unsigned long long allocs = 0, frees = 0;
    CHECK(sscanf(boxrow + 1, "large large %llu %llu", &allocs, &frees) == 2);
    CHECK_EQ(allocs, 10);
    CHECK_EQ(frees, 10);
    const char *j = read_text(path); /* the %p file exists */
    CHECK_EQ(bucket(j, "LARGE", "fresh_pages"), 7840);
}

/* ---- the tiny classes, through superslab (when it is built) ----------------- */

static int box_built(const char *plugin)
{
    char path[1024];
    const char *dir = getenv("HAKMEM_BOX_PATH");
    snprintf(path, sizeof path, "%s/hakbox_%s.so", dir ? dir : ".", plugin);
    return access(path, R_OK) == 0;
}

#define SS_ROUTE(front_route, front_box) \
    "[route]\n1-1K = " front_route "\n1025-max = large\n[box.large]\nplugin = large\n" \
    "[box.os]\nplugin = os_pages\n[box.ss]\nplugin = superslab\npages = os\n" \
    "classes = 16,32,64,128,256,512,1024\n" front_box

enum { SS_SLAB_BLOCKS = 1024 }; /* 64-byte blocks in one 64 KB slab */

static void *ss_thread_body(void *arg)
{
    void **out = arg;
    for (int i = 0; i < SS_SLAB_BLOCKS; i++)
        CHECK((out[i] = harness_malloc(64)));
    return NULL;
}

/* 64-byte blocks are class 2: a thread filling a slab exactly carves
 * 64 KB = 16 fresh pages of C2; the SuperSlab's mapping counts in C2 too
 * (its owner serves C2 only), its metadata in SSM. */
static void case_superslab_classes(void)
{
    open_with(SS_ROUTE("ss", ""), NULL);
    enum { T = 3 };
    static void *blocks[T][SS_SLAB_BLOCKS];
    pthread_t t[T];
    for (int i = 0; i < T; i++) /* one after the other: a slab each */
        CHECK(pthread_create(&t[i], NULL, ss_thread_body, blocks[i]) == 0 &&
              pthread_join(t[i], NULL) == 0);
    static const char *const names[] = {"large", "os", "ss", NULL};
    report_now(names, "ss");
    const char *j = read_text(json_path);
    CHECK_EQ(bucket(j, "C2", "fresh_pages"), T * 16);
    CHECK_EQ(bucket(j, "C2", "allocs"), T * SS_SLAB_BLOCKS);
    CHECK(strstr(j, "\"touches_per_page\":64.000,\"touches_source\":\"allocs\""));
    CHECK(bucket(j, "C2", "mapped_bytes") >= 2 * (long long)MB);
    CHECK(bucket(j, "SSM", "fresh_pages") > 0);
    CHECK_EQ(bucket(j, "SSM", "mapped_bytes"), 0);
    CHECK_EQ(bucket(j, "OTHER", "mapped_bytes"), 0);
    CHECK_EQ(bucket(j, "C1", "fresh_pages"), 0);
    CHECK_EQ(bucket(j, "C3", "fresh_pages"), 0);
    CHECK_EQ(box_event(j, "ss", "fresh_pages"), T * 16 + bucket(j, "SSM", "fresh_pages"));
    for (int i = 0; i < T; i++)
        for (int k = 0; k < SS_SLAB_BLOCKS; k++)
            harness_free(blocks[i][k]);
    report_now(names, "ss");
    j = read_text(json_path);
    CHECK_EQ(box(j, "ss", "frees"), T * SS_SLAB_BLOCKS);
    /* frees from the main thread of blocks other threads carved */
    CHECK_EQ(bucket(j, "C2", "fresh_pages"), T * 16);

    /* two classes: the box serves several buckets, its mapping stays in
     * OTHER and per-class allocations are unknown (not in the ABI) */
    for (int i = 0; i < 32; i++) /* 32 * 256 bytes: two pages carved */
        CHECK(harness_malloc(200));
    report_now(names, "ss");
    j = read_text(json_path);
    CHECK(bucket(j, "C4", "fresh_pages") >= 1);
    CHECK_EQ(bucket(j, "C2", "allocs"), -1);
    CHECK_EQ(bucket(j, "C2", "mapped_bytes"), 0);
    CHECK(bucket(j, "OTHER", "mapped_bytes") >= 2 * (long long)MB);
}

/* With the tiny front: refills carry the class; touches per page come from
 * the front's allocations (the front serves C2 only here). */
static void case_front_refills(void)
{
    open_with(SS_ROUTE("tiny", "[box.tiny]\nplugin = tiny_unified_cache\nbelow = ss\n"), NULL);
    static void *blocks[SS_SLAB_BLOCKS];
    for (int i = 0; i < SS_SLAB_BLOCKS; i++)
        CHECK((blocks[i] = harness_malloc(64)));
    static const char *const names[] = {"tiny", "ss", NULL};
    report_now(names, "tiny");
    const char *j = read_text(json_path);
    CHECK(bucket(j, "C2", "refills") >= 1);
    CHECK(bucket(j, "C2", "refill_blocks") >= SS_SLAB_BLOCKS);
    CHECK(bucket(j, "C2", "fresh_pages") >= 16);
    CHECK_EQ(bucket(j, "C2", "allocs"), SS_SLAB_BLOCKS);
    CHECK(strstr(j, "\"alloc_box\":\"tiny\""));
    CHECK_EQ(box(j, "tiny", "allocs"), SS_SLAB_BLOCKS);
    for (int i = 0; i < SS_SLAB_BLOCKS; i++)
        harness_free(blocks[i]);
}

/* ---- OFF/ON fixtures for `hakmem report` ---------------------------------- */

static void write_run(const char *dir, const char *file, int cache_slots)
{
    snprintf(json_path, sizeof json_path, "%s/%s", dir, file);
    char boxes[512];
    snprintf(boxes, sizeof boxes, LARGE_ONLY("cache_slots = %d\n"), cache_slots);
    open_with(boxes, NULL);
    for (int round = 0; round < 8; round++) {
        void *p[4];
        for (int i = 0; i < 4; i++)
            CHECK((p[i] = harness_malloc(3 * MB)));
        for (int i = 0; i < 4; i++)
            harness_free(p[i]);
    }
    static const char *const names[] = {"large", NULL};
    report_now(names, cache_slots ? "workload --cache on" : "workload --cache off");
}

static const char *write_dir;
static void write_off(void) { write_run(write_dir, "off.json", 0); }
static void write_on(void) { write_run(write_dir, "on.json", 8); }

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        write_dir = argv[2];
        run_case("write off.json", write_off);
        run_case("write on.json", write_on);
        return 0;
    }
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/hakmem-telemetry-XXXXXX", base && *base ? base : "/tmp");
    CHECK(mkdtemp(tmp_dir));
    snprintf(json_path, sizeof json_path, "%s/telemetry.json", tmp_dir);
    run_case("large_fresh_pages", case_large_fresh_pages);
    run_case("large_reuse", case_large_reuse);
    run_case("threads", case_threads);
    run_case("page_boxes", case_page_boxes);
    run_case("params_off", case_params_off);
    run_case("text_and_pid", case_text_and_pid);
    if (box_built("superslab"))
        run_case("superslab_classes", case_superslab_classes);
    else
        printf("skip superslab_classes: hakbox_superslab.so not built\n");
    if (box_built("superslab") && box_built("tiny_unified_cache"))
        run_case("front_refills", case_front_refills);
    else
        printf("skip front_refills: superslab or tiny_unified_cache not built\n");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    CHECK(system(cmd) == 0);
    return 0;
}
