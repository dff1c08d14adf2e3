#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds lium-cvm_VERSION_amd64.deb (and lium-cvm-cockpit_VERSION_all.deb, the Cockpit page,
# where node and npm are installed: otherwise the build profile pkg.lium-cvm.nocockpit leaves
# it out) from this tree with dpkg-buildpackage, in OUTDIR (under a
# build directory, so the clone stays clean): the tracked and untracked-but-not-ignored files
# are copied to OUTDIR/src, built there, and the .deb lands in OUTDIR. A tree whose files did
# not change since the last build is not built again. Prints the .deb's path on stdout.
# With ROOT (a Debian root holding the build dependencies, e.g. another release), the build
# runs inside it (systemd-nspawn on a volatile overlay: ROOT is not changed), after a
# `meson setup --werror` build of the whole project there (that release's compiler's
# warnings are errors, as on this machine) and its unit suite (that release's libraries;
# with QEMU in ROOT, test-qemu-accepts-argv runs that release's QEMU); without the Cockpit page.
# Usage: tools/build-deb.sh OUTDIR [ROOT]     (the build dependencies: tools/install-deps.sh)
set -eu
out=${1:?usage: build-deb.sh OUTDIR [ROOT]}
root=${2:-}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The source as a reproducible tar stream: its hash says whether anything changed.
source_tar() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
      xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
      tar --null -T - --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf -
  else
    tar --exclude='./build*' --exclude='./.git' --sort=name --mtime=@0 --owner=0 --group=0 \
      --numeric-owner -cf - .
  fi
}
hash=$(source_tar | sha256sum | cut -d' ' -f1)
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
deb="$out/lium-cvm_${version}_amd64.deb"
if [ -f "$deb" ] && [ "$(cat "$out/source.sha256" 2>/dev/null)" = "$hash" ]; then
  echo "$deb"
  exit 0
fi

rm -rf "$out/src" "$out"/lium-cvm_* "$out"/lium-cvm-cockpit_* "$out"/lium-cvm-dbgsym_* "$out/source.sha256"
mkdir "$out/src"
source_tar | tar -xf - -C "$out/src"
build() {
  if [ -z "$root" ]; then
    profiles=
    command -v node >/dev/null && command -v npm >/dev/null || profiles=-Ppkg.lium-cvm.nocockpit
    (cd "$out/src" && dpkg-buildpackage -b -us -uc $profiles)
  else
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 systemd-nspawn -q --register=no --keep-unit \
      --volatile=overlay -D "$root" \
      --bind="$out:/build" --chdir=/build/src sh -ec \
      'meson setup /tmp/werror --werror >/dev/null && ninja -C /tmp/werror &&
       meson test -C /tmp/werror --suite unit --print-errorlogs &&
       dpkg-buildpackage -b -us -uc -Ppkg.lium-cvm.nocockpit'
  fi
}
build >"$out/dpkg-buildpackage.log" 2>&1 || {
  tail -n 40 "$out/dpkg-buildpackage.log" >&2
  echo "build-deb.sh: dpkg-buildpackage failed; the whole log is $out/dpkg-buildpackage.log" >&2
  exit 1
}
echo "$hash" >"$out/source.sha256"
echo "$deb"
