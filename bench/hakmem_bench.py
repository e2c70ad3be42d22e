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
"""

import argparse
import csv
import datetime
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

# ---- workloads ---------------------------------------------------------------


class Workload:
    """One row of the table: a binary and its arguments.

    args: always passed; quick: appended with --quick (tiny counts, for tests);
    instr: two argument lists whose op counts differ, for --instructions (the
    difference of the two runs' instruction counts over the difference of
    their ops is the steady-state cost per op, without start-up and set-up);
    None for multi-threaded workloads, which callgrind serialises.
    """

    def __init__(self, name, binary, args, quick, instr=None, instr_quick=None, doc=""):
        self.name = name
        self.binary = binary
        self.args = list(args)
        self.quick = list(quick)
        self.instr = instr
        self.instr_quick = instr_quick or instr
        self.doc = doc


WORKLOADS = [
    Workload("random_mixed", "random_mixed", [], ["--cycles=200000"],
             instr=(["--cycles=100000"], ["--cycles=200000"]),
             instr_quick=(["--cycles=20000"], ["--cycles=40000"]),
             doc="seed's Random Mixed: 8192 slots, 16-1040 B, 10M cycles"),
    Workload("random_mixed_256", "random_mixed", ["--size=256"], ["--cycles=200000"],
             instr=(["--cycles=100000"], ["--cycles=200000"]),
             instr_quick=(["--cycles=20000"], ["--cycles=40000"]),
             doc="Random Mixed at a fixed 256 B"),
    Workload("mid_large_mt", "mid_large_mt", [], ["--cycles=20000"],
             doc="2 threads, 8-32 KB slot loops, a byte per page"),
    Workload("mid_large_mt_2k", "mid_large_mt", ["--size=2048"], ["--cycles=20000"],
             doc="2 threads, fixed 2 KB"),
    Workload("vm_mixed", "vm_mixed", [], ["--cycles=2000"],
             instr=(["--cycles=2000"], ["--cycles=4000"]),
             instr_quick=(["--cycles=500"], ["--cycles=1000"]),
             doc="1 thread, 256 slots, 64 KB-2 MB, every page touched"),
    Workload("larson", "larson", [], ["--rounds=4", "--ops=5000"],
             doc="server: 2 workers rotating partitions, frees of others' blocks"),
    Workload("producer_consumer", "producer_consumer", [], ["--count=20000"],
             doc="1 producer -> 1 consumer: every free is remote"),
    Workload("realloc_chain", "realloc_chain", [], ["--cycles=5000"],
             instr=(["--cycles=5000"], ["--cycles=10000"]),
             instr_quick=(["--cycles=2000"], ["--cycles=4000"]),
             doc="64 buffers grown by realloc 1.5x up to 1 MB"),
    Workload("fragmentation", "fragmentation", [], ["--count=5000"],
             instr=(["--count=10000"], ["--count=20000"]),
             instr_quick=(["--count=2000"], ["--count=4000"]),
             doc="200K blocks, free 90% at random, RSS after"),
    Workload("thread_churn", "thread_churn", [], ["--threads=20", "--allocs=500"],
             doc="1000 short threads, 2 at a time, leaving 10% behind"),
]
WORKLOAD_BY_NAME = {w.name: w for w in WORKLOADS}

# ---- allocators ----------------------------------------------------------------

# Peers come from Debian's packages (bench/setup.sh installs them).
PEERS = {
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
DEFAULT_ALLOCATORS = ["glibc", "mimalloc", "jemalloc", "tcmalloc", "hakmem"]
# Variables that would change what a column measures: never inherited.
SCRUBBED_ENV = ("LD_PRELOAD", "HAKMEM_CONFIG", "HAKMEM_SET")


def lib_dirs():
    dirs = []
    multiarch = getattr(sys.implementation, "_multiarch", None)
    if multiarch:
        dirs += ["/usr/lib/" + multiarch, "/lib/" + multiarch]
    dirs += ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
             "/usr/lib", "/usr/local/lib"]
    seen = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def find_lib(soname):
    for d in lib_dirs():
        path = os.path.join(d, soname)
        if os.path.exists(path):
            return path
    return None


class Column:
    """One allocator column: how to run a workload under it."""

    def __init__(self, name, kind, describe, preload=None, env=None, missing=None):
        self.name = name
        self.kind = kind          # glibc | peer | hakmem | preload
        self.describe = describe  # for the report
        self.preload = preload
        self.env = env or {}
        self.missing = missing    # why this column cannot run, or None

    def environment(self, base):
        env = dict(base)
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        env.update(self.env)
        return env

    def env_prefix(self):
        parts = []
        if self.preload:
            parts.append("LD_PRELOAD=" + shlex.quote(self.preload))
        for k, v in sorted(self.env.items()):
            parts.append(k + "=" + shlex.quote(v))
        return " ".join(parts)


# ---- running one process ---------------------------------------------------------


class RunOutcome:
    def __init__(self):
        self.ok = False
        self.reason = ""
        self.result = None     # parsed RESULT fields
        self.wall_s = None
        self.peak_rss_kb = None
        self.minflt = None
        self.majflt = None
        self.stdout = ""
        self.stderr = ""
        self.command = ""


def signal_name(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return "signal %d" % num


def last_line(text, limit=200):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= limit else line[:limit] + "..."


def run_process(argv, env, timeout):
    """Runs argv to completion (or kills it at `timeout` seconds) and returns
    (status, rusage, wall seconds, stdout, stderr, timed_out)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        try:
            return wait_process(proc, t0, timeout, out, err)
        except BaseException:
            # Interrupted (^C): the child is in its own session and did not
            # get the SIGINT; do not leave it running.
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                os.waitpid(proc.pid, 0)
                proc.returncode = -signal.SIGKILL
            raise


def wait_process(proc, t0, timeout, out, err):
    """Waits for proc (killing its group at `timeout`), reaps it with wait4."""
    timed_out = False
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    reaped = None
    if pidfd is not None:
        # A pidfd turns readable when the child exits.
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(1, int(timeout * 1000))):
            timed_out = True
            # The launcher leads its own session: the group is it and the
            # workload. It is not reaped yet, so its pid is still ours.
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                reaped = (status, ru)
                break
            if time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    if reaped is None:
        _, status, ru = os.wait4(proc.pid, 0)
    else:
        status, ru = reaped
    wall = time.perf_counter() - t0
    if pidfd is not None:
        os.close(pidfd)
    # Reaped here: tell Popen so it never waits for the pid again.
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    stdout = out.read().decode("utf-8", "replace")
    stderr = err.read().decode("utf-8", "replace")
    return status, ru, wall, stdout, stderr, timed_out


RESULT_REQUIRED = ("workload", "ops", "seconds", "ops_per_sec", "checksum")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ResultError(Exception):
    pass


def parse_number(text):
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?", text):
        return float(text)
    return None


def parse_result_line(stdout, expect_workload=None):
    """Returns the fields of the one RESULT line in stdout, numbers as int or
    float; raises ResultError for none, several, or a garbled one."""
    lines = [l for l in stdout.splitlines() if l.startswith("RESULT")]
    if not lines:
        raise ResultError("no RESULT line")
    if len(lines) > 1:
        raise ResultError("%d RESULT lines" % len(lines))
    tokens = lines[0].split()
    if tokens[0] != "RESULT":
        raise ResultError("garbled RESULT line")
    fields = {}
    for tok in tokens[1:]:
        key, sep, value = tok.partition("=")
        if not sep or not KEY_RE.match(key) or not value:
            raise ResultError("garbled field %r" % tok)
        if key in fields:
            raise ResultError("field %r twice" % key)
        fields[key] = value
    for key in RESULT_REQUIRED:
        if key not in fields:
            raise ResultError("RESULT line lacks %s=" % key)
    if expect_workload is not None and fields["workload"] != expect_workload:
        raise ResultError("RESULT is for workload %r, expected %r"
                          % (fields["workload"], expect_workload))
    if not re.fullmatch(r"[0-9a-f]{1,16}", fields["checksum"]):
        raise ResultError("checksum %r is not hex" % fields["checksum"])
    parsed = {"workload": fields["workload"], "checksum": fields["checksum"]}
    for key, value in fields.items():
        if key in parsed:
            continue
        num = parse_number(value)
        if num is None:
            if key in ("ops", "seconds", "ops_per_sec"):
                raise ResultError("%s=%r is not a number" % (key, value))
            parsed[key] = value
        else:
            parsed[key] = num
    if not isinstance(parsed["ops"], int) or parsed["ops"] <= 0:
        raise ResultError("ops=%r is not a positive integer" % fields["ops"])
    if parsed["seconds"] <= 0:
        raise ResultError("seconds=%r is not positive" % fields["seconds"])
    return parsed


def parse_launch_report(text):
    fields = dict(tok.partition("=")[::2] for tok in text.split())
    try:
        return {k: (v if k == "status" else int(v)) for k, v in fields.items()}
    except ValueError:
        return None


def run_cell(workload, column, argv, base_env, timeout, launcher):
    """Runs one workload process under one column through bench_launch (see
    bench/tools/bench_launch.c for why) and judges the outcome."""
    o = RunOutcome()
    prefix = column.env_prefix()
    o.command = (prefix + " " if prefix else "") + " ".join(shlex.quote(a) for a in argv)
    if column.missing:
        o.reason = column.missing
        return o
    assigns = ["%s=%s" % kv for kv in sorted(column.environment({}).items())]
    with tempfile.TemporaryDirectory(prefix="hakmem-bench-") as tmp:
        report = os.path.join(tmp, "rusage")
        try:
            status, _, _, stdout, stderr, timed_out = run_process(
                [launcher, report] + assigns + ["--"] + argv, base_env, timeout)
        except OSError as e:
            o.reason = "cannot start: %s" % e
            return o
        rep = None
        if os.path.exists(report):
            with open(report) as f:
                rep = parse_launch_report(f.read())
    o.stdout, o.stderr = stdout, stderr
    why = last_line(stderr)
    if timed_out:
        o.reason = "timeout after %gs" % timeout
        return o
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or not rep \
            or rep.get("status") not in ("exited", "signaled"):
        o.reason = "bench_launch failed (%s)" % (why or "no report")
        return o
    o.wall_s = rep["wall_ns"] / 1e9
    o.peak_rss_kb = rep["maxrss_kb"]
    o.minflt = rep["minflt"]
    o.majflt = rep["majflt"]
    if rep["status"] == "signaled":
        o.reason = "killed by %s" % signal_name(rep["code"])
        if why:
            o.reason += " (%s)" % why
        return o
    if rep["code"] != 0:
        o.reason = "exit code %d" % rep["code"]
        if why:
            o.reason += " (%s)" % why
        return o
    try:
        o.result = parse_result_line(stdout, workload.binary)
    except ResultError as e:
        o.reason = str(e)
        return o
    o.ok = True
    return o


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


# ---- reporting helpers ---------------------------------------------------------


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt_rate(x):
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if x >= div:
            return "%.3g%s" % (x / div, suffix)
    return "%.3g" % x


def fmt_num(x, digits=3):
    if isinstance(x, int):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return "%.0f" % x
    return "%.*g" % (digits, x)


def fmt_ratio(x):
    return "%.2fx" % x


def median(values):
    return statistics.median(values) if values else None


# ---- the matrix ----------------------------------------------------------------


class Cell:
    def __init__(self, workload, column):
        self.workload = workload
        self.column = column
        self.runs = []        # RunOutcome per run
        self.instr = None     # instructions per op, or None
        self.instr_reason = ""

    @property
    def ok(self):
        return bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def reason(self):
        for i, r in enumerate(self.runs):
            if not r.ok:
                return "run %d: %s" % (i + 1, r.reason)
        return ""

    def med(self, key):
        """Median of a metric over the runs: runner-side (wall_s, peak_rss_kb,
        minflt) or a numeric field of the result line."""
        vals = []
        for r in self.runs:
            if key in ("wall_s", "peak_rss_kb", "minflt", "majflt"):
                v = getattr(r, key)
            else:
                v = r.result.get(key) if r.result else None
            if isinstance(v, (int, float)):
                vals.append(v)
        return median(vals)


def check_checksums(cells_by_workload, columns):
    """Every run of a workload computes the same checksum whatever the
    allocator; a run that differs from the reference gives a wrong result.
    The reference is glibc's value when glibc ran, else the commonest."""
    for wl, cells in cells_by_workload.items():
        values = {}
        for c in cells:
            for r in c.runs:
                if r.ok:
                    values.setdefault(r.result["checksum"], []).append(c.column.name)
        if len(values) <= 1:
            continue
        ref = None
        for c in cells:
            if c.column.kind == "glibc":
                sums = {r.result["checksum"] for r in c.runs if r.ok}
                if len(sums) == 1:
                    ref = sums.pop()
        if ref is None:
            ref = max(values, key=lambda k: len(values[k]))
        for c in cells:
            for r in c.runs:
                if r.ok and r.result["checksum"] != ref:
                    r.ok = False
                    r.reason = "wrong result: checksum %s, others %s" % (r.result["checksum"], ref)


def build_columns(args, parser):
    columns = []
    names = []
    allocators = [a.strip() for a in args.allocators.split(",") if a.strip()]
    for a in allocators:
        if a not in DEFAULT_ALLOCATORS:
            parser.error("unknown allocator %r (known: %s; add others with --preload NAME=LIB)"
                         % (a, ", ".join(DEFAULT_ALLOCATORS)))

    if (args.config or args.set) and "hakmem" not in allocators:
        parser.error("-c/-s make hakmem columns, but hakmem is not among --allocators")

    def add(col):
        base = col.name
        n = 2
        while col.name in names:
            col.name = "%s-%d" % (base, n)
            n += 1
        names.append(col.name)
        columns.append(col)

    for a in allocators:
        if a == "glibc":
            add(Column("glibc", "glibc", "glibc malloc (no preload)"))
        elif a in PEERS:
            soname, package = PEERS[a]
            path = find_lib(soname)
            add(Column(a, "peer", "%s (%s)" % (path or soname, package), preload=path,
                       missing=None if path else "%s not installed (package %s; see bench/setup.sh)"
                       % (soname, package)))
        elif a == "hakmem":
            lib = (os.path.join(os.path.abspath(args.hakmem_lib), "libhakmem.so")
                   if args.hakmem_lib else None)
            missing = None
            if not lib:
                missing = "no --hakmem-lib given"
            elif not os.path.exists(lib):
                missing = "%s does not exist (build it first)" % lib
            configs = args.config or [None]
            sets = args.set or [None]
            for cfg in configs:
                for st in sets:
                    env = {}
                    if cfg:
                        env["HAKMEM_CONFIG"] = os.path.abspath(cfg)
                        stem = os.path.splitext(os.path.basename(cfg))[0]
                        name = stem if stem not in DEFAULT_ALLOCATORS else "hakmem-" + stem
                    else:
                        name = "hakmem"
                    if st:
                        env["HAKMEM_SET"] = st
                        name += "[%s]" % st
                    desc = "hakmem (%s, config %s%s)" % (
                        lib or "libhakmem.so", cfg or "embedded default",
                        ", HAKMEM_SET=" + st if st else "")
                    add(Column(name, "hakmem", desc, preload=lib, env=env, missing=missing))
    for spec in args.preload or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error("--preload wants NAME=PATH, got %r" % spec)
        path = os.path.abspath(path)
        add(Column(name, "preload", "%s (preloaded)" % path, preload=path,
                   missing=None if os.path.exists(path) else "%s does not exist" % path))
    if not columns:
        parser.error("no allocators to run")
    return columns


def workload_argv(workload, args, extra_args):
    argv = [os.path.join(args.workload_dir, "bench_" + workload.binary)] + workload.args
    if args.quick:
        argv += workload.quick
    argv += extra_args.get(workload.name, [])
    return argv


# ---- instructions per op (callgrind) ---------------------------------------------


def callgrind_total(path):
    """Ir from a callgrind out file: the `totals:` line (or `summary:`),
    indexed by the `events:` line."""
    events, totals, summary = None, None, None
    with open(path, "r", errors="replace") as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:"):
                totals = line.split()[1:]
            elif line.startswith("summary:"):
                summary = line.split()[1:]
    vals = totals or summary
    if not vals:
        raise ResultError("no totals:/summary: line in %s" % path)
    idx = events.index("Ir") if events and "Ir" in events else 0
    return int(vals[idx])


def measure_instructions(cell, args, extra_args, base_env, outdir):
    w, col = cell.workload, cell.column
    if col.missing:
        cell.instr_reason = col.missing
        return
    pair = w.instr_quick if args.quick else w.instr
    points = []
    for i, extra in enumerate(pair):
        out = os.path.join(outdir, "callgrind", "%s.%s.%d.out" % (w.name, safe_name(col.name), i))
        argv = [args.valgrind, "--tool=callgrind", "-q", "--callgrind-out-file=" + out]
        if col.preload:
            # Tell valgrind the preloaded library is the malloc to run, not to
            # be replaced (callgrind replaces none, but tools that do would).
            argv.append("--soname-synonyms=somalloc=nouserintercepts")
        argv += [os.path.join(args.workload_dir, "bench_" + w.binary)] + w.args + extra
        argv += extra_args.get(w.name, [])
        o = run_cell(w, col, argv, base_env, args.instr_timeout, args.launcher)
        if not o.ok:
            cell.instr_reason = "callgrind run %d: %s" % (i + 1, o.reason)
            return
        try:
            points.append((o.result["ops"], callgrind_total(out)))
        except (OSError, ValueError, ResultError) as e:
            cell.instr_reason = "callgrind output: %s" % e
            return
    (ops1, ir1), (ops2, ir2) = points
    if ops2 <= ops1 or ir2 < ir1:
        cell.instr_reason = "op counts did not grow (%d -> %d)" % (ops1, ops2)
        return
    cell.instr = (ir2 - ir1) / (ops2 - ops1)


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# ---- outputs -----------------------------------------------------------------


def extra_keys(cells):
    """Numeric result fields beyond the required ones, e.g. rss_after_free_kb."""
    keys = []
    for c in cells:
        for r in c.runs:
            if r.ok:
                for k, v in r.result.items():
                    if k not in RESULT_REQUIRED and isinstance(v, (int, float)) and k not in keys:
                        keys.append(k)
    return keys


def write_runs_csv(path, cells, runs):
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["run", "workload", "allocator", "status", "ops", "seconds", "ops_per_sec",
                     "wall_s", "peak_rss_kb", "minflt", "majflt", "checksum", "extra", "reason",
                     "command"])
        for i in range(runs):
            for c in cells:
                if i >= len(c.runs):
                    continue
                r = c.runs[i]
                res = r.result or {}
                extra = " ".join("%s=%s" % (k, v) for k, v in res.items()
                                 if k not in RESULT_REQUIRED)
                wr.writerow([i + 1, c.workload.name, c.column.name, "OK" if r.ok else "FAIL",
                             res.get("ops", ""), res.get("seconds", ""), res.get("ops_per_sec", ""),
                             "%.6f" % r.wall_s if r.wall_s is not None else "",
                             r.peak_rss_kb if r.peak_rss_kb is not None else "",
                             r.minflt if r.minflt is not None else "",
                             r.majflt if r.majflt is not None else "",
                             res.get("checksum", ""), extra, r.reason, r.command])


def write_summary_csv(path, cells, baseline, extras, with_instr):
    header = ["workload", "allocator", "status", "runs", "ops_per_sec", "ratio_vs_baseline",
              "seconds", "wall_s", "peak_rss_kb", "rss_ratio_vs_baseline", "minflt"]
    header += extras
    if with_instr:
        header.append("instr_per_op")
    header += ["baseline", "reason", "args"]
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        for c in cells:
            base = baseline.get(c.workload.name)
            row = [c.workload.name, c.column.name, "OK" if c.ok else "FAIL", len(c.runs)]
            if c.ok:
                ops = c.med("ops_per_sec")
                rss = c.med("peak_rss_kb")
                row += ["%.0f" % ops,
                        "%.4f" % (ops / base.med("ops_per_sec")) if base and base.ok else "",
                        "%.6f" % c.med("seconds"), "%.6f" % c.med("wall_s"), "%.0f" % rss,
                        "%.4f" % (rss / base.med("peak_rss_kb"))
                        if base and base.ok and base.med("peak_rss_kb") else "",
                        "%.0f" % c.med("minflt")]
                for k in extras:
                    v = c.med(k)
                    row.append("" if v is None else fmt_csv(v))
            else:
                row += ["FAIL"] * (7 + len(extras))
            if with_instr:
                if c.workload.instr is None:
                    row.append("")
                else:
                    row.append("%.2f" % c.instr if c.instr is not None else "FAIL")
            reason = c.reason
            if with_instr and c.instr is None and c.instr_reason:
                reason = (reason + "; " if reason else "") + "instructions: " + c.instr_reason
            row += [base.column.name if base else "", reason,
                    " ".join(c.workload.args)]
            wr.writerow(row)


def fmt_csv(v):
    if isinstance(v, int) or float(v).is_integer():
        return "%.0f" % v
    return "%.6g" % v


def md_table(title, workloads, columns, cell_at, fmt_cell):
    lines = ["## " + title, ""]
    lines.append("| workload | " + " | ".join(c.name for c in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for w in workloads:
        row = [fmt_cell(cell_at[(w.name, col.name)]) for col in columns]
        lines.append("| " + w.name + " | " + " | ".join(row) + " |")
    lines.append("")
    return lines


def write_markdown(path, meta, workloads, columns, cell_at, baseline_name, extras, with_instr,
                   runs):
    lines = ["# hakmem bench: %s" % meta["date"], ""]
    lines.append("- command: `%s`" % meta["command"])
    lines.append("- machine: %s" % meta["machine"])
    lines.append("- runs: %d per cell, columns alternated run by run; medians shown" % runs)
    lines.append("- baseline: %s (ratios are allocator / baseline)" % baseline_name)
    lines.append("")
    lines.append("Allocators:")
    lines.append("")
    for col in columns:
        lines.append("- **%s**: %s" % (col.name, col.describe))
    lines.append("")

    def with_ratio(key, fmt):
        def f(cell):
            if not cell.ok:
                return "FAIL"
            v = cell.med(key)
            text = fmt(v)
            base = cell_at.get((cell.workload.name, baseline_name))
            if base is not None and base.ok and base.med(key):
                text += " (%s)" % fmt_ratio(v / base.med(key))
            return text
        return f

    lines += md_table("Throughput (ops/s, median; ratio vs %s, higher is better)" % baseline_name,
                      workloads, columns, cell_at, with_ratio("ops_per_sec", fmt_rate))
    lines += md_table("Peak RSS (MB, median; ratio vs %s, lower is better)" % baseline_name,
                      workloads, columns, cell_at,
                      with_ratio("peak_rss_kb", lambda v: "%.1f" % (v / 1024.0)))
    lines += md_table("Minor page faults (median)", workloads, columns, cell_at,
                      lambda c: "%.0f" % c.med("minflt") if c.ok else "FAIL")
    lines += md_table("Wall time of the process (s, median)", workloads, columns, cell_at,
                      lambda c: "%.3f" % c.med("wall_s") if c.ok else "FAIL")

    # Memory the workloads report themselves (fragmentation's RSS readings).
    mem_keys = [k for k in extras if re.fullmatch(r"rss_[a-z_]+|live_kb", k)]
    rows = []
    for w in workloads:
        for k in mem_keys:
            vals = [cell_at[(w.name, col.name)] for col in columns]
            if not any(c.ok and c.med(k) is not None for c in vals):
                continue
            shown = []
            for c in vals:
                v = c.med(k) if c.ok else None
                shown.append("FAIL" if not c.ok else "" if v is None else fmt_num(v, 4))
            rows.append("| %s | %s | %s |" % (w.name, k, " | ".join(shown)))
    if rows:
        lines += ["## Memory reported by the workloads (KB, median)", ""]
        lines.append("| workload | field | " + " | ".join(c.name for c in columns) + " |")
        lines.append("|---|---|" + "---:|" * len(columns))
        lines += rows
        lines.append("")

    if with_instr:
        iw = [w for w in workloads if w.instr is not None]
        if iw:
            def instr_cell(c):
                if c.instr is not None:
                    return "%.1f" % c.instr
                return "FAIL"
            lines += md_table("Instructions per operation (callgrind, steady state)", iw,
                              columns, cell_at, instr_cell)

    fails = []
    for w in workloads:
        for col in columns:
            c = cell_at[(w.name, col.name)]
            if not c.ok:
                fails.append("- %s / %s: %s" % (w.name, col.name, c.reason))
            if with_instr and w.instr is not None and c.instr is None and c.instr_reason:
                fails.append("- %s / %s (instructions): %s" % (w.name, col.name, c.instr_reason))
    if fails:
        lines += ["## Failures", ""] + fails + [""]
    text = "\n".join(lines)
    with open(path, "w") as f:
        f.write(text + "\n")
    return text


def gp_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_chart(outdir, workloads, columns, cell_at, baseline_name, gnuplot):
    """Throughput and peak RSS relative to the baseline, one bar per column
    per workload; a FAIL cell has no bar. Returns the PNG path or None."""
    dat = os.path.join(outdir, "chart.dat")
    gp = os.path.join(outdir, "chart.gp")
    png = os.path.join(outdir, "chart.png")

    def ratio(w, col, key):
        c = cell_at[(w.name, col.name)]
        b = cell_at.get((w.name, baseline_name))
        if not c.ok or b is None or not b.ok or not b.med(key):
            return "?"
        return "%.4f" % (c.med(key) / b.med(key))

    def header():
        names = []
        for c in columns:
            bad = any(not cell_at[(w.name, c.name)].ok for w in workloads)
            names.append(gp_quote(c.name + (" (FAIL)" if bad else "")))
        return "workload " + " ".join(names) + "\n"

    with open(dat, "w") as f:
        for index, key in enumerate(("ops_per_sec", "peak_rss_kb")):
            if index:
                f.write("\n\n")
            f.write(header())
            for w in workloads:
                f.write(gp_quote(w.name) + " " + " ".join(ratio(w, c, key) for c in columns)
                        + "\n")
    failed = ["%s/%s" % (w.name, c.name) for w in workloads for c in columns
              if not cell_at[(w.name, c.name)].ok]
    if not failed:
        note = ""
    elif len(failed) <= 4:
        note = "\\nFAIL, no bar: " + ", ".join(failed)
    else:
        note = "\\n%d cells FAIL, no bar (see results.md)" % len(failed)
    n = len(columns)

    def plot(index):
        return ", ".join("'chart.dat' index %d using %d:xtic(1) title columnheader(%d)"
                         % (index, i + 2, i + 2) for i in range(n))
    script = """\
set terminal pngcairo noenhanced size {w},900 font ",10"
set output 'chart.png'
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside right top vertical
set xtics rotate by -30
set yrange [0:*]
set multiplot layout 2,1
set title "Throughput relative to {base} (higher is better){note}"
plot {p0}, 1 with lines dt 2 lc rgb 'black' notitle
set title "Peak RSS relative to {base} (lower is better){note}"
plot {p1}, 1 with lines dt 2 lc rgb 'black' notitle
unset multiplot
""".format(w=max(900, 140 * len(workloads) + 60 * n + 200), base=baseline_name.replace('"', ""), note=note.replace('"', ""),
           p0=plot(0), p1=plot(1))
    with open(gp, "w") as f:
        f.write(script)
    try:
        r = subprocess.run([gnuplot, "chart.gp"], cwd=outdir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        progress("chart: gnuplot failed: %s" % e)
        return None
    if r.returncode != 0 or not os.path.exists(png):
        progress("chart: gnuplot failed: %s" % r.stderr.decode("utf-8", "replace").strip())
        return None
    return png


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s" % (cpu, os.cpu_count() or 0, platform.release())


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
                   help="comma-separated workloads (default: all)")
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
    p.add_argument("-n", "--runs", type=int, default=5, help="runs per cell (default 5)")
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


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    # Stopped by SIGTERM, still stop the running workload (run_process).
    signal.signal(signal.SIGTERM, on_sigterm)
    parser, args = parse_args(argv)
    if args.list:
        for w in WORKLOADS:
            print("%-18s %s" % (w.name, w.doc))
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 300.0
    args.instr_timeout = max(args.timeout, 600.0)

    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    for n in names:
        if n not in WORKLOAD_BY_NAME:
            parser.error("unknown workload %r (known: %s)"
                         % (n, ", ".join(w.name for w in WORKLOADS)))
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
    wanted_bins = ["launch"] + [w.binary for w in workloads]
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
    progress("hakmem bench: %d workloads x %d allocators x %d runs -> %s"
             % (len(workloads), len(columns), args.runs, outdir))
    try:
        # Alternate: every column runs once per round, so slow drifts of the
        # machine spread over all columns instead of biasing one.
        for run in range(args.runs):
            for w in workloads:
                wargv = workload_argv(w, args, extra_args)
                for col in columns:
                    c = cell_at[(w.name, col.name)]
                    o = run_cell(w, col, wargv, base_env, args.timeout, args.launcher)
                    c.runs.append(o)
                    done += 1
                    if o.ok:
                        what = "%s ops/s  %.2fs  %.1f MB" % (
                            fmt_rate(o.result["ops_per_sec"]), o.wall_s, o.peak_rss_kb / 1024.0)
                    else:
                        what = "FAIL: " + o.reason
                    progress("[%*d/%d] run %d/%d  %-18s %-14s %s"
                             % (len(str(total)), done, total, run + 1, args.runs, w.name,
                                col.name, what))
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
    write_summary_csv(csv_path, cells, baseline, extras, args.instructions)
    write_runs_csv(os.path.join(outdir, "runs.csv"), cells, args.runs)
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "command": "hakmem bench " + " ".join(shlex.quote(a) for a in shown_args(argv)),
        "machine": machine_description(),
    }
    md_path = os.path.join(outdir, "results.md")
    text = write_markdown(md_path, meta, workloads, columns, cell_at, args.baseline, extras,
                          args.instructions, args.runs)
    print(text, flush=True)
    png = None
    if not args.no_chart:
        if args.gnuplot:
            png = write_chart(outdir, workloads, columns, cell_at, args.baseline, args.gnuplot)
        else:
            progress("chart: gnuplot not found (bench/setup.sh installs gnuplot-nox)")
    progress("wrote %s, %s%s" % (csv_path, md_path, ", " + png if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
