#!/usr/bin/env bash
# Every config mistake gives one line naming file:line and the key, and exit
# code 78, both from `hakmem check` and from a program started under the host.
# usage: config_errors.sh HAKMEM_CLI LIBHAKMEM CASE_DIR TEST_BOX_DIR
set -u
cli=$1 lib=$2 cases=$3 boxdir=$4
export HAKMEM_BOX_PATH="$boxdir:$(dirname "$lib")"
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

expect() { # name, expected rc, regex, then the command
  local name=$1 want_rc=$2 regex=$3; shift 3
  "$@" > /dev/null 2> "$out"; local rc=$?
  if [ "$rc" -ne "$want_rc" ]; then
    echo "FAIL $name: exit $rc, expected $want_rc; stderr: $(head -3 "$out")"; fail=1
  elif [ -n "$regex" ] && ! grep -Eq -- "$regex" "$out"; then
    echo "FAIL $name: stderr does not match /$regex/:"; sed 's/^/    /' "$out" | head -5; fail=1
  else
    echo "ok   $name"
  fi
}

for f in "$cases"/*.ini; do
  name=$(basename "$f" .ini)
  regex=$(sed -n '1s/^; expect: //p' "$f")
  [ -n "$regex" ] || { echo "FAIL $name: no '; expect:' line"; fail=1; continue; }
  expect "check/$name" 78 "^hakmem: .*$regex" "$cli" check "$f"
  expect "preload/$name" 78 "^hakmem: .*$regex" env HAKMEM_CONFIG="$f" LD_PRELOAD="$lib" /bin/true
done

ok="$cases/../ok.ini"
expect "set/unknown key" 78 "^hakmem: HAKMEM_SET:2: \[box.system\] unknown key 'colour'" \
  env HAKMEM_CONFIG="$ok" HAKMEM_SET="host.stats=off,box.system.colour=red" LD_PRELOAD="$lib" /bin/true
expect "set/malformed" 78 "^hakmem: HAKMEM_SET:1: 'nonsense': expected section.key=value" \
  env HAKMEM_CONFIG="$ok" HAKMEM_SET="nonsense" LD_PRELOAD="$lib" /bin/true
expect "missing file" 78 "^hakmem: /nonexistent/x.ini: cannot open config file" \
  env HAKMEM_CONFIG=/nonexistent/x.ini LD_PRELOAD="$lib" /bin/true
expect "fallback" 0 "on_config_error = fallback: this program runs on the system allocator" \
  env HAKMEM_CONFIG="$cases/../fallback.ini" LD_PRELOAD="$lib" /bin/true
expect "ok config runs" 0 "" env HAKMEM_CONFIG="$ok" LD_PRELOAD="$lib" /bin/true
exit $fail
