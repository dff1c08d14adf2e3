# SPDX-License-Identifier: MIT
# Last: a purge leaves nothing of the package behind but the group (Debian keeps system
# groups: files may still belong to them).
. "$LIUM_TEST/lib.sh"

# A helper that is running when the package goes (no idle exit to race with): the removal
# stops it.
systemctl stop lium-cvm-helper.service
sed -i 's|^idle_timeout=.*|idle_timeout=0|' /etc/lium-cvm/lium-cvm.conf
as_op lium-cvm version >/dev/null
record helper-state-before systemctl is-active lium-cvm-helper.service
record purge apt-get purge -y lium-cvm
record left ls -d /etc/lium-cvm /var/lib/lium-cvm /run/lium-cvm /etc/modules-load.d/lium-cvm.conf \
  /etc/modprobe.d/lium-cvm-vfio.conf /usr/libexec/lium-cvm-helper \
  /usr/share/dbus-1/system-services/io.lium.Cvm1.service \
  /var/lib/prometheus/node-exporter/lium_cvm.prom /var/cache/lium-cvm-metrics
record dpkg-status dpkg-query -W -f '${db:Status-Status}\n' lium-cvm
record helper-state systemctl is-active lium-cvm-helper.service
