#!/bin/sh
# SPDX-License-Identifier: MIT
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

# A root made by mmdebstrap, cached as WORK/NAME-SUITE-KEY (KEY: the suite, the variant and
# the package list); an earlier one of the same NAME is removed once the new one is made.
cached_root() {
  name=$1 variant=$2 include=$3
  key=$( (echo "$suite $variant"; echo "$include") | sha256sum | cut -c1-16)
  dir=$work/$name-$suite-$key
  if [ ! -d "$dir" ]; then
    echo "== making the $suite $name (cached as $dir)" >&2
    rm -rf "$dir.tmp"
    mmdebstrap --variant="$variant" --include="$include" --skip=cleanup/apt/lists \
      "$suite" "$dir.tmp" >"$work/mmdebstrap-$name-$suite.log" 2>&1 || {
      tail -n 30 "$work/mmdebstrap-$name-$suite.log" >&2
      rm -rf "$dir.tmp"
      echo "mmdebstrap failed; the log is $work/mmdebstrap-$name-$suite.log" >&2
      return 1
    }
    for stale in "$work/$name-$suite"-*; do
      [ "$stale" = "$dir.tmp" ] || rm -rf "$stale"
    done
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

echo "== building the package"
host_suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
if [ "$suite" = "$host_suite" ]; then
  deb=$("$src/tools/build-deb.sh" "$work/deb") || exit 1
else
  # Another release: built in a root of that release (its compiler, its library names), with a
  # --werror build of the whole project and its unit suite first (with that release's QEMU,
  # so test-qemu-accepts-argv runs it). The build dependencies are debian/control's, less
  # those of build profiles (it builds with pkg.lium-cvm.nocockpit).
  build_deps=$(sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*: /p' "$src/debian/control" |
    sed '$d; s/^Build-Depends://' | tr ',' '\n' | grep -v '<[!a-z]' |
    sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' |
    sed 's/^debhelper-compat$/debhelper/' | grep -v '^$' | tr '\n' ',' | sed 's/,$//')
  build_deps=$build_deps,qemu-system-x86,qemu-utils
  buildroot=$(cached_root buildroot buildd "$build_deps") || exit 1
  deb=$("$src/tools/build-deb.sh" "$work/deb-$suite" "$buildroot") || exit 1
fi
echo "$deb"

include=$(grep -v '^#' "$here/packages-$suite.txt" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
root=$(cached_root root minbase "$include") || exit 1

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
# The unified cgroup hierarchy cannot be set up inside this machine's own container (it has
# cgroup v1 only); systemd >= 256 (Debian 13) boots on v1 only when told to on its command
# line.
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 timeout 540 systemd-nspawn --register=no --keep-unit \
  --console=pipe --volatile=overlay --machine="lcvm-system-$suite" -D "$root" \
  --bind-ro="$here:/lium-test/src" --bind-ro="$(dirname "$deb"):/lium-test/deb" \
  --bind="$results:/lium-test/results" --bind-ro="$work/guest:/lium-test/guest" \
  --private-network \
  --bind-ro="$here/lium-test-probe.service:/etc/systemd/system/lium-test-probe.service" \
  -b systemd.wants=lium-test-probe.service systemd.unified_cgroup_hierarchy=0 \
  SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 >"$results/console.log" 2>&1
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
