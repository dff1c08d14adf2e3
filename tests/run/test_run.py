# SPDX-License-Identifier: MIT
"""Running VMs end to end: `lium-cvm run/stop/status/logs/list` and Manager.StartVm/StopVm/
RemoveVm through the real bus and polkitd, the helper spawning the real qemu-system-x86_64
(allow_no_tee, accel=tcg) confined, booting the tiny guest of tests/e2e/build-guest.sh.

One harness (and one booted guest) serves the module; the tests run in file order and each
leaves the VMs as the next expects. Everything runs in a private network namespace, where the
helper's nftables loopback guard is installed for real.
"""

import os
import signal
import socket
import subprocess
import time

import pytest

import lcvm_harness as lh
import lcvm_spawn as ls
from lcvm_vms import IMAGES, props, record, serial, vm_path, write_image, write_vm
from lcvm_vms import wait_serial as wait_serial_for

QEMU = "/usr/bin/qemu-system-x86_64"
READY = "LCVM-GUEST-READY"
BOOT_TIMEOUT = 300  # about 20-35 s under TCG here
NOT_AUTHORIZED = lh.ERROR_PREFIX + "NotAuthorized"
BUSY = lh.ERROR_PREFIX + "Busy"
UID_RANGE = (61000, 61999)

HARNESS_CONFIG = {
    "qemu": {"path": QEMU, "allow_no_tee": "true", "accel": "tcg"},
    "paths": {"dstack_client_conf": ""},
}


def prepare_harness(h, guest):
    for image in IMAGES:
        write_image(h, guest, image)
    write_vm(h, "vm1", "guest", [2200])
    write_vm(h, "vm2", "stubborn", [2300])
    write_vm(h, "vm-same-port", "guest", [2200])
    write_vm(h, "vm-broken", "broken", [2400])


# ---- helpers ------------------------------------------------------------------------------

def wait_state(harness, name, states, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        p = props(harness, name)
        if p["State"] in states:
            return p
        assert time.monotonic() < deadline, f"{name} stayed {p['State']}: {p}"
        time.sleep(0.2)


def wait_serial(harness, name, marker, timeout=BOOT_TIMEOUT):
    wait_serial_for(harness, name, marker, timeout)


def status_of(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status").read().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def alive(pid):
    try:
        return not status_of(pid)["State"].startswith("Z")
    except FileNotFoundError:
        return False


def qemus(harness):
    """Pids of live processes in the VMs' uid range running on this harness's files (other
    test runs on the machine have their own)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            uid = int(status_of(entry)["Uid"].split()[0])
            cmdline = open(f"/proc/{entry}/cmdline").read()
        except (FileNotFoundError, ProcessLookupError, KeyError):
            continue
        if UID_RANGE[0] <= uid <= UID_RANGE[1] and str(harness.root) in cmdline and alive(entry):
            out.append(int(entry))
    return out


def nft_ruleset():
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def stop(harness, name, *args):
    return harness.run_frontend(harness.users.op, "stop", name, *args, timeout=120)


# ---- the tests, in order --------------------------------------------------------------------

def test_start_is_refused_for_an_outsider(harness, users):
    mark = harness.audit_mark()
    r = harness.run_frontend(users.out, "run", "vm1", "--json")
    assert r.rc == 1 and r.error_name == NOT_AUTHORIZED, r
    r = harness.gdbus_call(users.out, "io.lium.Cvm1.Manager.StartVm", "vm1", "uint64 0")
    assert r.rc != 0 and "NotAuthorized" in r.stderr
    assert qemus(harness) == []
    assert not (harness.runtime_dir / "vm1").exists()
    assert all(rec.refused for rec in harness.audit_records(since=mark))


def test_operator_starts_a_confined_vm(harness, users):
    r = harness.run_frontend(users.op, "run", "vm1", timeout=120)
    assert r.rc == 0, r
    assert "Starting VM vm1" in r.stderr and "is running" in r.stdout
    p = wait_state(harness, "vm1", ["running"])
    pid = p["Pid"]
    assert p["Ports"] == ["tcp:127.0.0.1:2200:22"]
    assert p["QemuVersion"].startswith("7.")
    st = status_of(pid)
    uid = int(st["Uid"].split()[0])
    assert UID_RANGE[0] <= uid <= UID_RANGE[1]
    assert st["Uid"].split() == [str(uid)] * 4 and st["Gid"].split() == [str(uid)] * 4
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert (harness.runtime_dir / "vm1" / "record").exists()
    assert f"skuid {uid}" in nft_ruleset()
    # Property reads need no authorization, not even group membership.
    r = harness.gdbus_call(users.out, "org.freedesktop.DBus.Properties.Get", "io.lium.Cvm1.Vm",
                           "State", object_path=vm_path("vm1"))
    assert r.rc == 0 and "running" in r.stdout, r
    listed = harness.run_frontend(users.op, "list", "--json")
    assert {v["name"]: v["state"] for v in listed.json}["vm1"] == "running"


SEEN_BY_QEMU = """
import os, socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("/run/dbus/system_bus_socket")
    print("bus connected")
except OSError as e:
    print("bus", type(e).__name__)
owners = set()
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            owners.add(os.stat(f"/proc/{p}").st_uid)
        except FileNotFoundError:
            pass
print(" ".join(map(str, owners)))
"""


def test_qemu_has_its_own_namespaces_a_minimal_view_and_its_image_as_fds(harness, users):
    pid = props(harness, "vm1")["Pid"]
    for kind in ("mnt", "ipc"):
        assert ls.namespace(pid, kind) != ls.namespace(harness.helper_pid, kind), kind
    shared = str(harness.state_dir / "instances" / "vm1" / "shared")
    assert ls.mount_points(pid) == ls.minimal_view() + [shared]
    assert os.listdir(f"/proc/{pid}/root/run") == []  # no system bus socket
    assert "hidepid=" in open(f"/proc/{pid}/mountinfo").read()
    assert all(t["Groups"] == "" for t in ls.task_status(pid).values())  # no kvm group
    # Inside QEMU's namespaces, as its uid: the system bus is not there and /proc shows no other
    # uid's process. The same probe in the helper's namespaces reaches the bus (it can fail).
    uid = int(ls.task_status(pid)[pid]["Uid"].split()[0])
    as_qemu = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
               "/usr/bin/python3", "-c", SEEN_BY_QEMU]
    inside = subprocess.run(["nsenter", f"--target={pid}", "--mount", "--ipc", "--"] + as_qemu,
                            capture_output=True, text=True)
    outside = subprocess.run(as_qemu, capture_output=True, text=True)
    assert inside.returncode == 0 and outside.returncode == 0, (inside.stderr, outside.stderr)
    assert inside.stdout.split("\n")[0] == "bus FileNotFoundError", inside.stdout
    assert outside.stdout.split("\n")[0] == "bus connected", outside.stdout
    assert set(inside.stdout.split("\n")[1].split()) == {str(uid)}, inside.stdout
    assert len(set(outside.stdout.split("\n")[1].split())) > 1, outside.stdout
    # Kernel, initrd and firmware: the files the helper opened beneath the image dir.
    image = harness.state_dir / "images" / "guest"
    cmdline = open(f"/proc/{pid}/cmdline").read().split("\0")
    for fd, option, name in ((8, "-kernel", "vmlinuz"), (9, "-initrd", "initramfs.gz"),
                             (10, "-bios", "OVMF_CODE.fd")):
        assert cmdline[cmdline.index(option) + 1] == f"/proc/self/fd/{fd}"
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == str(image / name)


def test_the_operator_reads_the_console(harness, users):
    wait_serial(harness, "vm1", READY)
    r = harness.run_frontend(users.op, "logs", "vm1", "-n", "3")
    assert r.rc == 0 and READY in r.stdout, r
    assert len(r.stdout.strip().splitlines()) <= 3
    r = harness.run_frontend(users.out, "logs", "vm1")
    assert r.rc == 1 and "Permission denied" in r.stderr
    # Following the console, then Ctrl-C: the follower ends, the VM keeps running.
    follower = subprocess.Popen(
        ["setpriv", f"--reuid={users.op.uid}", f"--regid={users.op.gid}", "--init-groups", "--",
         str(harness.frontend), "logs", "vm1", "-f"],
        env={"LIUM_CVM_CONFIG": str(harness.config_path), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert follower.poll() is None, "logs -f ended by itself"
    follower.send_signal(signal.SIGINT)
    out, _ = follower.communicate(timeout=10)
    assert READY in out
    assert props(harness, "vm1")["State"] == "running"


def test_a_second_vm_asking_for_the_same_port_is_refused(harness, users):
    before = qemus(harness)
    r = harness.run_frontend(users.op, "run", "vm-same-port", "--json")
    assert r.rc == 1 and r.error_name == BUSY, r
    assert "2200" in r.stderr
    assert qemus(harness) == before
    assert not (harness.runtime_dir / "vm-same-port").exists()


def test_a_qemu_that_exits_at_once_fails_the_vm_with_its_reason(harness, users):
    r = harness.run_frontend(users.op, "run", "vm-broken", timeout=120)
    assert r.rc == 1 and "VM vm-broken failed" in r.stderr, r
    p = props(harness, "vm-broken")
    assert p["State"] == "failed" and p["Pid"] == 0
    assert "could not load PC BIOS" in p["BootError"] and p["ExitStatus"] == "exit status 1", p
    assert not (harness.runtime_dir / "vm-broken").exists()
    assert "vm_vm-broken" not in nft_ruleset()


def test_the_qemu_uid_cannot_reach_other_loopback_ports(harness, users):
    uid = int(status_of(props(harness, "vm1")["Pid"])["Uid"].split()[0])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        probe = ["/usr/bin/python3", "-c",
                 f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"]
        denied = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                                 "--"] + probe, capture_output=True, text=True)
        # Rejected on output (admin-prohibited): the SYN never leaves, connect() fails at once.
        assert denied.returncode != 0 and "OSError" in denied.stderr, denied
        allowed = harness.run_as(users.op, probe)
        assert allowed.rc == 0, allowed


LEAVE = """
import ctypes, os, subprocess, sys
uid = os.getuid()
for args in (["-M", "4096"], ["-Q"], ["-S", "1"]):
    subprocess.run(["ipcmk", *args], check=True, capture_output=True)
libc = ctypes.CDLL(None, use_errno=True)
name = f"/lcvm-left-{uid}".encode()
assert libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None) >= 0, ctypes.get_errno()
for d in ("/tmp", "/dev/shm"):
    open(f"{d}/lcvm-left-{uid}", "w").close()
os.mkdir(f"/tmp/lcvm-left-dir-{uid}")
open(f"/tmp/lcvm-left-dir-{uid}/inside", "w").close()
"""


def leftovers(uid):
    """What of uid is still here: SysV ids, POSIX queues, /tmp and /dev/shm names."""
    found = {k: v for k, v in ls.sysv_ipc_owned_by(uid).items() if v}
    mq = subprocess.run(["unshare", "-m", "sh", "-c",
                         "mount -t mqueue none /mnt && ls -n /mnt | awk '{print $3, $9}'"],
                        capture_output=True, text=True, check=True).stdout.split("\n")
    found["mqueue"] = [line.split()[1] for line in mq if line.split()[:1] == [str(uid)]]
    found["files"] = [f"{d}/{n}" for d in ("/tmp", "/dev/shm") for n in os.listdir(d)
                      if os.lstat(f"{d}/{n}").st_uid == uid]
    return {k: v for k, v in found.items() if v}


def test_a_stopped_vm_leaves_nothing_of_its_uids_and_they_are_not_reused_next(harness, users):
    rec = record(harness, "vm1")
    uids = {int(rec["qemu_uid"]), int(rec["bridge_uid"])}
    for uid in uids:
        # Anything of the uid outside QEMU's own namespaces (the bridge shares the helper's).
        r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                            "/usr/bin/python3", "-c", LEAVE], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert set(leftovers(uid)) == {"shm", "msg", "sem", "mqueue", "files"}, leftovers(uid)
    r = stop(harness, "vm1", "--timeout", "60")
    assert r.rc == 0, r
    for uid in uids:
        assert leftovers(uid) == {}, uid
    # The next start gets other uids (round-robin, not the lowest free ones just released).
    r = harness.run_frontend(users.op, "run", "vm1", timeout=120)
    assert r.rc == 0, r
    rec = record(harness, "vm1")
    assert {int(rec["qemu_uid"]), int(rec["bridge_uid"])}.isdisjoint(uids)
    assert int((harness.state_dir / "uid-cursor").read_text()) == int(rec["bridge_uid"]) + 1


def test_check_reports_the_guard_and_a_running_vm_without_it(harness, users):
    def guard_check():
        r = harness.run_frontend(users.op, "check", "--deep", "--json")
        return {c["id"]: c for c in r.json["checks"]}["nftables.guard"]

    # No default route in this namespace: usable, but guests reach nothing outside.
    c = guard_check()
    assert c["status"] == "warn" and "no default route" in c["observed"], c
    table = subprocess.run(["nft", "list", "table", "inet", "lium_cvm"], capture_output=True,
                           text=True, check=True).stdout
    subprocess.run(["nft", "delete", "chain", "inet", "lium_cvm", "vm_vm1"], check=True)
    try:
        c = guard_check()
        assert c["status"] == "fail" and "VM vm1 has no guard chain" in c["observed"], c
        assert "lium-cvm run" in c["remedy"], c
    finally:
        subprocess.run(["nft", "-f", "-"], input=table, text=True, check=True)
    assert guard_check()["status"] == "warn"


def test_a_restarted_helper_readopts_the_vm_and_powers_it_off(harness, users):
    pid = props(harness, "vm1")["Pid"]
    harness.restart_helper()
    assert alive(pid), "restarting the helper killed the VM"
    p = wait_state(harness, "vm1", ["running"])
    assert p["Pid"] == pid and "re-adopted" in harness.helper_log.read_text()
    wait_serial(harness, "vm1", READY)
    r = stop(harness, "vm1", "--timeout", "60")
    assert r.rc == 0 and "stopped: powered off" in r.stderr, r
    assert not alive(pid)
    p = props(harness, "vm1")
    assert p["State"] == "stopped" and p["ExitStatus"] == "powered off" and p["Pid"] == 0
    assert not (harness.runtime_dir / "vm1").exists()
    assert "vm_vm1" not in nft_ruleset()
    assert os.stat(harness.state_dir / "instances/vm1/hda.img").st_uid == 0


def test_a_guest_ignoring_the_power_button_is_terminated(harness, users):
    r = harness.run_frontend(users.op, "run", "vm2", timeout=120)
    assert r.rc == 0, r
    pid = props(harness, "vm2")["Pid"]
    wait_serial(harness, "vm2", READY + " ignore-power-button")
    r = stop(harness, "vm2", "--timeout", "2")
    assert r.rc == 0 and "stopped: terminated" in r.stderr, r
    assert not alive(pid)
    assert props(harness, "vm2")["ExitStatus"] == "terminated"


def test_qemu_killed_from_outside_fails_the_vm_and_releases_it(harness, users):
    r = harness.run_frontend(users.op, "run", "vm2", timeout=120)
    assert r.rc == 0, r
    pid = props(harness, "vm2")["Pid"]
    os.kill(pid, signal.SIGKILL)
    p = wait_state(harness, "vm2", ["failed"])
    assert p["ExitStatus"] == "killed by signal 9" and p["Pid"] == 0
    assert not (harness.runtime_dir / "vm2").exists()
    assert "vm_vm2" not in nft_ruleset()
    # Its port and uids are free again: the same VM starts at once.
    r = harness.run_frontend(users.op, "run", "vm2", timeout=120)
    assert r.rc == 0, r


def test_remove_is_refused_while_running_and_removes_the_instance_after(harness, users):
    r = harness.gdbus_call(users.op, "io.lium.Cvm1.Manager.RemoveVm", "vm2", "uint64 0")
    assert r.rc != 0 and "Busy" in r.stderr, r
    assert (harness.state_dir / "instances" / "vm2").exists()
    r = stop(harness, "vm2", "--force")
    assert r.rc == 0 and "stopped: terminated" in r.stderr, r
    r = harness.gdbus_call(users.out, "io.lium.Cvm1.Manager.RemoveVm", "vm2", "uint64 0")
    assert r.rc != 0 and "NotAuthorized" in r.stderr
    r = harness.gdbus_call(users.op, "io.lium.Cvm1.Manager.RemoveVm", "vm2", "uint64 0")
    assert r.rc == 0, r
    assert not (harness.state_dir / "instances" / "vm2").exists()
    assert qemus(harness) == []


def test_rm_refuses_a_running_vm_and_removes_definition_and_instance_once_stopped(harness, users):
    r = harness.run_frontend(users.op, "run", "vm1", timeout=120)
    assert r.rc == 0, r
    r = harness.run_frontend(users.op, "rm", "--yes", "vm1")
    assert r.rc == 1 and "stop it first" in r.stderr, r
    assert (harness.state_dir / "vms" / "vm1" / "vm-manifest.json").exists()
    assert (harness.state_dir / "instances" / "vm1").exists()
    r = stop(harness, "vm1", "--force")
    assert r.rc == 0, r
    r = harness.run_frontend(users.out, "rm", "--yes", "vm1")
    assert r.rc == 1 and (harness.state_dir / "instances" / "vm1").exists(), r
    r = harness.run_frontend(users.op, "rm", "--yes", "vm1")
    assert r.rc == 0, r
    assert not (harness.state_dir / "vms" / "vm1").exists()
    assert not (harness.state_dir / "instances" / "vm1").exists()
    assert qemus(harness) == []
