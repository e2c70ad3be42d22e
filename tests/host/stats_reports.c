/*
 * A workload with known resident memory for tests/host/stats_reports.py:
 * a 64 MB block of which 16 MB are touched (mapped far above resident),
 * 20000 blocks of 1000 B and 200 of 20 KB, all touched and kept live.
 * Then mallinfo2 (on stdout as MALLINFO2 ...), malloc_info's XML on stdout,
 * malloc_stats on stderr; with "fork", a child exits first (its own report).
 * stdout has a static buffer, so nothing allocates between mallinfo2 and
 * malloc_info: both see the same counters.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char out_buf[1 << 20];

static uint64_t touch(char *p, size_t bytes, uint64_t seed)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < bytes; i += 512) {
        p[i] = (char)(seed + i);
        sum += (unsigned char)p[i];
    }
    return sum;
}

int main(int argc, char **argv)
{
    alarm(60); /* a hang in a report fails the test instead of stalling CTest */
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    uint64_t sum = 0;
    char *big = malloc(64u << 20);
    if (!big)
        return 1;
    sum += touch(big, 16u << 20, 1);
    for (int i = 0; i < 20000; i++) {
        char *p = malloc(1000);
        if (!p)
            return 1;
        sum += touch(p, 1000, (uint64_t)i);
    }
    for (int i = 0; i < 200; i++) {
        char *p = malloc(20 << 10);
        if (!p)
            return 1;
        sum += touch(p, 20 << 10, (uint64_t)i);
    }
    if (argc > 1 && !strcmp(argv[1], "fork")) {
        pid_t child = fork();
        if (child == 0)
            exit(0); /* the child's exit report: its own pid, its own file */
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status))
            return 1;
    }
    struct mallinfo2 mi = mallinfo2();
    printf("MALLINFO2 arena=%zu uordblks=%zu fordblks=%zu fsmblks=%zu\n", mi.arena, mi.uordblks,
           mi.fordblks, mi.fsmblks);
    if (malloc_info(0, stdout) != 0)
        return 1;
    printf("CHECKSUM %llu\n", (unsigned long long)sum);
    fflush(stdout);
    malloc_stats();
    if (malloc_info(1, stdout) != -1) /* glibc: options must be 0 */
        return 1;
    return 0;
}
