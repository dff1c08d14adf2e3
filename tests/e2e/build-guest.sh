#!/bin/sh
# Builds the tiny e2e guest into OUTDIR (once; later calls reuse it): the host's Debian kernel,
# a busybox initramfs and OVMF. The guest prints LCVM-GUEST-READY on the serial console once
# busybox acpid holds the power-button event device, and powers off when the button is pressed.
# With lcvm_guest=ignore-power-button on the kernel command line it prints
# LCVM-GUEST-READY ignore-power-button and never powers off (for the forced-stop path).
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
# never reaches user space. Loaded in this order by init.
for m in kernel/drivers/input/evdev kernel/drivers/acpi/button; do
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
*" lcvm_guest=ignore-power-button "*)
  echo "LCVM-GUEST-READY ignore-power-button"
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
