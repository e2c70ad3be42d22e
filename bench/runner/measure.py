"""Running one workload process under one column and judging the outcome:
its rusage (from bench_launch), its exit, its RESULT line.
"""

import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time


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
    program = workload.program
    if program:
        if program.missing:
            o.reason = program.missing
            return o
        program.fresh_scratch()
        assigns = ["%s=%s" % kv for kv in sorted(program.run_env().items())] + assigns
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
    if program:
        o.result, why = program.result_fields(workload.name, stdout, o.wall_s)
        if why:
            o.reason = why
            return o
        o.ok = True
        return o
    try:
        o.result = parse_result_line(stdout, workload.binary)
    except ResultError as e:
        o.reason = str(e)
        return o
    o.ok = True
    return o


def prepare_program(workload, folder, base_env, timeout):
    """Inputs of a real-program workload in folder, and its reference
    output: one run with no preload (base_env has none). Sets
    program.missing instead when the program cannot run here."""
    p = workload.program
    absent = [t for t in p.tools if not shutil.which(t)]
    if absent:
        p.missing = "%s not installed" % ", ".join(absent)
        return
    # Debian's interpreter itself, not a wrapper found first on PATH (a
    # pyenv shim is a bash script).
    first = p.argv_template[0]
    debian = os.path.join("/usr/bin", first)
    p.executable = debian if os.access(debian, os.X_OK) else shutil.which(first)
    os.makedirs(folder, exist_ok=True)
    p.inputs = os.path.abspath(folder)
    if p.prepare_inputs:
        p.prepare_inputs(p.inputs)
    scratch = p.fresh_scratch()
    env = dict(base_env)
    env.update(p.run_env())
    status, _, _, stdout, stderr, timed_out = run_process(p.argv(p.inputs, scratch), env, timeout)
    if timed_out or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        p.missing = "the reference run (no preload) failed: %s" % (
            "timeout" if timed_out else last_line(stderr) or "exit status %d" % status)
        return
    p.reference = stdout
