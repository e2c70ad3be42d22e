"""The allocator columns: glibc, the peers (Debian packages), hakmem (one
column per config / HAKMEM_SET sweep) and extra preloads.
"""

import os
import shlex
import sys


# Peers come from Debian's packages (bench/setup.sh installs them).
PEERS = {
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
DEFAULT_ALLOCATORS = ["glibc", "mimalloc", "jemalloc", "tcmalloc", "hakmem"]
# Variables that would change what a column measures: never inherited.
SCRUBBED_ENV = ("LD_PRELOAD", "HAKMEM_CONFIG", "HAKMEM_SET")


def lib_dirs():
    dirs = []
    multiarch = getattr(sys.implementation, "_multiarch", None)
    if multiarch:
        dirs += ["/usr/lib/" + multiarch, "/lib/" + multiarch]
    dirs += ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
             "/usr/lib", "/usr/local/lib"]
    seen = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def find_lib(soname):
    for d in lib_dirs():
        path = os.path.join(d, soname)
        if os.path.exists(path):
            return path
    return None


class Column:
    """One allocator column: how to run a workload under it."""

    def __init__(self, name, kind, describe, preload=None, env=None, missing=None):
        self.name = name
        self.kind = kind          # glibc | peer | hakmem | preload
        self.describe = describe  # for the report
        self.preload = preload
        self.env = env or {}
        self.missing = missing    # why this column cannot run, or None

    def environment(self, base):
        env = dict(base)
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        env.update(self.env)
        return env

    def env_prefix(self):
        parts = []
        if self.preload:
            parts.append("LD_PRELOAD=" + shlex.quote(self.preload))
        for k, v in sorted(self.env.items()):
            parts.append(k + "=" + shlex.quote(v))
        return " ".join(parts)


def build_columns(args, parser):
    columns = []
    names = []
    allocators = [a.strip() for a in args.allocators.split(",") if a.strip()]
    for a in allocators:
        if a not in DEFAULT_ALLOCATORS:
            parser.error("unknown allocator %r (known: %s; add others with --preload NAME=LIB)"
                         % (a, ", ".join(DEFAULT_ALLOCATORS)))

    if (args.config or args.set) and "hakmem" not in allocators:
        parser.error("-c/-s make hakmem columns, but hakmem is not among --allocators")

    def add(col):
        base = col.name
        n = 2
        while col.name in names:
            col.name = "%s-%d" % (base, n)
            n += 1
        names.append(col.name)
        columns.append(col)

    for a in allocators:
        if a == "glibc":
            add(Column("glibc", "glibc", "glibc malloc (no preload)"))
        elif a in PEERS:
            soname, package = PEERS[a]
            path = find_lib(soname)
            add(Column(a, "peer", "%s (%s)" % (path or soname, package), preload=path,
                       missing=None if path else "%s not installed (package %s; see bench/setup.sh)"
                       % (soname, package)))
        elif a == "hakmem":
            lib = (os.path.join(os.path.abspath(args.hakmem_lib), "libhakmem.so")
                   if args.hakmem_lib else None)
            missing = None
            if not lib:
                missing = "no --hakmem-lib given"
            elif not os.path.exists(lib):
                missing = "%s does not exist (build it first)" % lib
            configs = args.config or [None]
            sets = args.set or [None]
            for cfg in configs:
                for st in sets:
                    env = {}
                    if cfg:
                        env["HAKMEM_CONFIG"] = os.path.abspath(cfg)
                        stem = os.path.splitext(os.path.basename(cfg))[0]
                        name = stem if stem not in DEFAULT_ALLOCATORS else "hakmem-" + stem
                    else:
                        name = "hakmem"
                    if st:
                        env["HAKMEM_SET"] = st
                        name += "[%s]" % st
                    desc = "hakmem (%s, config %s%s)" % (
                        lib or "libhakmem.so", cfg or "embedded default",
                        ", HAKMEM_SET=" + st if st else "")
                    add(Column(name, "hakmem", desc, preload=lib, env=env, missing=missing))
    for spec in args.preload or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error("--preload wants NAME=PATH, got %r" % spec)
        path = os.path.abspath(path)
        add(Column(name, "preload", "%s (preloaded)" % path, preload=path,
                   missing=None if os.path.exists(path) else "%s does not exist" % path))
    if not columns:
        parser.error("no allocators to run")
    return columns
