"""The real qemu-system-x86_64 spawned through helper_spawn() under the QEMU deny-list, the uid
drop and QEMU's own -sandbox, booting the tiny guest of build-guest.sh under TCG. QEMU gets its
serial log as an O_APPEND fd and its QMP listening socket as an fd; it opens no host path for
either. Stopping: QMP system_powerdown (the guest's acpid powers off), else SIGTERM, else
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


class Vm:
    def __init__(self, guest, run_dir, cmdline_extra=""):
        self.dir = run_dir
        files = run_dir / "guest"
        files.mkdir(mode=0o755)
        for name in ("vmlinuz", "initramfs.gz", "OVMF_CODE.fd"):
            shutil.copy(guest / name, files / name)
            (files / name).chmod(0o644)
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
            "-bios", files / "OVMF_CODE.fd", "-kernel", files / "vmlinuz",
            "-initrd", files / "initramfs.gz",
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
            self.qemu = ls.Spawned(argv, fds={1: log, 2: log, 3: serial, 4: qmp.fileno()})
        finally:
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

    def start(cmdline_extra=""):
        sub = run_dir / f"vm{len(vms)}"
        sub.mkdir(mode=0o755)
        vms.append(Vm(guest, sub, cmdline_extra))
        return vms[-1]

    yield start
    for vm in vms:
        vm.close()


def assert_confined(pid, filters):
    tasks = ls.task_status(pid)
    assert len(tasks) > 1  # QEMU's main loop, RCU and vCPU threads: each must be confined
    kvm = ls.kvm_gid()
    for status in tasks.values():
        assert status["Uid"].split() == [str(ls.VM_UID)] * 4
        assert status["Gid"].split() == [str(ls.VM_GID)] * 4
        assert status["Groups"].split() == ([str(kvm)] if kvm is not None else [])
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[cap], 16) == 0, f"{cap} = {status[cap]}"
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"
        assert status["Seccomp_filters"] == str(filters)


def test_guest_boots_confined_and_powers_off_on_the_button(vm_factory):
    vm = vm_factory()
    boot = vm.wait_for_serial(READY, BOOT_TIMEOUT)
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
