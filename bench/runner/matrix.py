"""The matrix: one cell per workload and column, holding its runs.
"""

import os
import statistics
import subprocess

from runner.stats import Spread, bootstrap_ratio_ci, cell_seed, verdict


def median(values):
    return statistics.median(values) if values else None


class Cell:
    def __init__(self, workload, column):
        self.workload = workload
        self.column = column
        self.runs = []        # RunOutcome per run
        self.instr = None     # instructions per op, or None
        self.instr_reason = ""
        self._spread = {}
        self._compare = {}

    @property
    def ok(self):
        return bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def reason(self):
        for i, r in enumerate(self.runs):
            if not r.ok:
                return "run %d: %s" % (i + 1, r.reason)
        return ""

    def values(self, key):
        """A metric over the runs, in run order: runner-side (wall_s,
        peak_rss_kb, minflt) or a numeric field of the result line."""
        vals = []
        for r in self.runs:
            if key in ("wall_s", "peak_rss_kb", "minflt", "majflt"):
                v = getattr(r, key)
            else:
                v = r.result.get(key) if r.result else None
            if isinstance(v, (int, float)):
                vals.append(v)
        return vals

    def med(self, key):
        """Median of a metric over the runs."""
        return median(self.values(key))

    def spread(self, key, confidence):
        """Median, min, max and bootstrap interval of the median (seeded by
        the cell's names, so the same runs give the same interval)."""
        vals = self.values(key)
        if not vals:
            return None
        memo = (key, confidence, tuple(vals))
        if memo not in self._spread:
            self._spread[memo] = Spread(vals, confidence,
                                        cell_seed(self.workload.name, self.column.name, key))
        return self._spread[memo]

    def compare(self, base, key, confidence, words):
        """Against the baseline cell: (ratio of medians, ratio interval or
        None, verdict word, p). None when either side has no values."""
        a, b = self.values(key), base.values(key)
        if not a or not b or not median(b):
            return None
        memo = (key, confidence, tuple(a), tuple(b), base.column.name, tuple(words))
        if memo not in self._compare:
            seed = cell_seed(self.workload.name, self.column.name, base.column.name, key)
            word, p = verdict(a, b, confidence, words)
            self._compare[memo] = (median(a) / median(b),
                                   bootstrap_ratio_ci(a, b, confidence, seed), word, p)
        return self._compare[memo]


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


_help_cache = {}


def thread_argument(workload, threads, workload_dir):
    """The argument that runs the workload at `threads` threads, or None
    when it has no thread count (see Workload.threads)."""
    spec = workload.threads
    if spec is None:
        binary = os.path.join(workload_dir, "bench_" + workload.binary)
        if binary not in _help_cache:
            try:
                r = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=30)
                _help_cache[binary] = r.stdout.decode("utf-8", "replace")
            except (OSError, subprocess.TimeoutExpired):
                _help_cache[binary] = ""
        spec = ("threads", 1) if "--threads=" in _help_cache[binary] else False
    if not spec:
        return None
    key, per = spec
    return "--%s=%d" % (key, max(1, threads // per))


def workload_argv(workload, args, extra_args):
    if workload.program:
        p = workload.program
        return p.argv(p.inputs or "", p.scratch() if p.inputs else "")
    argv = [os.path.join(args.workload_dir, "bench_" + workload.binary)] + workload.args
    if args.quick:
        argv += workload.quick
    # After the workload's own arguments (the last occurrence wins), before
    # --arg, which the user may use to override it.
    if getattr(args, "threads", None):
        extra = thread_argument(workload, args.threads, args.workload_dir)
        if extra:
            argv.append(extra)
    argv += extra_args.get(workload.name, [])
    return argv
