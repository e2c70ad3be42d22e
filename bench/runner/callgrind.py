"""Instructions per operation of the single-threaded workloads, under
valgrind --tool=callgrind.
"""

import os
import re

from runner.measure import ResultError, run_cell


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
