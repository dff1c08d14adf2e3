#!/bin/sh
# SPDX-License-Identifier: MIT
# The 'fuzz' suite's run of one target (fuzz/meson.build): every seed in the source tree's
# corpus (the regression inputs) once, then RUNS more inputs mutated from them with a fixed
# seed, so a run is repeatable. New inputs go to a work directory in the build tree, never into
# the source tree. A crash, a leak, a sanitizer report, a critical or a timeout fails the test.
# Usage: smoke.sh TARGET SEEDS_DIR WORK_DIR RUNS
set -eu
target=$1 seeds=$2 work=$3 runs=$4
rm -rf "$work"
mkdir -p "$work"
# FUZZ_SLOW_UNWIND=1: full malloc stacks (GLib and libsoup have no frame pointers, and
# lsan.supp names a libsoup frame); several times slower, so only where needed.
unwind=""
[ "${FUZZ_SLOW_UNWIND:-0}" = 1 ] && unwind=":fast_unwind_on_malloc=0"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1$unwind}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(dirname "$0")/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
exec "$target" -runs="$runs" -seed=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$work/" "$work" "$seeds"
