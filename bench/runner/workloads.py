"""The workloads: one row of the tables per entry.
"""

import os

from runner.programs import PROGRAMS

class Workload:
    """One row of the table: a binary and its arguments.

    args: always passed; quick: appended with --quick (tiny counts, for tests);
    instr: two argument lists whose op counts differ, for --instructions (the
    difference of the two runs' instruction counts over the difference of
    their ops is the steady-state cost per op, without start-up and set-up);
    None for multi-threaded workloads, which callgrind serialises.
    threads: how `hakmem bench --threads N` sets the thread count: a pair
    (KEY, THREADS_PER_UNIT), giving --KEY=max(1, N // THREADS_PER_UNIT)
    (("pairs", 2): N threads are N/2 producer/consumer pairs); None: the
    workload's --help is read and --threads=N passed if it lists --threads=;
    False: single-threaded, run as it is.
    program: a runner.programs.Program for a real program (no bench_ binary:
    the runner makes its inputs, checks its output and writes its result).
    """

    def __init__(self, name, binary, args, quick, instr=None, instr_quick=None, doc="",
                 threads=None, program=None):
        self.name = name
        self.binary = binary
        self.args = list(args)
        self.quick = list(quick)
        self.instr = instr
        self.instr_quick = instr_quick or instr
        self.doc = doc
        self.threads = threads
        self.program = program


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
             doc="1 producer -> 1 consumer: every free is remote", threads=("pairs", 2)),
    Workload("realloc_chain", "realloc_chain", [], ["--cycles=5000"],
             instr=(["--cycles=5000"], ["--cycles=10000"]),
             instr_quick=(["--cycles=2000"], ["--cycles=4000"]),
             doc="64 buffers grown by realloc 1.5x up to 1 MB"),
    Workload("fragmentation", "fragmentation", [], ["--count=5000"],
             instr=(["--count=10000"], ["--count=20000"]),
             instr_quick=(["--count=2000"], ["--count=4000"]),
             doc="200K blocks, free 90% at random, RSS after"),
    Workload("thread_churn", "thread_churn", [], ["--threads=20", "--allocs=500"],
             doc="1000 short threads, 2 at a time, leaving 10% behind",
             threads=("concurrent", 1)),
    # Many threads on any machine (16 on 2 cores: lock holders lose the CPU,
    # remote frees and thread exit dominate).
    Workload("larson_16t", "larson", ["--threads=16"], ["--rounds=4", "--ops=2000"],
             doc="larson with 16 workers: most frees of blocks another thread made",
             threads=False),
    Workload("producer_consumer_8p", "producer_consumer", ["--pairs=8"], ["--count=5000"],
             doc="8 producer -> consumer pairs (16 threads): every free remote",
             threads=False),
    Workload("mstress", "mstress", [], ["--rounds=4", "--steps=2000"],
             doc="16 threads re-created for 20 rounds, freeing the previous round's blocks",
             threads=("threads", 1)),
    Workload("larson_respawn", "larson_respawn", [], ["--blocks=500", "--life=2000", "--lives=2"],
             doc="published larson: blocks scattered over 16 workers, each succeeded by a new thread",
             threads=("threads", 1)),
    Workload("cache_scratch", "cache_scratch", [], ["--iterations=2000"],
             doc="16 threads writing 8 B blocks: passive false sharing",
             threads=("threads", 1)),
    Workload("big_buffers", "big_buffers", [], ["--replace=40", "--min=2097152", "--max=8388608"],
             instr=(["--replace=100"], ["--replace=200"]),
             instr_quick=(["--replace=20", "--max=8388608"], ["--replace=40", "--max=8388608"]),
             doc="20 live buffers of 5-25 MB, one replaced at random 2000 times, zero-filled",
             threads=False),
    Workload("growing_array", "growing_array", [], ["--rounds=2", "--max=33554432"],
             instr=(["--rounds=1"], ["--rounds=2"]),
             instr_quick=(["--rounds=1", "--max=33554432"], ["--rounds=2", "--max=33554432"]),
             doc="realloc in 800 KB steps up to 256 MB, each step written, 2 rounds",
             threads=False),
]
# Real programs (runner/programs.py): not in the default set, chosen with
# -w real (all of them) or by name.
REAL_WORKLOADS = [Workload(name, name, [], [], doc=doc, threads=False, program=program)
                  for name, (program, doc) in PROGRAMS.items()]
WORKLOAD_GROUPS = {"real": [w.name for w in REAL_WORKLOADS]}


def trace_workload(spec):
    """-w trace:FILE[:ordered][:bad-frees]: a recorded trace (hakmem record)
    replayed by bench_replay under each column (docs/replay.md). ops = calls
    replayed; instructions per call from 1 and 2 passes over the trace."""
    parts = spec.split(":")
    path, opts = os.path.abspath(parts[1]), parts[2:]
    flags = {"ordered": "--ordered", "bad-frees": "--replay-bad-frees"}
    args = ["--trace=" + path] + [flags[o] for o in opts if o in flags]
    # The row is named after the file alone (output files are named after rows).
    name = ":".join(["trace", os.path.basename(path)] + opts)
    return Workload(name, "replay", args, [],
                    instr=(["--passes=1"], ["--passes=2"]), threads=False,
                    doc="the calls recorded in " + path)


class _WorkloadTable(dict):
    """Names to workloads; a trace:FILE name makes its workload on first use."""

    def __contains__(self, name):
        return dict.__contains__(self, name) or (isinstance(name, str) and name.startswith("trace:")
                                                 and len(name) > 6)

    def __missing__(self, name):
        if not (isinstance(name, str) and name.startswith("trace:") and len(name) > 6):
            raise KeyError(name)
        self[name] = w = trace_workload(name)
        return w


WORKLOAD_BY_NAME = _WorkloadTable({w.name: w for w in WORKLOADS + REAL_WORKLOADS})
