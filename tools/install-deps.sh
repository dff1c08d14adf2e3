#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs every Debian 12 package lium-cvm needs to build, run and test. Idempotent.
# The build dependencies are debian/control's (`apt-get build-dep .` installs the same).
set -eu
if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
packages="
  meson ninja-build pkg-config gcc clang-format clang libclang-rt-14-dev
  libglib2.0-dev libjson-glib-dev libpolkit-gobject-1-dev libpolkit-agent-1-dev
  libpci-dev libcurl4-openssl-dev libseccomp-dev libkmod-dev libarchive-dev
  libsystemd-dev libcap-ng-dev libnftables-dev libsoup-3.0-dev
  dbus polkitd pkexec systemd nftables util-linux iproute2 pciutils curl
  qemu-system-x86 qemu-utils ovmf busybox-static linux-image-amd64 cpio
  python3 python3-pytest python3-jsonschema openssl glib-networking libxml2-utils hyperfine time gettext-base python3-gi
  cockpit-ws cockpit-bridge chromium
  prometheus prometheus-node-exporter ansible-core git python3-voluptuous yamllint python3-pycodestyle
  debhelper dpkg-dev mmdebstrap systemd-container bash-completion
"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
# The Cockpit page is built with node and npm (npm ci from cockpit/package-lock.json). This
# kind of machine ships Node.js with npm; Debian's own are the fallback where it does not.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing: nodejs npm"
  apt-get update -q
  apt-get install -y -q --no-install-recommends nodejs npm
fi
