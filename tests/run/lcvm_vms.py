# SPDX-License-Identifier: MIT
"""VM definitions and OS images for the VM-run tests and benchmarks: images made of the tiny
guest of tests/e2e/build-guest.sh (one that powers off on the ACPI button, one that ignores
it, one that reboots, one that panics) and definitions written the way `lium-cvm new` writes them."""

import hashlib
import json
import os
import shutil
import time

COMPOSE = json.dumps({"manifest_version": 1, "name": "e2e", "runner": "docker-compose"},
                     indent=4)
IMAGES = {
    # name: (digest, extra kernel cmdline)
    "guest": ("a1" * 32, ""),
    "stubborn": ("b2" * 32, " lcvm_guest=ignore-power-button"),
    # reboots by itself once booted (a TD cannot reset: QEMU must exit)
    "reboots": ("e5" * 32, " lcvm_guest=reboot"),
    # panics once booted; panic=1 as dstack guests boot: the kernel resets after the panic
    "panics": ("f6" * 32, " panic=1 lcvm_guest=panic"),
    # a host-API client: POSTs to the bridge, prints the answers, powers off
    "hostapi": ("d4" * 32, " lcvm_guest=hostapi"),
    # firmware QEMU refuses (not a multiple of 64 KiB): QEMU exits at once
    "broken": ("c3" * 32, ""),
}


def write_image(h, guest, name):
    digest, extra = IMAGES[name]
    d = h.state_dir / "images" / name
    d.mkdir()
    metadata = {"bios": "OVMF_CODE.fd", "kernel": "vmlinuz", "initrd": "initramfs.gz",
                "cmdline": "console=ttyS0 quiet" + extra, "rootfs": "rootfs.img.verity",
                "version": "0.5.11", "shared_ro": True, "is_dev": True}
    (d / "metadata.json").write_text(json.dumps(metadata, indent=4))
    (d / "digest.txt").write_text(digest + "\n")
    for f in ("vmlinuz", "initramfs.gz", "OVMF_CODE.fd"):
        shutil.copy(guest / f, d / f)
    (d / "rootfs.img.verity").write_bytes(b"\0" * 65536)
    if name == "broken":
        (d / "OVMF_CODE.fd").write_bytes(b"\0" * 1000)
    for p in d.iterdir():
        p.chmod(0o644)


def write_vm(h, name, image, ports, memory=512 << 20, gpus=(), nvswitches=()):
    d = h.state_dir / "vms" / name
    d.mkdir()
    manifest = {
        "manifest_version": 1, "name": name, "image": image, "vcpus": 1, "memory": memory,
        "disk": 1 << 30, "gpu_attach": "listed", "gpus": list(gpus),
        "nvswitches": list(nvswitches),
        "ports": [{"protocol": "tcp", "address": "127.0.0.1", "host_port": p, "guest_port": 22}
                  for p in ports],
        "hugepages": False, "pin_numa": False,
        "compose_hash": hashlib.sha256(COMPOSE.encode()).hexdigest(),
        "os_image_hash": IMAGES[image][0], "created_at_ms": 1764230037000,
    }
    (d / "vm-manifest.json").write_text(json.dumps(manifest, indent=4))
    (d / "app-compose.json").write_text(COMPOSE)
    for p in [d, *d.iterdir()]:
        os.chown(p, 0, h.users.group_gid)
        p.chmod(0o2770 if p.is_dir() else 0o640)


# ---- reading a running VM (shared by the test modules) -----------------------------------

def vm_path(name):
    """The VM's D-Bus object path (the helper escapes '-' as '_2d')."""
    return "/io/lium/Cvm1/vms/" + name.replace("-", "_2d")


def props(harness, name):
    """The VM's live properties as `lium-cvm status --json` prints them."""
    r = harness.run_frontend(harness.users.op, "status", name, "--json")
    assert r.rc == 0, r
    return r.json


def record(harness, name):
    """The runtime record's [vm] keys (GKeyFile text; the helper's own file)."""
    text = (harness.runtime_dir / name / "record").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def serial(harness, name):
    path = harness.state_dir / "instances" / name / "serial.log"
    return path.read_text(errors="replace") if path.exists() else ""


BOOT_MARKER = "===== lium-cvm: boot @ "  # the helper's line before each start's console


def wait_serial(harness, name, marker, timeout):
    """Waits for marker on the console of the VM's latest start."""
    deadline = time.monotonic() + timeout
    while marker not in serial(harness, name).rpartition(BOOT_MARKER)[2]:
        assert time.monotonic() < deadline, f"no {marker!r}:\n{serial(harness, name)[-3000:]}"
        time.sleep(0.5)
