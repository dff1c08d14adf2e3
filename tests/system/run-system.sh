#!/bin/sh
# The system suite (tests/README.md): the built .deb installed with apt in a Debian root made
# by mmdebstrap, booted with systemd as PID 1 in systemd-nspawn; lium-test-probe.service runs
# probe.sh there (the package install and checks/*.sh), powers off, and test_system.py asserts
# on what the checks recorded. One booted container for every check.
#   run-system.sh SOURCE_ROOT WORKDIR [SUITE]      (SUITE: bookworm, the default)
# WORKDIR (under the build dir) keeps the .deb (rebuilt only when the tree changed), the root
# (rebuilt only when the suite or packages-SUITE.txt changed) and the last run's results.
# The root itself is never changed: the container runs on a volatile overlay of it.
# Exit 77 (skip) without root, mmdebstrap, systemd-nspawn or dpkg-buildpackage.
set -u
src=$1 work=$2 suite=${3:-bookworm}
here=$src/tests/system

skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "the system suite needs root (mmdebstrap, systemd-nspawn)"
for tool in mmdebstrap systemd-nspawn dpkg-buildpackage; do
  command -v "$tool" >/dev/null || skip "$tool missing (tools/install-deps.sh installs it)"
done
mkdir -p "$work"
work=$(cd "$work" && pwd)

echo "== building the package"
deb=$("$src/tools/build-deb.sh" "$work/deb") || exit 1
echo "$deb"

packages=$here/packages-$suite.txt
key=$( (echo "$suite"; cat "$packages") | sha256sum | cut -c1-16)
root=$work/root-$suite-$key
if [ ! -d "$root" ]; then
  echo "== making the $suite root (cached as $root)"
  rm -rf "$work"/root-"$suite"-*
  include=$(grep -v '^#' "$packages" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
  mmdebstrap --variant=minbase --include="$include" --skip=cleanup/apt/lists \
    "$suite" "$root.tmp" >"$work/mmdebstrap-$suite.log" 2>&1 || {
    tail -n 30 "$work/mmdebstrap-$suite.log"
    rm -rf "$root.tmp"
    echo "mmdebstrap failed; the log is $work/mmdebstrap-$suite.log"
    exit 1
  }
  mv "$root.tmp" "$root"
fi

# The tiny e2e guest (the host's Debian kernel, busybox, OVMF) for the running-VM check.
"$src/tests/e2e/build-guest.sh" "$work/guest" || {
  status=$?
  [ $status = 77 ] && skip "cannot build the e2e guest (see above)"
  exit 1
}

results=$work/results-$suite
rm -rf "$results"
mkdir -p "$results"
echo "== booting $root"
# The unified cgroup hierarchy cannot be set up inside this machine's own container.
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 timeout 540 systemd-nspawn --register=no --keep-unit \
  --console=pipe --volatile=overlay --machine="lcvm-system-$suite" -D "$root" \
  --bind-ro="$here:/lium-test/src" --bind-ro="$(dirname "$deb"):/lium-test/deb" \
  --bind="$results:/lium-test/results" --bind-ro="$work/guest:/lium-test/guest" \
  --private-network \
  --bind-ro="$here/lium-test-probe.service:/etc/systemd/system/lium-test-probe.service" \
  -b systemd.wants=lium-test-probe.service >"$results/console.log" 2>&1
echo "container exited with status $?"
for log in "$results"/*/check.log; do
  [ -f "$log" ] && echo "-- $log" && cat "$log"
done

echo "== asserting"
cd "$here" || exit 1
python=python3
python3 -c 'import pytest' 2>/dev/null || python=/usr/bin/python3
LCVM_SYSTEM_RESULTS=$results $python -m pytest -p no:cacheprovider -ra -v \
  --rootdir "$here" "$here"
