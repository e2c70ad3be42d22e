"""The outputs: results.csv (medians), runs.csv (every run) and results.md.
"""

import csv
import os
import platform
import re

from runner.formatting import fmt_num, fmt_rate, fmt_ratio
from runner.measure import RESULT_REQUIRED
from runner.stats import WORDS_MEMORY, WORDS_THROUGHPUT, min_runs_for


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


# The ratios' verdict words: throughput higher is better, memory lower.
THROUGHPUT_WORDS = WORDS_THROUGHPUT
MEMORY_WORDS = WORDS_MEMORY


def summary_header(extras, with_instr):
    header = ["workload", "allocator", "status", "runs",
              "ops_per_sec", "ops_min", "ops_max", "ops_ci_lo", "ops_ci_hi",
              "ratio_vs_baseline", "ratio_ci_lo", "ratio_ci_hi", "p_value", "verdict",
              "seconds", "wall_s", "wall_min", "wall_max",
              "peak_rss_kb", "rss_min", "rss_max", "rss_ci_lo", "rss_ci_hi",
              "rss_ratio_vs_baseline", "rss_ratio_ci_lo", "rss_ratio_ci_hi", "rss_p_value",
              "rss_verdict", "minflt", "minflt_min", "minflt_max"]
    header += extras
    if with_instr:
        header.append("instr_per_op")
    header += ["baseline", "confidence", "reason", "args"]
    return header


def _spread_cols(sp, fmt):
    return [fmt(sp.median), fmt(sp.min), fmt(sp.max), fmt(sp.ci[0]), fmt(sp.ci[1])]


def _compare_cols(cell, base, key, confidence, words):
    """ratio, its interval, p, verdict; the baseline's own: 1, -, -, baseline."""
    if base is None or not base.ok:
        return ["", "", "", "", ""]
    if base is cell:
        return ["%.4f" % 1.0, "", "", "", "baseline"]
    cmp = cell.compare(base, key, confidence, words)
    if cmp is None:
        return ["", "", "", "", ""]
    ratio, ci, word, p = cmp
    return ["%.4f" % ratio, "%.4f" % ci[0] if ci else "", "%.4f" % ci[1] if ci else "",
            "%.4g" % p, word]


def write_summary_csv(path, cells, baseline, extras, with_instr, confidence=0.95):
    header = summary_header(extras, with_instr)
    f0 = lambda v: "%.0f" % v  # noqa: E731
    f6 = lambda v: "%.6f" % v  # noqa: E731
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        for c in cells:
            base = baseline.get(c.workload.name)
            row = [c.workload.name, c.column.name, "OK" if c.ok else "FAIL", len(c.runs)]
            if c.ok:
                row += _spread_cols(c.spread("ops_per_sec", confidence), f0)
                row += _compare_cols(c, base, "ops_per_sec", confidence, THROUGHPUT_WORDS)
                wall = c.spread("wall_s", confidence)
                row += [f6(c.med("seconds")), f6(wall.median), f6(wall.min), f6(wall.max)]
                row += _spread_cols(c.spread("peak_rss_kb", confidence), f0)
                row += _compare_cols(c, base, "peak_rss_kb", confidence, MEMORY_WORDS)
                flt = c.spread("minflt", confidence)
                row += [f0(flt.median), f0(flt.min), f0(flt.max)]
                for k in extras:
                    v = c.med(k)
                    row.append("" if v is None else fmt_csv(v))
            else:
                row += ["FAIL"] * (len(header) - len(row) - (1 if with_instr else 0) - 4)
            if with_instr:
                if c.workload.instr is None:
                    row.append("")
                else:
                    row.append("%.2f" % c.instr if c.instr is not None else "FAIL")
            reason = c.reason
            if with_instr and c.instr is None and c.instr_reason:
                reason = (reason + "; " if reason else "") + "instructions: " + c.instr_reason
            row += [base.column.name if base else "", "%g" % confidence, reason,
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


def fmt_spread(sp, fmt):
    """median [lo-hi]: the bootstrap interval of the median beside it."""
    if sp.n < 2:
        return fmt(sp.median)
    return "%s [%s-%s]" % (fmt(sp.median), fmt(sp.ci[0]), fmt(sp.ci[1]))


def write_markdown(path, meta, workloads, columns, cell_at, baseline_name, extras, with_instr,
                   runs, confidence=0.95, note=None):
    pct = "%g%%" % (confidence * 100)
    lines = ["# hakmem bench: %s" % meta["date"], ""]
    lines.append("- command: `%s`" % meta["command"])
    lines.append("- machine: %s" % meta["machine"])
    lines.append("- runs: %d per cell, columns alternated run by run; medians shown" % runs)
    if note:
        lines.append("- " + note)
    lines.append("- spread: `median [lo-hi]`, [lo-hi] the %s bootstrap confidence interval "
                 "of the median (2000 resamples, seeded: the same runs give the same "
                 "interval); min and max in results.csv" % pct)
    lines.append("- verdicts: two-sided Mann-Whitney U test (exact) of each cell's runs "
                 "against the baseline's, at %s confidence (p < %g): faster/slower "
                 "(throughput), larger/smaller (peak RSS), or within noise; with fewer than "
                 "%d runs no difference can be significant"
                 % (pct, round(1.0 - confidence, 6), min_runs_for(confidence)))
    lines.append("- baseline: %s (ratios are allocator / baseline)" % baseline_name)
    lines.append("")
    lines.append("Allocators:")
    lines.append("")
    for col in columns:
        lines.append("- **%s**: %s" % (col.name, col.describe))
    lines.append("")

    def with_ratio(key, fmt, words):
        def f(cell):
            if not cell.ok:
                return "FAIL"
            text = fmt_spread(cell.spread(key, confidence), fmt)
            base = cell_at.get((cell.workload.name, baseline_name))
            if base is cell:
                return text + " (1.00x, baseline)"
            if base is not None and base.ok:
                cmp = cell.compare(base, key, confidence, words)
                if cmp is not None:
                    text += " (%s, %s)" % (fmt_ratio(cmp[0]), cmp[2])
            return text
        return f

    lines += md_table("Throughput (ops/s, median [%s CI]; ratio vs %s and verdict, higher is "
                      "better)" % (pct, baseline_name),
                      workloads, columns, cell_at,
                      with_ratio("ops_per_sec", fmt_rate, THROUGHPUT_WORDS))
    lines += md_table("Peak RSS (MB, median [%s CI]; ratio vs %s and verdict, lower is better)"
                      % (pct, baseline_name), workloads, columns, cell_at,
                      with_ratio("peak_rss_kb", lambda v: "%.1f" % (v / 1024.0), MEMORY_WORDS))
    lines += md_table("Minor page faults (median [%s CI])" % pct, workloads, columns, cell_at,
                      lambda c: fmt_spread(c.spread("minflt", confidence),
                                           lambda v: "%.0f" % v) if c.ok else "FAIL")
    lines += md_table("Wall time of the process (s, median [%s CI])" % pct, workloads, columns,
                      cell_at,
                      lambda c: fmt_spread(c.spread("wall_s", confidence),
                                           lambda v: "%.3f" % v) if c.ok else "FAIL")

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
