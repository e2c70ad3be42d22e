#!/usr/bin/env python3
"""Tests of the bench workloads and the runner (tests/bench/CMakeLists.txt).

    bench_tests.py --bench-dir D --workload-dir B TEST [ARG]

TEST is one of:
  workload NAME   the workload's result line parses, twice the same checksum,
                  an unknown argument exits 2
  corrupt NAME LIB  under a preload that scribbles on a live block, the
                  workload exits 1 naming the corruption
  matrix          the runner on 2 workloads x glibc+mimalloc: every cell in
                  the CSV, OK, with numbers; Markdown and chart written
  alternate       the runner alternates columns run by run
  crash LIB       a preloaded allocator that aborts: its cells FAIL, the
                  others pass, the runner still exits 0
  hakmem LIBDIR [CONFIG]  the hakmem column(s) run (fails until
                  libhakmem.so exists)
  instructions    --instructions gives a positive instructions/op
  unit            the runner's parsers, checksum cross-check and timeout
Exit 0 on success, 1 with a message on failure.
"""

import csv
import os
import shutil
import subprocess
import sys
import tempfile




def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def load_runner(bench_dir):
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, bench_dir)
    import hakmem_bench  # noqa: E402
    return hakmem_bench


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def test_workload(hb, wdir, name):
    w = hb.WORKLOAD_BY_NAME[name]
    argv = [os.path.join(wdir, "bench_" + w.binary)] + w.args + w.quick
    sums = []
    for _ in range(2):
        r = run(argv)
        if r.returncode != 0:
            fail("%s exited %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
        try:
            res = hb.parse_result_line(r.stdout, w.binary)
        except hb.ResultError as e:
            fail("%s: %s\n%s" % (name, e, r.stdout))
        if res["ops_per_sec"] <= 0:
            fail("%s: ops_per_sec %r" % (name, res["ops_per_sec"]))
        sums.append(res["checksum"])
    if sums[0] != sums[1]:
        fail("%s: checksum differs between identical runs: %s %s" % (name, sums[0], sums[1]))
    if name == "fragmentation":
        for key in ("rss_after_free_kb", "rss_peak_kb", "live_kb"):
            if not isinstance(res.get(key), int):
                fail("fragmentation: no integer %s= in %r" % (key, r.stdout))
        if res["live_kb"] > res["rss_peak_kb"]:
            fail("fragmentation: live_kb %d above rss_peak_kb %d" % (res["live_kb"], res["rss_peak_kb"]))
    r = run(argv + ["--no_such_key=1"])
    if r.returncode != 2 or "unknown argument" not in r.stderr:
        fail("%s: an unknown argument gave exit %d (%s), expected 2" % (name, r.returncode, r.stderr))
    print("%s: %s" % (name, r.stdout.strip() or "ok"))


def test_corrupt(hb, wdir, name, lib):
    w = hb.WORKLOAD_BY_NAME[name]
    argv = [os.path.join(wdir, "bench_" + w.binary)] + w.args + w.quick
    env = dict(os.environ, LD_PRELOAD=lib)
    r = run(argv, env=env)
    if r.returncode != 1 or "corruption" not in r.stderr:
        fail("%s under a scribbling allocator: exit %d, stderr %r; expected exit 1 naming "
             "the corruption" % (name, r.returncode, r.stderr.strip()))
    if "RESULT" in r.stdout:
        fail("%s printed a result despite the corruption" % name)
    print("%s: %s" % (name, r.stderr.strip()))


def runner(bench_dir, wdir, *args):
    argv = [sys.executable, os.path.join(bench_dir, "hakmem_bench.py"), "--workload-dir", wdir,
            "--no-setup"] + list(args)
    return run(argv)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cells_of(rows):
    return {(r["workload"], r["allocator"]): r for r in rows}


def expect_ok(cell, where):
    if cell["status"] != "OK":
        fail("%s: status %s (%s)" % (where, cell["status"], cell["reason"]))
    for key in ("ops_per_sec", "seconds", "wall_s", "peak_rss_kb", "minflt"):
        try:
            v = float(cell[key])
        except ValueError:
            fail("%s: %s=%r is not a number" % (where, key, cell[key]))
        if v < 0 or (key in ("ops_per_sec", "peak_rss_kb") and v <= 0):
            fail("%s: %s=%r" % (where, key, cell[key]))


def test_matrix(hb, bench_dir, wdir):
    if not hb.find_lib("libmimalloc.so.2"):
        fail("libmimalloc.so.2 is not installed: run bench/setup.sh (Debian libmimalloc2.0)")
    with tempfile.TemporaryDirectory() as out:
        r = runner(bench_dir, wdir, "-w", "random_mixed,larson", "-A", "glibc,mimalloc",
                   "--quick", "--runs", "1", "--out", out)
        if r.returncode != 0:
            fail("runner exited %d: %s" % (r.returncode, r.stderr))
        rows = read_csv(os.path.join(out, "results.csv"))
        cells = cells_of(rows)
        want = [(w, a) for w in ("random_mixed", "larson") for a in ("glibc", "mimalloc")]
        if sorted(cells) != sorted(want) or len(rows) != len(want):
            fail("CSV cells %s, expected %s" % (sorted(cells), sorted(want)))
        for key in want:
            expect_ok(cells[key], "%s/%s" % key)
            if cells[key]["baseline"] != "mimalloc":
                fail("baseline %r, expected mimalloc" % cells[key]["baseline"])
        if abs(float(cells[("larson", "mimalloc")]["ratio_vs_baseline"]) - 1.0) > 1e-9:
            fail("the baseline's own ratio is not 1")
        md = open(os.path.join(out, "results.md")).read()
        if "| random_mixed |" not in md or "| larson |" not in md or "FAIL" in md:
            fail("results.md lacks the rows or shows FAIL:\n" + md)
        if "| random_mixed |" not in r.stdout:
            fail("the table was not printed on stdout")
        runs = read_csv(os.path.join(out, "runs.csv"))
        if len(runs) != 4:
            fail("runs.csv has %d rows, expected 4" % len(runs))
        if shutil.which("gnuplot"):
            png = os.path.join(out, "chart.png")
            if not os.path.exists(png) or open(png, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
                fail("no PNG chart written")
    print("matrix: ok")


def test_alternate(bench_dir, wdir):
    with tempfile.TemporaryDirectory() as out:
        r = runner(bench_dir, wdir, "-w", "random_mixed", "-A", "glibc",
                   "--preload", "again=" + alt_lib(), "--quick", "--runs", "2",
                   "--no-chart", "--out", out)
        if r.returncode != 0:
            fail("runner exited %d: %s" % (r.returncode, r.stderr))
        order = [(l.split()[2], l.split()[4]) for l in r.stderr.splitlines()
                 if l.startswith("[") and " run " in l]
        want = [("1/2", "glibc"), ("1/2", "again"), ("2/2", "glibc"), ("2/2", "again")]
        if order != want:
            fail("run order %s, expected %s" % (order, want))
    print("alternate: ok")


def alt_lib():
    # Any harmless library will do for a second column: preload libc itself.
    for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
              "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"):
        p = os.path.join(d, "libc.so.6")
        if os.path.exists(p):
            return p
    fail("cannot find libc.so.6")


def test_crash(bench_dir, wdir, lib):
    with tempfile.TemporaryDirectory() as out:
        r = runner(bench_dir, wdir, "-w", "random_mixed,larson", "-A", "glibc",
                   "--preload", "crashy=" + lib, "--quick", "--runs", "1", "--no-chart",
                   "--baseline", "crashy", "--out", out)
        if r.returncode != 0:
            fail("runner exited %d on a crashing allocator: %s" % (r.returncode, r.stderr))
        cells = cells_of(read_csv(os.path.join(out, "results.csv")))
        for wl in ("random_mixed", "larson"):
            expect_ok(cells[(wl, "glibc")], wl + "/glibc")
            bad = cells[(wl, "crashy")]
            if bad["status"] != "FAIL" or "SIGABRT" not in bad["reason"]:
                fail("%s/crashy: status %s reason %r, expected FAIL by SIGABRT"
                     % (wl, bad["status"], bad["reason"]))
            for key in ("ops_per_sec", "wall_s", "peak_rss_kb", "minflt"):
                if bad[key] != "FAIL":
                    fail("%s/crashy: %s=%r, expected FAIL" % (wl, key, bad[key]))
            # The baseline failed, so glibc has no ratio rather than a made-up one.
            if cells[(wl, "glibc")]["ratio_vs_baseline"] != "":
                fail("a ratio against a FAILed baseline was printed")
        md = open(os.path.join(out, "results.md")).read()
        rows = [l for l in md.splitlines() if l.startswith("| random_mixed |")]
        if not rows or not all(l.rstrip(" |").endswith("FAIL") for l in rows):
            fail("results.md does not show FAIL in the crashy cells:\n" + md)
    print("crash: ok")


def test_hakmem(bench_dir, wdir, libdir, config):
    if not os.path.exists(os.path.join(libdir, "libhakmem.so")):
        fail("%s/libhakmem.so is not built" % libdir)
    args = ["-w", "random_mixed,larson", "-A", "glibc,hakmem", "--hakmem-lib", libdir,
            "--quick", "--runs", "1", "--no-chart"]
    cols = ["hakmem"]
    if config and os.path.exists(config):
        # One column for the embedded default and one for the file.
        args += ["-c", config]
        cols = [os.path.splitext(os.path.basename(config))[0]]
    with tempfile.TemporaryDirectory() as out:
        r = runner(bench_dir, wdir, *(args + ["--out", out]))
        if r.returncode != 0:
            fail("runner exited %d: %s" % (r.returncode, r.stderr))
        cells = cells_of(read_csv(os.path.join(out, "results.csv")))
        for wl in ("random_mixed", "larson"):
            for col in cols:
                if (wl, col) not in cells:
                    fail("no %s/%s cell in %s" % (wl, col, sorted(cells)))
                expect_ok(cells[(wl, col)], "%s/%s" % (wl, col))
    print("hakmem: ok")


def test_instructions(hb, bench_dir, wdir):
    if not shutil.which("valgrind"):
        fail("valgrind is not installed (tests/deps.sh installs it)")
    cols = "glibc,mimalloc" if hb.find_lib("libmimalloc.so.2") else "glibc"
    with tempfile.TemporaryDirectory() as out:
        r = runner(bench_dir, wdir, "-w", "random_mixed", "-A", cols, "--quick", "--runs", "1",
                   "--instructions", "--no-chart", "--out", out)
        if r.returncode != 0:
            fail("runner exited %d: %s" % (r.returncode, r.stderr))
        for row in read_csv(os.path.join(out, "results.csv")):
            try:
                v = float(row["instr_per_op"])
            except ValueError:
                fail("%s: instr_per_op=%r (%s)" % (row["allocator"], row["instr_per_op"],
                                                   row["reason"]))
            # A malloc or a free costs at least a few instructions and the
            # loop around it a few more; thousands would mean start-up leaked in.
            if not 5 < v < 2000:
                fail("%s: %.1f instructions per op is implausible" % (row["allocator"], v))
    print("instructions: ok")


def test_unit(hb):
    ok_line = "RESULT workload=x ops=10 seconds=0.5 ops_per_sec=20 checksum=00ff extra_kb=7\n"
    res = hb.parse_result_line("noise\n" + ok_line, "x")
    if res["ops"] != 10 or res["extra_kb"] != 7 or res["checksum"] != "00ff":
        fail("parse_result_line: %r" % res)
    bad = {
        "none": "hello\n",
        "two": ok_line + ok_line,
        "garbled": "RESULT workload=x ops=10 seconds=0.5 ops_per_sec=2 0 checksum=1\n",
        "missing": "RESULT workload=x ops=10 seconds=0.5 checksum=1\n",
        "nan ops": "RESULT workload=x ops=ten seconds=0.5 ops_per_sec=20 checksum=1\n",
        "zero ops": "RESULT workload=x ops=0 seconds=0.5 ops_per_sec=20 checksum=1\n",
        "other workload": ok_line.replace("workload=x", "workload=y"),
        "bad checksum": ok_line.replace("checksum=00ff", "checksum=zz"),
    }
    for what, text in bad.items():
        try:
            hb.parse_result_line(text, "x")
        except hb.ResultError:
            continue
        fail("parse_result_line accepted %s: %r" % (what, text))

    # Checksum cross-check: the odd one out FAILs, glibc is the reference.
    w = hb.WORKLOAD_BY_NAME["random_mixed"]
    cols = [hb.Column("glibc", "glibc", ""), hb.Column("a", "peer", ""), hb.Column("b", "peer", "")]
    cells = []
    for col, s in zip(cols, ("aa", "bb", "aa")):
        c = hb.Cell(w, col)
        o = hb.RunOutcome()
        o.ok, o.result = True, {"checksum": s, "ops_per_sec": 1}
        c.runs.append(o)
        cells.append(c)
    hb.check_checksums({"random_mixed": cells}, cols)
    if [c.ok for c in cells] != [True, False, True] or "checksum" not in cells[1].reason:
        fail("check_checksums: %r" % [(c.ok, c.reason) for c in cells])

    with tempfile.NamedTemporaryFile("w", suffix=".out") as f:
        f.write("version: 1\nevents: Ir\nfn=main\n1 5\nsummary: 1234\ntotals: 1234\n")
        f.flush()
        if hb.callgrind_total(f.name) != 1234:
            fail("callgrind_total")

    # A run that outlives its timeout is killed and reported, not waited for.
    status, _, _, _, _, timed_out = hb.run_process(["sleep", "60"], dict(os.environ), 0.3)
    if not timed_out or not os.WIFSIGNALED(status):
        fail("run_process did not kill a run past its timeout")
    print("unit: ok")


def main(argv):
    if len(argv) < 5 or argv[0] != "--bench-dir" or argv[2] != "--workload-dir":
        print(__doc__, file=sys.stderr)
        return 2
    bench_dir, wdir, test, rest = argv[1], argv[3], argv[4], argv[5:]
    hb = load_runner(bench_dir)
    if test == "workload":
        test_workload(hb, wdir, rest[0])
    elif test == "corrupt":
        test_corrupt(hb, wdir, rest[0], rest[1])
    elif test == "matrix":
        test_matrix(hb, bench_dir, wdir)
    elif test == "alternate":
        test_alternate(bench_dir, wdir)
    elif test == "crash":
        test_crash(bench_dir, wdir, rest[0])
    elif test == "hakmem":
        test_hakmem(bench_dir, wdir, rest[0], rest[1] if len(rest) > 1 else None)
    elif test == "instructions":
        test_instructions(hb, bench_dir, wdir)
    elif test == "unit":
        test_unit(hb)
    else:
        print("unknown test %r" % test, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
