#!/usr/bin/env bash
# The test command (README, CI): install what is missing, then build and
# test three ways:
#   build/        Release: every test, preloaded ones included;
#   build-asan/   Debug with ASan+UBSan: box tests (boxes linked directly);
#   build-tsan/   TSan: box tests.
# A preloaded allocator cannot run under a sanitizer's allocator, so the
# sanitizer builds run the tests that drive boxes through the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/deps.sh
jobs=$(nproc)
build() { # dir, cmake args...
  local dir=$1; shift
  mkdir -p "$dir"
  cmake -S . -B "$dir" -DHAKMEM_ONLY_SUITES= -DHAKMEM_ONLY_BOXES= "$@" > "$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log"; exit 1; }
  cmake --build "$dir" -j "$jobs"
}
mkdir -p build build-asan build-tsan
build build -DCMAKE_BUILD_TYPE=Release
build build-asan -DCMAKE_BUILD_TYPE=Debug -DHAKMEM_SANITIZE=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAKMEM_TSAN=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
status=0
(cd build-asan && ctest -L 'box|fuzz' --output-on-failure -j "$jobs") || status=1
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1" ctest -L box --output-on-failure -j "$jobs") || status=1
(cd build && ctest --output-on-failure -j "$jobs" -LE stress) || status=1
exit $status
