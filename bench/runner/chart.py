"""The chart: throughput and peak RSS relative to the baseline, with error
bars (gnuplot).
"""

import os
import subprocess

from runner.formatting import progress


def gp_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_chart(outdir, workloads, columns, cell_at, baseline_name, gnuplot, confidence=0.95):
    """Throughput and peak RSS relative to the baseline, one bar per column
    per workload with the bootstrap interval of the ratio as its error bar;
    a FAIL cell has no bar. Returns the PNG path or None."""
    dat = os.path.join(outdir, "chart.dat")
    gp = os.path.join(outdir, "chart.gp")
    png = os.path.join(outdir, "chart.png")

    def ratio(w, col, key):
        """ratio, and the bootstrap interval of the ratio as the error bar
        (the baseline against itself shows its own noise)."""
        c = cell_at[(w.name, col.name)]
        b = cell_at.get((w.name, baseline_name))
        if not c.ok or b is None or not b.ok or not b.med(key):
            return "? ? ?"
        cmp = c.compare(b, key, confidence, ("larger", "smaller"))
        if cmp is None:
            return "? ? ?"
        r, ci = cmp[0], cmp[1] or (cmp[0], cmp[0])
        return "%.4f %.4f %.4f" % (r, min(r, ci[0]), max(r, ci[1]))

    def header():
        names = []
        for c in columns:
            bad = any(not cell_at[(w.name, c.name)].ok for w in workloads)
            names += [gp_quote(c.name + (" (FAIL)" if bad else "")), '"lo"', '"hi"']
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
        return ", ".join("'chart.dat' index %d using %d:%d:%d:xtic(1) title columnheader(%d)"
                         % (index, 3 * i + 2, 3 * i + 3, 3 * i + 4, 3 * i + 2)
                         for i in range(n))
    script = """\
set terminal pngcairo noenhanced size {w},900 font ",10"
set output 'chart.png'
set datafile missing '?'
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside right top vertical
set xtics rotate by -30
set yrange [0:*]
set multiplot layout 2,1
set title "Throughput relative to {base} (higher is better; bars: {pct} CI of the ratio){note}"
plot {p0}, 1 with lines dt 2 lc rgb 'black' notitle
set title "Peak RSS relative to {base} (lower is better; bars: {pct} CI of the ratio){note}"
plot {p1}, 1 with lines dt 2 lc rgb 'black' notitle
unset multiplot
""".format(w=max(900, 140 * len(workloads) + 60 * n + 200), base=baseline_name.replace('"', ""), note=note.replace('"', ""),
           p0=plot(0), p1=plot(1), pct="%g%%" % (confidence * 100))
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
