#!/usr/bin/env bash
# `hakmem check` on a known config prints the resolved chain: each route,
# its boxes, each box's links and parameters with values or defaults.
# usage: check_output.sh HAKMEM_CLI CONFIG TEST_BOX_DIR LIB_DIR
set -u
cli=$1 config=$2
export HAKMEM_BOX_PATH="$3:$4"
out=$("$cli" check "$config") || { echo "FAIL: hakmem check exited $?"; exit 1; }
echo "$out"
fail=0
need() {
  if ! grep -Eq -- "$1" <<< "$out"; then echo "FAIL: no line matching /$1/"; fail=1; fi
}
need "^config: .*known.ini$"
need "^host: stats=json stats_file=/tmp/x.json on_config_error=exit on_bad_free=warn hardened=on remote_frees=home terminal=big$"
need "^ +1 \.\. 1K +small  \| then big$"
need "^ +1025 \.\. max +big$"
need "^  pages: plugin test_link \[pages\] owner 3"
need "^    below += sub$"
need "^    span += 128K +$"
need "^  sub: plugin test_link \[pages\]"
need "^    span += 64K +\(default\)$"
need "^ok$"
exit $fail
