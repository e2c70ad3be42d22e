#!/usr/bin/env bash
# Start-up of libhakmem.so (docs/design.md, "Start-up"):
#   startup.sh LIBDIR [CONFORMANCE]
# - the default config's boxes are built in: a process under it opens no
#   hakbox_*.so and no libinih (ld.so's LD_DEBUG=files lists every object
#   it opens, dlopen included), yet runs on the boxes (its stats say so);
# - a hakbox_NAME.so newer than libhakmem.so beside it is loaded instead
#   of the built-in (a rebuilt box is never ignored), and only that one;
# - a .so in HAKMEM_BOX_PATH is loaded instead of the built-in;
# - host.builtin_boxes=off loads every box of the config from its .so;
# - with the embedded default a process that never allocates does not
#   start the host; with HAKMEM_CONFIG it starts before main;
# - libhakmem.so alone in a folder (no box file to find) starts and leaves
#   errno alone: the conformance program's first case checks errno after
#   the process's first malloc.
set -u
lib_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
unset HAKMEM_BOX_PATH HAKMEM_CONFIG HAKMEM_SET LD_PRELOAD
boxes="tiny_unified_cache superslab pool_tls_arena l25 large page_hot span_warm os_pages"
# A program that allocates in every tier of the default routes.
py=$(command -v /usr/bin/python3 || command -v python3)
prog=("$py" -c 'b = [bytes(n) for n in (10, 3000, 100000, 3000000)]; print(len(b))')

opened() { # lib, extra environment... -> the hakbox/inih files ld.so opened
  local lib=$1; shift
  env "$@" LD_DEBUG=files LD_PRELOAD="$lib" "${prog[@]}" 2>&1 >/dev/null |
    grep -oE 'file=[^ ]*(hakbox_[a-z0-9_]+\.so|libinih[^ ]*)' | sed 's/.*file=//' | sort -u
}

# 1. Built in: nothing opened, and the stats show the default boxes ran.
got=$(opened "$lib_dir/libhakmem.so")
[ -z "$got" ] || fail "the default config opened: $got"
env HAKMEM_SET="host.stats=text,host.stats_file=$work/stats.txt" LD_PRELOAD="$lib_dir/libhakmem.so" \
  "${prog[@]}" > "$work/out.txt" || fail "program under the built-in boxes failed"
[ "$(cat "$work/out.txt")" = 4 ] || fail "program output: $(cat "$work/out.txt")"
for b in $boxes; do
  grep -qE "^[a-z0-9_]+ +$b " "$work/stats.txt" || fail "stats do not list box plugin $b: $(cat "$work/stats.txt")"
done

# 2. A copy of the folder with the same times; then one box rebuilt (newer).
mkdir "$work/lib"
cp -p "$lib_dir"/libhakmem.so "$lib_dir"/hakbox_*.so "$work/lib/"
got=$(opened "$work/lib/libhakmem.so")
[ -z "$got" ] || fail "a copy with the same times opened: $got"
touch -d '+1 minute' "$work/lib/hakbox_large.so"
got=$(opened "$work/lib/libhakmem.so")
[ "$got" = "$work/lib/hakbox_large.so" ] || fail "a newer hakbox_large.so: expected only it opened, got: ${got:-nothing}"

# 3. HAKMEM_BOX_PATH wins, whatever the file's time.
mkdir "$work/mine"
cp -p "$lib_dir/hakbox_superslab.so" "$work/mine/"
got=$(opened "$lib_dir/libhakmem.so" HAKMEM_BOX_PATH="$work/mine")
[ "$got" = "$work/mine/hakbox_superslab.so" ] || fail "HAKMEM_BOX_PATH: expected its superslab, got: ${got:-nothing}"

# 4. builtin_boxes = off: every box from its file.
got=$(opened "$lib_dir/libhakmem.so" HAKMEM_SET=host.builtin_boxes=off | wc -l)
[ "$got" = 8 ] || fail "host.builtin_boxes=off opened $got box files, expected 8"

# 5. Lazy start with the embedded default; eager with a config file: a bad
#    HAKMEM_CONFIG stops even a program that never allocates.
env LD_PRELOAD="$lib_dir/libhakmem.so" /bin/true || fail "/bin/true under the default config"
echo "[nonsense]" > "$work/bad.ini"
env HAKMEM_CONFIG="$work/bad.ini" LD_PRELOAD="$lib_dir/libhakmem.so" /bin/true 2> "$work/err.txt"
rc=$?
[ "$rc" = 78 ] || fail "/bin/true with a bad HAKMEM_CONFIG exited $rc, expected 78 (host started before main)"
grep -q "unknown section \[nonsense\]" "$work/err.txt" || fail "no error naming the bad section: $(cat "$work/err.txt")"

if [ $# -ge 2 ]; then
  mkdir "$work/alone" && cp "$lib_dir/libhakmem.so" "$work/alone/"
  LD_PRELOAD="$work/alone/libhakmem.so" "$2" > "$work/conf.txt" 2>&1 ||
    fail "conformance under libhakmem.so alone in a folder: $(head -5 "$work/conf.txt")"
fi
echo "startup: ok"
