#!/usr/bin/env python3
"""[replay] tests: record real programs and the threaded test program, replay
them under hakmem's default config, hardened.ini and glibc, and check that
the replay made exactly the recorded calls; fork and exec; traces that are
corrupt, truncated or of another version; recorded misbehaviour.

    replay_tests.py --build DIR --source DIR CASE
"""

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

TIMEOUT = 60
KINDS = ["malloc", "calloc", "realloc", "reallocarray", "free", "memalign", "posix_memalign",
         "aligned_alloc", "valloc", "pvalloc", "malloc_usable_size"]


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def run(argv, env=None, expect_rc=0):
    e = dict(os.environ)
    for k in ("LD_PRELOAD", "HAKMEM_CONFIG", "HAKMEM_SET"):
        e.pop(k, None)
    e.update(env or {})
    try:
        p = subprocess.run(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Failed("timed out after %ds: %s" % (TIMEOUT, " ".join(argv)))
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if expect_rc is not None and p.returncode != expect_rc:
        raise Failed("%s: exit %d (expected %d)\nstdout: %s\nstderr: %s"
                     % (" ".join(argv), p.returncode, expect_rc, out[-2000:], err[-2000:]))
    return p.returncode, out, err


class Env:
    def __init__(self, build, source, work):
        self.hakmem = os.path.join(build, "bin", "hakmem")
        self.replay = os.path.join(build, "bin", "bench_replay")
        self.prog = os.path.join(build, "bin", "rep_threads")
        self.lib = os.path.join(build, "lib", "libhakmem.so")
        self.source = source
        self.work = work

    def record(self, out, argv, extra=()):
        _, _, err = run([self.hakmem, "record", "-o", out] + list(extra) + ["--"] + argv)
        return err

    def stats(self, path):
        _, out, _ = run([self.hakmem, "trace", "stats", path, "--json"])
        return json.loads(out)

    def columns(self):
        return [("default", {"LD_PRELOAD": self.lib}),
                ("hardened", {"LD_PRELOAD": self.lib,
                              "HAKMEM_CONFIG": os.path.join(self.source, "configs", "hardened.ini")}),
                ("glibc", {})]

    def replay_result(self, trace, env, extra=(), expect_rc=0):
        rc, out, err = run([self.replay, "--trace=" + trace] + list(extra), env=env, expect_rc=expect_rc)
        lines = [l for l in out.splitlines() if l.startswith("RESULT ")]
        if expect_rc != 0:
            return rc, None, err
        check(len(lines) == 1, "no RESULT line from the replay: %r %r" % (out, err))
        fields = dict(t.split("=", 1) for t in lines[0].split()[1:])
        return rc, fields, err


def check_replay_matches(env, trace, st, ordered_too=True):
    """Every column replays exactly the recorded calls and bytes; the peak
    of live bytes is exact when the replay runs in the recorded order."""
    for name, cenv in env.columns():
        modes = [[]] + ([["--ordered"]] if ordered_too else [])
        for mode in modes:
            _, r, _ = env.replay_result(trace, cenv, mode)
            what = "%s %s" % (name, " ".join(mode) or "concurrent")
            for k in KINDS:
                check(int(r["calls_" + k]) == st["kinds"][k],
                      "%s: %d %s calls replayed, %d recorded" % (what, int(r["calls_" + k]), k, st["kinds"][k]))
            check(int(r["bytes"]) == st["bytes"],
                  "%s: %s bytes replayed, %d recorded" % (what, r["bytes"], st["bytes"]))
            check(int(r["diverged"]) == 0, "%s: %s calls diverged" % (what, r["diverged"]))
            if r["peak_exact"] == "1":
                check(int(r["peak_live_bytes"]) == st["peak_live_bytes"],
                      "%s: peak live %s bytes, recorded %d" % (what, r["peak_live_bytes"],
                                                              st["peak_live_bytes"]))
            check(int(r["ops"]) == st["calls"], "%s: %s calls, trace %d" % (what, r["ops"], st["calls"]))


def own_counts(stdout):
    line = [l for l in stdout.splitlines() if l.startswith("OWN ")]
    check(len(line) == 1, "the test program printed no OWN line: %r" % stdout)
    return {k: int(v) for k, v in (t.split("=") for t in line[0].split()[1:])}


def case_threads(env):
    trace = os.path.join(env.work, "threads.hkt")
    # The program's stdout goes through hakmem record untouched.
    rc, out, err = run([env.hakmem, "record", "-o", trace, "--", env.prog, "--threads=4", "--rounds=3000"])
    own = own_counts(out)
    st = env.stats(trace)
    # glibc itself allocates (pthread_create's TLS, stdio's buffer): the
    # kinds it uses may be a little above the program's own count; the
    # others are the program's alone.
    for k, v in own.items():
        if k == "remote_frees":
            continue
        got = st["kinds"][k]
        if k in ("malloc", "calloc", "realloc", "free"):
            check(v <= got <= v + 64, "%s: the program made %d calls, the trace has %d" % (k, v, got))
        else:
            check(got == v, "%s: the program made %d calls, the trace has %d" % (k, v, got))
    check(st["threads"] >= 5, "%d threads in the trace, expected the main thread and 4 workers" % st["threads"])
    check(st["cross_thread_frees"] >= own["remote_frees"] > 0,
          "%d cross-thread frees in the trace, the program made %d" % (st["cross_thread_frees"],
                                                                      own["remote_frees"]))
    check(st["waits"] > 0, "no call of the trace waits for another thread")
    check_replay_matches(env, trace, st)


def case_churn(env):
    """Short threads, a few alive at once, each leaving blocks for the main
    thread: threads are recreated as they lived, and a thread reuses the
    block slots of threads that ended before it started."""
    trace = os.path.join(env.work, "churn.hkt")
    churn = os.path.join(os.path.dirname(env.replay), "bench_thread_churn")
    env.record(trace, [churn, "--threads=100", "--allocs=200", "--concurrent=4"])
    st = env.stats(trace)
    check(st["threads"] == 101, "churn: %d threads in the trace, expected 101" % st["threads"])
    check(st["cross_thread_frees"] > 0, "churn: no cross-thread frees")
    check(st["slots"] < st["kinds"]["malloc"] // 2,
          "churn: %d block slots for %d mallocs: ended threads' slots not reused"
          % (st["slots"], st["kinds"]["malloc"]))
    check_replay_matches(env, trace, st)


def case_program(env, name, argv):
    trace = os.path.join(env.work, name + ".hkt")
    env.record(trace, argv)
    st = env.stats(trace)
    check(st["calls"] > 1000, "%s: only %d calls recorded" % (name, st["calls"]))
    check(st["kinds"]["malloc"] > 0 and st["kinds"]["free"] > 0, "%s: no malloc/free recorded" % name)
    check_replay_matches(env, trace, st, ordered_too=st["threads"] > 1)


def case_python(env):
    case_program(env, "python", ["/usr/bin/python3",
                                 os.path.join(env.source, "bench", "programs", "python_objects.py")])


def case_sqlite(env):
    case_program(env, "sqlite", ["sqlite3", ":memory:",
                                 ".read " + os.path.join(env.source, "bench", "programs",
                                                         "sqlite_workload.sql")])


def case_fork(env):
    pattern = os.path.join(env.work, "fork.%p.hkt")
    err = env.record(pattern, [env.prog, "--fork", "--threads=2", "--rounds=200"])
    files = sorted(f for f in os.listdir(env.work) if f.startswith("fork.") and f.endswith(".hkt"))
    check(len(files) == 2, "fork: %d traces (%s), expected one per process\n%s" % (len(files), files, err))
    st = [env.stats(os.path.join(env.work, f)) for f in files]
    parent = [s for s in st if s["kinds"]["malloc"] >= 5000]
    child = [s for s in st if s["kinds"]["malloc"] < 5000]
    check(len(parent) == 1 and len(child) == 1, "fork: no parent/child pair in %s" %
          [s["kinds"]["malloc"] for s in st])
    # The child's trace holds its own 200 calls and none of the parent's 5000.
    check(200 <= child[0]["kinds"]["malloc"] < 300,
          "fork: the child's trace has %d mallocs, it made 200" % child[0]["kinds"]["malloc"])
    check(parent[0]["pid"] != child[0]["pid"], "fork: both traces name pid %d" % parent[0]["pid"])
    for f in files:
        _, r, _ = env.replay_result(os.path.join(env.work, f), {})


def case_exec(env):
    out = os.path.join(env.work, "exec.hkt")
    err = env.record(out, [env.prog, "--exec", "--threads=2", "--rounds=200"])
    files = sorted(f for f in os.listdir(env.work) if f.startswith("exec.hkt"))
    execd = [f for f in files if f.endswith(".exec1")]
    check(len(files) == 3 and len(execd) == 1,
          "exec: traces %s, expected the parent, the child and the child after exec\n%s" % (files, err))
    st = env.stats(os.path.join(env.work, execd[0]))
    check(st["image"] == 1 and st["kinds"]["malloc"] >= 3000 and "--exec-child" in st["command"],
          "exec: the exec'd program's trace: image %d, %d mallocs, command %r"
          % (st["image"], st["kinds"]["malloc"], st["command"]))
    before = env.stats(os.path.join(env.work, [f for f in files if f != "exec.hkt" and f not in execd][0]))
    check(not before["clean_exit"], "exec: the image that exec'd is marked as ended by exit")
    check(200 <= before["kinds"]["malloc"] < 3000, "exec: the child before exec has %d mallocs"
          % before["kinds"]["malloc"])


def small_trace(env):
    path = os.path.join(env.work, "small.hkt")
    env.record(path, [env.prog, "--threads=2", "--rounds=300"])
    with open(path, "rb") as f:
        return path, bytearray(f.read())


def expect_refused(env, data, name, pattern):
    path = os.path.join(env.work, name)
    with open(path, "wb") as f:
        f.write(data)
    for argv in ([env.replay, "--trace=" + path], [env.hakmem, "trace", "stats", path]):
        rc, out, err = run(argv, expect_rc=None)
        check(rc != 0, "%s: %s was accepted" % (name, argv[0]))
        check(re.search(pattern, err), "%s: %s said %r, expected /%s/" % (name, argv[0], err.strip(), pattern))
        check("RESULT" not in out, "%s: the replay ran" % name)


def case_corrupt(env):
    path, data = small_trace(env)
    size = len(data)
    expect_refused(env, data[: size // 2], "truncated.hkt",
                   r"truncated at byte offset %d" % (size // 2))
    expect_refused(env, data[:5], "tiny.hkt", r"truncated at byte offset 5")
    v2 = bytearray(data)
    v2[8:12] = struct.pack("<I", 2)
    expect_refused(env, v2, "version2.hkt", r"byte offset 8: trace format version 2; this hakmem reads version 1")
    # A flipped byte inside the first thread's first block.
    table = struct.unpack_from("<Q", data, 40)[0]
    stream = struct.unpack_from("<Q", data, table)[0]
    bad = bytearray(data)
    bad[stream + 8 + 3] ^= 0x5a
    expect_refused(env, bad, "flipped.hkt", r"byte offset %d: thread 0's block 0 .*CRC mismatch" % stream)
    # A compressed block whose CRC matches but whose frame is not zstd's.
    word = struct.unpack_from("<I", data, stream)[0]
    check(word & 0x80000000, "the first block of a trace is not compressed (libzstd missing?)")
    length = word & 0x7FFFFFFF
    frame = bytearray(data)
    frame[stream + 8: stream + 8 + length] = bytes(length)
    struct.pack_into("<I", frame, stream + 4, zlib.crc32(bytes(frame[stream + 8: stream + 8 + length])))
    expect_refused(env, frame, "frame.hkt",
                   r"byte offset %d: thread 0's compressed block does not decompress" % stream)
    # Well-formed, CRCs right, but a free waits for an event its block
    # never has: refused before the replay (it would wait forever).
    waits = os.path.join(env.work, "waits.hkt")
    write_trace(waits, [(1, [32, 0]), (5 | 0x10, [5, 1])], 1)
    with open(waits, "rb") as f:
        expect_refused(env, f.read(), "waits.hkt",
                       r"call 1 \(thread 0, free\) waits for block 0's event 5, which is its event 1")
    expect_refused(env, b"not a trace at all, not even close" * 4, "garbage.hkt",
                   r"byte offset 0: not a hakmem trace")


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def write_trace(path, events, slots):
    """A one-thread trace from (tag, fields) events, in the format of
    host/record/trace_format.h."""
    payload = bytearray()
    for i, (tag, fields) in enumerate(events):
        payload += bytes([tag]) + varint(0 if i else 0) + b"".join(varint(f) for f in fields)
    stream = struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    table = 64 + len(stream)
    hdr = bytearray(64)
    hdr[0:8] = b"HAKTRACE"
    struct.pack_into("<IIQIIQQIII", hdr, 8, 1, 64, len(events), 1, slots, 1, table, 1, 0, 0)
    struct.pack_into("<I", hdr, 60, zlib.crc32(bytes(hdr[:60])))
    entry = bytearray(56)
    struct.pack_into("<QQQQQI", entry, 0, 64, len(stream), len(events), 0, len(events) - 1, 1)
    struct.pack_into("<I", entry, 52, zlib.crc32(bytes(entry[:52])))
    with open(path, "wb") as f:
        f.write(bytes(hdr) + stream + bytes(entry) + b"HAKTEND\0" + struct.pack("<Q", table))


def case_bad_frees(env):
    # A double free, recorded for real on hakmem (which warns and goes on).
    trace = os.path.join(env.work, "double.hkt")
    err = env.record(trace, [env.prog, "--double-free"], ["--hakmem", "-s", "host.on_bad_free=warn"])
    st = env.stats(trace)
    check(st["bad"]["free"] == 1, "double free: %d bad frees in the trace\n%s" % (st["bad"]["free"], err))
    for name, cenv in env.columns():
        rc, _, rerr = env.replay_result(trace, cenv, expect_rc=3)
        check(re.search(r"call \d+ \(thread 0, free of 0x[0-9a-f]+, byte offset \d+\): .*already freed", rerr),
              "double free, %s: the replay said %r" % (name, rerr))
    # Re-issued faithfully: the allocator reports it.
    rc, out, rerr = run([env.replay, "--trace=" + trace, "--replay-bad-frees"],
                        env={"LD_PRELOAD": env.lib, "HAKMEM_SET": "host.on_bad_free=warn"}, expect_rc=None)
    check(rc == 0 and "RESULT" in out and re.search(r"hakmem.*(double|free)", rerr, re.I),
          "--replay-bad-frees on hakmem (warn): exit %d, stderr %r" % (rc, rerr))
    rc, out, rerr = run([env.replay, "--trace=" + trace, "--replay-bad-frees"], expect_rc=None)
    check(rc != 0 and "double free" in rerr, "--replay-bad-frees on glibc: exit %d, stderr %r" % (rc, rerr))
    # A foreign pointer: malloc(32) -> block 0, free(0x1234) (never a
    # block), free(block 0). Written by hand.
    foreign = os.path.join(env.work, "foreign.hkt")
    write_trace(foreign, [(1, [32, 0]), (5 | 0x40, [0, 0x1234]), (5, [1])], 1)
    st = env.stats(foreign)
    check(st["bad"]["free"] == 1 and st["kinds"]["free"] == 2, "foreign: stats %r" % st["bad"])
    rc, _, rerr = env.replay_result(foreign, {"LD_PRELOAD": env.lib}, expect_rc=3)
    check(re.search(r"call 1 \(thread 0, free of 0x1234, byte offset \d+\): .*never allocated", rerr),
          "foreign free: the replay said %r" % rerr)


def case_bench(env):
    trace = os.path.join(env.work, "bench.hkt")
    env.record(trace, [env.prog, "--threads=2", "--rounds=500"])
    out = os.path.join(env.work, "bench-out")
    common = ["-A", "glibc,hakmem", "-n", "1", "--no-chart", "--no-setup", "--quick"]
    _, text, err = run([env.hakmem, "bench", "-w", "random_mixed,trace:" + trace, "-o", out] + common)
    check("| trace:" in text and "random_mixed" in text, "bench: no trace row in\n%s" % text)
    check("FAIL" not in text, "bench: a cell FAILed\n%s\n%s" % (text, err[-1500:]))
    _, text, err = run([env.hakmem, "replay", trace, "-o", out + "2",
                        "-c", os.path.join(env.source, "configs", "hardened.ini")] + common)
    check("| trace:" in text and "hardened" in text and "FAIL" not in text,
          "replay: the table is\n%s\n%s" % (text, err[-1500:]))


CASES = {"threads": case_threads, "churn": case_churn, "python": case_python, "sqlite": case_sqlite, "fork": case_fork,
         "exec": case_exec, "corrupt": case_corrupt, "bad_frees": case_bad_frees, "bench": case_bench}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hakmem-replay-test-") as work:
        try:
            CASES[a.case](Env(a.build, a.source, work))
        except Failed as e:
            print("FAIL %s: %s" % (a.case, e))
            return 1
    print("PASS %s" % a.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
