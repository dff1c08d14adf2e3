# SPDX-License-Identifier: MIT
"""Manager.DryRun and `lium-cvm run NAME --dry-run` through the real bus, polkitd and helper:
the exact argv (written by hand from reference/lium.md §2.3 plus DESIGN §6-7's guest-invisible
differences), no side effect, and the refusals — outsider, tampered compose, symlinked
definition files, unknown VM, an untrusted QEMU binary.

The helper probes the real Debian QEMU (`--version`, confined as nobody): 7.2, so the legacy
VFIO container and the pre-9.0 vm_config flags. Skipped without qemu-system-x86_64.
"""

import hashlib
import json
import os
import shutil
import sys

import pytest

import lcvm_harness as lh

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "fakes"))
import fakehost  # noqa: E402

QEMU = "/usr/bin/qemu-system-x86_64"
IMAGE = "dstack-nvidia-0.5.11"
DIGEST = "5d41402abc4b2a76b9719d911017c592" * 2
CMDLINE = "console=ttyS0 init=/init panic=1 dstack.rootfs_hash=ab12 dstack.rootfs_size=42"
COMPOSE = json.dumps({"manifest_version": 1, "name": "example", "runner": "docker-compose"},
                     indent=4)
NOT_AUTHORIZED = lh.ERROR_PREFIX + "NotAuthorized"
NOT_FOUND = lh.ERROR_PREFIX + "NotFound"
FAILED = lh.ERROR_PREFIX + "Failed"

HARNESS_CONFIG = {"qemu": {"path": QEMU}, "paths": {"dstack_client_conf": ""}}

pytestmark = pytest.mark.skipif(not os.path.exists(QEMU),
                                reason=f"{QEMU} missing (apt-get install qemu-system-x86)")


def write_image(h):
    d = h.state_dir / "images" / IMAGE
    d.mkdir()
    metadata = {"bios": "ovmf.fd", "kernel": "bzImage", "cmdline": CMDLINE,
                "initrd": "initramfs.cpio.gz", "rootfs": "rootfs.img.verity",
                "version": "0.5.11", "shared_ro": True, "is_dev": False}
    (d / "metadata.json").write_text(json.dumps(metadata, indent=4))
    (d / "digest.txt").write_text(DIGEST + "\n")
    for name in ("ovmf.fd", "bzImage", "initramfs.cpio.gz", "rootfs.img.verity"):
        (d / name).write_bytes(b"\0" * 4096)
    for p in d.iterdir():
        p.chmod(0o644)


def write_vm(h, name, compose=COMPOSE, extra=None):
    d = h.state_dir / "vms" / name
    d.mkdir()
    manifest = {
        "manifest_version": 1, "name": name, "image": IMAGE, "vcpus": 2, "memory": 2 << 30,
        "disk": 20 << 30, "gpu_attach": "listed", "gpus": [], "nvswitches": [],
        "ports": [{"protocol": "tcp", "address": "0.0.0.0", "host_port": 2200,
                   "guest_port": 22}],
        "hugepages": False, "pin_numa": False,
        "compose_hash": hashlib.sha256(COMPOSE.encode()).hexdigest(),
        "os_image_hash": DIGEST, "created_at_ms": 1764230037000,
    }
    manifest.update(extra or {})
    (d / "vm-manifest.json").write_text(json.dumps(manifest, indent=4))
    (d / "app-compose.json").write_text(compose)
    for p in [d, *d.iterdir()]:
        os.chown(p, 0, h.users.group_gid)
        p.chmod(0o2770 if p.is_dir() else 0o640)
    return d


def prepare_harness(h):
    fakehost.host_facts(str(h.root))
    write_image(h)
    write_vm(h, "vm1")


def expected_argv(h, name):
    img = h.state_dir / "images" / IMAGE
    inst = h.state_dir / "instances" / name
    return [
        QEMU, "-accel", "kvm", "-m", "2048M", "-smp", "2", "-cpu", "host",
        "-machine", "q35,kernel_irqchip=split,confidential-guest-support=tdx,hpet=off,smm=off",
        "-object", "tdx-guest,id=tdx", "-nographic", "-nodefaults",
        "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        "-action", "reboot=shutdown,panic=exit-failure",
        "-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
        "-add-fd", "set=4,fd=4,opaque=serial.log",
        "-chardev", "file,id=ser0,path=/dev/fdset/4,append=on", "-serial", "chardev:ser0",
        # the image files StartVm opened beneath the image dir, passed as fds 8-10
        "-kernel", "/proc/self/fd/8", "-initrd", "/proc/self/fd/9", "-bios", "/proc/self/fd/10",
        "-virtfs", f"local,path={inst}/shared,mount_tag=host-shared,readonly=on,"
                   "security_model=mapped,id=virtfs0",
        "-device", "vhost-vsock-pci,guest-cid=1000",
        "-add-fd", f"set=5,fd=5,opaque={img}/rootfs.img.verity",
        "-drive", "file=/dev/fdset/5,if=none,id=virtio-disk0,format=raw,readonly=on",
        "-device", "virtio-blk-pci,drive=virtio-disk0",
        "-add-fd", f"set=6,fd=6,opaque={inst}/hda.img",
        "-add-fd", f"set=6,fd=7,opaque={inst}/hda.img",
        "-drive", "file=/dev/fdset/6,if=none,id=virtio-disk1,format=qcow2",
        "-device", "virtio-blk-pci,drive=virtio-disk1",
        "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
        "-global", "q35-pcihost.pci-hole64-size=0x100000000000",
        "-device", "virtio-net-pci,netdev=nic0_td",
        "-netdev", "user,id=nic0_td,hostfwd=tcp:0.0.0.0:2200-:22",
        "-append", CMDLINE,
    ]


def tree(*roots):
    """Every path under the roots with its mode, owner, size and mtime."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                out[p] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns)
    return out


def only_record(harness, mark):
    records = harness.audit_records(since=mark)
    assert len(records) == 1, f"expected one audit record, got {records}"
    return records[0]


def test_operator_gets_the_exact_argv_one_argument_per_line(harness, users):
    r = harness.run_frontend(users.op, "run", "vm1", "--dry-run")
    assert r.rc == 0, r
    assert r.stdout.split("\n")[:-1] == expected_argv(harness, "vm1")
    assert r.stdout.endswith("\n")


def test_json_is_the_same_argv_and_no_refusal(harness, users):
    r = harness.run_frontend(users.op, "--json", "run", "vm1", "--dry-run")
    assert r.rc == 0, r
    assert r.json == {"argv": expected_argv(harness, "vm1"), "refusals": []}


def test_dry_run_leaves_no_trace(harness, users):
    before = tree(harness.state_dir, harness.runtime_dir)
    r = harness.run_frontend(users.op, "run", "vm1", "--dry-run")
    assert r.rc == 0, r
    assert tree(harness.state_dir, harness.runtime_dir) == before
    assert list((harness.state_dir / "instances").iterdir()) == []


def test_outsider_is_refused_and_audited(harness, users):
    mark = harness.audit_mark()
    r = harness.run_frontend(users.out, "--json", "run", "vm1", "--dry-run")
    assert r.rc == 1, r
    assert r.error_name == NOT_AUTHORIZED, r
    rec = only_record(harness, mark)
    assert (rec.uid, rec.method) == (users.out.uid, "io.lium.Cvm1.Manager.DryRun")
    assert rec.result.startswith("refused: " + NOT_AUTHORIZED)


def test_tampered_compose_is_refused_naming_both_hashes(harness, users):
    tampered = COMPOSE.replace("example", "exampl3")
    write_vm(harness, "tampered", compose=tampered)
    r = harness.run_frontend(users.op, "--json", "run", "tampered", "--dry-run")
    assert r.rc == 1, r
    assert r.error_name == FAILED, r
    message = r.json["message"] if "message" in r.json else r.stdout
    assert hashlib.sha256(tampered.encode()).hexdigest() in message
    assert hashlib.sha256(COMPOSE.encode()).hexdigest() in message


@pytest.mark.parametrize("victim", ["vm-manifest.json", "app-compose.json"])
def test_symlinked_definition_file_is_never_followed(harness, users, victim):
    name = "link-" + victim.split(".")[0].split("-")[-1]
    d = write_vm(harness, name)
    target = harness.root / ("outside-" + victim)
    shutil.copy2(d / victim, target)
    (d / victim).unlink()
    (d / victim).symlink_to(target)
    r = harness.run_frontend(users.op, "run", name, "--dry-run")
    assert r.rc == 1, r
    assert r.stdout == ""
    assert victim in r.stderr, r


def test_absolute_image_path_never_reaches_qemu(harness, users):
    write_vm(harness, "abspath", extra={"image_path": "/srv/evil-image"})
    r = harness.run_frontend(users.op, "run", "abspath", "--dry-run")
    assert "/srv/evil-image" not in r.stdout
    if r.rc == 0:
        assert r.stdout.split("\n")[:-1] == expected_argv(harness, "abspath")


def test_unknown_vm_is_not_found(harness, users):
    r = harness.run_frontend(users.op, "--json", "run", "nosuchvm", "--dry-run")
    assert r.rc == 1, r
    assert r.error_name == NOT_FOUND, r


def test_qemu_in_an_operator_writable_directory_is_refused(harness, users):
    opbin = harness.root / "opbin"
    opbin.mkdir()
    shutil.copy2(QEMU, opbin / "qemu-system-x86_64")
    os.chown(opbin, users.op.uid, users.op.gid)
    try:
        harness.restart_helper({"qemu": {"path": opbin / "qemu-system-x86_64"}})
        r = harness.run_frontend(users.op, "run", "vm1", "--dry-run")
        assert r.rc == 1, r
        assert r.stdout == ""
        assert f"{opbin} is owned by uid {users.op.uid}, not root" in r.stderr, r
    finally:
        harness.restart_helper({"qemu": {"path": QEMU}})


# ---- hostile definitions (issue 19: found by fuzzing) ------------------------------------------

def write_image_metadata(h, name, metadata_text):
    d = h.state_dir / "images" / name
    shutil.copytree(h.state_dir / "images" / IMAGE, d)
    (d / "metadata.json").write_text(metadata_text)
    for p in [d, *d.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def assert_helper_lives_on(harness, users):
    r = harness.run_frontend(users.op, "run", "vm1", "--dry-run")
    assert r.rc == 0, r


# json-glib decodes "\udc80x" into bytes that are not UTF-8; in a GError they aborted the helper
# (G_DEBUG=fatal-criticals, as every helper here runs) on this one DryRun.
def test_image_metadata_with_a_lone_surrogate_is_refused_and_the_helper_lives(harness, users):
    text = json.dumps({"kernel": "bzImage", "initrd": "initramfs.cpio.gz", "bios": "ovmf.fd",
                       "rootfs": "rootfs.img.verity", "cmdline": CMDLINE,
                       "version": "VERSION"}).replace("VERSION", "\\udc80x")
    write_image_metadata(harness, "dstack-surrogate-0.5.11", text)
    write_vm(harness, "surrogate", extra={"image": "dstack-surrogate-0.5.11"})
    r = harness.run_frontend(users.op, "run", "surrogate", "--dry-run")
    assert r.rc == 1, r
    assert "metadata.json" in r.stderr and "UTF-8" in r.stderr, r
    assert_helper_lives_on(harness, users)


def test_a_manifest_with_a_lone_surrogate_is_refused_and_the_helper_lives(harness, users):
    d = write_vm(harness, "surr-manifest")
    text = (d / "vm-manifest.json").read_text()
    (d / "vm-manifest.json").write_text(text.replace('"vcpus"', '"\\ud800x": 1, "vcpus"'))
    r = harness.run_frontend(users.op, "run", "surr-manifest", "--dry-run")
    assert r.rc == 1, r
    assert "vm-manifest.json" in r.stderr and "UTF-8" in r.stderr, r
    assert_helper_lives_on(harness, users)


# json-glib 1.6 accepted a valid manifest followed by a second value (and leaked it every start).
def test_a_manifest_followed_by_a_second_value_is_refused(harness, users):
    d = write_vm(harness, "two-values")
    with open(d / "vm-manifest.json", "a") as f:
        f.write('\n{"name": "other"}\n')
    r = harness.run_frontend(users.op, "run", "two-values", "--dry-run")
    assert r.rc == 1, r
    assert "first JSON value" in r.stderr, r


# Issue 19 item 9: a caller's value is echoed in bounded length, in the error and the record.
def test_a_huge_name_is_echoed_bounded_in_the_error_and_the_audit_record(harness, users):
    mark = harness.audit_mark()
    name = "\u00e9" * 50000 + "\x1b]0;x\x07"
    r = harness.gdbus_call(users.op, "io.lium.Cvm1.Manager.DryRun", f"'{name}'",
                           object_path=lh.OBJECT_PATH)
    assert r.rc != 0, r
    assert len(r.stderr) < 4096 and "\x1b" not in r.stderr, r.stderr[:300]
    assert "\u00e9" * 10 in r.stderr, r.stderr[:300]
    records = harness.audit_records(since=mark)
    assert records and any(rec.method.endswith(".DryRun") for rec in records)
    for rec in records:
        assert len(rec.result) < 1200 and len(rec.args) < 1200, rec


# Issue 19 "also": vm-manifest.json is read like every other definition file, single-link.
def test_a_hard_linked_manifest_is_refused(harness, users):
    d = write_vm(harness, "hardlinked")
    os.link(d / "vm-manifest.json", harness.root / "second-name-of-the-manifest")
    r = harness.run_frontend(users.op, "run", "hardlinked", "--dry-run")
    assert r.rc == 1, r
    assert "vm-manifest.json is a hard link" in r.stderr, r
