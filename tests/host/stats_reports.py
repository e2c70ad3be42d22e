#!/usr/bin/env python3
"""The host's reports under the preloaded host (tests/host/CMakeLists.txt):

    stats_reports.py LIBHAKMEM PROGRAM HAKMEM_CLI TELEMETRY_INI

PROGRAM is stats_reports.c: 16 MB touched of a 64 MB block, ~20 MB of 1000 B
blocks, 4 MB of 20 KB blocks, all live.

  - malloc_info's XML parses (xml.etree) with glibc's structure: <malloc
    version="1">, one <heap nr=...> per box, the <total type=fast|rest|mmap>
    and <system type=current|max> totals; the heaps add up to the totals,
    and mallinfo2 says the same (arena = system current, uordblks = in use,
    fordblks = total rest).
  - resident, not mapped: the large box holds 64 MB mapped but 16 MB
    resident (+-1 MB).
  - the boxes' resident bytes plus the host's own agree with the process's
    RSS read at the same moment: RSS - (boxes + host), the program, libc,
    ld.so and stacks, is between -1 MB and +6 MB (TOLERANCE below), while
    the workload keeps ~40 MB resident.
  - every report names its process: host.stats_file=...%p writes one file
    per process (a forked child too), each with its pid and command line;
    the text table and malloc_stats start with "hakmem stats: pid N,
    command: ...".
  - the telemetry box's JSON has resident_bytes per box and per bucket
    (LARGE: 16 MB) and `hakmem report A B` lists them in its diff.
Exit 0 on success, 1 with a message.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

MB = 1 << 20
# The rest of the RSS: the program, libc, ld.so, the box .so files' text,
# stacks. Measured 1.0-1.3 MB on Debian 12; 6 MB leaves room for another libc.
TOLERANCE_LOW, TOLERANCE_HIGH = -1 * MB, 6 * MB


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(lib, prog, settings, *args, config=None):
    env = dict(os.environ, LD_PRELOAD=lib, HAKMEM_SET=settings)
    env.pop("HAKMEM_CONFIG", None)
    if config:
        env["HAKMEM_CONFIG"] = config
    try:
        r = subprocess.run([prog] + list(args), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    except subprocess.TimeoutExpired:
        fail("%s timed out" % prog)
    if r.returncode != 0:
        fail("%s exited %d: %s" % (prog, r.returncode, r.stderr[-2000:]))
    return r


def num(el, attr="size"):
    v = el.get(attr)
    if v is None or not v.isdigit():
        fail("<%s> has no integer %s=: %s" % (el.tag, attr, ET.tostring(el).decode()))
    return int(v)


def typed(parent, tag, kind):
    found = [e for e in parent.findall(tag) if e.get("type") == kind]
    if len(found) != 1:
        fail("<%s> has %d <%s type=\"%s\"> (expected 1)" % (parent.tag, len(found), tag, kind))
    return found[0]


def check_xml(stdout):
    m = re.search(r"^MALLINFO2 arena=(\d+) uordblks=(\d+) fordblks=(\d+) fsmblks=(\d+)$", stdout,
                  re.M)
    if not m:
        fail("no MALLINFO2 line in %r" % stdout[:500])
    arena, uord, ford, fsm = (int(x) for x in m.groups())
    start, end = stdout.find("<malloc"), stdout.find("</malloc>")
    if start < 0 or end < 0:
        fail("no <malloc>...</malloc> on stdout")
    try:
        root = ET.fromstring(stdout[start:end + len("</malloc>")])
    except ET.ParseError as e:
        fail("malloc_info is not well-formed XML: %s" % e)
    if root.tag != "malloc" or root.get("version") != "1":
        fail("root <%s version=%r>, expected <malloc version=\"1\">" % (root.tag,
                                                                      root.get("version")))
    heaps = root.findall("heap")
    if not heaps or [h.get("nr") for h in heaps] != [str(i) for i in range(len(heaps))]:
        fail("heaps numbered %r" % [h.get("nr") for h in heaps])
    by_name = {}
    mapped_sum = 0
    for h in heaps:
        if h.find("sizes") is None:
            fail("heap %s has no <sizes>" % h.get("nr"))
        typed(h, "total", "fast")
        typed(h, "total", "rest")
        mapped_sum += num(typed(h, "system", "current"))
        typed(h, "system", "max")
        typed(h, "aspace", "total")
        by_name[h.get("name")] = h
    current = num(typed(root, "system", "current"))
    if current != mapped_sum:
        fail("total system current %d is not the sum of the heaps' %d" % (current, mapped_sum))
    typed(root, "total", "fast")
    typed(root, "total", "mmap")
    rest = num(typed(root, "total", "rest"))
    hk = root.find("hakmem")
    if hk is None:
        fail("no <hakmem> totals element")
    if arena != current or ford != rest or uord != num(hk, "in_use") or fsm != num(hk, "cached"):
        fail("mallinfo2 arena=%d uordblks=%d fordblks=%d fsmblks=%d; malloc_info current=%d "
             "in_use=%d rest=%d cached=%d" % (arena, uord, ford, fsm, current, num(hk, "in_use"),
                                             rest, num(hk, "cached")))
    requested = (64 << 20) + 20000 * 1000 + 200 * (20 << 10)
    if not requested <= uord <= requested + 4 * MB:
        fail("in use %d; the program holds %d bytes (plus class rounding, stdio's buffers)"
             % (uord, requested))
    large = by_name.get("large")
    if large is None:
        fail("no heap named large among %s" % sorted(by_name))
    lmapped = num(typed(large, "system", "current"))
    lres = num(large.find("hakmem"), "resident")
    if lmapped < 64 * MB or not 15 * MB <= lres <= 17 * MB:
        fail("large: mapped %d resident %d; expected >= 64 MB mapped, 16 MB resident"
             % (lmapped, lres))
    return int(hk.get("pid")), hk


def check_rss(report, what):
    boxes = sum(b["resident_bytes"] for b in report["boxes"])
    if boxes != report["resident_bytes"]:
        fail("%s: boxes' resident bytes sum to %d, total says %d" % (what, boxes,
                                                                    report["resident_bytes"]))
    rss, host = report["process_rss_bytes"], report["host_resident_bytes"]
    rest = rss - boxes - host
    if not TOLERANCE_LOW <= rest <= TOLERANCE_HIGH:
        fail("%s: RSS %d, boxes %d + host %d leave %d, outside [%d, %d]"
             % (what, rss, boxes, host, rest, TOLERANCE_LOW, TOLERANCE_HIGH))
    if boxes < 38 * MB:
        fail("%s: the boxes hold %d resident, the workload touched about 40 MB" % (what, boxes))
    for b in report["boxes"]:
        if b["resident_bytes"] > b["bytes_mapped"] + (64 << 10) and b["bytes_mapped"]:
            fail("%s: box %s resident %d above mapped %d" % (what, b["name"], b["resident_bytes"],
                                                           b["bytes_mapped"]))
    print("%s: RSS %.1f MB = boxes %.1f + host %.1f + rest %.1f"
          % (what, rss / MB, boxes / MB, host / MB, rest / MB))


def check_header(text, pid, prog, what):
    want = "hakmem stats: pid %d, command: %s" % (pid, prog)
    if want not in text:
        fail("%s: no header %r in:\n%s" % (what, want, text[:1500]))
    if not re.search(r"^box +plugin +allocs +frees +in use +mapped +resident +huge +peak map$", text,
                     re.M):
        fail("%s: the table has no resident column next to mapped:\n%s" % (what, text[:1500]))


def check_telemetry(lib, prog, cli, ini, tmp):
    paths = []
    for side in "ab":
        path = os.path.join(tmp, "tel-%s.json" % side)
        run(lib, prog, "box.telemetry.text=off,box.telemetry.json_file=" + path, config=ini)
        paths.append(path)
    with open(paths[0]) as f:
        tel = json.load(f)
    large = [b for b in tel["boxes"] if b["name"] == "large"]
    if not large or not 15 * MB <= large[0]["resident_bytes"] <= 17 * MB:
        fail("telemetry: box large resident %r, expected 16 MB" % large)
    if not 15 * MB <= tel["buckets"]["LARGE"]["resident_bytes"] <= 17 * MB:
        fail("telemetry: bucket LARGE resident %r" % tel["buckets"]["LARGE"])
    if tel["process"]["rss_bytes"] < 38 * MB or "host_resident_bytes" not in tel["process"]:
        fail("telemetry: process %r" % tel["process"])
    r = subprocess.run([cli, "report"] + paths, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    for name in ("box.large.resident_bytes", "LARGE.resident_bytes", "process.rss_bytes"):
        if r.returncode != 0 or not re.search(r"^%s +\d+ +\d+ " % re.escape(name), r.stdout, re.M):
            fail("hakmem report A B (exit %d) has no %s line:\n%s%s"
                 % (r.returncode, name, r.stdout, r.stderr))


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    lib, prog, cli, telemetry_ini = argv
    with tempfile.TemporaryDirectory() as tmp:
        pattern = os.path.join(tmp, "stats-%p.json")
        r = run(lib, prog, "host.stats=json,host.stats_file=" + pattern, "fork")
        pid, _ = check_xml(r.stdout)
        check_header(r.stderr, pid, prog + " fork", "malloc_stats")
        files = sorted(os.listdir(tmp))
        if len(files) != 2 or "stats-%d.json" % pid not in files:
            fail("stats_file %s: files %s, expected stats-%d.json and the child's"
                 % (pattern, files, pid))
        for name in files:
            with open(os.path.join(tmp, name)) as f:
                try:
                    report = json.load(f)
                except ValueError as e:
                    fail("%s is not JSON: %s" % (name, e))
            if name != "stats-%d.json" % report["pid"] or report["command"] != prog + " fork":
                fail("%s says pid %r command %r" % (name, report["pid"], report["command"]))
            if report["pid"] == pid:
                check_rss(report, "exit report")
        r = run(lib, prog, "host.stats=text")
        pid2 = int(re.search(r"<hakmem pid=\"(\d+)\"", r.stdout).group(1))
        check_header(r.stderr, pid2, prog, "text exit report")
        if r.stderr.count("hakmem stats: pid %d," % pid2) != 2:
            fail("expected malloc_stats' table and the exit report, both with pid %d:\n%s"
                 % (pid2, r.stderr))
        check_telemetry(lib, prog, cli, telemetry_ini, tmp)
    print("stats reports: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
