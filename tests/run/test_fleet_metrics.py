# SPDX-License-Identifier: MIT
"""`lium-cvm metrics` against the real helper (bus, polkitd), the fake HGX host and the real
QEMU: every value is compared with what the other commands say about the same thing at the
same moment (`check --json`, `lsgpu --json`, `status --json`, `images --json`), after real
changes made through the helper (a bind, a mode query, a VM started and stopped). The output
passes `promtool check metrics`; the shipped timer's command line writes it atomically.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request

import lcvm_harness as lh
from lcvm_fleet import harness_config, prepare_fleet_host
from lcvm_vms import write_vm

HARNESS_CONFIG = harness_config()
BOUND_GPU = "0000:db:00.0"   # no driver on the fake host; bound to vfio-pci below
NVIDIA_GPU = "0000:19:00.0"  # on nvidia; its mode is queried below
SWITCH = "0000:07:00.0"
PROMTOOL = shutil.which("promtool")
NODE_EXPORTER = shutil.which("prometheus-node-exporter")
SAMPLE_RE = re.compile(r'^(?P<name>[a-z_]+)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$')
LABEL_RE = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def prepare_harness(h, guest):
    prepare_fleet_host(h, guest)
    write_vm(h, "vm1", "guest", [2200])
    write_vm(h, "vm-idle", "guest", [2300])


class Metrics:
    """The parsed text: samples(name) → [(labels dict, value)]."""

    def __init__(self, text):
        self.text = text
        self.samples = []
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = SAMPLE_RE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels = {k: v.encode().decode("unicode_escape")
                      for k, v in LABEL_RE.findall(m.group("labels") or "")}
            self.samples.append((m.group("name"), labels, float(m.group("value"))))

    def of(self, name, **match):
        return [(labels, value) for n, labels, value in self.samples
                if n == name and all(labels.get(k) == v for k, v in match.items())]

    def value(self, name, **match):
        found = self.of(name, **match)
        assert len(found) == 1, f"{name} {match}: {found}"
        return found[0][1]


def metrics(harness, user):
    r = harness.run_frontend(user, "metrics")
    assert r.rc == 0, r
    if PROMTOOL:
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=r.stdout, text=True,
                              capture_output=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    return Metrics(r.stdout)


def test_readiness_per_check_matches_check_json(harness, users):
    report = harness.run_frontend(users.op, "check", "--json").json
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_helper_up") == 1
    assert m.value("lium_cvm_check_up") == 1
    ready = not any(c["status"] == "fail" for c in report["checks"])
    assert m.value("lium_cvm_host_ready") == (1 if ready else 0)
    assert len(report["checks"]) > 20
    for c in report["checks"]:
        assert m.value("lium_cvm_check_status", check=c["id"], status=c["status"]) == 1, c
        assert sum(v for _, v in m.of("lium_cvm_check_status", check=c["id"])) == 1, c
    for status in ("ok", "warn", "fail", "unknown", "skip"):
        count = sum(1 for c in report["checks"] if c["status"] == status)
        assert m.value("lium_cvm_checks", status=status) == count
    info = harness.get_info()
    assert m.of("lium_cvm_info")[0][0]["helper_version"] == info["version"]


def test_gpus_follow_a_bind_and_a_mode_query(harness, users):
    before = metrics(harness, users.op)
    assert before.value("lium_cvm_gpu_driver", slot=BOUND_GPU, driver="none") == 1
    assert before.value("lium_cvm_gpu_vfio_ready", slot=BOUND_GPU) == 0
    assert before.value("lium_cvm_gpu_mode", slot=NVIDIA_GPU, cc="unknown") == 1

    assert harness.run_frontend(users.op, "gpu", "bind", BOUND_GPU).rc == 0
    r = harness.run_frontend(users.op, "lsgpu", "--query", NVIDIA_GPU, SWITCH)
    assert r.rc == 0, r
    m = metrics(harness, users.op)
    lsgpu = {d["slot"]: d for d in harness.run_frontend(users.op, "lsgpu", "--json").json["devices"]}
    assert len(lsgpu) == 12 and len(m.of("lium_cvm_gpu_info")) == 12
    for slot, d in lsgpu.items():
        assert m.value("lium_cvm_gpu_driver", slot=slot, driver=d["driver"] or "none") == 1
        assert m.value("lium_cvm_gpu_vfio_ready", slot=slot) == (1 if d["vfio_ready"] else 0)
        [(labels, _)] = m.of("lium_cvm_gpu_info", slot=slot)
        assert (labels["kind"], labels["model"]) == (d["kind"], d["model"])
        assert m.value("lium_cvm_gpu_held_by_vm", slot=slot, vm="") == 0
        mode = d["mode"] or {}
        if d["cc_capable"] or d["mode"]:
            assert m.value("lium_cvm_gpu_mode", slot=slot, cc=mode.get("cc") or "unknown",
                           ppcie=mode.get("ppcie") or "unknown") == 1
    assert m.value("lium_cvm_gpu_driver", slot=BOUND_GPU, driver="vfio-pci") == 1
    assert m.value("lium_cvm_gpu_mode", slot=NVIDIA_GPU, kind="gpu", cc="off", ppcie="off") == 1
    assert m.value("lium_cvm_gpu_mode", slot=SWITCH, kind="nvswitch", ppcie="off") == 1
    assert 0 <= m.value("lium_cvm_gpu_mode_age_seconds", slot=NVIDIA_GPU) < 120
    assert m.of("lium_cvm_gpu_mode_age_seconds", slot=BOUND_GPU) == []


def test_a_vm_running_then_stopped(harness, users):
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_vm_state", vm="vm-idle", state="defined") == 1
    assert m.value("lium_cvm_vm_up", vm="vm1") == 0
    assert m.of("lium_cvm_vm_uptime_seconds") == []

    r = harness.run_frontend(users.op, "run", "vm1")
    assert r.rc == 0, r
    status = harness.run_frontend(users.op, "status", "vm1", "--json").json
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_vm_state", vm="vm1", state=status["State"]) == 1
    assert status["State"] == "running"
    assert sum(v for _, v in m.of("lium_cvm_vm_state", vm="vm1")) == 1
    assert m.value("lium_cvm_vm_up", vm="vm1") == 1
    assert m.value("lium_cvm_vm_up", vm="vm-idle") == 0
    assert m.value("lium_cvm_vm_start_time_seconds", vm="vm1") == status["StartedAt"]
    assert m.value("lium_cvm_vm_uptime_seconds", vm="vm1") >= 0
    assert m.value("lium_cvm_vm_boot_progress", vm="vm1", progress=status["BootProgress"]) == 1
    assert m.value("lium_cvm_vm_boot_error", vm="vm1") == 0

    r = harness.run_frontend(users.op, "stop", "vm1", "--force")
    assert r.rc == 0, r
    status = harness.run_frontend(users.op, "status", "vm1", "--json").json
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_vm_state", vm="vm1", state="stopped") == 1
    assert m.value("lium_cvm_vm_up", vm="vm1") == 0
    assert m.of("lium_cvm_vm_uptime_seconds", vm="vm1") == []
    assert status["ExitStatus"] == "terminated"
    assert m.value("lium_cvm_vm_last_exit", vm="vm1", exit_status="terminated") == 1


def test_a_removed_vm_defined_and_started_again(harness, users):
    """What a redefinition does (lium.cvm.lium_cvm_vm): rm of the stopped VM, new, run. The
    old Vm object leaves the bus at the rm, so the new start can export its own."""
    r = harness.run_frontend(users.op, "rm", "vm1", "--yes")
    assert r.rc == 0, r
    assert harness.helper_pid is not None
    m = metrics(harness, users.op)
    assert m.of("lium_cvm_vm_state", vm="vm1") == []
    write_vm(harness, "vm1", "guest", [2200])
    r = harness.run_frontend(users.op, "run", "vm1")
    assert r.rc == 0, r
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_vm_up", vm="vm1") == 1
    assert m.of("lium_cvm_vm_last_exit", vm="vm1") == []
    assert m.value("lium_cvm_vm_unexpected_exit", vm="vm1") == 0
    assert harness.run_frontend(users.op, "stop", "vm1", "--force").rc == 0
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_vm_state", vm="vm1", state="stopped") == 1
    assert m.value("lium_cvm_vm_unexpected_exit", vm="vm1") == 0


def test_a_crashed_vm_shows_as_an_unexpected_exit(harness, users):
    r = harness.run_frontend(users.op, "run", "vm1")
    assert r.rc == 0, r
    pid = harness.run_frontend(users.op, "status", "vm1", "--json").json["Pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        status = harness.run_frontend(users.op, "status", "vm1", "--json").json
        if status["State"] == "failed":
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["UnexpectedExit"].startswith("exited unexpectedly at ")
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_vm_unexpected_exit", vm="vm1") == 1
    assert m.value("lium_cvm_vm_state", vm="vm1", state="failed") == 1
    assert m.of("lium_cvm_vm_unexpected_exit", vm="vm-idle") == []  # never started: no Vm
    # A new start clears it; the module's later tests expect vm1 stopped.
    assert harness.run_frontend(users.op, "run", "vm1").rc == 0
    assert metrics(harness, users.op).value("lium_cvm_vm_unexpected_exit", vm="vm1") == 0
    assert harness.run_frontend(users.op, "stop", "vm1", "--force").rc == 0


def test_key_provider_before_and_after_its_start(harness, users):
    m = metrics(harness, users.op)
    assert m.value("lium_cvm_key_provider_up") == 1
    assert m.value("lium_cvm_key_provider_ready") == 0
    assert m.of("lium_cvm_key_provider_container_running") == []
    r = harness.run_frontend(users.op, "key-provider", "start")
    assert r.rc == 0, r
    kp = harness.run_frontend(users.op, "key-provider", "status", "--json").json
    assert kp["ready"]
    m = metrics(harness, users.op)
    for key in ("ready", "port_answering", "production_mode", "pin_matches"):
        assert m.value("lium_cvm_key_provider_" + key) == (1 if kp[key] else 0), key
    assert m.value("lium_cvm_key_provider_ready") == 1
    assert m.value("lium_cvm_key_provider_enclave_errors") == len(kp["enclave_errors"]) == 0
    assert len(kp["containers"]) == 2
    for c in kp["containers"]:
        assert m.value("lium_cvm_key_provider_container_running", container=c["name"]) == 1
        assert m.value("lium_cvm_key_provider_container_restarts", container=c["name"]) == \
            c["restart_count"]


def test_images_as_the_store_says(harness, users):
    images = harness.run_frontend(users.op, "images", "--json").json
    m = metrics(harness, users.op)
    assert [i["name"] for i in images] == ["guest"]
    assert m.value("lium_cvm_image_info", image="guest", state=images[0]["state"],
                   digest=images[0]["digest"]) == 1


def test_image_known_good_follows_the_list(harness, users):
    """Judged against [attestation] known_good: 1 when the list names the image's digest, 0
    when validators will reject it; no value at all when the list cannot be read."""
    digest = harness.run_frontend(users.op, "images", "--json").json[0]["digest"]
    listed = harness.root / "known-good-listed.conf"
    listed.write_text(f"[image guest]\ndigests={digest};\n[qemu]\nversions=9.2.1;\n")
    other = harness.root / "known-good-other.conf"
    other.write_text("[image guest]\ndigests=%s;\n[qemu]\nversions=9.2.1;\n" % ("0" * 64))
    for path in (listed, other):
        path.chmod(0o644)
    saved = harness.extra_config

    def frontend_reads(path):  # only the frontend reads the list here: no helper restart
        harness.extra_config = lh._merge(saved, {"attestation": {"known_good": str(path)}})
        harness.write_config()

    try:
        frontend_reads(listed)
        assert metrics(harness, users.op).value("lium_cvm_image_known_good", image="guest") == 1
        frontend_reads(other)
        assert metrics(harness, users.op).value("lium_cvm_image_known_good", image="guest") == 0
        frontend_reads(harness.root / "absent.conf")
        assert metrics(harness, users.op).of("lium_cvm_image_known_good") == []
    finally:
        harness.extra_config = saved
        harness.write_config()


def test_an_outsider_gets_what_needs_no_authorization(harness, users):
    """GetInfo, ListVms and Vm properties need none; KeyProviderStatus (inspect) is refused:
    its gauge says so and its values are absent, never guessed."""
    mark = harness.audit_mark()
    m = metrics(harness, users.out)
    assert m.value("lium_cvm_helper_up") == 1
    assert m.value("lium_cvm_key_provider_up") == 0
    assert m.of("lium_cvm_key_provider_ready") == []
    assert m.value("lium_cvm_vm_state", vm="vm1", state="stopped") == 1
    [rec] = harness.audit_records(since=mark)
    assert rec.refused and rec.method == "io.lium.Cvm1.Host.KeyProviderStatus"


def test_without_the_helper_only_helper_up_says_so(harness, users):
    harness.stop_helper()
    try:
        m = metrics(harness, users.op)
        assert m.value("lium_cvm_helper_up") == 0
        assert m.value("lium_cvm_key_provider_up") == 0
        assert m.of("lium_cvm_key_provider_ready") == []
        assert m.value("lium_cvm_check_up") == 1
        assert m.value("lium_cvm_vm_state", vm="vm1", state="defined") == 1
    finally:
        harness.start_helper()


def timer_command(harness, output):
    """ExecStart= of the built lium-cvm-metrics.service, pointed at the harness's frontend and
    the given output file."""
    unit = lh.BUILD_ROOT / "data" / "lium-cvm-metrics.service"
    [line] = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
    argv = line[len("ExecStart="):].split()
    assert argv[-2:] == ["--output", "/var/lib/prometheus/node-exporter/lium_cvm.prom"]
    return [str(harness.frontend)] + argv[1:-1] + [str(output)]


def test_the_timer_replaces_the_file_atomically(harness, users, tmp_path):
    out_dir = tmp_path / "node-exporter"
    out_dir.mkdir()
    out = out_dir / "lium_cvm.prom"
    out.write_text("stale\n")
    old_inode = out.stat().st_ino
    r = harness.run_as(users.root, timer_command(harness, out))
    assert r.rc == 0, r
    assert os.listdir(out_dir) == ["lium_cvm.prom"]
    assert out.stat().st_ino != old_inode
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    m = Metrics(out.read_text())
    assert m.value("lium_cvm_helper_up") == 1
    # the service runs as root: polkitd authorizes uid 0 for KeyProviderStatus (inspect)
    assert m.value("lium_cvm_key_provider_up") == 1
    if PROMTOOL:
        assert subprocess.run([PROMTOOL, "check", "metrics"], stdin=out.open(),
                              capture_output=True).returncode == 0
    if NODE_EXPORTER:
        scraped = Metrics(scrape_textfile(out_dir))
        assert scraped.value("node_textfile_scrape_error") == 0
        assert scraped.value("lium_cvm_helper_up") == 1
        assert scraped.value("lium_cvm_host_ready") == m.value("lium_cvm_host_ready")


def scrape_textfile(directory):
    """What Debian's node_exporter (textfile collector only) serves for directory: the
    lium_cvm samples (as node_exporter re-labels nothing in them) and its own scrape error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
                             f"--collector.textfile.directory={directory}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "node_exporter did not answer"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait()
    keep = ("lium_cvm_", "node_textfile_scrape_error")
    return "".join(line + "\n" for line in text.splitlines()
                   if line.startswith(keep) or line.startswith("# ") and
                   line.split()[2].startswith(keep))


def test_bad_output_paths_are_refused_and_nothing_is_written(harness, users, tmp_path):
    r = harness.run_frontend(users.root, "metrics", "--output", str(tmp_path / "lium_cvm.txt"))
    assert r.rc == 2 and "only files ending in .prom" in r.stderr, r
    r = harness.run_frontend(users.root, "metrics", "--output",
                             str(tmp_path / "missing" / "lium_cvm.prom"))
    assert r.rc == 1 and "missing" in r.stderr, r
    assert os.listdir(tmp_path) == []
