#!/usr/bin/env python3
"""What recording costs a program (bench/RESULTS.md, [replay]).

For each program: instructions under callgrind without and with
libhakmem_record.so preloaded (exact), against the instructions the
program spends in glibc's malloc family (the inclusive cost of malloc,
free, calloc, realloc, ... in libc.so.6, from the unrecorded run); and wall
time of interleaved runs without and with the recorder (noisy: medians).

    record_overhead.py BUILD_DIR [--runs N] [--no-callgrind]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS_DIR = os.path.join(HERE, "..", "programs")
API = {"malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
       "aligned_alloc", "valloc", "pvalloc", "malloc_usable_size"}


def programs(build):
    return {
        "python3": ["/usr/bin/python3", os.path.join(PROGRAMS_DIR, "python_objects.py")],
        "sqlite3": ["sqlite3", ":memory:", ".read " + os.path.join(PROGRAMS_DIR, "sqlite_workload.sql")],
        "rep_threads": [os.path.join(build, "bin", "rep_threads"), "--threads=4", "--rounds=20000"],
    }


def env_for(recorder, folder):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "HAKMEM_CONFIG", "HAKMEM_SET")}
    env.update({"LC_ALL": "C", "PYTHONHASHSEED": "0"})
    if recorder:
        env["LD_PRELOAD"] = recorder
        env["HAKMEM_RECORD_DIR"] = folder
    return env


def clear(folder):
    for f in os.listdir(folder):
        os.unlink(os.path.join(folder, f))


def callgrind(argv, env, out):
    subprocess.run(["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=" + out] + argv, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    total = None
    with open(out) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    return total


def allocator_inclusive(out):
    """Inclusive Ir of glibc's malloc-family entry points."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    total = 0
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\S*:(\w+) \[.*libc\.so", line)
        if m and m.group(2) in API:
            total += int(m.group(1).replace(",", ""))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-callgrind", action="store_true")
    a = ap.parse_args()
    recorder = os.path.join(os.path.abspath(a.build), "lib", "libhakmem_record.so")
    with tempfile.TemporaryDirectory(prefix="hakmem-overhead-") as tmp:
        raw = os.path.join(tmp, "raw")
        os.makedirs(raw)
        print("| program | Ir plain | Ir recorded | recorder Ir | glibc malloc-family Ir | overhead / allocator "
              "| wall plain (s) | wall recorded (s) | time ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, argv in programs(os.path.abspath(a.build)).items():
            plain_t, rec_t = [], []
            for _ in range(a.runs):  # interleaved
                for rec, times in ((None, plain_t), (recorder, rec_t)):
                    clear(raw)
                    t0 = time.perf_counter()
                    subprocess.run(argv, env=env_for(rec, raw), stdout=subprocess.DEVNULL, check=True)
                    times.append(time.perf_counter() - t0)
            cells = ["", "", "", "", ""]
            if not a.no_callgrind:
                clear(raw)
                out = os.path.join(tmp, name + ".plain.cg")
                ir_plain = callgrind(argv, env_for(None, raw), out)
                alloc = allocator_inclusive(out)
                clear(raw)
                ir_rec = callgrind(argv, env_for(recorder, raw), os.path.join(tmp, name + ".rec.cg"))
                d = ir_rec - ir_plain
                cells = ["%.1fM" % (ir_plain / 1e6), "%.1fM" % (ir_rec / 1e6), "%.1fM" % (d / 1e6),
                         "%.1fM" % (alloc / 1e6), "%.2fx" % (d / alloc) if alloc else "?"]
            mp, mr = statistics.median(plain_t), statistics.median(rec_t)
            print("| %s | %s | %.3f | %.3f | %.2f |" % (name, " | ".join(cells), mp, mr, mr / mp), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
