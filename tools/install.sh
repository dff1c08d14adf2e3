#!/bin/sh
# The README's first command: installs the build dependencies, builds lium-cvm, installs it
# under /usr (helper in /usr/libexec, D-Bus, polkit, systemd files in their system places),
# creates the lium-cvm group and directories, then runs the main job: `lium-cvm check`.
# Exit status is check's: 0 ready, 1 this host is not ready (the report says why), 2 error.
set -eu
cd "$(dirname "$0")/.."
"$(pwd)/tools/install-deps.sh"

if [ ! -f build-release/build.ninja ]; then
  meson setup build-release --prefix=/usr --sysconfdir=/etc \
    --buildtype=release -Db_lto=false >/dev/null
fi
ninja -C build-release
meson install -C build-release --no-rebuild --quiet

if [ ! -e /etc/lium-cvm/lium-cvm.conf ]; then
  install -D -m 0644 /usr/share/lium-cvm/lium-cvm.conf.example /etc/lium-cvm/lium-cvm.conf
fi
getent group lium-cvm >/dev/null || groupadd --system lium-cvm
systemd-tmpfiles --create /usr/lib/tmpfiles.d/lium-cvm.conf 2>/dev/null || true
# Reload the bus configuration when a system bus runs, so D-Bus activation sees the helper.
if [ -S /run/dbus/system_bus_socket ]; then
  dbus-send --system --type=method_call --dest=org.freedesktop.DBus / \
    org.freedesktop.DBus.ReloadConfig 2>/dev/null || true
fi

echo
echo "lium-cvm installed. Grant an operator with: usermod -aG lium-cvm USER"
echo "Running: lium-cvm check"
echo
exec /usr/bin/lium-cvm check
