# SPDX-License-Identifier: MIT
"""The real qemu-system-x86_64 spawned through helper_spawn() under the QEMU deny-list, the uid
drop and QEMU's own -sandbox, booting the tiny guest of build-guest.sh under TCG. QEMU gets its
serial log as an O_APPEND fd, its QMP listening socket, kernel, initrd and firmware as fds; it
opens no host path for any of them, and runs in its own mount and IPC namespaces with the
minimal view of helper-sandbox-ns.c. Stopping: QMP system_powerdown (the guest's acpid powers off), else SIGTERM, else
SIGKILL, each seen through the pidfd."""

import json
import os
import shutil
import socket
import time

import pytest

import lcvm_spawn as ls

SIGKILL = 9
BOOT_TIMEOUT = 300  # about 20 s under TCG here; generous for a loaded CI machine
READY = "LCVM-GUEST-READY"
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"


IMAGE_FILES = ("vmlinuz", "initramfs.gz", "OVMF_CODE.fd")  # child fds 8, 9, 10


def swap_in_links(files, secret_dir):
    """What an operator who can write the image dir may do after the helper opened the files:
    each becomes a link to a root-only file QEMU must never read."""
    for name in IMAGE_FILES:
        secret = secret_dir / name
        secret.write_bytes(b"root-only " * 100)
        secret.chmod(0o600)
        (files / name).unlink()
        (files / name).symlink_to(secret)


class Vm:
    def __init__(self, guest, run_dir, cmdline_extra="", swap_after_open=False):
        self.dir = run_dir
        files = run_dir / "guest"
        files.mkdir(mode=0o755)
        for name in IMAGE_FILES:
            shutil.copy(guest / name, files / name)
            (files / name).chmod(0o644)
        image_fds = [os.open(files / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                     for name in IMAGE_FILES]
        if swap_after_open:
            secrets = run_dir / "secret"
            secrets.mkdir(mode=0o700)
            swap_in_links(files, secrets)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        serial = os.open(run_dir / "serial.log", flags, 0o600)
        log = os.open(run_dir / "qemu.log", flags, 0o600)
        qmp = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        qmp.bind(str(run_dir / "qmp.sock"))
        os.chmod(run_dir / "qmp.sock", 0o600)
        qmp.listen(4)
        argv = [
            ls.QEMU, "-nodefaults", "-no-user-config", "-accel", "tcg",
            "-cpu", "max,phys-bits=48", "-machine", "q35", "-m", "512M", "-display", "none",
            "-kernel", "/proc/self/fd/8", "-initrd", "/proc/self/fd/9",
            "-bios", "/proc/self/fd/10",
            "-append", f"console=ttyS0 quiet {cmdline_extra}".strip(),
            "-add-fd", "fd=3,set=1",
            "-chardev", "file,id=serial0,path=/dev/fdset/1,append=on",
            "-serial", "chardev:serial0",
            "-chardev", "socket,id=qmp,fd=4,server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
            "-sandbox", SANDBOX, "-msg", "timestamp=on",
        ]
        self.started = time.monotonic()
        try:
            fds = {1: log, 2: log, 3: serial, 4: qmp.fileno(), 8: image_fds[0],
                   9: image_fds[1], 10: image_fds[2]}
            self.qemu = ls.Spawned(argv, fds=fds, sandbox=True)
        finally:
            for fd in image_fds:
                os.close(fd)
            os.close(serial)
            os.close(log)
            qmp.close()
        self.qmp_file = None

    def serial(self):
        return (self.dir / "serial.log").read_text(errors="replace")

    def log(self):
        return (self.dir / "qemu.log").read_text(errors="replace")

    def wait_for_serial(self, marker, timeout):
        """Seconds from spawn until marker is on the serial console."""
        ok = ls.wait_for(lambda: marker in self.serial() or self.qemu.wait_exit(0), timeout)
        assert ok and marker in self.serial(), (
            f"no {marker!r} after {timeout} s; serial:\n{self.serial()[-2000:]}\n"
            f"qemu:\n{self.log()}")
        return time.monotonic() - self.started

    def qmp(self, command):
        if self.qmp_file is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(self.dir / "qmp.sock"))
            self.qmp_file = s.makefile("rw")
            assert "QMP" in json.loads(self.qmp_file.readline())
            self.qmp("qmp_capabilities")
        self.qmp_file.write(json.dumps({"execute": command}) + "\n")
        self.qmp_file.flush()
        while True:
            reply = json.loads(self.qmp_file.readline())
            if "return" in reply or "error" in reply:
                return reply

    def close(self):
        if self.qmp_file is not None:
            self.qmp_file.close()
        self.qemu.close()


@pytest.fixture
def vm_factory(guest, run_dir):
    vms = []

    def start(cmdline_extra="", swap_after_open=False):
        sub = run_dir / f"vm{len(vms)}"
        sub.mkdir(mode=0o755)
        vms.append(Vm(guest, sub, cmdline_extra, swap_after_open))
        return vms[-1]

    yield start
    for vm in vms:
        vm.close()


def assert_confined(pid, filters):
    tasks = ls.task_status(pid)
    assert len(tasks) > 1  # QEMU's main loop, RCU and vCPU threads: each must be confined
    for status in tasks.values():
        assert status["Uid"].split() == [str(ls.VM_UID)] * 4
        assert status["Gid"].split() == [str(ls.VM_GID)] * 4
        assert status["Groups"] == ""  # no kvm group: devices come as its own nodes
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[cap], 16) == 0, f"{cap} = {status[cap]}"
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"
        assert status["Seccomp_filters"] == str(filters)
    for kind in ("mnt", "ipc"):
        assert ls.namespace(pid, kind) != ls.namespace(os.getpid(), kind), kind
    points = ls.mount_points(pid)
    assert points[:2] == ["/", "/usr"] and "/tmp" in points and "/dev/shm" in points
    assert not any(p.startswith(("/home", "/var", "/run", "/root")) for p in points), points


def test_guest_boots_confined_from_its_fds_and_powers_off_on_the_button(vm_factory):
    # Kernel, initrd and firmware were swapped for links to root-only files after they were
    # opened: QEMU reads the open files (a path would now fail with EACCES or read the secret).
    vm = vm_factory(swap_after_open=True)
    boot = vm.wait_for_serial(READY, BOOT_TIMEOUT)
    assert "root-only" not in vm.serial() and "could not" not in vm.log()
    # Our deny-list plus the filter QEMU loads itself for -sandbox.
    assert_confined(vm.qemu.pid, filters=2)
    assert vm.qmp("system_powerdown") == {"return": {}}
    pressed = time.monotonic()
    assert vm.qemu.wait_exit(60) == ("exited", 0), vm.log()
    print(f"spawn {vm.qemu.spawn_us} us, boot to marker {boot:.1f} s, "
          f"power button to exit {time.monotonic() - pressed:.2f} s")
    assert "reboot: Power down" in vm.serial()


def test_guest_ignoring_the_button_is_stopped_with_sigterm(vm_factory):
    vm = vm_factory("lcvm_guest=ignore-power-button")
    vm.wait_for_serial(f"{READY} ignore-power-button", BOOT_TIMEOUT)
    assert vm.qmp("system_powerdown") == {"return": {}}
    assert vm.qemu.wait_exit(10) is None
    vm.qemu.signal("TERM")
    # QEMU handles SIGTERM itself (clean exit 0) — only because the spawn unblocked it.
    assert vm.qemu.wait_exit(30) == ("exited", 0)
    assert "terminating on signal 15" in vm.log()


def test_qemu_is_killed_with_sigkill(vm_factory):
    vm = vm_factory("lcvm_guest=ignore-power-button")
    assert vm.qmp("query-status")["return"]["status"] in ("running", "prelaunch")
    vm.qemu.signal("KILL")
    assert vm.qemu.wait_exit(30) == ("signaled", SIGKILL)
