# SPDX-License-Identifier: MIT
"""How VMs stop and how their ends are told, end to end (the harness of test_run.py, the real
QEMU under TCG): `lium-cvm stop` asks the guest agent first (served here by a fake agent on
the [testing] guest_agent_socket_dir seam: this machine has no vhost-vsock), then presses the
ACPI power button, then SIGTERMs and SIGKILLs QEMU, and says which step ended it. Three test
guests: one that honours only the agent (it ignores the button; the fake agent ends QEMU
through a second QMP connection, as the guest's poweroff would), one that honours only the
button (busybox acpid), one that honours neither (its agent accepts and does nothing). A guest
that reboots ends its VM as a stop; a guest panic and a QEMU killed from outside are crashes:
visible on the Vm object, in `status`/`list`, in the journal record (stderr here), kept across
a helper restart, and never restarted.

The tests run in file order; the long-booting guests start first and boot side by side.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import lcvm_harness as lh
from lcvm_vms import props, serial, write_image, write_vm
from lcvm_vms import wait_serial as wait_serial_for
from test_run import QEMU, READY, alive, qemus, wait_state

BOOT_TIMEOUT = 300
NOT_AUTHORIZED = lh.ERROR_PREFIX + "NotAuthorized"
CRASH_ID = "53198a4e3e404c8894eedd2dc8ec877f"
REQUEST = (b"POST /api/Shutdown?json HTTP/1.1\r\nHost: localhost\r\n"
           b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

HARNESS_CONFIG = {
    "qemu": {"path": QEMU, "allow_no_tee": "true", "accel": "tcg"},
    "paths": {"dstack_client_conf": ""},
}


def prepare_harness(h, guest):
    for image in ("guest", "stubborn", "reboots", "panics"):
        write_image(h, guest, image)
    for port, (name, image) in enumerate([("acpi", "guest"), ("agent", "stubborn"),
                                          ("deaf", "stubborn"), ("reboots", "reboots"),
                                          ("panics", "panics"), ("crash", "stubborn")]):
        write_vm(h, name, image, [2500 + port])
    agents = h.root / "agents"
    agents.mkdir()
    h.extra_config["testing"] = {"guest_agent_socket_dir": str(agents)}


# ---- helpers ------------------------------------------------------------------------------

def run(harness, name):
    r = harness.run_frontend(harness.users.op, "run", name, timeout=120)
    assert r.rc == 0, r
    return props(harness, name)["Pid"]


def stop(harness, name, *args):
    return harness.run_frontend(harness.users.op, "stop", name, *args, timeout=180)


def cid_of(harness, name):
    record = (harness.runtime_dir / name / "record").read_text()
    return int(re.search(r"^cid=(\d+)$", record, re.M).group(1))


def qmp_quit(harness, name):
    """What the guest's poweroff would do to QEMU: end it, here through a second QMP client."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(harness.runtime_dir / name / "qmp.sock"))
        f = s.makefile("rwb")
        f.readline()
        for command in ("qmp_capabilities", "quit"):
            f.write(json.dumps({"execute": command}).encode() + b"\n")
            f.flush()
            f.readline()


class FakeAgent:
    """A guest agent on the seam's socket CID.sock: records each request, answers 200 and,
    when obeying, ends QEMU."""

    def __init__(self, harness, name, obey):
        self.harness, self.name, self.obey = harness, name, obey
        self.requests = []
        self.path = harness.root / "agents" / f"{cid_of(harness, name)}.sock"
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(self.path))
        self.sock.listen(1)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\r\n\r\n{}") and len(data) < 4096:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: 2\r\n\r\n{}")
            if self.obey:
                qmp_quit(self.harness, self.name)

    def close(self):
        self.sock.close()
        self.path.unlink()


def helper_crash_lines(harness, name):
    return [line for line in harness.helper_log.read_text().splitlines()
            if line.startswith(f"CRASH MESSAGE_ID={CRASH_ID} vm={name} ")]


def log_size(harness):
    return harness.helper_log.stat().st_size


def rungs(harness, name, since):
    """The stop ladder's steps for VM name the helper logged after offset since."""
    with open(harness.helper_log, errors="replace") as f:
        f.seek(since)
        prefix = f"VM {name}: stop: "
        return [line.split(prefix, 1)[1] for line in f.read().splitlines() if prefix in line]


def in_order(steps, fragments):
    """Every fragment appears in steps, each in a later step than the one before."""
    at = 0
    for fragment in fragments:
        found = [i for i, text in enumerate(steps) if i >= at and fragment in text]
        assert found, (fragment, steps)
        at = found[0] + 1
    return True


def boots(harness, name):
    return serial(harness, name).count("===== lium-cvm: boot @ ")


# ---- the tests, in order --------------------------------------------------------------------

def test_the_long_booting_guests_start(harness, users):
    for name in ("acpi", "reboots", "panics"):
        run(harness, name)


def test_a_guest_honouring_only_the_agent_is_stopped_by_the_agent(harness, users):
    pid = run(harness, "agent")
    agent = FakeAgent(harness, "agent", obey=True)
    try:
        r = harness.run_frontend(users.out, "stop", "agent", "--json")
        assert r.rc == 1 and r.error_name == NOT_AUTHORIZED, r
        assert agent.requests == [] and alive(pid)
        mark = log_size(harness)
        r = stop(harness, "agent", "--json", "--timeout", "120")
        assert r.rc == 0, r
        assert r.json == {"name": "agent", "state": "stopped", "stop_step": "guest-agent",
                          "exit_status": "shut down by the guest agent"}, r
        assert agent.requests == [REQUEST]
        steps = rungs(harness, "agent", mark)
        assert in_order(steps, ["asking the guest agent to shut down (vsock CID",
                                "the guest agent accepted"])
        assert not any("power button" in t or "SIGTERM" in t for t in steps), steps
    finally:
        agent.close()
    assert not alive(pid)
    p = props(harness, "agent")
    assert p["StopStep"] == "guest-agent" and p["UnexpectedExit"] == "" and p["Pid"] == 0


def test_a_guest_honouring_only_the_power_button_is_powered_off(harness, users):
    wait_serial_for(harness, "acpi", READY, BOOT_TIMEOUT)
    pid = props(harness, "acpi")["Pid"]
    mark = log_size(harness)
    r = stop(harness, "acpi", "--timeout", "120")
    assert r.rc == 0, r
    assert "VM acpi stopped by step power-button: powered off" in r.stdout, r
    steps = rungs(harness, "acpi", mark)
    assert in_order(steps, ["asking the guest agent", "does not answer",
                            "pressing the power button"])
    assert not any("SIGTERM" in t for t in steps), steps
    assert not alive(pid)
    p = props(harness, "acpi")
    assert (p["State"], p["StopStep"], p["ExitStatus"]) == ("stopped", "power-button",
                                                           "powered off")


def test_a_guest_honouring_neither_is_terminated_after_each_step(harness, users):
    pid = run(harness, "deaf")
    agent = FakeAgent(harness, "deaf", obey=False)
    mark = log_size(harness)
    try:
        r = stop(harness, "deaf", "--timeout", "2")
    finally:
        agent.close()
    assert r.rc == 0, r
    assert in_order(rungs(harness, "deaf", mark),
                    ["the guest agent accepted", "did not power off within 2 s",
                     "pressing the power button", "sending SIGTERM"])
    assert "VM deaf stopped by step sigterm: terminated" in r.stdout, r
    assert agent.requests == [REQUEST] and not alive(pid)
    assert props(harness, "deaf")["StopStep"] == "sigterm"


def test_a_guest_that_announced_its_shutdown_is_stopped_not_crashed(harness, users):
    """What the real agent does on Shutdown: Notify shutdown.progress through the host API (as
    the VM's QEMU uid, the only one its bridge answers), then power off — no stop request."""
    pid = run(harness, "deaf")
    record = (harness.runtime_dir / "deaf" / "record").read_text()
    uid = int(re.search(r"^qemu_uid=(\d+)$", record, re.M).group(1))
    port = props(harness, "deaf")["HostApiPort"]
    body = json.dumps({"event": "shutdown.progress", "payload": "powering off"})
    code = ("import http.client\n"
            f"c = http.client.HTTPConnection('127.0.0.1', {port}, timeout=10)\n"
            f"c.request('POST', '/api/Notify', body={body!r})\n"
            "print(c.getresponse().status)\n")
    r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                        "/usr/bin/python3", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "200", r
    wait = time.monotonic() + 30
    while "shutting down" not in props(harness, "deaf")["BootProgress"]:
        assert time.monotonic() < wait, props(harness, "deaf")
        time.sleep(0.2)
    qmp_quit(harness, "deaf")
    p = wait_state(harness, "deaf", ["stopped", "failed"])
    assert (p["State"], p["ExitStatus"], p["StopStep"]) == ("stopped", "shut down by the guest",
                                                           ""), p
    assert p["UnexpectedExit"] == "" and not alive(pid)
    assert helper_crash_lines(harness, "deaf") == []


def test_a_guest_reboot_ends_the_vm_as_a_stop_and_is_not_restarted(harness, users):
    p = wait_state(harness, "reboots", ["stopped", "failed"], timeout=BOOT_TIMEOUT)
    assert "LCVM-GUEST-READY reboot" in serial(harness, "reboots")
    assert p["State"] == "stopped", p
    assert p["ExitStatus"] == "powered off by the guest" and p["StopStep"] == ""
    assert p["UnexpectedExit"] == "" and p["Pid"] == 0
    time.sleep(3)
    assert props(harness, "reboots")["State"] == "stopped"
    assert boots(harness, "reboots") == 1
    assert helper_crash_lines(harness, "reboots") == []


def test_a_guest_panic_is_a_visible_crash(harness, users):
    p = wait_state(harness, "panics", ["stopped", "failed"], timeout=BOOT_TIMEOUT)
    assert "LCVM-GUEST-READY panic" in serial(harness, "panics")
    assert p["State"] == "failed", p
    assert p["ExitStatus"].startswith("guest kernel panic"), p
    assert p["UnexpectedExit"].startswith("exited unexpectedly at 20"), p
    assert p["ConsoleTail"], p
    [line] = helper_crash_lines(harness, "panics")
    assert "guest kernel panic" in line
    assert boots(harness, "panics") == 1


def test_qemu_killed_from_outside_is_a_visible_crash_never_restarted(harness, users):
    pid = run(harness, "crash")
    wait_serial_for(harness, "crash", READY + " ignore-power-button", BOOT_TIMEOUT)
    os.kill(pid, signal.SIGKILL)
    p = wait_state(harness, "crash", ["failed"])
    assert p["ExitStatus"] == "killed by signal 9" and p["Pid"] == 0
    assert re.fullmatch(r"exited unexpectedly at 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ, "
                        r"killed by signal 9", p["UnexpectedExit"]), p
    # The console as the guest wrote it, firmware escapes made harmless.
    assert any(line.endswith(READY + " ignore-power-button") for line in p["ConsoleTail"]), p
    assert not any("\x1b" in line for line in p["ConsoleTail"]), p
    [line] = helper_crash_lines(harness, "crash")
    assert 'exit="killed by signal 9"' in line and "ignore-power-button" in line
    assert (harness.state_dir / "instances/crash/last-exit").exists()
    r = harness.run_frontend(users.op, "status", "crash")
    assert "Unexpected:     exited unexpectedly at" in r.stdout, r
    assert f"Console:        " in r.stdout and "not restarted" in r.stdout
    r = harness.run_frontend(users.op, "list", "--json")
    listed = {v["name"]: v for v in r.json}
    assert listed["crash"]["unexpected_exit"] == p["UnexpectedExit"]
    assert "unexpected_exit" not in listed["acpi"]
    # Never restarted behind the operator's back.
    time.sleep(3)
    assert [q for q in qemus(harness) if q == pid] == []
    assert props(harness, "crash")["State"] == "failed"
    assert boots(harness, "crash") == 1


def test_crashes_stay_visible_across_a_helper_restart(harness, users):
    before = {name: props(harness, name) for name in ("crash", "panics")}
    harness.restart_helper()
    for name, p in before.items():
        after = props(harness, name)
        assert after["State"] == "failed", after
        for key in ("UnexpectedExit", "ConsoleTail", "ExitStatus"):
            assert after[key] == p[key], (key, after)
    # A clean stop leaves nothing behind to show.
    assert props(harness, "acpi")["State"] == "defined"
    assert boots(harness, "crash") == 1 and qemus(harness) == []


def test_starting_again_clears_the_crash(harness, users):
    run(harness, "crash")
    p = props(harness, "crash")
    assert p["UnexpectedExit"] == "" and p["ConsoleTail"] == [] and p["ExitStatus"] == ""
    assert not (harness.state_dir / "instances/crash/last-exit").exists()
    r = stop(harness, "crash", "--force")
    assert r.rc == 0 and "stopped by step sigterm" in r.stdout, r
    assert props(harness, "crash")["UnexpectedExit"] == ""
