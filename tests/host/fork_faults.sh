#!/usr/bin/env bash
# A fork under the host costs at most a few page faults more than under
# glibc alone (fork_faults.c says why it would cost more):
#   fork_faults.sh LIBHAKMEM FORK_FAULTS_BINARY [CONFIG...]
# Each run is repeated 3 times and the smallest figure kept (other
# processes on the machine do not add faults to ours, but the first run
# may page in the binary). The bound: glibc's figure + 8. Before the lock
# page the default config cost 22 more (one page per box lock, copied in
# the parent and in the child); with it, about 2 (the lock page itself,
# once in each) plus the child's first allocation.
set -u
lib=$1 prog=$2; shift 2
fail() { echo "FAIL: $*"; exit 1; }
alarm_msg="fork_faults timed out (SIGALRM): a fork hung"
err=$(mktemp)
trap 'rm -f "$err"' EXIT

best() { # environment... -> the smallest faults/fork of 3 runs
  local min= out rc
  for _ in 1 2 3; do
    out=$(env "$@" "$prog" 2>"$err"); rc=$?
    [ $rc -eq 142 ] && fail "$alarm_msg"
    [ $rc -eq 0 ] || fail "exit $rc: $out $(head -5 "$err")"
    local f=${out##*faults/fork }
    if [ -z "$min" ] || awk -v a="$f" -v b="$min" 'BEGIN { exit !(a < b) }'; then min=$f; fi
  done
  echo "$min"
}

glibc=$(best LD_PRELOAD=)
echo "glibc: $glibc faults per fork"
check() { # label, environment...
  local label=$1; shift
  local got; got=$(best LD_PRELOAD="$lib" "$@")
  echo "hakmem ($label): $got faults per fork"
  awk -v h="$got" -v g="$glibc" 'BEGIN { exit !(h <= g + 8) }' ||
    fail "$label: $got faults per fork against glibc's $glibc (bound: glibc + 8)"
}
check "embedded default"
for cfg in "$@"; do
  check "$(basename "$cfg")" HAKMEM_CONFIG="$cfg"
done
echo ok
