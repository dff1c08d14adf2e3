#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the tiny e2e guest into OUTDIR (once; later calls reuse it): the host's Debian kernel,
# a busybox initramfs and OVMF. The guest prints LCVM-GUEST-READY on the serial console once
# busybox acpid holds the power-button event device, and powers off when the button is pressed.
# With lcvm_guest=ignore-power-button on the kernel command line it prints
# LCVM-GUEST-READY ignore-power-button and never powers off (for the forced-stop path).
# With lcvm_guest=reboot it prints LCVM-GUEST-READY reboot and reboots (reboot -f); with
# lcvm_guest=panic it prints LCVM-GUEST-READY panic and crashes its kernel (sysrq c; with
# panic=1 on the command line the kernel then resets the machine).
# With lcvm_guest=hostapi it is a host-API client instead: it brings up virtio-net (slirp's
# 10.0.2.15), mounts the 9p share host-shared, takes host_api_url from .sys-config.json, POSTs
# Notify boot.progress, GetSealingKey (the quote: "0123456789abcdef" eight times) and Notify
# instance.info, prints each answer on the console (LCVM-SEALING-KEY <json>), prints
# LCVM-HOSTAPI-DONE and powers off.
# Needs root (the kernel under /boot is root-only) and packages linux-image-amd64,
# busybox-static, ovmf, cpio (exit status 77 when one is missing). Writes only below OUTDIR;
# runs nothing it builds.
set -eu

outdir=${1:?usage: build-guest.sh OUTDIR}
script=$(readlink -f "$0")

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "no /boot/vmlinuz-*: apt-get install linux-image-amd64" >&2; exit 77; }
kver=${kernel#/boot/vmlinuz-}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "no $busybox: apt-get install busybox-static" >&2; exit 77; }
# The 2 MiB build: QEMU's -bios wants a size that is a multiple of 64 KiB (the 4M build is not),
# and -bios needs no writable variable store.
ovmf=/usr/share/OVMF/OVMF_CODE.fd
[ -f "$ovmf" ] || { echo "no $ovmf: apt-get install ovmf" >&2; exit 77; }
command -v cpio >/dev/null || { echo "no cpio: apt-get install cpio" >&2; exit 77; }

# Rebuilt when this script or the host's kernel or firmware changed.
stamp="kernel=$kernel firmware=$ovmf"
if [ -f "$outdir/stamp" ] && [ "$outdir/stamp" -nt "$script" ] &&
  [ "$(cat "$outdir/stamp")" = "$stamp" ]; then
  exit 0
fi

mkdir -p "$(dirname "$outdir")"
work=$(mktemp -d "${outdir%/}.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/lib/modules" \
  "$root/etc/acpi/PWRF" "$root/var/log"
cp "$busybox" "$root/bin/busybox"

# The Debian kernel builds the ACPI button and evdev as modules; without them the power button
# never reaches user space. Then, for the host-API client only: virtio-pci and virtio-net
# (with the failover modules virtio_net depends on) and 9p over virtio (with netfs and
# fscache). Loaded in this order by init.
net_modules="kernel/drivers/virtio/virtio_ring kernel/drivers/virtio/virtio
  kernel/drivers/virtio/virtio_pci_legacy_dev kernel/drivers/virtio/virtio_pci_modern_dev
  kernel/drivers/virtio/virtio_pci kernel/net/core/failover kernel/drivers/net/net_failover
  kernel/drivers/net/virtio_net kernel/fs/netfs/netfs kernel/fs/fscache/fscache
  kernel/net/9p/9pnet kernel/net/9p/9pnet_virtio kernel/fs/9p/9p"
for m in kernel/drivers/input/evdev kernel/drivers/acpi/button $net_modules; do
  src=/lib/modules/$kver/$m
  name=$(basename "$m")
  if [ -f "$src.ko" ]; then
    cp "$src.ko" "$root/lib/modules/$name.ko"
  elif [ -f "$src.ko.xz" ]; then
    xz -dc "$src.ko.xz" >"$root/lib/modules/$name.ko"
  elif [ -f "$src.ko.zst" ]; then
    zstd -qdc "$src.ko.zst" >"$root/lib/modules/$name.ko"
  fi
done

cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
poweroff -f
EOF
chmod 0755 "$root/etc/acpi/PWRF/00000080"

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/evdev.ko /lib/modules/button.ko; do
  [ -f "$m" ] && insmod "$m"
done
case " $(cat /proc/cmdline) " in
*" lcvm_guest=hostapi "*)
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover \
    net_failover virtio_net netfs fscache 9pnet 9pnet_virtio 9p; do
    insmod "/lib/modules/$m.ko" || echo "LCVM-GUEST-ERROR insmod $m"
  done
  ip link set lo up
  ip link set eth0 up
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
  mkdir -p /shared
  mount -t 9p -o trans=virtio,version=9p2000.L,ro host-shared /shared ||
    echo "LCVM-GUEST-ERROR mount host-shared"
  url=$(sed -n 's/.*"host_api_url": *"\([^"]*\)".*/\1/p' /shared/.sys-config.json)
  echo "LCVM-HOSTAPI-URL $url"
  post() {
    wget -q -O - --header "Content-Type: application/json" --post-data "$2" "$url/$1" ||
      echo "LCVM-GUEST-ERROR POST $1 failed"
    echo
  }
  echo "LCVM-NOTIFY $(post Notify '{"event":"boot.progress","payload":"e2e: requesting app keys"}')"
  echo "LCVM-SEALING-KEY $(post 'GetSealingKey?json' '{"quote":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}')"
  echo "LCVM-NOTIFY $(post Notify '{"event":"instance.info","payload":"{\"instance_id\":\"e2e-instance\"}"}')"
  echo "LCVM-NOTIFY $(post Notify '{"event":"boot.progress","payload":"e2e: done"}')"
  echo "LCVM-HOSTAPI-DONE"
  poweroff -f
  ;;
*" lcvm_guest=ignore-power-button "*)
  echo "LCVM-GUEST-READY ignore-power-button"
  ;;
*" lcvm_guest=reboot "*)
  echo "LCVM-GUEST-READY reboot"
  sleep 1
  reboot -f
  ;;
*" lcvm_guest=panic "*)
  echo "LCVM-GUEST-READY panic"
  sleep 1
  echo 1 >/proc/sys/kernel/sysrq
  echo c >/proc/sysrq-trigger
  ;;
*)
  acpid -f -c /etc/acpi &
  acpid_pid=$!
  # The marker means "pressing the button now powers off": wait until acpid holds the device.
  until ls -l "/proc/$acpid_pid/fd" 2>/dev/null | grep -q /dev/input/event; do
    sleep 0.1
  done
  echo "LCVM-GUEST-READY"
  ;;
esac
while :; do sleep 3600; done
EOF
chmod 0755 "$root/init"

(cd "$root" && find . | cpio --quiet -o -H newc -R 0:0 | gzip -9 >"$work/initramfs.gz")
install -m 0644 "$kernel" "$work/vmlinuz"
install -m 0644 "$ovmf" "$work/OVMF_CODE.fd"
echo "$stamp" >"$work/stamp"
rm -rf "$root"
chmod 0755 "$work"

rm -rf "$outdir"
mv "$work" "$outdir"
trap - EXIT
