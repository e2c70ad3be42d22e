#!/usr/bin/env python3
"""Huge-page coverage under configs/huge-pages.ini, in the THP mode each run
establishes (preloaded host, real workloads):

  - each workload's output (RESULT checksum) equals the default config's;
  - with the machine's mode (sysfs): the report names it; under madvise or
    always the boxes hold bytes on huge pages (> 0), never more than their
    resident bytes; under never, 0;
  - with THP disabled for the process (prctl PR_SET_THP_DISABLE, inherited
    by exec): the report says never and every coverage figure is exactly 0;
  - big_buffers (blocks of 5-25 MB replaced at random, so the large box
    carves, moves and trims its cache all run long): under madvise or always
    at least half of the large box's resident bytes are on huge pages (99%
    on the machine this was written on; 15% before blocks were whole huge
    pages, when every cut split one);
  - the text table has the huge column next to resident;
  - the telemetry box's JSON carries the same coverage per box.

usage: huge_coverage.py LIBHAKMEM CONFIG_DIR BENCH_BINARY...
"""
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile

PR_SET_THP_DISABLE = 41
TIMEOUT = 60  # seconds per run: a hang fails the test


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def machine_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return "never"
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else "never"


def thp_off():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_THP_DISABLE)")


def run(lib, config, argv, stats, no_thp, tmp):
    path = os.path.join(tmp, "report-%p.txt")
    env = dict(os.environ, LD_PRELOAD=lib, HAKMEM_CONFIG=config,
               HAKMEM_SET="host.stats=%s,host.stats_file=%s" % (stats, path))
    try:
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                           preexec_fn=thp_off if no_thp else None)
    except subprocess.TimeoutExpired:
        fail("%s timed out after %d s (config %s)" % (argv[0], TIMEOUT, config))
    if r.returncode != 0:
        fail("%s exited %d under %s:\n%s" % (argv, r.returncode, config, r.stderr[-2000:]))
    m = re.search(r"checksum=([0-9a-f]+)", r.stdout)
    if not m:
        fail("%s printed no RESULT line: %r" % (argv, r.stdout))
    report = path.replace("%p", str(find_pid(tmp)))
    with open(report) as f:
        text = f.read()
    os.unlink(report)
    return m.group(1), text


def find_pid(tmp):
    names = [n for n in os.listdir(tmp) if n.startswith("report-")]
    if len(names) != 1:
        fail("expected one report file in %s, found %r" % (tmp, names))
    return names[0][len("report-"):-len(".txt")]


def main():
    lib, config_dir, benches = sys.argv[1], sys.argv[2], sys.argv[3:]
    huge_ini = os.path.join(config_dir, "huge-pages.ini")
    default_ini = os.path.join(config_dir, "default.ini")
    mode = machine_mode()
    args = {"vm_mixed": ["--cycles=5000", "--ws=64"], "mid_large_mt": ["--cycles=50000"],
            "big_buffers": ["--replace=200", "--live=8"]}
    floors = {"big_buffers": ("large", 0.5)}  # box, least share of its resident on huge pages
    with tempfile.TemporaryDirectory() as tmp:
        for bench in benches:
            name = os.path.basename(bench)[len("bench_"):]
            argv = [bench] + args.get(name, [])
            want, _ = run(lib, default_ini, argv, "json", False, tmp)
            for no_thp in (False, True):
                expect = "never" if no_thp else mode
                what = "%s, THP %s%s" % (name, expect, " (prctl)" if no_thp else "")
                got, text = run(lib, huge_ini, argv, "json", no_thp, tmp)
                if got != want:
                    fail("%s: checksum %s, default config %s" % (what, got, want))
                rep = json.loads(text)
                if rep["thp_mode"] != expect:
                    fail("%s: report says THP %r" % (what, rep["thp_mode"]))
                huge = rep["huge_bytes"]
                if huge != sum(b["huge_bytes"] for b in rep["boxes"]):
                    fail("%s: boxes' huge bytes do not sum to %d" % (what, huge))
                for b in rep["boxes"]:
                    if b["huge_bytes"] > b["resident_bytes"]:
                        fail("%s: box %s has %d on huge pages, %d resident"
                             % (what, b["name"], b["huge_bytes"], b["resident_bytes"]))
                if expect == "never":
                    if huge != 0 or rep["process_huge_bytes"] != 0:
                        fail("%s: coverage %d (process %d), expected 0"
                             % (what, huge, rep["process_huge_bytes"]))
                elif huge <= 0:
                    fail("%s: no box memory on huge pages (resident %d)"
                         % (what, rep["resident_bytes"]))
                elif name in floors:
                    box, share = floors[name]
                    b = [b for b in rep["boxes"] if b["name"] == box][0]
                    if b["huge_bytes"] < share * b["resident_bytes"]:
                        fail("%s: box %s has %d of %d resident bytes on huge pages, under %d%%"
                             % (what, box, b["huge_bytes"], b["resident_bytes"], share * 100))
                print("ok %s: %d of %d resident bytes on huge pages"
                      % (what, huge, rep["resident_bytes"]))
        _, text = run(lib, huge_ini, [benches[0]] + args.get("vm_mixed", []), "text", False, tmp)
        if not re.search(r"^box +plugin +allocs +frees +in use +mapped +resident +huge +peak map$",
                         text, re.M):
            fail("text report: no huge column next to resident:\n" + text[:1500])
        if not re.search(r"^huge pages \(THP %s\): boxes \S+ of their \S+ resident" % mode,
                         text, re.M):
            fail("text report: no huge-page summary line for THP %s:\n%s" % (mode, text[:1500]))
        print("ok text report")
        check_telemetry(lib, huge_ini, [benches[0]] + args.get("vm_mixed", []), mode, tmp)


def check_telemetry(lib, huge_ini, argv, mode, tmp):
    """huge-pages.ini plus a telemetry box: its JSON reports the mode and,
    per box, huge bytes within the resident ones (> 0 in all unless never)."""
    ini = os.path.join(tmp, "huge-telemetry.ini")
    out = os.path.join(tmp, "tel.json")
    with open(huge_ini) as f:
        text = f.read()
    with open(ini, "w") as f:
        f.write(text + "\n[box.telemetry]\nplugin = telemetry\ntext = off\njson_file = %s\n" % out)
    env = dict(os.environ, LD_PRELOAD=lib, HAKMEM_CONFIG=ini)
    try:
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        fail("telemetry run timed out after %d s" % TIMEOUT)
    if r.returncode != 0:
        fail("telemetry run exited %d:\n%s" % (r.returncode, r.stderr[-2000:]))
    with open(out) as f:
        tel = json.load(f)
    if tel["process"].get("thp_mode") != mode:
        fail("telemetry: THP mode %r, machine %r" % (tel["process"].get("thp_mode"), mode))
    total = sum(b["huge_bytes"] for b in tel["boxes"])
    for b in tel["boxes"]:
        if b["huge_bytes"] > b["resident_bytes"]:
            fail("telemetry: box %s huge %d above resident %d"
                 % (b["name"], b["huge_bytes"], b["resident_bytes"]))
    if (total > 0) != (mode != "never"):
        fail("telemetry: %d bytes on huge pages under THP %s" % (total, mode))
    print("ok telemetry: %d bytes on huge pages" % total)


if __name__ == "__main__":
    main()
