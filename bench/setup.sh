#!/bin/sh
# Installs what `hakmem bench` compares against and draws with, from
# Debian's packages, when any is missing: the three peer allocators, gnuplot
# for the chart, valgrind for --instructions. Needs root (or sudo) only when
# something is missing. The runner calls it itself unless --no-setup.
set -eu

PACKAGES="libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 gnuplot-nox valgrind python3"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "bench/setup.sh: not a Debian system; install by hand: mimalloc, jemalloc," \
         "tcmalloc (minimal), gnuplot, valgrind" >&2
    exit 1
fi

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "bench/setup.sh: all present ($PACKAGES)" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "bench/setup.sh: missing:$missing; run as root to install them" >&2
    exit 1
fi

echo "bench/setup.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # word splitting of the lists is intended
$as_root apt-get update -qq >&2
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $missing >&2
