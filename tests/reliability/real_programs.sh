#!/usr/bin/env bash
# Real programs under the host give the same stdout, stderr and exit code as
# without it: python3 (single and multithreaded, with and without pymalloc),
# sqlite3, git, perl, sort, awk and a C++ program (cxx_churn).
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
  # Small buffer: external merge through temporary files; two threads.
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

cases="python_objects python_objects_malloc python_threads sqlite git perl sort awk cxx"

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
