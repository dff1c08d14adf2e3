# SPDX-License-Identifier: MIT
# The package on a fresh Debian root booted with systemd: apt installs it, and with it the
# group (sysusers.d), the directories (tmpfiles.d, including /etc/modprobe.d that a minimal
# root lacks), the conffile; D-Bus activation needs no restart of anything.
. "$LIUM_TEST/lib.sh"

record versions sh -c '. /etc/os-release && echo "$PRETTY_NAME"; systemctl --version | head -n 1;
  qemu-system-x86_64 --version | head -n 1; dpkg-query -W polkitd dbus'
record modprobe-d-before test -d /etc/modprobe.d
record polkit-dir-before stat -c '%U:%G %a' /usr/share/polkit-1/rules.d
record apt-install apt-get install -y --no-install-recommends /lium-test/deb/lium-cvm_*_amd64.deb
record group getent group lium-cvm
record polkit-dir stat -c '%U:%G %a' /usr/share/polkit-1/rules.d
record persist-dirs stat -c '%n %U:%G %a' /etc/modules-load.d /etc/modprobe.d
record state-dirs stat -c '%n %U:%G %a' /var/lib/lium-cvm /var/lib/lium-cvm/images \
  /var/lib/lium-cvm/vms /var/lib/lium-cvm/instances /run/lium-cvm
record conffiles dpkg-query -W -f '${Conffiles}\n' lium-cvm
record unit systemctl show lium-cvm-helper.service -p ProtectSystem -p ReadWritePaths \
  -p KillMode -p Type -p BusName
record security systemd-analyze security --no-pager lium-cvm-helper.service

# The operators: one in group lium-cvm, one outside it.
useradd -m -s /bin/bash lcvm-op
usermod -aG lium-cvm lcvm-op
useradd -m -s /bin/bash lcvm-out
id -u lcvm-op >"$RESULTS/op.uid"
id -u lcvm-out >"$RESULTS/out.uid"

# An administrator's edit of the conffile: no GPUs here, so the helper sees the fake sysfs
# of the integration harness (the vfio modules present, the DMA limit at the kernel's
# default); a short idle timeout so the activation check sees the helper exit; no TDX or KVM,
# so QEMU runs the e2e guest under TCG (allow_no_tee). The fake tree lives in state_dir,
# which the unit lets the helper write.
mkdir -p "$FAKE_SYSFS/module/vfio" "$FAKE_SYSFS/module/vfio_pci" \
  "$FAKE_SYSFS/module/vfio_iommu_type1/parameters" "$FAKE_SYSFS/bus/pci/devices"
echo 65535 >"$FAKE_SYSFS/module/vfio_iommu_type1/parameters/dma_entry_limit"
# This machine's online CPUs and NUMA memory, which the helper reads from sysfs_root for a VM
# start (as the integration harness mirrors them).
for fact in cpu/online node/online /sys/devices/system/node/node*/meminfo; do
  fact=${fact#/sys/devices/system/}
  [ -f "/sys/devices/system/$fact" ] || continue
  mkdir -p "$(dirname "$FAKE_SYSFS/devices/system/$fact")"
  cp "/sys/devices/system/$fact" "$FAKE_SYSFS/devices/system/$fact"
done
sed -i -e "s|^sysfs_root=.*|sysfs_root=$FAKE_SYSFS|" -e 's|^idle_timeout=.*|idle_timeout=3|' \
  -e 's|^path=$|path=/usr/bin/qemu-system-x86_64|' -e 's|^allow_no_tee=.*|allow_no_tee=true|' \
  -e 's|^accel=.*|accel=tcg|' -e 's|^dstack_client_conf=.*|dstack_client_conf=|' \
  /etc/lium-cvm/lium-cvm.conf
cp /etc/lium-cvm/lium-cvm.conf "$RESULTS/lium-cvm.conf"
