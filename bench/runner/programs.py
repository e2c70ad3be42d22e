"""Real programs as workloads: Debian's python3, sqlite3, git, gcc, perl,
sort and awk, run under each column like the bench_<name> binaries.

A program workload has no RESULT line of its own. The runner makes its
inputs once (`prepare`, in the output folder, no preload), runs the program
once without a preload to record the reference output, and gives every run
a fresh scratch folder. A run passes when its stdout equals the reference;
the runner then makes its result line itself: ops=1, seconds = the
launcher's wall time, checksum = 64 bits of SHA-256 of stdout (so the checksum
cross-check of the matrix applies too). Peak RSS and faults are the
launcher's rusage of the whole process tree (wait4 counts reaped children).
"""

import hashlib
import os
import random
import shutil

PROGRAM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "programs")

# Fixed identity, dates, locale and hash seeds: outputs are reproducible.
FIXED_ENV = {
    "LC_ALL": "C", "TZ": "UTC", "PYTHONHASHSEED": "0", "PERL_HASH_SEED": "0",
    "PERL_PERTURB_KEYS": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Hak Mem", "GIT_AUTHOR_EMAIL": "hak@example.org",
    "GIT_COMMITTER_NAME": "Hak Mem", "GIT_COMMITTER_EMAIL": "hak@example.org",
    "GIT_AUTHOR_DATE": "2025-01-02T03:04:05+00:00",
    "GIT_COMMITTER_DATE": "2025-01-02T03:04:05+00:00",
}


def output_checksum(data):
    """64 bits of SHA-256 of the output, in hex (the result line's form)."""
    return hashlib.sha256(data).hexdigest()[:16]


def make_lines(path, count):
    """'number word text' lines for sort and awk."""
    rng = random.Random(20250102)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 6)))
             for _ in range(3000)]
    with open(path, "w") as f:
        for _ in range(count):
            f.write("%d %s %s\n" % (rng.randint(0, 10**7), rng.choice(words),
                                    "".join(rng.choice("aeioubcdfg")
                                            for _ in range(rng.randint(0, 50)))))


def make_tree(tree):
    """A source tree for git: small text files and a few binary ones."""
    rng = random.Random(20250103)
    words = ["w%d" % i for i in range(500)]
    for d in range(12):
        os.makedirs(os.path.join(tree, "dir%02d" % d), exist_ok=True)
        for k in range(25):
            lines = ["line %d of file %d/%d: %s" % (n, d, k, rng.choice(words))
                     for n in range(rng.randint(1, 400))]
            with open(os.path.join(tree, "dir%02d" % d, "file%02d.txt" % k), "w") as f:
                f.write("\n".join(lines) + "\n")
    for k in range(3):
        with open(os.path.join(tree, "big%d.bin" % k), "wb") as f:
            f.write(rng.randbytes(200000))


def make_c_file(path, functions):
    """A C program of many small functions (switches, loops, structs) that
    prints one checksum: gcc -O2 spends its time in cc1 on it."""
    out = ["#include <stdio.h>", "#include <stdint.h>",
           "struct s { uint32_t a, b; uint64_t c[4]; };"]
    for i in range(functions):
        out.append("static uint64_t f%d(uint64_t x) {" % i)
        out.append("  struct s v = { (uint32_t)x, %du, { x, x * %d, x ^ %d, %d } };" % (i, i + 3, i * 7, i))
        out.append("  for (int k = 0; k < %d; k++) {" % (3 + i % 5))
        out.append("    switch ((x + k) %% %d) {" % (4 + i % 6))
        for c in range(4 + i % 6):
            out.append("    case %d: v.c[%d] += x * %d + v.a; v.a ^= (uint32_t)(v.c[%d] >> %d); break;"
                       % (c, c % 4, c + i, (c + 1) % 4, 1 + c % 13))
        out.append("    }")
        out.append("    x = x * 6364136223846793005ull + %d;" % (i * 2 + 1))
        out.append("  }")
        out.append("  return v.c[0] ^ v.c[1] ^ v.c[2] ^ v.c[3] ^ v.a ^ v.b;")
        out.append("}")
    out.append("int main(void) {")
    out.append("  uint64_t h = 1469598103934665603ull;")
    for i in range(functions):
        out.append("  h = (h ^ f%d(h)) * 1099511628211ull;" % i)
    out.append('  printf("%016llx\\n", (unsigned long long)h);')
    out.append("  return 0;")
    out.append("}")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


class Program:
    """One real program workload. argv items may hold {inputs}, {scratch}
    and {programs} (this folder's programs/), filled in per run."""

    def __init__(self, tools, argv, prepare=None, env=None):
        self.tools = list(tools)
        self.argv_template = list(argv)
        self.prepare_inputs = prepare
        self.env = dict(FIXED_ENV)
        self.env.update(env or {})
        self.inputs = None
        self.reference = None
        self.missing = ""
        self.executable = None  # argv[0] as a path (the launcher does not search PATH)

    def argv(self, inputs, scratch):
        fill = {"{inputs}": inputs, "{scratch}": scratch,
                "{programs}": os.path.abspath(PROGRAM_DIR)}
        out = []
        template = list(self.argv_template)
        template[0] = self.executable or template[0]
        for a in template:
            for key, value in fill.items():
                a = a.replace(key, value)
            out.append(a)
        return out

    def scratch(self):
        return os.path.join(self.inputs, "scratch")

    def fresh_scratch(self):
        """An empty scratch folder for the next run (outside the timing)."""
        s = self.scratch()
        shutil.rmtree(s, ignore_errors=True)
        os.makedirs(os.path.join(s, "home"))
        return s

    def run_env(self):
        env = dict(self.env)
        env["HOME"] = os.path.join(self.scratch(), "home")
        env["TMPDIR"] = self.scratch()
        return env

    def result_fields(self, name, stdout, wall_s):
        """The result line's fields, or a reason the output is wrong."""
        if stdout != self.reference:
            got = stdout.strip().splitlines()[-1:] or ["(nothing)"]
            want = self.reference.strip().splitlines()[-1:] or ["(nothing)"]
            return None, "wrong output: last line %r, expected %r" % (got[0][:80], want[0][:80])
        seconds = max(wall_s, 1e-9)
        return {"workload": name, "ops": 1, "seconds": seconds, "ops_per_sec": 1.0 / seconds,
                "checksum": output_checksum(stdout.encode())}, None


def prepare_sort(inputs):
    make_lines(os.path.join(inputs, "lines.txt"), 400000)


def prepare_awk(inputs):
    make_lines(os.path.join(inputs, "lines.txt"), 150000)


def prepare_git(inputs):
    make_tree(os.path.join(inputs, "tree"))


def prepare_gcc(inputs):
    make_c_file(os.path.join(inputs, "gen.c"), 60)


AWK_PROGRAM = ('{ n[$2]++; s[substr($1, 1, 3)] += length($3); t = t substr($3, 1, 1) } '
               'END { for (k in n) if (n[k] > m) m = n[k]; c = 0; for (k in s) c++; '
               'print NR, m, c, length(t) }')

PERL_PROGRAM = r'''
my (%h, $n, $len);
for my $i (1 .. 150000) {
  my $k = join "", map { chr(97 + ($i * $_) % 26) } 1 .. ($i % 12 + 1);
  $h{$k} .= "$i,";
}
for my $k (sort keys %h) {
  my @f = split /,/, $h{$k};
  $n += @f;
  (my $s = $h{$k}) =~ s/(\d)(\d)/$2$1/g;
  $len += length $s;
}
my @m = grep { /^(a|e)[^aeiou]*[aeiou]{2}/ } keys %h;
my %inv = reverse %h;
print scalar(keys %h), " $n $len ", scalar(@m), " ", scalar(keys %inv), "\n";
'''

# name -> (Program, doc)
PROGRAMS = {
    "real_python": (Program(["python3"], ["python3", "{programs}/python_objects.py"]),
                    "python3: dicts, blobs 1 B-3 MB, growing buffers, cyclic GC, regex"),
    "real_sqlite": (Program(["sqlite3"], ["sqlite3", ":memory:", ".read {programs}/sqlite_workload.sql"]),
                    "sqlite3: build and query an in-memory database (blobs, indexes, VACUUM)"),
    "real_git": (Program(["git", "bash"], ["bash", "{programs}/git_session.sh", "{inputs}/tree", "{scratch}"],
                         prepare=prepare_git),
                 "git: init, commits, branches, merge, gc, fsck, log: many short processes"),
    "real_gcc": (Program(["gcc", "sh"], ["sh", "-c", "gcc -O2 -o {scratch}/gen {inputs}/gen.c && {scratch}/gen"],
                         prepare=prepare_gcc),
                 "gcc -O2 on a generated 60-function C file, then the program it made"),
    "real_perl": (Program(["perl"], ["perl", "-e", PERL_PROGRAM]),
                  "perl: 150K hash keys, sort, split, regex substitution"),
    "real_sort": (Program(["sort"], ["sort", "--parallel=2", "-S", "8M", "-T", "{scratch}", "-t", " ",
                                     "-k2,2", "-k1,1n", "{inputs}/lines.txt"], prepare=prepare_sort),
                  "sort: 400K lines on two keys, external merge through temporary files"),
    "real_mawk": (Program(["mawk"], ["mawk", AWK_PROGRAM, "{inputs}/lines.txt"], prepare=prepare_awk),
                  "mawk: associative arrays and string building over 150K lines"),
    "real_gawk": (Program(["gawk"], ["gawk", AWK_PROGRAM, "{inputs}/lines.txt"], prepare=prepare_awk),
                  "gawk: the same awk program"),
}
