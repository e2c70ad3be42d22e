#!/usr/bin/env bash
# The box kit, end to end (tests/kit/CMakeLists.txt):
#   kit_test.sh CMAKE BUILD_DIR WORK_DIR SOURCE_DIR LIBDIR CC MODE
# MODE install: install BUILD_DIR to a prefix and use the kit from there;
# MODE build: use the kit of BUILD_DIR itself (bin/hakmem, lib/cmake/hakmem).
# Both build boxes as `hakmem new-box` writes them; MODE build also the
# new-box templates as they stand.
# Every step must pass; the first failure names itself and ends the test.
set -euo pipefail
cmake=$1 build=$2 work=$3 src=$4 libdir=$5 cc=$6 mode=$7
templates=$src/host/cli/templates
roles="alloc pages observer"
answer=5888890
program='print(sum(len(str(i)) for i in range(10**6)))'
# the interpreter itself, not a wrapper script (pyenv shims are bash)
python=$(python3 -c 'import sys; print(sys.executable)')

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
need() { [ -e "$1" ] || fail "missing after install: $1"; }

rm -rf "$work"
mkdir -p "$work"

# configure + build one out-of-tree project against the kit at $prefix
# (given as CMAKE_PREFIX_PATH, or found through the HINTS new-box wrote)
build_project() { # dir [source dir]
  local source=${2:-$1} args=()
  [ -n "${2:-}" ] && args=(-DCMAKE_PREFIX_PATH="$prefix")
  "$cmake" -S "$source" -B "$1/build" "${args[@]}" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-Werror > "$1/configure.log" 2>&1 \
    || { cat "$1/configure.log"; fail "configure $source"; }
  grep -q "hakmem_DIR:PATH=$prefix/" "$1/build/CMakeCache.txt" || fail "$source found another hakmem than $prefix"
  "$cmake" --build "$1/build" > "$1/build.log" 2>&1 || { cat "$1/build.log"; fail "build $source"; }
}
# a project's own tests: boxtest and python3 under its config
project_tests() { # dir what
  (cd "$1/build" && ctest --output-on-failure > ../ctest.log 2>&1) || { cat "$1/ctest.log"; fail "the tests of $2"; }
  grep -q '100% tests passed, 0 tests failed out of 2' "$1/ctest.log" || { cat "$1/ctest.log"; fail "$2 ran not 2 tests"; }
  echo "$2: boxtest and python3 pass"
}
# the templates, untouched, as the projects they are
templates_as_they_stand() {
  step "the new-box templates as they stand, against $prefix"
  for role in $roles; do
    mkdir -p "$work/template_$role"
    build_project "$work/template_$role" "$templates/$role"
    project_tests "$work/template_$role" "templates/$role as it stands"
  done
}
# boxes scaffolded by this kit's hakmem new-box, built through the HINTS
# it wrote (no CMAKE_PREFIX_PATH)
scaffolded() { # name-prefix roles...
  local name=$1; shift
  step "scaffold, build and test a box of role $* with $hakmem new-box"
  for role in "$@"; do
    local dir=$work/${name}_$role
    "$hakmem" new-box "${name}_$role" --role "$role" --dir "$dir" > /dev/null || fail "new-box --role $role"
    for f in "${name}_$role.c" "${name}_$role.ini" CMakeLists.txt README.md .gitignore; do
      [ -s "$dir/$f" ] || fail "new-box --role $role wrote no $f"
    done
    ! grep -rq -e "sample_$role" -e '@HAKMEM_' "$dir" || fail "new-box --role $role left template names in $dir"
    build_project "$dir"
    project_tests "$dir" "the scaffolded $role box"
  done
}

if [ "$mode" = build ]; then
  prefix=$(cd "$build" && pwd -P)
  hakmem=$prefix/bin/hakmem
  templates_as_they_stand
  # shellcheck disable=SC2086
  scaffolded built $roles
  step "ok"
  exit 0
fi
[ "$mode" = install ] || fail "MODE is install or build, not '$mode'"
prefix=$work/prefix

step "install to $prefix"
"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
boxdir=$prefix/$libdir/hakmem
need "$boxdir/libhakmem.so"
for b in system large os_pages; do need "$boxdir/hakbox_$b.so"; done
need "$prefix/bin/hakmem"
need "$prefix/share/hakmem/configs/default.ini"
need "$prefix/include/box_api/hakmem_box.h"
need "$prefix/include/box_api/hakmem_util.h"
need "$prefix/include/hakmem.h"
need "$prefix/$libdir/cmake/hakmem/hakmemConfig.cmake"
need "$prefix/$libdir/cmake/hakmem/hakmemConfigVersion.cmake"
need "$prefix/$libdir/cmake/hakmem/HakmemBox.cmake"
need "$prefix/$libdir/pkgconfig/hakmem.pc"
hakmem=$prefix/bin/hakmem
"$hakmem" version
"$hakmem" check "$prefix/share/hakmem/configs/default.ini" > /dev/null || fail "installed hakmem check default.ini"

step "pkg-config: Cflags and boxdir, and a box built with them alone"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
cflags=$(pkg-config --cflags hakmem)
pc_boxdir=$(pkg-config --variable=boxdir hakmem)
[ "$(cd "$pc_boxdir" && pwd -P)" = "$(cd "$boxdir" && pwd -P)" ] || fail "pkg-config boxdir $pc_boxdir is not $boxdir"
[ -x "$(pkg-config --variable=hakmem hakmem)" ] || fail "pkg-config variable hakmem is not the CLI"
mkdir -p "$work/pc"
# shellcheck disable=SC2086
"$cc" -std=gnu11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -Wl,-z,defs $cflags \
  "$src/examples/guard_pages/guard_pages.c" -o "$work/pc/hakbox_guard_pages.so" || fail "cc with pkg-config --cflags"
"$hakmem" boxes --dir "$work/pc" | grep -q '^guard_pages \[alloc\]' || fail "hakmem boxes does not list the pkg-config build"

# python3 under hakmem with a config; must print the answer and nothing else
run_python() { # config, extra args...
  local cfg=$1; shift
  local out
  out=$("$hakmem" run -c "$cfg" "$@" -- "$python" -c "$program") || fail "hakmem run -c $cfg exited $?"
  [ "$out" = "$answer" ] || fail "hakmem run -c $cfg printed '$out', expected $answer"
  echo "python3 under $(basename "$cfg"): $out"
}

step "scaffold an alloc box with the installed hakmem new-box"
cd "$work"
"$hakmem" new-box kitbox --dir "$work/kitbox"
for f in kitbox.c CMakeLists.txt kitbox.ini README.md; do [ -s "$work/kitbox/$f" ] || fail "new-box wrote no $f"; done
build_project "$work/kitbox"
so=$work/kitbox/build/hakbox_kitbox.so
[ -f "$so" ] || fail "no $so"

step "hakmem boxtest on the scaffolded box"
"$hakmem" boxtest "$so" --range 1-1K || fail "boxtest of the scaffolded alloc box"

step "install the box beside the stock ones; a config naming it by plugin name"
"$cmake" --install "$work/kitbox/build" --prefix "$prefix" > /dev/null || fail "cmake --install of the box"
[ -f "$boxdir/hakbox_kitbox.so" ] || fail "hakmem_add_box did not install into $boxdir"
cat > "$work/kitbox-run.ini" <<'INI'
[host]
stats = off
[box.mine]
plugin = kitbox
max_size = 2K
[box.large]
plugin = large
[box.system]
plugin = system
[route]
1-2K = mine
2049-64K = system
65537-max = large
INI
"$hakmem" check "$work/kitbox-run.ini" > "$work/check.log" || { cat "$work/check.log"; fail "hakmem check"; }
grep -q "mine: plugin kitbox" "$work/check.log" || fail "hakmem check does not show the box"
run_python "$work/kitbox-run.ini"
# the scaffolded project's own tests (boxtest + its config) from its build
(cd "$work/kitbox/build" && ctest --output-on-failure) || fail "the scaffolded alloc project's tests"

# (templates_as_they_stand runs in MODE build: the same files, the same kit)
scaffolded kit pages observer

step "examples/guard_pages, out of tree"
cp -r "$src/examples/guard_pages" "$work/guard_pages"
rm -rf "$work/guard_pages/build"
build_project "$work/guard_pages" "$work/guard_pages"
"$hakmem" boxtest "$work/guard_pages/build/hakbox_guard_pages.so" --range 1-4K || fail "boxtest of guard_pages"
run_python "$work/guard_pages/guard_pages.ini" -s "host.box_dir=$work/guard_pages/build"
(cd "$work/guard_pages/build" && ctest --output-on-failure) || fail "guard_pages' own tests"

step "ok"
