# SPDX-License-Identifier: MIT
"""The Cockpit page (cockpit/) in a real browser: Debian's Chromium, headless, driven through
the DevTools protocol (puppeteer-core, tests/run/cockpit_browser.js) against a real cockpit-ws
whose real cockpit-bridge serves the built page as the logged-in user. Behind it: the real
helper on the harness's system bus and polkitd, the real frontend for the --json output, the
fake HGX host (tests/fakes/fakepci.py) for the GPUs, and the real QEMU booting the e2e guest.

One cockpit-ws per user (`--local-session`: the bridge runs as that user with no login, the
way a logged-in session's bridge runs); the page acts with that user's rights only, so the
operator (group lium-cvm) acts and the ungrouped user sees polkit's refusal. Screenshots of
every page are kept in build/tests/cockpit-screenshots/ (meson's test artefacts).

Skips (77) without node, the built page (cockpit/build.sh), cockpit-ws or chromium.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lcvm_harness as lh
from lcvm_vms import IMAGES, props, serial, write_image, write_vm  # noqa: F401

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "fakes"))
import fakepci  # noqa: E402

HERE = Path(__file__).resolve().parent
QEMU = "/usr/bin/qemu-system-x86_64"
COCKPIT_WS = Path("/usr/lib/cockpit/cockpit-ws")
CHROMIUM = Path(os.environ.get("LCVM_CHROMIUM", "/usr/bin/chromium"))
PAGE = Path(os.environ.get("LCVM_COCKPIT_PAGE", lh.BUILD_ROOT / "cockpit" / "dist"))
NODE_MODULES = Path(os.environ.get("LCVM_COCKPIT_NODE_MODULES",
                                   lh.BUILD_ROOT / "cockpit" / "npm" / "node_modules"))
SHOTS = Path(os.environ.get("LCVM_COCKPIT_SHOTS", lh.BUILD_ROOT / "tests" / "cockpit-screenshots"))
READY = "LCVM-GUEST-READY"
GPU = "0000:19:00.0"
NOT_AUTHORIZED = "io.lium.Cvm1.Error.NotAuthorized"

HARNESS_CONFIG = {
    "qemu": {"path": QEMU, "allow_no_tee": "true", "accel": "tcg"},
    "paths": {"dstack_client_conf": "", "proc_root": "/proc"},
    "helper": {"bind_timeout": 5},
}


def _missing():
    for path, what in ((COCKPIT_WS, "cockpit-ws (apt-get install cockpit-ws cockpit-bridge)"),
                       (Path("/usr/bin/cockpit-bridge"), "cockpit-bridge"),
                       (CHROMIUM, "chromium (apt-get install chromium)"),
                       (PAGE / "index.js", f"the built page {PAGE} (meson -Dcockpit=enabled)"),
                       (NODE_MODULES / "puppeteer-core", f"puppeteer-core in {NODE_MODULES}")):
        if not path.exists():
            return f"{what} not found"
    if shutil.which("node") is None:
        return "node not found"
    return None


if _missing():
    pytest.skip(_missing(), allow_module_level=True)


def prepare_harness(h, guest):
    write_image(h, guest, "guest")
    write_vm(h, "web1", "guest", [2600])
    write_vm(h, "web2", "guest", [2700])
    fakepci.build(str(h.root))


@pytest.fixture(scope="module")
def kernel(harness):
    ready = harness.root / "kernel.ready"
    proc = subprocess.Popen([sys.executable, fakepci.__file__, "simulate", str(harness.root),
                             "--delay", "0.02", "--ready-file", str(ready)])
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline, "the kernel simulator did not start"
        time.sleep(0.01)
    yield proc
    proc.terminate()
    proc.wait()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CockpitWs:
    """A real cockpit-ws running as one user; its bridge finds the page through
    XDG_DATA_HOME and `lium-cvm` through PATH, and reads the harness's config."""

    def __init__(self, harness, user):
        self.harness = harness
        self.port = _free_port()
        top = harness.root / f"cockpit-{user.name}-{self.port}"
        (top / "share" / "cockpit").mkdir(parents=True)
        (top / "bin").mkdir()
        os.symlink(PAGE, top / "share" / "cockpit" / "lium-cvm")
        os.symlink(harness.frontend, top / "bin" / "lium-cvm")
        top.chmod(0o755)
        self.log = open(harness.logs / f"cockpit-ws-{user.name}.log", "a")
        env = {"HOME": str(user.home), "USER": user.name, "LOGNAME": user.name,
               "PATH": f"{top / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "XDG_DATA_HOME": str(top / "share"), "XDG_RUNTIME_DIR": str(top),
               "LIUM_CVM_CONFIG": str(harness.config_path)}
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--",
             str(COCKPIT_WS), "--no-tls", "--local-session=cockpit-bridge",
             "-a", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env,
            cwd=str(user.home))
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, "cockpit-ws exited"
                assert time.monotonic() < deadline, "cockpit-ws did not listen"
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def ws(harness, users, kernel):
    """browse(user, scenario, …): a fresh cockpit-ws for each browser run (a --local-session
    cockpit-ws serves one session: its bridge ends with the page's connection)."""
    def run(user, scenario, *args, timeout=600):
        server = CockpitWs(harness, user)
        try:
            return browse(server, scenario, *args, timeout=timeout)
        finally:
            server.close()
    return run


def browse(ws_server, scenario, *args, timeout=600):
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES), "LCVM_CHROMIUM": str(CHROMIUM),
           "HOME": "/tmp"}
    r = subprocess.run(["node", str(HERE / "cockpit_browser.js"), scenario, ws_server.url,
                        str(SHOTS), *args],
                       capture_output=True, text=True, timeout=timeout, env=env)
    lines = r.stdout.strip().splitlines()
    seen = json.loads(lines[-1]) if lines else {}
    assert r.returncode == 0, \
        f"{scenario}: {seen.get('error')}\npage: {seen.get('page_text')}\n{r.stderr[-3000:]}"
    return seen


def listed_state(harness, users, name):
    r = harness.run_frontend(users.op, "list", "--json")
    assert r.rc == 0, r
    return {v["name"]: v["state"] for v in r.json}[name]


# ---- the tests, in order --------------------------------------------------------------------

def test_pages_render_the_host_gpus_and_vms(harness, users, ws):
    seen = ws(users.op, "pages")
    report = harness.run_frontend(users.op, "check", "--json").json
    # The page shows every check of the report, with its status, grouped by area.
    assert {c["id"]: c["status"] for c in seen["checks"]} == \
        {c["id"]: c["status"] for c in report["checks"]}
    assert set(seen["areas"]) == {c["id"].split(".")[0] for c in report["checks"]}
    assert ("not ready" in seen["host_verdict"]) == (not report["ready"])
    failed = [c for c in report["checks"] if c["status"] == "fail" and c["remedy"]]
    assert failed, "the harness host should fail some check"
    by_id = {c["id"]: c for c in seen["checks"]}
    for c in failed:
        assert by_id[c["id"]]["remedy"] == c["remedy"]
    assert seen["rerun_checks"] == len(report["checks"])
    # GPUs as lsgpu sees them.
    lsgpu = harness.run_frontend(users.op, "lsgpu", "--json").json
    assert [(g["slot"], g["driver"]) for g in seen["gpus"]] == \
        [(d["slot"], d["driver"] or "none") for d in lsgpu["devices"]]
    # VMs: both definitions, neither running.
    assert {v["name"]: v["state"] for v in seen["vms"]} == {"web1": "defined", "web2": "defined"}
    assert seen["console_errors"] == []
    for shot in ("host.png", "gpus.png", "vms.png"):
        assert (SHOTS / shot).stat().st_size > 10000


def test_an_ungrouped_user_sees_no_definitions_and_cannot_start_one(harness, users, ws):
    # Definitions are the operators' (state_dir/vms is group lium-cvm, 2770): the page says
    # why it cannot list them, and offers nothing to start.
    mark = harness.audit_mark()
    seen = ws(users.out, "vms-outsider", "web2")
    assert "lium-cvm list could not run" in seen["list_error"] and "ermission denied" in seen["list_error"]
    assert seen["start_buttons"] == 0
    # The page's own D-Bus channel is refused too (polkit's answer, not the page's).
    assert seen["dbus_start"]["ok"] is False and seen["dbus_start"]["name"] == NOT_AUTHORIZED
    [rec] = [r for r in harness.audit_records(since=mark) if r.method.endswith(".StartVm")]
    assert rec.refused and rec.uid == users.out.uid
    assert listed_state(harness, users, "web2") == "defined"
    assert not (harness.runtime_dir / "web2").exists()


def test_an_ungrouped_user_cannot_bind_a_gpu_from_the_page(harness, users, ws):
    before = fakepci.snapshot(str(harness.root))
    seen = ws(users.out, "bind", GPU)
    assert not seen["outcome"]["ok"] and "group lium-cvm" in seen["outcome"]["text"]
    assert seen["driver_after"] == seen["driver_before"] != "vfio-pci"
    assert fakepci.snapshot(str(harness.root)) == before


def test_an_operator_binds_a_gpu_from_the_page(harness, users, ws):
    seen = ws(users.op, "bind", GPU)
    assert seen["outcome"]["ok"], seen
    assert seen["driver_after"] == "vfio-pci"
    link = harness.sysfs / "bus/pci/devices" / GPU / "driver"
    assert os.path.basename(os.readlink(link)) == "vfio-pci"
    r = harness.run_frontend(users.op, "gpu", "unbind", GPU, "--json", timeout=120)
    assert r.rc == 0, r


def test_an_operator_starts_a_vm_that_boots_and_stops_it(harness, users, ws):
    mark = harness.audit_mark()
    seen = ws(users.op, "vm-cycle", "web1", READY, timeout=900)
    assert seen["start"]["ok"], seen
    assert READY in serial(harness, "web1")
    # The console that followed in the page: the guest's text, its escape sequences (the
    # e2e guest clears the screen) neither shown raw nor interpreted.
    assert READY in seen["console_text"]
    assert "\x1b" in serial(harness, "web1")
    assert not any(ch in seen["console_text"] for ch in "\x1b\x07\x9b")
    running = {v["name"]: v["state"] for v in seen["running_rows"]}
    assert running["web1"] == "running" and running["web2"] == "defined"
    assert "web1" in seen["definition"]
    assert seen["stop"]["ok"], seen
    assert {v["name"]: v["state"] for v in seen["stopped_rows"]}["web1"] == "stopped"
    p = props(harness, "web1")
    assert p["State"] == "stopped" and p["Pid"] == 0
    methods = [(r.method, r.uid, r.ok) for r in harness.audit_records(since=mark)]
    assert ("io.lium.Cvm1.Manager.StartVm", users.op.uid, True) in methods
    assert ("io.lium.Cvm1.Manager.StopVm", users.op.uid, True) in methods
    assert IMAGES  # the guest image came from the shared VM fixtures
