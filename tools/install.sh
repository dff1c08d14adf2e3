#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's first command: installs the build dependencies, builds the Debian package
# (tools/build-deb.sh, under build-release/ so the clone stays clean), installs it with apt
# (which pulls its runtime dependencies and creates the lium-cvm group, the directories and
# /etc/lium-cvm/lium-cvm.conf; the helper is D-Bus activated at the first call), then runs
# the main job: `lium-cvm check`.
# Exit status is check's: 0 ready, 1 this host is not ready (the report says why), 2 error.
set -eu
cd "$(dirname "$0")/.."
"$(pwd)/tools/install-deps.sh"

deb=$(tools/build-deb.sh build-release)
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall "$deb" || {
  echo "install.sh: apt-get install $deb failed" >&2
  exit 2
}

echo
echo "lium-cvm installed ($deb). Grant an operator with: usermod -aG lium-cvm USER"
for page in build-release/lium-cvm-cockpit_*_all.deb; do
  [ -f "$page" ] && echo "The Cockpit page: apt-get install cockpit ./$page"
done
echo "Running: lium-cvm check"
echo
exec /usr/bin/lium-cvm check
