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
  verdicts        the U test, the bootstrap intervals and the verdicts on
                  synthetic run lists (equal -> within noise, shifted ->
                  faster/slower), deterministic
  columns         results.csv and results.md of synthetic cells: spread,
                  ratio interval, p and verdict columns, the header's level
  threads         --threads N reaches the workloads that take a thread count
  real LIBDIR     a real-program workload (real_gawk) under glibc and hakmem,
                  its output checked; wrong output and a missing program FAIL
  until_ci        --until-ci stops when every interval is narrow enough, or
                  at its budget, with a progress line per extra round
Exit 0 on success, 1 with a message on failure.
"""

import csv
import contextlib
import io
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
    # --help formats every option's text (a %-sequence in one made it raise).
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            hb.parse_args(["--help"])
    except SystemExit as e:
        if e.code not in (0, None):
            fail("--help exited %r" % e.code)
    if "--runs" not in out.getvalue() or "95%" not in out.getvalue():
        fail("--help text incomplete: %r" % out.getvalue()[:200])
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


def synthetic_runs(rng, center, noise, n):
    return [center * (1.0 + rng.uniform(-noise, noise)) for _ in range(n)]


def test_verdicts(hb):
    import random
    S = sys.modules["runner.stats"]
    # Complete separation of 5 and 5 runs: the exact two-sided p is 2/C(10,5).
    p, d = hb.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    if abs(p - 2.0 / 252) > 1e-12 or d != -1:
        fail("mann_whitney separated 5/5: p=%r direction=%r, expected 2/252, -1" % (p, d))
    # Ties: identical samples are exactly "no evidence".
    if hb.mann_whitney([3, 3, 4], [3, 3, 4]) != (1.0, 0):
        fail("mann_whitney of identical samples: %r" % (hb.mann_whitney([3, 3, 4], [3, 3, 4]),))
    # With ties the exact test still works: 3x value 1 and 3x value 2.
    p, d = hb.mann_whitney([2, 2, 2, 2], [1, 1, 1, 1])
    if not (p < 0.05 and d == 1):
        fail("mann_whitney with tied groups: p=%r d=%r" % (p, d))
    if hb.min_runs_for(0.95) != 4 or hb.min_runs_for(0.99) != 5:
        fail("min_runs_for: %d %d" % (hb.min_runs_for(0.95), hb.min_runs_for(0.99)))

    rng = random.Random(12345)
    for n in (5, 7, 20):   # 20 + 20 takes the normal approximation
        base = synthetic_runs(rng, 100.0, 0.05, n)
        word, _ = hb.verdict(list(base), base)
        if word != "within noise":
            fail("verdict of a sample against itself (n=%d): %s" % (n, word))
        faster = synthetic_runs(rng, 130.0, 0.05, n)
        slower = synthetic_runs(rng, 70.0, 0.05, n)
        for vals, want in ((faster, "faster"), (slower, "slower")):
            word, p = hb.verdict(vals, base)
            if word != want:
                fail("verdict of a sample shifted by 30%% (n=%d): %s p=%g, expected %s"
                     % (n, word, p, want))
        word, _ = hb.verdict(faster, base, words=S.WORDS_MEMORY)
        if word != "larger":
            fail("memory verdict of a larger sample: %s" % word)
    # Equal distributions: "within noise" at least 90% of the time (the test
    # is built to be wrong at most 5% of the time at 95%).
    wrong = 0
    for _ in range(200):
        a, b = synthetic_runs(rng, 100.0, 0.2, 7), synthetic_runs(rng, 100.0, 0.2, 7)
        wrong += hb.verdict(a, b)[0] != "within noise"
    if wrong > 20:
        fail("%d of 200 pairs of equal distributions were called different" % wrong)
    # A shift smaller than the noise is not called.
    a, b = [100, 120, 90, 110, 95], [103, 118, 92, 108, 97]
    if hb.verdict(a, b)[0] != "within noise":
        fail("overlapping samples called %s" % hb.verdict(a, b)[0])

    # Intervals: seeded (the same twice), inside the sample, around the median.
    vals = synthetic_runs(rng, 50.0, 0.3, 9)
    ci1, ci2 = hb.bootstrap_median_ci(vals, 0.95, 7), hb.bootstrap_median_ci(vals, 0.95, 7)
    med = S.median(vals)
    if ci1 != ci2 or not (min(vals) <= ci1[0] <= med <= ci1[1] <= max(vals)):
        fail("bootstrap_median_ci %r %r around %r in [%r, %r]" % (ci1, ci2, med, min(vals),
                                                                  max(vals)))
    narrow = hb.bootstrap_median_ci(vals, 0.5, 7)
    if not (ci1[0] <= narrow[0] and narrow[1] <= ci1[1]):
        fail("a 50%% interval %r is not inside the 95%% one %r" % (narrow, ci1))
    r = hb.bootstrap_ratio_ci([2 * v for v in vals], vals, 0.95, 3)
    if not (r[0] < 2.0 < r[1]) or r != hb.bootstrap_ratio_ci([2 * v for v in vals], vals, 0.95, 3):
        fail("bootstrap_ratio_ci of a doubled sample: %r" % (r,))
    print("verdicts: ok")


def synthetic_cell(hb, w, col, ops, rss):
    c = hb.Cell(w, col)
    for o_ps, kb in zip(ops, rss):
        o = hb.RunOutcome()
        o.ok = True
        o.result = {"workload": w.binary, "checksum": "aa", "ops": 1000, "seconds": 1000 / o_ps,
                    "ops_per_sec": o_ps}
        o.wall_s, o.peak_rss_kb, o.minflt, o.majflt = 1000 / o_ps + 0.01, kb, 100, 0
        o.command = "synthetic"
        c.runs.append(o)
    return c


def test_columns(hb):
    w = hb.WORKLOAD_BY_NAME["random_mixed"]
    base_col, fast_col, same_col = (hb.Column("base", "peer", "b"), hb.Column("fast", "peer", "f"),
                                    hb.Column("same", "peer", "s"))
    base_ops = [100.0, 104.0, 98.0, 101.0, 97.0, 103.0, 99.0]
    cells = [synthetic_cell(hb, w, base_col, base_ops, [1000] * 7),
             synthetic_cell(hb, w, fast_col, [2 * v for v in base_ops],
                            [500, 510, 490, 505, 495, 500, 502]),
             synthetic_cell(hb, w, same_col, list(reversed(base_ops)), [1000] * 7)]
    cell_at = {(w.name, c.column.name): c for c in cells}
    with tempfile.TemporaryDirectory() as out:
        path = os.path.join(out, "results.csv")
        hb.write_summary_csv(path, cells, {w.name: cells[0]}, [], False, 0.95)
        rows = cells_of(read_csv(path))
        need = ["ops_per_sec", "ops_min", "ops_max", "ops_ci_lo", "ops_ci_hi",
                "ratio_vs_baseline", "ratio_ci_lo", "ratio_ci_hi", "p_value", "verdict",
                "peak_rss_kb", "rss_min", "rss_max", "rss_ci_lo", "rss_ci_hi", "rss_verdict",
                "wall_min", "wall_max", "minflt_min", "minflt_max", "confidence"]
        header = open(path).readline().strip().split(",")
        missing = [k for k in need if k not in header]
        if missing:
            fail("results.csv lacks %s" % missing)
        fast, same, base = rows[(w.name, "fast")], rows[(w.name, "same")], rows[(w.name, "base")]
        if (float(fast["ops_min"]), float(fast["ops_max"])) != (194.0, 208.0):
            fail("ops_min/ops_max %s/%s, expected 194/208" % (fast["ops_min"], fast["ops_max"]))
        if not float(fast["ops_ci_lo"]) <= float(fast["ops_per_sec"]) <= float(fast["ops_ci_hi"]):
            fail("the interval %s-%s does not hold the median %s"
                 % (fast["ops_ci_lo"], fast["ops_ci_hi"], fast["ops_per_sec"]))
        if fast["verdict"] != "faster" or abs(float(fast["ratio_vs_baseline"]) - 2.0) > 1e-9:
            fail("fast: ratio %s verdict %s, expected 2 faster"
                 % (fast["ratio_vs_baseline"], fast["verdict"]))
        if not float(fast["ratio_ci_lo"]) < 2.0 < float(fast["ratio_ci_hi"]):
            fail("ratio interval %s-%s misses 2" % (fast["ratio_ci_lo"], fast["ratio_ci_hi"]))
        if float(fast["p_value"]) >= 0.05 or fast["rss_verdict"] != "smaller":
            fail("fast: p %s rss verdict %s" % (fast["p_value"], fast["rss_verdict"]))
        if same["verdict"] != "within noise" or same["rss_verdict"] != "within noise":
            fail("same: verdicts %s / %s" % (same["verdict"], same["rss_verdict"]))
        if base["verdict"] != "baseline" or base["confidence"] != "0.95":
            fail("baseline row: verdict %s confidence %s" % (base["verdict"], base["confidence"]))

        md_path = os.path.join(out, "results.md")
        meta = {"date": "d", "command": "c", "machine": "m"}
        text = hb.write_markdown(md_path, meta, [w], [c.column for c in cells], cell_at, "base",
                                 [], False, 7, 0.95)
        row = [l for l in text.splitlines() if l.startswith("| random_mixed |")][0]
        cols = [x.strip() for x in row.strip("|").split("|")]
        import re
        spread = re.compile(r"^\S+ \[\S+-\S+\] \((\d+\.\d+x), (faster|slower|within noise|"
                            r"baseline)\)$")
        for col in cols[1:]:
            if not spread.match(col):
                fail("results.md cell %r is not 'median [lo-hi] (ratio, verdict)'" % col)
        if "(2.00x, faster)" not in cols[2] or "within noise" not in cols[3]:
            fail("results.md verdicts: %r" % cols)
        if "95% confidence" not in text or "Mann-Whitney" not in text:
            fail("results.md header does not state the test and its level:\n" + text)
    print("columns: ok")


def test_threads(hb, bench_dir, wdir):
    with tempfile.TemporaryDirectory() as out:
        r = runner(bench_dir, wdir, "-w", "random_mixed,larson,producer_consumer,thread_churn",
                   "-A", "glibc", "--quick", "--runs", "1", "--no-chart", "--threads", "4",
                   "--out", out)
        if r.returncode != 0:
            fail("runner exited %d: %s" % (r.returncode, r.stderr))
        cmds = {row["workload"]: row["command"] for row in read_csv(os.path.join(out, "runs.csv"))}
        want = {"larson": "--threads=4", "producer_consumer": "--pairs=2",
                "thread_churn": "--concurrent=4"}
        for wl, arg in want.items():
            if not cmds[wl].endswith(arg):
                fail("%s ran as %r, expected it to end with %s" % (wl, cmds[wl], arg))
        if "--threads" in cmds["random_mixed"]:
            fail("single-threaded random_mixed got a thread count: %r" % cmds["random_mixed"])
        rows = cells_of(read_csv(os.path.join(out, "results.csv")))
        if rows[("larson", "glibc")]["status"] != "OK" or "threads=4" not in cmds["larson"]:
            fail("larson at 4 threads: %r" % rows[("larson", "glibc")])
        if "threads: 4 (" not in open(os.path.join(out, "results.md")).read():
            fail("results.md does not say the thread count")
    print("threads: ok")


def test_until_ci(bench_dir, wdir):
    with tempfile.TemporaryDirectory() as out:
        # A width no interval reaches: rounds go on until the budget is spent
        # (--max-runs high enough that a fast machine reaches the budget first).
        r = runner(bench_dir, wdir, "-w", "random_mixed", "-A", "glibc", "--quick", "--runs", "2",
                   "--until-ci", "0.000001", "--budget", "3", "--max-runs", "1000000",
                   "--no-chart", "--out", out)
        if r.returncode != 0:
            fail("runner exited %d: %s" % (r.returncode, r.stderr))
        lines = r.stderr.splitlines()
        rounds = [l for l in lines if l.startswith("until-ci:") and "wider than" in l
                  and "budget" in l]
        done = [l for l in lines if l.startswith("until-ci: budget of 3s spent")]
        runs = len(read_csv(os.path.join(out, "runs.csv")))
        if not rounds or len(done) != 1 or runs <= 2:
            fail("--until-ci with an unreachable width: %d progress lines, end %r, %d runs:\n%s"
                 % (len(rounds), done, runs, r.stderr[-1500:]))
        if "--until-ci 1e-06: %d runs" % runs not in open(os.path.join(out, "results.md")).read():
            fail("results.md does not say how many runs --until-ci took (%d)" % runs)
    with tempfile.TemporaryDirectory() as out:
        # A width every interval has: no round beyond --runs.
        r = runner(bench_dir, wdir, "-w", "random_mixed", "-A", "glibc", "--quick", "--runs", "3",
                   "--until-ci", "100000", "--no-chart", "--out", out)
        runs = len(read_csv(os.path.join(out, "runs.csv")))
        if r.returncode != 0 or runs != 3 or "every interval under" not in r.stderr:
            fail("--until-ci with a width already met: exit %d, %d runs:\n%s"
                 % (r.returncode, runs, r.stderr[-1500:]))
    print("until_ci: ok")


def test_real(hb, bench_dir, wdir, libdir):
    """A real-program workload runs under glibc and hakmem with its output
    checked; a wrong output is a FAIL, a missing program a FAIL, not an error."""
    with tempfile.TemporaryDirectory() as out:
        r = runner(bench_dir, wdir, "-w", "real_gawk", "-A", "glibc,hakmem", "--hakmem-lib", libdir,
                   "--runs", "1", "--no-chart", "--out", out)
        if r.returncode != 0:
            fail("runner exited %d: %s" % (r.returncode, r.stderr))
        cells = cells_of(read_csv(os.path.join(out, "results.csv")))
        for col in ("glibc", "hakmem"):
            expect_ok(cells[("real_gawk", col)], "real_gawk/" + col)
        if not os.path.isfile(os.path.join(out, "programs", "real_gawk", "lines.txt")):
            fail("the inputs were not made in the output folder")
    w = hb.WORKLOAD_BY_NAME["real_gawk"]
    p = w.program
    p.reference = "1 2 3\n"
    fields, why = p.result_fields("real_gawk", "1 2 3\n", 0.5)
    if why or fields["ops"] != 1 or fields["seconds"] != 0.5 or len(fields["checksum"]) != 16:
        fail("result of a matching output: %r %r" % (fields, why))
    fields, why = p.result_fields("real_gawk", "1 2 4\n", 0.5)
    if fields is not None or "wrong output" not in why:
        fail("a different output was not a wrong output: %r %r" % (fields, why))
    missing = hb.Workload("real_none", "real_none", [], [], program=hb.REAL_WORKLOADS[0].program.__class__(
        ["no-such-program-hakmem"], ["no-such-program-hakmem"]))
    with tempfile.TemporaryDirectory() as d:
        hb.prepare_program(missing, d, dict(os.environ), 30)
    if "not installed" not in missing.program.missing:
        fail("a missing program: %r" % missing.program.missing)
    print("real: ok")


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
    elif test == "verdicts":
        test_verdicts(hb)
    elif test == "columns":
        test_columns(hb)
    elif test == "threads":
        test_threads(hb, bench_dir, wdir)
    elif test == "real":
        test_real(hb, bench_dir, wdir, rest[0])
    elif test == "until_ci":
        test_until_ci(bench_dir, wdir)
    else:
        print("unknown test %r" % test, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
