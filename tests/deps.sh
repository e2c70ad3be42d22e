#!/usr/bin/env bash
# Install the Debian packages hakmem's build, tests and benchmarks need,
# if any is missing. Runs apt-get as root (or through sudo).
set -euo pipefail
packages=(
  build-essential cmake pkg-config libinih-dev   # the build
  libzstd-dev                                    # compressed traces (hakmem record)
  clang libclang-rt-dev                          # sanitizer builds, fuzzing
  python3 sqlite3 gawk coreutils git perl        # real programs in the tests
  xz-utils zstd bc tar gzip findutils            # and more of them (make, gcc: build-essential)
  valgrind                                       # instruction counts
  time mawk                                      # /usr/bin/time (faults, peak RSS); bench real_mawk
  libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 gnuplot-nox  # bench peers, charts
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
