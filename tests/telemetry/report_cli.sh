#!/bin/sh
# `hakmem report` on the OFF/ON files test_telemetry --write made: the same
# workload (8 rounds of 4 blocks of 3 MB) with large's cache off and on.
# usage: report_cli.sh HAKMEM_CLI DIR
set -u
cli=$1 dir=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
# one line, spaces squeezed
norm() { awk '{$1=$1; print}'; }
expect_line() { # OUTPUT-FILE LINE
    norm <"$1" | grep -qxF "$2" || { echo "--- output:" >&2; cat "$1" >&2; fail "no line '$2'"; }
}
out=$dir/report.out

# one run as tables: 32 fresh mappings of 3 MB + 64 KB = 32 * 784 pages
"$cli" report "$dir/off.json" >"$out" || fail "report off.json exited $?"
expect_line "$out" "$dir/off.json: config (test config)"
expect_line "$out" "command: workload --cache off"
grep -q '^process: minor faults [0-9]*, major faults [0-9]*, peak RSS [0-9]* KB$' "$out" ||
    fail "no process line"
norm <"$out" | grep -q '^LARGE 25088 98M 98M 0 0 0 0 32 0.001$' || { cat "$out"; fail "LARGE row"; }
for b in C0 C1 C2 C3 C4 C5 C6 C7 MID L25 SSM OTHER; do
    norm <"$out" | grep -q "^$b 0 0 0 0 0 0 0 - -$" || { cat "$out"; fail "$b row"; }
done
norm <"$out" | grep -q '^large large 32 32 32 ' || { cat "$out"; fail "box row"; }

# two runs side by side: every difference, absolute and in %
"$cli" report "$dir/off.json" "$dir/on.json" >"$out" || fail "report off on exited $?"
expect_line "$out" "A: $dir/off.json: config (test config)"
expect_line "$out" "B: $dir/on.json: config (test config)"
expect_line "$out" "counter A B B-A B-A %"
expect_line "$out" "LARGE.fresh_pages 25088 3136 -21952 -87.5%"
expect_line "$out" "LARGE.fresh_events 32 4 -28 -87.5%"
expect_line "$out" "LARGE.mapped_bytes 102760448 12845056 -89915392 -87.5%"
expect_line "$out" "LARGE.unmapped_bytes 102760448 0 -102760448 -100.0%"
expect_line "$out" "LARGE.reuse_events 0 28 +28 new"
expect_line "$out" "LARGE.allocs 32 32 +0 +0.0%"
expect_line "$out" "box.large.frees 32 32 +0 +0.0%"
expect_line "$out" "box.large.refills 32 4 -28 -87.5%"
expect_line "$out" "box.large.bytes_mapped 0 12845056 +12845056 new"
expect_line "$out" "LARGE.touches_per_page 0.001 0.010 +0.009 +900.0%"
grep -q '^C0\.' "$out" && fail "zero rows shown without --all"
grep -q 'counters zero in both runs not shown' "$out" || fail "no note about hidden rows"
"$cli" report "$dir/off.json" "$dir/on.json" --all >"$out" || fail "--all exited $?"
expect_line "$out" "C0.fresh_pages 0 0 +0 0.0%"
expect_line "$out" "SSM.touches_per_page - - - -"

# errors: usage 2, unreadable or foreign file 1
"$cli" report >/dev/null 2>&1; [ $? -eq 2 ] || fail "no arguments: want exit 2"
"$cli" report "$dir/nonexistent.json" 2>"$out"; [ $? -eq 1 ] || fail "missing file: want exit 1"
echo '{"a": 1}' >"$dir/foreign.json"
"$cli" report "$dir/foreign.json" 2>"$out"; [ $? -eq 1 ] || fail "foreign file: want exit 1"
grep -q 'not a telemetry file' "$out" || fail "foreign file message"
echo '{"hakmem_telemetry": 1, "buckets": {' >"$dir/broken.json"
"$cli" report "$dir/broken.json" 2>"$out"; [ $? -eq 1 ] || fail "broken file: want exit 1"
grep -q 'not valid JSON' "$out" || fail "broken file message"
echo "report ok"
