# SPDX-License-Identifier: MIT
"""The guest's host API end to end: the helper spawns each VM's lium-cvm-hostapi bridge
(confined, its own uid) next to the real QEMU (allow_no_tee, accel=tcg); the tiny guest of
tests/e2e/build-guest.sh in its host-API client mode (lcvm_guest=hostapi) reaches the bridge
through slirp at the host_api_url of its .sys-config.json, gets its sealing key from the fake
key provider (tests/fakes/fake_key_provider.py, the real wire format), reports its progress
and instance info, and powers off. Also: a connection from another uid is refused; the
bridge is restarted when it dies, re-adopted with its VM, and the guest's events reach the
Vm object through the event file, also across a helper restart.

The bridge runs in its own mount and IPC namespaces with the minimal view (helper-sandbox-ns.c).
Runs in a private network namespace like test_run.py; the tests run in file order.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lcvm_harness as lh
import lcvm_spawn as ls
from lcvm_vms import props, record, serial, vm_path, write_image, write_vm
from lcvm_vms import wait_serial as wait_serial_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
import fake_key_provider as fkp  # noqa: E402

QEMU = "/usr/bin/qemu-system-x86_64"
QUOTE = bytes.fromhex("0123456789abcdef" * 8)  # what build-guest.sh's client sends
DONE = "LCVM-HOSTAPI-DONE"
BOOT_TIMEOUT = 240
PROVIDER = fkp.FakeKeyProvider("normal")

HARNESS_CONFIG = {
    "qemu": {"path": QEMU, "allow_no_tee": "true", "accel": "tcg"},
    "paths": {"dstack_client_conf": ""},
}


def prepare_harness(h, guest):
    PROVIDER.start()
    h.extra_config["key-provider"] = {"address": PROVIDER.address}
    for image in ("hostapi", "guest"):
        write_image(h, guest, image)
    write_vm(h, "hapi", "hostapi", [2500])
    write_vm(h, "plain", "guest", [2600])


@pytest.fixture(scope="module", autouse=True)
def provider_stops():
    yield
    PROVIDER.stop()


# ---- helpers ------------------------------------------------------------------------------

def wait_props(harness, name, predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        p = props(harness, name)
        if predicate(p):
            return p
        assert time.monotonic() < deadline, f"{name}: no {what}: {p}"
        time.sleep(0.2)


def wait_serial(harness, name, marker, timeout=BOOT_TIMEOUT):
    wait_serial_for(harness, name, marker, timeout)


def proc_status(pid):
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def alive(pid):
    try:
        return not proc_status(pid)["State"].startswith("Z")
    except FileNotFoundError:
        return False


def post_as(harness, user, port, path, body):
    """POSTs from `user`'s own socket → the raw answer (or the error) on stdout."""
    code = ("import http.client, sys\n"
            f"c = http.client.HTTPConnection('127.0.0.1', {port}, timeout=10)\n"
            "try:\n"
            f"    c.request('POST', {path!r}, body={body!r})\n"
            "    r = c.getresponse()\n"
            "    print(r.status, r.read().decode())\n"
            "except OSError as e:\n"
            "    print('ERROR', type(e).__name__, e)\n")
    return harness.run_as(user, ["/usr/bin/python3", "-c", code])


class Monitor:
    """`gdbus monitor` on one object: the signals the helper emits for it."""

    def __init__(self, path):
        self.proc = subprocess.Popen(
            ["gdbus", "monitor", "--system", "--dest", lh.BUS_NAME, "--object-path", path],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self):
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return out


# ---- the tests, in order --------------------------------------------------------------------

def test_the_guest_gets_its_sealing_key_and_reports_through_the_bridge(harness, users):
    monitor = Monitor(vm_path("hapi"))
    try:
        time.sleep(0.5)  # subscribed before the VM exists
        r = harness.run_frontend(users.op, "run", "hapi", timeout=120)
        assert r.rc == 0, r
        # No docker here: run says what that means and starts the VM anyway.
        assert "cannot get sealing keys" in r.stderr, r
        p = props(harness, "hapi")
        port = p["HostApiPort"]
        rec = record(harness, "hapi")
        qemu_uid, bridge_uid = int(rec["qemu_uid"]), int(rec["bridge_uid"])
        bridge = int(rec["bridge_pid"])

        # The bridge runs confined as its own uid, not QEMU's.
        st = proc_status(bridge)
        assert st["Uid"].split() == [str(bridge_uid)] * 4 and bridge_uid != qemu_uid
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        assert f"--peer-uid={qemu_uid}" in Path(f"/proc/{bridge}/cmdline").read_text()
        # In its own mount and IPC namespaces: the minimal view plus its program's directory.
        for kind in ("mnt", "ipc"):
            assert ls.namespace(bridge, kind) != ls.namespace(harness.helper_pid, kind), kind
        program = Path(f"/proc/{bridge}/cmdline").read_text().split("\0")[0]
        shown = [] if program.startswith("/usr/") else [str(Path(program).parent)]
        assert ls.mount_points(bridge) == ls.minimal_view() + shown
        assert st["Groups"] == ""

        # Any other uid is turned away while the VM runs (an operator here).
        refused = post_as(harness, users.op, port, "/api/Info", "")
        assert refused.stdout.startswith("403 ") and "refused" in refused.stdout, refused
        # The bridge's own account of it reaches the helper's stderr (the journal in
        # production), not /dev/null.
        deadline = time.monotonic() + 10
        while "lium-cvm-hostapi: connection refused" not in harness.helper_log.read_text():
            assert time.monotonic() < deadline, "the bridge's stderr was lost"
            time.sleep(0.1)

        wait_serial(harness, "hapi", DONE)
        console = serial(harness, "hapi")
        assert f"LCVM-HOSTAPI-URL http://10.0.2.2:{port}/api" in console
        key, provider_quote = fkp.answer_for(QUOTE)
        line = next(x for x in console.splitlines() if x.startswith("LCVM-SEALING-KEY "))
        answer = json.loads(line[len("LCVM-SEALING-KEY "):])
        assert answer == {"encrypted_key": key.hex(), "provider_quote": provider_quote.hex()}
        assert PROVIDER.received == [QUOTE] and PROVIDER.framing_errors == []
        assert "LCVM-GUEST-ERROR" not in console, console[-3000:]

        p = wait_props(harness, "hapi", lambda p: p["State"] in ("stopped", "failed"), "stop",
                       timeout=60)
        assert p["State"] == "stopped" and p["ExitStatus"] == "powered off by the guest", p
        assert p["BootProgress"] == "e2e: done" and p["BootError"] == "", p
    finally:
        signals = monitor.stop()
    assert "'BootProgress': <'e2e: requesting app keys'>" in signals, signals
    info = harness.state_dir / "instances" / "hapi" / "shared" / ".instance_info"
    assert info.read_text() == '{"instance_id":"e2e-instance"}'
    assert not alive(bridge), "the bridge outlived its VM"
    assert not (harness.runtime_dir / "hapi").exists()


def test_a_dead_bridge_is_restarted_and_marked_in_boot_error(harness, users):
    r = harness.run_frontend(users.op, "run", "plain", timeout=120)
    assert r.rc == 0, r
    first = int(record(harness, "plain")["bridge_pid"])
    subprocess.run(["kill", "-KILL", str(first)], check=True)
    p = wait_props(harness, "plain", lambda p: "restarted" in p["BootError"], "BootError")
    assert "killed by signal 9" in p["BootError"] and p["State"] == "running", p
    second = int(record(harness, "plain")["bridge_pid"])
    assert second != first and alive(second)


def test_the_qemu_uid_reaches_its_bridge_and_no_other_local_address(harness, users):
    rec = record(harness, "plain")
    uid, port = int(rec["qemu_uid"]), int(rec["hostapi_port"])

    def connect_as_qemu(host, to_port):
        code = f"import socket; socket.create_connection(('{host}', {to_port}), 2).close()"
        return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                               "--", "/usr/bin/python3", "-c", code],
                              capture_output=True, text=True)

    # The host's own (non-loopback) address: slirp would hand a guest's 10.0.2.2 traffic to it.
    subprocess.run(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"], check=True)
    try:
        with socket.socket() as listener:
            listener.bind(("192.0.2.1", 0))
            listener.listen(4)
            other = listener.getsockname()[1]
            denied = connect_as_qemu("192.0.2.1", other)
            assert denied.returncode != 0 and "OSError" in denied.stderr, denied
            allowed = harness.run_as(users.op, ["/usr/bin/python3", "-c",
                                                f"import socket; socket.create_connection("
                                                f"('192.0.2.1', {other}), 2)"])
            assert allowed.rc == 0, allowed
    finally:
        subprocess.run(["ip", "addr", "del", "192.0.2.1/32", "dev", "lo"], check=False)
    assert connect_as_qemu("127.0.0.1", port).returncode == 0
    assert "lium-cvm guard 2" in subprocess.run(
        ["nft", "list", "chain", "inet", "lium_cvm", "vm_plain"],
        capture_output=True, text=True).stdout


def test_guest_events_reach_the_vm_object_also_across_a_helper_restart(harness, users):
    events = harness.runtime_dir / "plain" / "events"
    line = {"time_us": 1, "event": "boot.progress", "payload": "e2e: seen live"}
    with open(events, "a") as f:
        f.write(json.dumps(line) + "\n")
    wait_props(harness, "plain", lambda p: p["BootProgress"] == "e2e: seen live", "progress")
    bridge = int(record(harness, "plain")["bridge_pid"])
    harness.stop_helper()
    with open(events, "a") as f:
        f.write(json.dumps({**line, "payload": "e2e: while no helper watched"}) + "\n")
        f.write(json.dumps({**line, "event": "boot.error", "payload": "e2e: an error"}) + "\n")
    harness.start_helper()
    p = wait_props(harness, "plain", lambda p: p["State"] == "running", "running")
    assert p["BootProgress"] == "e2e: while no helper watched", p
    assert p["BootError"] == "e2e: an error", p
    # The bridge was re-adopted, not replaced.
    assert int(record(harness, "plain")["bridge_pid"]) == bridge and alive(bridge)
    r = harness.run_frontend(users.op, "stop", "plain", "--force", timeout=120)
    assert r.rc == 0, r
    assert not alive(bridge), "the bridge outlived its re-adopted VM"


def test_run_starts_a_key_provider_that_does_not_answer(harness, users):
    shutil.copy(lh.SOURCE_ROOT / "tests" / "fakes" / "fake-docker", harness.tools_dir / "docker")
    (harness.tools_dir / "docker").chmod(0o755)
    (harness.tools_dir / "fake-docker.json").write_text(json.dumps({
        "images": {"lium-aesmd:local": "sha256:" + "a" * 64,
                   "lium-key-provider:local": "sha256:" + "b" * 64},
        "containers": {}, "logs": {}, "calls": []}))
    shutil.copy(lh.SOURCE_ROOT / "data" / "key-provider" / "docker-compose.yml",
                harness.root / "key-provider" / "docker-compose.yml")
    with socket.socket() as s:  # a port nobody answers on
        s.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{s.getsockname()[1]}"
    harness.restart_helper({"key-provider": {"address": silent}})
    r = harness.run_frontend(users.op, "run", "plain", timeout=120)
    assert r.rc == 0, r
    assert "Starting the key provider (it does not answer)" in r.stderr, r
    calls = json.loads((harness.tools_dir / "fake-docker.json").read_text())["calls"]
    assert any(c["argv"][:1] == ["compose"] and "up" in c["argv"] for c in calls), calls
    r = harness.run_frontend(users.op, "stop", "plain", "--force", timeout=120)
    assert r.rc == 0, r
