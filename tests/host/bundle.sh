#!/usr/bin/env bash
# hakmem bundle (docs/design.md, "Start-up"):
#   bundle.sh HAKMEM_CLI CONFIG_DIR
# - a bundle of configs/tiny-hot-ring.ini (its tiny_hot_ring is not one of
#   libhakmem.so's built-in boxes) and one of hardened.ini: a process under
#   either opens no hakbox_*.so (ld.so's LD_DEBUG=files lists every object
#   it opens, dlopen included), runs correctly, and its stats name the
#   bundled config and list its boxes;
# - the same config through HAKMEM_CONFIG and libhakmem.so does dlopen the
#   box that is not built in (what the bundle saves);
# - a config error stops the bundle command with exit 78, naming file:line;
#   a missing -o is a usage error.
set -u
cli=$1
configs=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
unset HAKMEM_BOX_PATH HAKMEM_CONFIG HAKMEM_SET LD_PRELOAD
lib_dir=$(dirname "$(dirname "$cli")")/lib
py=$(command -v /usr/bin/python3 || command -v python3)
prog=("$py" -c 'b = [bytes(n) for n in (10, 3000, 100000, 3000000)]; print(len(b))')

opened() { # lib, extra environment... -> the hakbox files ld.so opened
  local lib=$1; shift
  env "$@" LD_DEBUG=files LD_PRELOAD="$lib" "${prog[@]}" 2>&1 >/dev/null |
    grep -oE 'file=[^ ]*hakbox_[a-z0-9_]+\.so' | sed 's/.*file=//' | sort -u
}

check_bundle() { # config, boxes the stats must list...
  local ini=$1 out="$work/libhakmem-$(basename "$1" .ini).so"; shift
  "$cli" bundle -c "$configs/$ini" -o "$out" > "$work/bundle.txt" 2>&1 ||
    fail "hakmem bundle -c $ini: $(cat "$work/bundle.txt")"
  [ -f "$out" ] || fail "hakmem bundle wrote no $out"
  local got
  got=$(opened "$out")
  [ -z "$got" ] || fail "the bundle of $ini opened box files: $got"
  env HAKMEM_SET="host.stats=text,host.stats_file=$work/stats.txt" LD_PRELOAD="$out" \
    "${prog[@]}" > "$work/out.txt" || fail "program under the bundle of $ini failed"
  [ "$(cat "$work/out.txt")" = 4 ] || fail "program output under the bundle of $ini: $(cat "$work/out.txt")"
  grep -q "^config: (bundle of .*/$ini)" "$work/stats.txt" || fail "stats do not name the bundled $ini: $(head -3 "$work/stats.txt")"
  for b in "$@"; do
    grep -qE "^[a-z0-9_]+ +$b " "$work/stats.txt" || fail "stats under the bundle of $ini do not list box $b: $(cat "$work/stats.txt")"
  done
}

# 1. A config with a box libhakmem.so does not have built in.
check_bundle tiny-hot-ring.ini tiny_hot_ring superslab pool_tls_arena l25 large
got=$(opened "$lib_dir/libhakmem.so" HAKMEM_CONFIG="$configs/tiny-hot-ring.ini")
echo "$got" | grep -q 'hakbox_tiny_hot_ring\.so$' ||
  fail "libhakmem.so with HAKMEM_CONFIG=tiny-hot-ring.ini: expected hakbox_tiny_hot_ring.so opened, got: ${got:-nothing}"

# 2. hardened.ini: the same boxes as the default, its settings built in.
check_bundle hardened.ini tiny_unified_cache superslab pool_tls_arena l25 large

# 3. Errors.
printf '[route]\n1-max = nosuchbox\n' > "$work/bad.ini"
"$cli" bundle -c "$work/bad.ini" -o "$work/bad.so" > "$work/err.txt" 2>&1
rc=$?
[ $rc = 78 ] || fail "a bad config: exit $rc, expected 78: $(cat "$work/err.txt")"
grep -q "bad.ini:2" "$work/err.txt" || fail "a bad config: no file:line in: $(cat "$work/err.txt")"
[ ! -e "$work/bad.so" ] || fail "a bad config still wrote a bundle"
"$cli" bundle -c "$configs/hardened.ini" > /dev/null 2>&1
[ $? = 2 ] || fail "bundle without -o: expected exit 2"
echo "ok"
