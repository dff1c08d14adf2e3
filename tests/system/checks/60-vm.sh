# SPDX-License-Identifier: MIT
# A running VM outlives its helper: the operator starts the e2e guest (QEMU under TCG, confined
# by the helper) and the helper moves QEMU and its bridge into lium-cvm-vm-vm1.scope; then
# `systemctl restart` and `systemctl stop` of lium-cvm-helper.service leave QEMU running, the
# next helper re-adopts it, and `lium-cvm stop` powers it off (the scope goes with it). The image and the definition are laid out as tests/run/lcvm_vms.py does.
. "$LIUM_TEST/lib.sh"

image=/var/lib/lium-cvm/images/guest
mkdir -p "$image"
cp /lium-test/guest/vmlinuz /lium-test/guest/initramfs.gz /lium-test/guest/OVMF_CODE.fd "$image/"
cat >"$image/metadata.json" <<'JSON'
{"bios": "OVMF_CODE.fd", "kernel": "vmlinuz", "initrd": "initramfs.gz",
 "cmdline": "console=ttyS0 quiet", "rootfs": "rootfs.img.verity", "version": "0.5.11",
 "shared_ro": true, "is_dev": true}
JSON
digest=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
echo "$digest" >"$image/digest.txt"
head -c 65536 /dev/zero >"$image/rootfs.img.verity"
chmod 0644 "$image"/*

vm=/var/lib/lium-cvm/vms/vm1
mkdir -p "$vm"
printf '{\n    "manifest_version": 1,\n    "name": "e2e",\n    "runner": "docker-compose"\n}' \
  >"$vm/app-compose.json"
compose_hash=$(sha256sum <"$vm/app-compose.json" | cut -d' ' -f1)
cat >"$vm/vm-manifest.json" <<JSON
{"manifest_version": 1, "name": "vm1", "image": "guest", "vcpus": 1, "memory": 536870912,
 "disk": 1073741824, "gpu_attach": "listed", "gpus": [], "nvswitches": [],
 "ports": [{"protocol": "tcp", "address": "127.0.0.1", "host_port": 2200, "guest_port": 22}],
 "hugepages": false, "pin_numa": false, "compose_hash": "$compose_hash",
 "os_image_hash": "$digest", "created_at_ms": 1764230037000}
JSON
chown -R root:lium-cvm "$vm"
chmod 2770 "$vm"
chmod 0640 "$vm"/*

serial=/var/lib/lium-cvm/instances/vm1/serial.log
vm_pid() { as_op lium-cvm --json status vm1 | sed -n 's/^  "[Pp]id" : \([0-9]*\).*/\1/p'; }
ready() { grep -q LCVM-GUEST-READY "$serial"; }
# A re-adopted VM is "starting" until the new helper has its QMP connection back.
running() { as_op lium-cvm --json status vm1 | grep -q '^  "State" : "running"'; }

record run as_op lium-cvm --json --no-ask-password run vm1
[ "$(cat "$RESULTS/run.rc")" = 0 ] || exit 1
record ready wait_for 300 ready
pid=$(vm_pid)
echo "$pid" >"$RESULTS/qemu.pid"
record status-started as_op lium-cvm --json status vm1
record qemu-status cat "/proc/$pid/status"
scope=lium-cvm-vm-vm1.scope
scope_props() {
  systemctl show "$scope" -p LoadState -p ActiveState -p Slice -p CollectMode \
    -p CPUAccounting -p MemoryAccounting -p TasksAccounting
}
record scope-started scope_props
record scope-status systemctl status --no-pager --lines=0 "$scope"
record qemu-cgroup cat "/proc/$pid/cgroup"
record scope-security systemd-analyze security --no-pager "$scope"

record helper-restart systemctl restart lium-cvm-helper.service
record alive-after-restart kill -0 "$pid"
record readopt-after-restart wait_for 60 running
record status-after-restart as_op lium-cvm --json status vm1

record helper-stop systemctl stop lium-cvm-helper.service
record helper-state-after-stop systemctl is-active lium-cvm-helper.service
record alive-after-stop kill -0 "$pid"
record readopt-after-stop wait_for 60 running
record scope-after-stop scope_props
record status-after-stop as_op lium-cvm --json status vm1

record vm-stop as_op lium-cvm --json --no-ask-password stop vm1 --timeout 60
record alive-after-vm-stop kill -0 "$pid"
record status-stopped as_op lium-cvm --json status vm1
record scope-gone wait_for 30 sh -c "! systemctl -q is-active $scope"
record scope-after-vm-stop scope_props
record serial cat "$serial"
