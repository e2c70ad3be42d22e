"""The matrix: one cell per workload and column, holding its runs.
"""

import os
import statistics


def median(values):
    return statistics.median(values) if values else None


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


def workload_argv(workload, args, extra_args):
    argv = [os.path.join(args.workload_dir, "bench_" + workload.binary)] + workload.args
    if args.quick:
        argv += workload.quick
    argv += extra_args.get(workload.name, [])
    return argv
