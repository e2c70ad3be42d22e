#!/bin/sh
# The telemetry box under the preloaded host, end to end: `hakmem run` with
# a config holding [box.telemetry], JSON written at exit with the config's
# path and the command line; two runs compared with `hakmem report`.
# usage: preload_run.sh HAKMEM_CLI WORKLOAD CONFIG CHECK_JSON DIR
set -u
cli=$1 workload=$2 config=$3 check=$4 dir=$5
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir -p "$dir"
rm -f "$dir"/run*.json
config_abs=$(realpath "$config")

# 2 threads x 4 blocks of 3 MB: 8 mappings of 3 MB + 64 KB = 8 * 784 pages
"$cli" run -c "$config" -s "box.telemetry.json_file=$dir/run1.json" -- \
    "$workload" 4 3145728 2 2>"$dir/run1.err" || fail "run 1 exited $?"
grep -q "^hakmem telemetry (telemetry): config $config_abs\$" "$dir/run1.err" ||
    { cat "$dir/run1.err"; fail "no table on stderr"; }
grep -q "^command: $workload 4 3145728 2\$" "$dir/run1.err" || fail "no command on stderr"
python3 "$check" "$dir/run1.json" "$config_abs" "$workload 4 3145728 2" || fail "JSON check"
python3 - "$dir/run1.json" <<'PY' || fail "counts in run1.json"
import json, sys
d = json.load(open(sys.argv[1]))
large = d["buckets"]["LARGE"]
assert large["fresh_pages"] == 8 * 784, large
assert large["mapped_bytes"] == large["unmapped_bytes"] == 8 * (3 << 20 | 64 << 10), large
assert large["allocs"] == 8 and large["alloc_box"] == "large", large
box = {b["name"]: b for b in d["boxes"]}
assert box["large"]["allocs"] == 8 and box["large"]["frees"] == 8, box["large"]
assert box["system"]["allocs"] > 0, box["system"]
# each thread holds 4 * 3 MB touched at once (faults vary with THP; RSS not)
assert d["process"]["peak_rss_kb"] >= 4 * 3 * 1024, d["process"]
assert d["process"]["minor_faults"] > 0, d["process"]
PY

"$cli" run -c "$config" -s "box.telemetry.json_file=$dir/run2.json" -s box.telemetry.text=off -- \
    "$workload" 8 3145728 2 2>"$dir/run2.err" || fail "run 2 exited $?"
[ -s "$dir/run2.err" ] && { cat "$dir/run2.err"; fail "text = off still printed"; }
"$cli" report "$dir/run1.json" "$dir/run2.json" >"$dir/report.out" || fail "report exited $?"
awk '{$1=$1; print}' "$dir/report.out" | grep -qxF "LARGE.fresh_pages 6272 12544 +6272 +100.0%" ||
    { cat "$dir/report.out"; fail "no fresh_pages difference"; }
awk '{$1=$1; print}' "$dir/report.out" | grep -qxF "box.large.allocs 8 16 +8 +100.0%" ||
    { cat "$dir/report.out"; fail "no allocs difference"; }
echo "preload ok"
