#!/usr/bin/env python3
"""hakmem bench: the workloads x the allocators, side by side, same machine,
same run.

Runs each workload (bench_<name> binaries) under glibc, mimalloc, jemalloc,
tcmalloc and hakmem (one column per config / HAKMEM_SET sweep), alternating
the columns run by run (A B C A B C ...), and reports medians: ops/s, wall
time, peak RSS and minor page faults (from wait4's rusage of the child), with
ratios against a baseline column. Writes a CSV, a Markdown table and a PNG
chart (gnuplot). A crash, a non-zero exit, a timeout, a missing or garbled
result line, or a checksum that differs from the other allocators' makes the
cell FAIL, never a number. The runner exits non-zero only for its own errors
(bad arguments, missing workloads, unwritable output).

Invoked by `hakmem bench ARGS` as
  python3 hakmem_bench.py --hakmem-lib DIR --workload-dir DIR ARGS
or by hand with the same two options. Standard library only.

The runner's parts are the modules of runner/ beside this file (listed in
runner/__init__.py); this file is the command line and the main loop.
"""

import argparse
import datetime
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
# The parts are found beside this file however it was started (python3 -I
# leaves the script's folder out of sys.path), and compiled in memory only:
# no __pycache__ in the source tree or in the installed folder.
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)
sys.dont_write_bytecode = True

# Every name the runner had before it was split stays reachable here
# (tests/bench/bench_tests.py uses them through this module).
from runner.allocators import (  # noqa: E402,F401
    DEFAULT_ALLOCATORS, PEERS, SCRUBBED_ENV, Column, build_columns, find_lib, lib_dirs)
from runner.callgrind import callgrind_total, measure_instructions, safe_name  # noqa: E402,F401
from runner.chart import gp_quote, write_chart  # noqa: E402,F401
from runner.formatting import fmt_num, fmt_rate, fmt_ratio, progress  # noqa: E402,F401
from runner.matrix import Cell, check_checksums, median, workload_argv  # noqa: E402,F401
from runner.measure import (  # noqa: E402,F401
    KEY_RE, RESULT_REQUIRED, ResultError, RunOutcome, last_line, parse_launch_report,
    parse_number, parse_result_line, prepare_program, run_cell, run_process, signal_name,
    wait_process)
from runner.report import (  # noqa: E402,F401
    extra_keys, fmt_csv, machine_description, md_table, write_markdown, write_runs_csv,
    write_summary_csv)
from runner.workloads import (  # noqa: E402,F401
    REAL_WORKLOADS, WORKLOAD_BY_NAME, WORKLOAD_GROUPS, WORKLOADS, Workload)
from runner.matrix import thread_argument  # noqa: E402,F401
from runner.stats import (  # noqa: E402,F401
    Spread, bootstrap_median_ci, bootstrap_ratio_ci, mann_whitney, min_runs_for, verdict)

DEFAULT_RUNS = 7


# ---- set-up ----------------------------------------------------------------------


def run_setup(reason):
    script = os.path.join(BENCH_DIR, "setup.sh")
    progress("set-up: %s; running %s" % (reason, script))
    try:
        rc = subprocess.call(["sh", script], stdout=sys.stderr, stderr=sys.stderr)
    except OSError as e:
        progress("set-up: cannot run %s: %s" % (script, e))
        return
    if rc != 0:
        progress("set-up: %s exited with %d; missing allocators will show FAIL" % (script, rc))


# ---- main --------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="hakmem bench",
        description="Run the workloads under each allocator and compare them side by side.",
        epilog="Workloads: " + ", ".join(w.name for w in WORKLOADS))
    p.add_argument("--hakmem-lib", metavar="DIR",
                   help="folder holding libhakmem.so (the CLI passes it)")
    p.add_argument("--workload-dir", metavar="DIR",
                   help="folder holding the bench_* binaries (the CLI passes it)")
    p.add_argument("-w", "--workloads", default=",".join(w.name for w in WORKLOADS),
                   help="comma-separated workloads (default: all synthetic ones); "
                        "\"real\" stands for every real-program workload")
    p.add_argument("-A", "--allocators", default=",".join(DEFAULT_ALLOCATORS),
                   help="comma-separated: glibc, mimalloc, jemalloc, tcmalloc, hakmem "
                        "(default: all five)")
    p.add_argument("-c", "--config", action="append", metavar="FILE",
                   help="hakmem config; repeat for one column per file (default: the embedded one)")
    p.add_argument("-s", "--set", action="append", metavar="KEY=VALUE[,...]",
                   help="HAKMEM_SET for one hakmem column; repeat to sweep (crossed with -c)")
    p.add_argument("--preload", action="append", metavar="NAME=LIB",
                   help="an extra column running with LD_PRELOAD=LIB")
    p.add_argument("--arg", action="append", metavar="WORKLOAD:KEY=VALUE", default=[],
                   help="pass --KEY=VALUE to one workload, e.g. --arg random_mixed:cycles=1000000")
    p.add_argument("-n", "--runs", type=int, default=DEFAULT_RUNS,
                   help="runs per cell (default %(default)s: enough for the U test to call a "
                        "clear difference at 95%%, with room for two runs out of order)")
    p.add_argument("--until-ci", type=float, metavar="PCT", default=None,
                   help="after --runs rounds, keep running interleaved rounds until every "
                        "cell's interval of its median throughput is narrower than PCT%% of "
                        "the median, or --budget is spent")
    p.add_argument("--budget", type=float, metavar="S", default=600.0,
                   help="seconds --until-ci may run in all (default 600)")
    p.add_argument("--max-runs", type=int, default=50,
                   help="most runs per cell with --until-ci (default 50)")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="confidence level of the intervals and verdicts (default 0.95)")
    p.add_argument("-t", "--threads", type=int, metavar="N", default=None,
                   help="run every workload that takes a thread count at N threads "
                        "(see bench/README.md)")
    p.add_argument("-b", "--baseline", default=None,
                   help="column the ratios divide by (default mimalloc, else the first)")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output folder (default bench/out/<timestamp>; installed: "
                        "./hakmem-bench-out/<timestamp>)")
    p.add_argument("--quick", action="store_true", help="tiny op counts (for tests)")
    p.add_argument("--instructions", action="store_true",
                   help="also count instructions per op of the single-threaded workloads "
                        "under valgrind --tool=callgrind")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds before a run is killed and FAILs (default 300, quick 60)")
    p.add_argument("--no-chart", action="store_true", help="skip the gnuplot chart")
    p.add_argument("--no-setup", action="store_true",
                   help="never run bench/setup.sh when a peer library or tool is missing")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = p.parse_args(argv)
    return p, args


def shown_args(argv):
    """argv without the two folders the CLI adds, for the report."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--hakmem-lib", "--workload-dir"):
            skip = True
            continue
        if a.startswith("--hakmem-lib=") or a.startswith("--workload-dir="):
            continue
        out.append(a)
    return out


def wide_cells(cells, limit, confidence):
    """Cells whose interval of the median throughput is wider than `limit`
    (a fraction of the median), widest first, as (width, cell). A FAIL cell
    never narrows: it is left out."""
    wide = []
    for c in cells:
        if not c.ok:
            continue
        sp = c.spread("ops_per_sec", confidence)
        if sp and sp.rel_width() > limit:
            wide.append((sp.rel_width(), c))
    wide.sort(key=lambda t: -t[0])
    return wide


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    # Stopped by SIGTERM, still stop the running workload (run_process).
    signal.signal(signal.SIGTERM, on_sigterm)
    parser, args = parse_args(argv)
    if args.list:
        for w in WORKLOADS + REAL_WORKLOADS:
            print("%-18s %s" % (w.name, w.doc))
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not 0.5 <= args.confidence < 1.0:
        parser.error("--confidence must be in [0.5, 1), e.g. 0.95")
    if args.until_ci is not None and not args.until_ci > 0:
        parser.error("--until-ci wants a positive percentage, e.g. --until-ci 5")
    if args.budget <= 0:
        parser.error("--budget must be positive (seconds)")
    if args.max_runs < args.runs:
        args.max_runs = args.runs
    if args.threads is not None and not 1 <= args.threads <= 1024:
        parser.error("--threads must be in 1..1024")
    if args.runs < min_runs_for(args.confidence):
        progress("warning: with %d run(s) per cell no difference can be significant at %g%% "
                 "(the verdicts will all say within noise; use --runs %d or more)"
                 % (args.runs, args.confidence * 100, min_runs_for(args.confidence)))
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 300.0
    args.instr_timeout = max(args.timeout, 600.0)

    names = []
    for n in (n.strip() for n in args.workloads.split(",")):
        names += WORKLOAD_GROUPS.get(n, [n] if n else [])
    for n in names:
        if n not in WORKLOAD_BY_NAME:
            parser.error("unknown workload %r (known: %s)"
                         % (n, ", ".join([w.name for w in WORKLOADS + REAL_WORKLOADS] +
                                         list(WORKLOAD_GROUPS))))
    workloads = [WORKLOAD_BY_NAME[n] for n in dict.fromkeys(names)]
    if not workloads:
        parser.error("no workloads")
    extra_args = {}
    for spec in args.arg:
        wl, sep, kv = spec.partition(":")
        if not sep or wl not in WORKLOAD_BY_NAME or "=" not in kv:
            parser.error("--arg wants WORKLOAD:KEY=VALUE, got %r" % spec)
        extra_args.setdefault(wl, []).append("--" + kv.lstrip("-"))
    for cfg in args.config or []:
        if not os.path.isfile(cfg):
            parser.error("config %s does not exist" % cfg)

    # The CLI passes the folder of its own executable, which holds the
    # workloads in the build tree; installed, they live in libexec.
    tried = []
    if args.workload_dir:
        tried.append(args.workload_dir)
    tried += [os.path.join(BENCH_DIR, "..", "..", "..", "libexec", "hakmem", "bench"),
              os.path.join(BENCH_DIR, "..", "build", "bin")]
    wanted_bins = ["launch"] + [w.binary for w in workloads if not w.program]
    found = None
    for d in tried:
        if all(os.access(os.path.join(d, "bench_" + b), os.X_OK) for b in wanted_bins):
            found = d
            break
    if not found:
        where = args.workload_dir or tried[0]
        missing = [b for b in wanted_bins
                   if not os.access(os.path.join(where, "bench_" + b), os.X_OK)]
        parser.error("bench_%s missing in %s (build the target bench_workloads%s)"
                     % (missing[0], os.path.abspath(where),
                        "" if args.workload_dir else ", or give --workload-dir"))
    args.workload_dir = os.path.abspath(found)
    args.launcher = os.path.join(args.workload_dir, "bench_launch")

    args.gnuplot = shutil.which("gnuplot")
    args.valgrind = shutil.which("valgrind")
    columns = build_columns(args, parser)
    wanted = [c for c in columns if c.kind == "peer" and c.missing]
    needs = []
    if wanted:
        needs.append("missing " + ", ".join(c.name for c in wanted))
    if not args.gnuplot and not args.no_chart:
        needs.append("no gnuplot")
    if args.instructions and not args.valgrind:
        needs.append("no valgrind")
    if needs and not args.no_setup:
        run_setup("; ".join(needs))
        args.gnuplot = shutil.which("gnuplot")
        args.valgrind = shutil.which("valgrind")
        columns = build_columns(args, parser)
    for c in columns:
        if c.missing:
            progress("warning: %s will FAIL: %s" % (c.name, c.missing))
    if args.instructions and not args.valgrind:
        progress("warning: valgrind not found: instructions per op will FAIL")

    col_names = [c.name for c in columns]
    if args.baseline is None:
        args.baseline = "mimalloc" if "mimalloc" in col_names else col_names[0]
    elif args.baseline not in col_names:
        parser.error("baseline %r is not a column (columns: %s)"
                     % (args.baseline, ", ".join(col_names)))

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    # bench/out/ in a source tree; installed, the current folder.
    in_tree = os.path.exists(os.path.join(BENCH_DIR, "CMakeLists.txt"))
    outdir = args.out or (os.path.join(BENCH_DIR, "out", stamp) if in_tree
                          else os.path.join(os.getcwd(), "hakmem-bench-out", stamp))
    try:
        os.makedirs(outdir, exist_ok=True)
        if args.instructions:
            os.makedirs(os.path.join(outdir, "callgrind"), exist_ok=True)
    except OSError as e:
        if args.out:
            progress("hakmem bench: cannot create %s: %s" % (outdir, e))
            return 1
        outdir = os.path.join(os.getcwd(), "hakmem-bench-out", stamp)
        os.makedirs(outdir, exist_ok=True)
        if args.instructions:
            os.makedirs(os.path.join(outdir, "callgrind"), exist_ok=True)

    base_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    cells = []
    cell_at = {}
    by_workload = {}
    for w in workloads:
        for col in columns:
            c = Cell(w, col)
            cells.append(c)
            cell_at[(w.name, col.name)] = c
            by_workload.setdefault(w.name, []).append(c)

    total = args.runs * len(cells)
    done = 0
    progress("hakmem bench: %d workloads x %d allocators x %d runs%s%s -> %s"
             % (len(workloads), len(columns), args.runs,
                " (then until every interval < %g%%, budget %gs)" % (args.until_ci, args.budget)
                if args.until_ci else "",
                ", %d threads" % args.threads if args.threads else "", outdir))
    for w in workloads:
        if w.program:
            progress("%s: inputs and reference output (no preload)" % w.name)
            prepare_program(w, os.path.join(outdir, "programs", w.name), base_env, args.timeout)
            if w.program.missing:
                progress("warning: %s will FAIL: %s" % (w.name, w.program.missing))
    wargvs = {w.name: workload_argv(w, args, extra_args) for w in workloads}
    rounds = 0
    started = time.monotonic()
    try:
        # Alternate: every column runs once per round, so slow drifts of the
        # machine spread over all columns instead of biasing one.
        while True:
            if rounds >= args.runs:
                if not args.until_ci or rounds >= args.max_runs:
                    break
                wide = wide_cells(cells, args.until_ci / 100.0, args.confidence)
                spent = time.monotonic() - started
                per_round = spent / rounds
                if not wide:
                    progress("until-ci: every interval under %g%% after %d runs (%.0fs)"
                             % (args.until_ci, rounds, spent))
                    break
                if spent + per_round > args.budget:
                    progress("until-ci: budget of %gs spent after %d runs; %d of %d cells "
                             "still wider than %g%% (widest %s/%s %.1f%%)"
                             % (args.budget, rounds, len(wide), len(cells), args.until_ci,
                                wide[0][1].workload.name, wide[0][1].column.name,
                                wide[0][0] * 100))
                    break
                progress("until-ci: %d of %d cells wider than %g%% (widest %s/%s %.1f%%); "
                         "round %d, %.0fs of %gs budget"
                         % (len(wide), len(cells), args.until_ci, wide[0][1].workload.name,
                            wide[0][1].column.name, wide[0][0] * 100, rounds + 1, spent,
                            args.budget))
                total += len(cells)
            rounds += 1
            for w in workloads:
                for col in columns:
                    c = cell_at[(w.name, col.name)]
                    o = run_cell(w, col, wargvs[w.name], base_env, args.timeout, args.launcher)
                    c.runs.append(o)
                    done += 1
                    if o.ok:
                        what = "%s ops/s  %.2fs  %.1f MB" % (
                            fmt_rate(o.result["ops_per_sec"]), o.wall_s, o.peak_rss_kb / 1024.0)
                    else:
                        what = "FAIL: " + o.reason
                    progress("[%*d/%d] run %d/%d  %-18s %-14s %s"
                             % (len(str(total)), done, total, rounds,
                                max(args.runs, rounds), w.name, col.name, what))
        if args.instructions:
            for w in workloads:
                if w.instr is None:
                    continue
                for col in columns:
                    c = cell_at[(w.name, col.name)]
                    if not args.valgrind:
                        c.instr_reason = "valgrind not found"
                        continue
                    measure_instructions(c, args, extra_args, base_env, outdir)
                    progress("[callgrind] %-18s %-14s %s" % (
                        w.name, col.name,
                        "%.1f instructions/op" % c.instr if c.instr is not None
                        else "FAIL: " + c.instr_reason))
    except KeyboardInterrupt:
        progress("hakmem bench: interrupted")
        return 130

    check_checksums(by_workload, columns)
    baseline = {w.name: cell_at[(w.name, args.baseline)] for w in workloads}
    extras = extra_keys(cells)
    csv_path = os.path.join(outdir, "results.csv")
    write_summary_csv(csv_path, cells, baseline, extras, args.instructions, args.confidence)
    write_runs_csv(os.path.join(outdir, "runs.csv"), cells, rounds)
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "command": "hakmem bench " + " ".join(shlex.quote(a) for a in shown_args(argv)),
        "machine": machine_description(),
    }
    md_path = os.path.join(outdir, "results.md")
    notes = []
    if args.threads:
        notes.append("threads: %d (%s)" % (args.threads, "; ".join(
            "%s %s" % (w.name, thread_argument(w, args.threads, args.workload_dir) or
                       "single-threaded, as is") for w in workloads)))
    if args.until_ci:
        notes.append("--until-ci %g: %d runs" % (args.until_ci, rounds))
    text = write_markdown(md_path, meta, workloads, columns, cell_at, args.baseline, extras,
                          args.instructions, rounds, args.confidence, "; ".join(notes) or None)
    print(text, flush=True)
    png = None
    if not args.no_chart:
        if args.gnuplot:
            png = write_chart(outdir, workloads, columns, cell_at, args.baseline, args.gnuplot,
                              args.confidence)
        else:
            progress("chart: gnuplot not found (bench/setup.sh installs gnuplot-nox)")
    progress("wrote %s, %s%s" % (csv_path, md_path, ", " + png if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
