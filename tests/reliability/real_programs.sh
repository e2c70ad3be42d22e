#!/usr/bin/env bash
# Real programs under the host give the same stdout, stderr and exit code as
# without it: python3 (single and multithreaded, with and without pymalloc,
# spawning children), sqlite3, git, perl, sort (also with four threads), awk,
# a C++ program (cxx_churn), xz and zstd with four threads, bash forking
# subshells and pipes, make -j4 running gcc, bc and tar with gzip.
#
#   real_programs.sh expect DIR CXX_CHURN
#       Make the inputs and record the expected results (no host) in DIR.
#   real_programs.sh check DIR CXX_CHURN LIBHAKMEM CONFIG
#       Run each program under the host with CONFIG (a file, or "embedded")
#       and compare with DIR. A case's runs also write the host's stats to a
#       file, which proves the host was loaded with that config.
set -u
mode=$1 dir=$2 cxx=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd)
programs=$here/programs
# The python, sqlite and git workloads are the bench's real-program inputs: one copy.
bench_programs=$here/../../bench/programs
py=$(command -v python3)

# Fixed identity, dates and no user config: git's output is reproducible.
export HOME=$dir/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Hak Mem" GIT_AUTHOR_EMAIL="hak@example.org"
export GIT_COMMITTER_NAME="Hak Mem" GIT_COMMITTER_EMAIL="hak@example.org"
export GIT_AUTHOR_DATE="2025-01-02T03:04:05+00:00" GIT_COMMITTER_DATE="2025-01-02T03:04:05+00:00"
export LC_ALL=C TZ=UTC PYTHONHASHSEED=0 PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0

# ---- the cases: each runs in an empty current directory -------------------

case_python_objects() { "$py" "$bench_programs/python_objects.py"; }
case_python_objects_malloc() { PYTHONMALLOC=malloc "$py" "$bench_programs/python_objects.py"; }
case_python_threads() { PYTHONMALLOC=malloc "$py" "$programs/threads.py"; }
case_sqlite() { sqlite3 :memory: < "$bench_programs/sqlite_workload.sql"; }
case_git() { bash "$bench_programs/git_session.sh" "$dir/inputs/tree" "$PWD"; }
case_perl() {
  perl -e '
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
    print scalar(keys %h), " $n $len ", scalar(@m), " ", scalar(keys %inv), "\n";'
}
case_sort() {
  # Small buffer: external merge through temporary files (one thread: sort
  # splits a buffer between threads only from 128K lines; sort_threads has them).
  sort --parallel=2 -S 1M -T . -t ' ' -k2,2 -k1,1n "$dir/inputs/lines.txt" | md5sum
  sort -u -r "$dir/inputs/lines.txt" | tail -3
}
case_awk() {
  awk '{ n[$2]++; s[substr($1, 1, 3)] += length($3); t = t substr($3, 1, 1) }
       END { for (k in n) if (n[k] > m) m = n[k]; c = 0; for (k in s) c++;
             print NR, m, c, length(t) }' "$dir/inputs/lines.txt"
  awk '{ gsub(/[aeiou]/, "#", $3); split($3, parts, "#"); total += length(parts) } END { print total }' \
    "$dir/inputs/lines.txt"
}
case_cxx() { "$cxx"; }
case_xz() {
  # 1 MiB blocks (-3 alone makes one 12 MiB block): four threads compress,
  # and the multi-block stream decompresses with threads too.
  xz -T4 -3 --block-size=1MiB -c "$dir/inputs/text.txt" > text.xz
  xz -T4 -dc text.xz | md5sum
  md5sum < "$dir/inputs/text.txt"
  md5sum < text.xz
}
case_zstd() {
  # 1 MiB jobs (-3 alone makes one 8 MiB job): the four workers all get some.
  zstd -q -T4 -3 -B1M -c "$dir/inputs/text.txt" > text.zst
  zstd -q -dc text.zst | md5sum
  md5sum < "$dir/inputs/text.txt"
  md5sum < text.zst
}
case_sort_threads() {
  # Both buffers are smaller than the input: temporary files and a merge.
  # sort splits a buffer between threads only from 128K lines, and with
  # four threads a line takes 96 bytes besides its text: 8M sorts its 5
  # runs in one thread, 32M its first run in four (coreutils 9.1, strace).
  sort --parallel=4 -S 8M -T . "$dir/inputs/records.txt" | md5sum
  sort --parallel=4 -S 32M -T . -t ' ' -k2,2n "$dir/inputs/records.txt" | md5sum
}
case_bash_subshells() {
  # 300 subshells, each piped to its own tr, all into one pipe read by this
  # shell (lastpipe): the larger of each two lines (what sort -r | head -1
  # would print; fewer processes, as every one writes the host's stats at
  # exit) is read back as digits, and added up.
  shopt -s lastpipe
  local i a b c k y n=0 sum=0
  for ((i = 0; i < 300; i++)); do
    (echo $i; echo $((i * i))) | tr 0-9 a-j
  done | while read -r a && read -r b; do
    [[ $a > $b ]] || a=$b
    y=""
    for ((k = 0; k < ${#a}; k++)); do
      printf -v c '%d' "'${a:k:1}"
      y+=$((c - 97))
    done
    n=$((n + 1)) sum=$((sum + 10#$y))
  done
  echo "$n $sum"
}
case_make() {
  # A make above ctest would hand its jobserver down: this make is its own.
  unset MAKEFLAGS MFLAGS MAKELEVEL
  local k objs=""
  for ((k = 1; k <= 11; k++)); do
    printf '%s\n' "unsigned long f$k(unsigned long x) {" \
      "  unsigned long h = $k;" \
      "  for (unsigned long i = 0; i < 1000 + $k; i++) h = h * 31 + ((x ^ i) % $((k + 6)));" \
      "  return h;" "}" > "f$k.c"
    objs+=" f$k.o"
  done
  {
    echo '#include <stdio.h>'
    for ((k = 1; k <= 11; k++)); do echo "unsigned long f$k(unsigned long);"; done
    echo 'int main(void) {'
    echo '  unsigned long s = 0;'
    for ((k = 1; k <= 11; k++)); do echo "  s ^= f$k(s + $k); printf(\"f$k %lu\\n\", s);"; done
    echo '  return 0;'
    echo '}'
  } > main.c
  printf 'prog: main.o%s\n\tgcc -O1 -o $@ main.o%s\n%%.o: %%.c\n\tgcc -O1 -c -o $@ $<\n' \
    "$objs" "$objs" > Makefile
  make -s -j4 && ./prog
  cat main.o $objs | md5sum
}
case_python_subprocess() {
  # 30 children spawned from the pool's threads while the others work on
  # strings and dicts; the main thread puts the results together in order.
  # The children skip site (-S): its .pth files would be most of their time.
  "$py" -c '
import subprocess, sys, zlib
from concurrent.futures import ThreadPoolExecutor
child = "import sys; n = int(sys.argv[1]); print(n, sum(i * i for i in range(n * 500)), \"-\".join(sorted(str(i * 7919 % 1000) for i in range(n % 9 + 2))))"
def spawn(n):
    return subprocess.run([sys.executable, "-S", "-c", child, str(n)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=True).stdout
def work(n):
    d = {}
    for i in range(4000):
        k = "key%d/%d" % (n, (i * 31) % 1009)
        d.setdefault(k, []).append(("%x" % (i * n)).upper())
    joined = "|".join(k + "=" + ",".join(v) for k, v in sorted(d.items()))
    return len(d), len(joined), zlib.crc32(joined.encode())
with ThreadPoolExecutor(max_workers=16) as pool:
    children = [pool.submit(spawn, n) for n in range(30)]
    works = [pool.submit(work, n) for n in range(40)]
    out = "".join(f.result() for f in children)
    results = [f.result() for f in works]
print(out, end="")
print(sum(r[0] for r in results), sum(r[1] for r in results),
      zlib.crc32(repr(results).encode()))'
}
case_bc() {
  echo '2^30000' | bc | md5sum
  echo 'scale=1200; sqrt(2)' | bc | md5sum
}
case_tar() {
  # Through gzip both ways; names and contents only (no owners, no dates).
  tar czf tree.tgz -C "$dir/inputs" tartree
  tar tzf tree.tgz | sort | md5sum
  mkdir out && tar xzf tree.tgz -C out || return 1
  (cd out && find . -type f | sort | xargs md5sum) | md5sum
  find out -type f | wc -l
}

cases="python_objects python_objects_malloc python_threads sqlite git perl sort awk cxx
       xz zstd sort_threads bash_subshells make python_subprocess bc tar"

run_case() { # name, result prefix, extra environment...
  local name=$1 out=$2; shift 2
  local work
  work=$(mktemp -d "$dir/run.XXXXXX")
  (cd "$work" && env "$@" bash -c "case_$name" \
      > "$out.stdout" 2> "$out.stderr"; echo $? > "$out.rc")
  rm -rf "$work"
}

# Everything a case needs is exported (functions too), for the bash -c above.
export py programs bench_programs dir cxx
export -f $(for c in $cases; do echo "case_$c"; done)

if [ "$mode" = expect ]; then
  rm -rf "$dir" && mkdir -p "$dir/inputs/tree" "$dir/expected" "$dir/home" || exit 1
  "$py" "$programs/make_inputs.py" "$dir/inputs" || exit 1
  # The inputs of the xz, zstd, sort_threads and tar cases.
  "$py" - "$dir/inputs" <<'PY' || exit 1
import os, random, sys
out = sys.argv[1]
rng = random.Random(20250103)
words = ["".join(rng.choice("etaoinshrdlucmfwypvbgk") for _ in range(rng.randint(1, 9))) for _ in range(6000)]
weights = [1.0 / (i + 1) for i in range(len(words))]
# text.txt: about 4 MB of lines of words (Zipf-like), for xz and zstd.
with open(os.path.join(out, "text.txt"), "w") as f:
    for _ in range(64):
        ws = rng.choices(words, weights, k=10000)
        f.write("\n".join(" ".join(ws[i:i + 12]) for i in range(0, len(ws), 12)) + "\n")
# records.txt: 300000 "word number word" lines for sort_threads.
with open(os.path.join(out, "records.txt"), "w") as f:
    f.writelines("%s %d %s\n" % (rng.choice(words), rng.randint(-10**6, 10**6), rng.choice(words))
                 for _ in range(300000))
# tartree/: 8 directories of 5 directories of 8 files, for tar.
for a in range(8):
    for b in range(5):
        d = os.path.join(out, "tartree", "d%d" % a, "s%d" % b)
        os.makedirs(d, exist_ok=True)
        for c in range(8):
            with open(os.path.join(d, "f%d.txt" % c), "w") as f:
                f.write(" ".join(rng.choices(words, k=rng.randint(0, 600))) + "\n")
PY
  bad=0
  for c in $cases; do
    start=$(date +%s%N)
    run_case "$c" "$dir/expected/$c"
    rc=$(cat "$dir/expected/$c.rc")
    echo "expected $c: exit $rc ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
    if [ "$rc" != 0 ]; then
      # Every case succeeds without the host: anything else is the machine.
      echo "FAIL $c fails without the host (missing program?):"
      head -5 "$dir/expected/$c.stderr" | sed 's/^/    /'
      bad=1
    fi
  done
  exit $bad
fi

lib=$4 config=$5
fail=0
results=$(mktemp -d "$dir/results.XXXXXX")
trap 'rm -rf "$results"' EXIT
stats=$results/stats.txt
# Observer boxes (telemetry) print their own report on stderr at exit: send
# it to a JSON file instead, so stderr compares equal.
observers=""
if [ "$config" != embedded ]; then
  observers=$("$py" - "$config" <<'PY'
import configparser, sys
cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), strict=False, interpolation=None)
cp.read(sys.argv[1])
for section in cp.sections():
    if section.startswith("box.") and cp[section].get("plugin", section[4:]) == "telemetry":
        print(section[4:])
PY
)
fi
set_items="host.stats=text,host.stats_file=$stats"
for o in $observers; do
  set_items+=",box.$o.text=off,box.$o.json_file=$results/$o-%p.json"
done
host_env=("LD_PRELOAD=$lib" "HAKMEM_SET=$set_items")
if [ "$config" != embedded ]; then
  host_env+=("HAKMEM_CONFIG=$config")
  want_name=$config
else
  want_name="(embedded default)"
fi
for c in $cases; do
  rm -f "$stats"
  start=$(date +%s%N)
  run_case "$c" "$results/$c" "${host_env[@]}"
  problem=""
  if ! cmp -s "$dir/expected/$c.rc" "$results/$c.rc"; then
    problem="exit $(cat "$dir/expected/$c.rc") without the host, $(cat "$results/$c.rc") under it"
  elif ! cmp -s "$dir/expected/$c.stdout" "$results/$c.stdout"; then
    problem="stdout differs"
  elif ! cmp -s "$dir/expected/$c.stderr" "$results/$c.stderr"; then
    problem="stderr differs"
  elif ! grep -qxF "config: $want_name" "$stats" 2>/dev/null; then
    problem="no stats report from the host: was it loaded with $want_name?"
  fi
  if [ -n "$problem" ]; then
    echo "FAIL $c: $problem"
    for s in stdout stderr; do
      diff "$dir/expected/$c.$s" "$results/$c.$s" | head -15 | sed "s/^/    $s: /"
    done
    fail=1
  else
    echo "ok   $c ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
  fi
done
exit $fail
