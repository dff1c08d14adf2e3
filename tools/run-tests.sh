#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's second command and what CI runs: installs the dependencies, then builds and
# runs the whole suite twice — a normal build (unit, integration with a real dbus-daemon
# and polkitd, end-to-end with the real QEMU, system: the .deb under systemd in
# systemd-nspawn) and an ASan/UBSan build (unit, integration, hostapi, the VMs of e2e) — and the
# libFuzzer smoke runs (suite 'fuzz') in a clang build (fuzz/README.md).
# Ends with one line "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
./tools/install-deps.sh || exit 2

status=0
run_suite() {
  dir=$1; shift
  opts=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    # shellcheck disable=SC2086
    meson setup "$dir" $opts >/dev/null || return 2
  fi
  ninja -C "$dir" || return 2
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
}

run_suite build "--werror" || status=1
# LeakSanitizer on: where it cannot run (programs under our seccomp profiles: the host-API
# bridge defaults to it off, lcvm-confined-lsan.h; the spawn probes of suite e2e-confined are
# left out) it is off for that process; tests/README.md says where leaks are checked and why.
# The VMs of the e2e suite run here too: the ASan helper and frontend through every VM path.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_suite build-asan "-Db_sanitize=address,undefined -Db_lundef=false -Dcockpit=disabled" \
  --no-suite e2e-confined --no-suite bench --no-suite system || status=1

CC=clang run_suite build-fuzz \
  "-Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false -De2e=disabled" \
  --suite fuzz || status=1

python3 "$root/tools/summarize-tests.py" build/meson-logs/testlog.json \
  build-asan/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json || status=1
exit $status
