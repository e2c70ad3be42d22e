#!/usr/bin/env bash
# Run the config fuzzer for a bounded time over a fresh corpus seeded with
# the shipped configs, the host suite's bad configs and fuzz_seeds/.
# usage: fuzz.sh FUZZER WORK_DIR SECONDS
# A crash, a leak, a timeout (10 s per input) or more than 2 GB of RSS fails
# the test; the input that did it is left in WORK_DIR/artifacts/.
set -u
fuzzer=$1 work=$2 seconds=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict="$here/fuzz.dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/corpus" "$root/configs" "$root/tests/host/bad_configs" "$root/tests/host" "$here/fuzz_seeds"
