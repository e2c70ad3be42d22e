// bench_launch: runs one workload and reports its resource use.
//
//   bench_launch REPORT_FILE [NAME=VALUE]... -- PROGRAM ARGS...
//
// Forks, sets the given variables in the child (LD_PRELOAD, HAKMEM_*), execs
// PROGRAM, waits with wait4 and writes one line to REPORT_FILE:
//   status=exited|signaled code=N wall_ns=N maxrss_kb=N minflt=N majflt=N
//   utime_us=N stime_us=N
// Why not let the Python runner wait4 the workload itself: Linux keeps the
// high-water RSS of the mm a process had before execve in its ru_maxrss, so
// every child of a Python process reports at least Python's RSS. Forked
// from this small program, the workload's ru_maxrss is its own. The launcher
// itself runs without LD_PRELOAD, so no allocator under test is in it.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_launch REPORT_FILE [NAME=VALUE]... -- PROGRAM ARGS...\n");
    return 125;
  }
  const char *report = argv[1];
  int sep = 2;
  while (sep < argc && strcmp(argv[sep], "--") != 0)
    sep++;
  if (sep >= argc - 1) {
    fprintf(stderr, "bench_launch: no program after --\n");
    return 125;
  }
  FILE *out = fopen(report, "w");
  if (!out) {
    fprintf(stderr, "bench_launch: cannot write %s: %s\n", report, strerror(errno));
    return 125;
  }
  fflush(NULL);
  unsigned long long t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "bench_launch: fork: %s\n", strerror(errno));
    return 125;
  }
  if (pid == 0) {
    for (int i = 2; i < sep; i++)
      if (putenv(argv[i]) != 0)
        _exit(126);
    execv(argv[sep + 1], &argv[sep + 1]);
    fprintf(stderr, "bench_launch: cannot run %s: %s\n", argv[sep + 1], strerror(errno));
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "bench_launch: wait4: %s\n", strerror(errno));
      return 125;
    }
  }
  unsigned long long wall = now_ns() - t0;
  fprintf(out,
          "status=%s code=%d wall_ns=%llu maxrss_kb=%ld minflt=%ld majflt=%ld utime_us=%lld "
          "stime_us=%lld\n",
          WIFSIGNALED(status) ? "signaled" : "exited",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), wall, ru.ru_maxrss,
          ru.ru_minflt, ru.ru_majflt,
          (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
          (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
  if (fclose(out) != 0)
    return 125;
  return 0;
}
