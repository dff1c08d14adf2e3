# SPDX-License-Identifier: MIT
"""The Ansible collection lium.cvm (ansible/) driving a host: Debian's ansible-playbook run as the
grouped operator lcvm-op (connection local) against the real helper, bus and polkitd, the fake
HGX host and the real QEMU (tests/run/lcvm_fleet.py), with an OS image served over HTTP by
tests/image/imgserver.py. Every lium.cvm module runs `lium-cvm --json` on the host.

The runs, in file order, on one harness: check mode (reports the changes, changes nothing);
apply (GPUs bound and in CC mode, image downloaded and verified, VM defined and running, facts);
apply again (changed=0, the VM not restarted); a changed compose file (the VM redefined, the new
compose hash in the result, --diff shows it); bad input (each task fails with a message that
says what is wrong, nothing changes); stopped, then absent. Few runs, many assertions each:
ansible-playbook takes seconds to start here.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile

import pytest

import lcvm_harness as lh
from lcvm_fleet import driver, firmware, harness_config, prepare_fleet_host

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "image"))
import imgserver  # noqa: E402

ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook")
pytestmark = pytest.mark.skipif(ANSIBLE_PLAYBOOK is None,
                                reason="ansible-playbook missing (apt install ansible-core)")

IMAGE = "dstack-nvidia-0.5.11"
SLOTS = ["19:00.0", "07:00.0", "db:00.0"]  # a GPU on nvidia, an NVSwitch and a GPU unbound
GPUS = ["0000:19:00.0", "0000:db:00.0"]
SWITCH = "0000:07:00.0"
COMPOSE = "services:\n  app:\n    image: busybox\n"
ENV = {"SSH_PORT": 2200, "INTERNAL_PORT": 8001, "EXTERNAL_PORT": 8001, "CVM_VCPUS": 1,
       "CVM_MEMORY": "512M", "CVM_DISK": "1G", "MINER_HOTKEY_SS58_ADDRESS": "5F it's a value"}
SERVER = imgserver.Server()
ARCHIVE = imgserver.image_archive(IMAGE)
SERVER.add(f"/{IMAGE}.tar.gz", ARCHIVE)
# The known-good list accepts the served image (the shipped list names dstack-nvidia-0.5.11
# with its real digest, which a download of this test image would refuse).
KNOWN_GOOD = tempfile.NamedTemporaryFile("w", prefix="lcvm-known-good-", suffix=".conf",
                                         delete=False)
KNOWN_GOOD.write("[image %s]\ndigests=%s;\n[qemu]\nversions=9.2.1;\n"
                 % (IMAGE, imgserver.image_files(IMAGE)["digest.txt"].decode().strip()))
KNOWN_GOOD.close()
os.chmod(KNOWN_GOOD.name, 0o644)
HARNESS_CONFIG = harness_config({"attestation": {"known_good": KNOWN_GOOD.name}})

# Every play: localhost, the harness's lium-cvm and config for every lium.cvm module.
PLAY = """\
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/lium.cvm.lium_cvm:
      binary: "{{ lium_cvm_binary }}"
      config: "{{ lium_cvm_config }}"
  tasks:
"""

SITE = PLAY + """\
    - name: gpus all
      lium.cvm.lium_cvm_gpu:
        slots: [all]
        driver: vfio-pci
        cc: 'on'
      when: probe_all | default(false)
    - name: gpus
      lium.cvm.lium_cvm_gpu:
        slots: "{{ gpu_slots }}"
        driver: vfio-pci
        cc: 'on'
    - name: image
      lium.cvm.lium_cvm_image:
        name: "{{ image_name }}"
        url: "{{ image_url }}"
        sha256: "{{ image_sha256 }}"
    - name: vm
      lium.cvm.lium_cvm_vm:
        name: executor
        image: guest
        env: "{{ vm_env }}"
        compose: "{{ vm_compose }}"
        init_script: "echo init\\n"
        pre_launch_script: "echo pre\\n"
        state: "{{ vm_state | default('running') }}"
        stop_timeout: 1
    - name: facts
      lium.cvm.lium_cvm_facts:
"""

BAD = PLAY + """\
    - name: unknown slot
      lium.cvm.lium_cvm_gpu: {slots: ['ee:00.0'], driver: vfio-pci}
      ignore_errors: true
    - name: cc and ppcie together
      lium.cvm.lium_cvm_gpu: {cc: 'on', ppcie: 'on'}
      ignore_errors: true
    - name: bad sha256
      lium.cvm.lium_cvm_image: {name: "{{ image_name }}", sha256: xyz}
      ignore_errors: true
    - name: bad vm name
      lium.cvm.lium_cvm_vm: {name: Bad Name, env: "{{ vm_env }}", compose: "{{ vm_compose }}"}
      ignore_errors: true
    - name: bad memory
      lium.cvm.lium_cvm_vm:
        name: executor
        image: guest
        env: "{{ vm_env | combine({'CVM_MEMORY': 'lots'}) }}"
        compose: "{{ vm_compose }}"
      ignore_errors: true
    - name: undefined vm
      lium.cvm.lium_cvm_vm: {name: ghost, state: running}
      ignore_errors: true
    - name: env without compose
      lium.cvm.lium_cvm_vm: {name: executor, env: "{{ vm_env }}"}
      ignore_errors: true
"""

ROLE_VFIO = PLAY + """\
    - name: vfio
      ansible.builtin.include_role:
        name: lium.cvm.host
        tasks_from: vfio
      vars:
        lium_cvm_binary: "{{ lium_cvm_binary }}"
        lium_cvm_modules_load_file: "{{ modules_load_dir }}/lium-cvm.conf"
"""

TEARDOWN = PLAY + """\
    - name: stopped
      lium.cvm.lium_cvm_vm: {name: executor, state: stopped, stop_timeout: 1}
      when: not (absent_only | default(false))
    - name: absent
      lium.cvm.lium_cvm_vm: {name: executor, state: absent}
"""


def prepare_harness(h, guest):
    prepare_fleet_host(h, guest)
    collections = h.root / "collections" / "ansible_collections" / "lium"
    collections.mkdir(parents=True)
    shutil.copytree(lh.SOURCE_ROOT / "ansible", collections / "cvm")
    plays = h.root / "plays"
    plays.mkdir()
    for name, text in (("site.yml", SITE), ("bad.yml", BAD), ("role-vfio.yml", ROLE_VFIO),
                       ("teardown.yml", TEARDOWN)):
        (plays / name).write_text(text)
    (plays / "vars.json").write_text(json.dumps({
        "lium_cvm_binary": str(h.frontend), "lium_cvm_config": str(h.config_path),
        "gpu_slots": SLOTS, "image_name": IMAGE, "image_url": f"{SERVER.base}/{IMAGE}.tar.gz",
        "image_sha256": hashlib.sha256(ARCHIVE).hexdigest(),
        "vm_env": ENV, "vm_compose": COMPOSE, "modules_load_dir": str(h.modules_load_dir),
    }))
    for p in [h.root / "collections", plays, *(h.root / "collections").rglob("*"),
              *plays.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)


class Run:
    """One ansible-playbook run (json callback): its tasks' results by name and its stats."""

    def __init__(self, result):
        self.result = result
        assert result.stdout.strip(), result
        doc = json.loads(result.stdout)
        self.stats = doc["stats"]["localhost"]
        self.tasks = {}
        for play in doc["plays"]:
            for task in play["tasks"]:
                # a role's task is "ROLE : NAME"
                name = task["task"]["name"].split(" : ", 1)[-1]
                self.tasks[name] = task["hosts"]["localhost"]

    def __getitem__(self, name):
        return self.tasks[name]

    def failures(self):
        """The failed tasks' messages and commands, for assertion messages."""
        return {n: (t.get("msg"), t.get("commands")) for n, t in self.tasks.items()
                if t.get("failed")} or self.result


def playbook(harness, users, name, *args, extra=None):
    home = users.op.home
    env = {
        "ANSIBLE_COLLECTIONS_PATH": str(harness.root / "collections"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_LOCAL_TEMP": str(home / ".ansible" / "tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_NOCOLOR": "1",
        "LC_ALL": "C.UTF-8",
        # the harness's copy of lium-cvm has no lium-cvm-download beside it
        "LIUM_CVM_LIBEXECDIR": str(lh.BUILD_ROOT / "frontend"),
    }
    argv = [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local",
            str(harness.root / "plays" / name), "-e", "@" + str(harness.root / "plays" / "vars.json")]
    if extra:
        argv += ["-e", json.dumps(extra)]
    r = harness.run_as(users.op, argv + list(args), env=env, timeout=300)
    return Run(r)


def host_state(harness, users):
    """What the playbooks may change, as the host has it."""
    vms = harness.run_frontend(users.op, "list", "--json").json
    return {
        "drivers": {s: driver(harness, s) for s in GPUS + [SWITCH]},
        "firmware": {s: {k: firmware(harness, s)[k] for k in ("cc", "ppcie")}
                     for s in GPUS + [SWITCH]},
        "images": sorted(os.listdir(harness.state_dir / "images")),
        "vms": {vm["name"]: (vm["state"], vm["compose_hash"]) for vm in vms},
        "started_at": harness.run_frontend(users.op, "status", "executor", "--json").json.get(
            "StartedAt") if vms else None,
    }


@pytest.fixture(scope="module")
def before(harness, users):
    return host_state(harness, users)


def test_check_mode_reports_changes_and_changes_nothing(harness, users, before):
    assert before["drivers"] == {"0000:19:00.0": "nvidia", "0000:db:00.0": None, SWITCH: None}
    assert IMAGE not in before["images"] and before["vms"] == {}
    run = playbook(harness, users, "site.yml", "--check", "--diff", extra={"probe_all": True})
    assert run.stats["failures"] == 0, run.failures()
    assert run.stats["changed"] == 4, run.result
    lsgpu = harness.run_frontend(users.op, "lsgpu", "--json").json["devices"]
    every = run["gpus all"]
    assert sorted(every["bound"]) == sorted(d["slot"] for d in lsgpu) and len(lsgpu) == 12
    assert sorted(s["slot"] for s in every["switched"]) == sorted(
        d["slot"] for d in lsgpu if d["kind"] == "gpu")
    assert all(s == {"slot": s["slot"], "cc": "on", "ppcie": "off"} for s in every["switched"])
    assert sorted(run["gpus"]["bound"]) == sorted(GPUS + [SWITCH])
    assert sorted(s["slot"] for s in run["gpus"]["switched"]) == GPUS
    assert run["image"]["downloaded"] is True
    vm = run["vm"]
    assert vm["redefined"] is True and vm["vm_state"] == "running"
    assert len(vm["compose_hash"]) == 64 and vm["diff"]["before"] == ""
    assert vm["compose_hash"] in vm["diff"]["after"]
    assert host_state(harness, users) == before


def test_apply_binds_switches_downloads_defines_and_runs(harness, users):
    run = playbook(harness, users, "site.yml")
    assert run.stats["failures"] == 0, run.failures()
    assert run.stats["changed"] == 3, run.result
    for slot in GPUS + [SWITCH]:
        assert driver(harness, slot) == "vfio-pci", slot
    for slot in GPUS:
        assert firmware(harness, slot)["cc"] == "on" and firmware(harness, slot)["ppcie"] == "off"
    assert firmware(harness, SWITCH)["ppcie"] == "off"
    images = {i["name"]: i for i in harness.run_frontend(users.op, "images", "--json").json}
    assert images[IMAGE]["state"] == "verified"
    assert run["image"]["image"]["digest"] == images[IMAGE]["digest"]
    status = harness.run_frontend(users.op, "status", "executor", "--json").json
    assert status["State"] == "running"
    recomputed = harness.run_frontend(users.op, "hash", "executor", "--json").json
    assert run["vm"]["compose_hash"] == recomputed["compose_hash"] == status["ComposeHash"]
    facts = run["facts"]["ansible_facts"]["lium_cvm"]
    report = harness.run_frontend(users.op, "check", "--json").json
    assert facts["checks"] == {c["id"]: c["status"] for c in report["checks"]}
    assert facts["ready"] == report["ready"]
    assert [(v["name"], v["state"]) for v in facts["vms"]] == [("executor", "running")]
    gpus = {g["slot"]: g for g in facts["gpus"]}
    assert gpus["0000:19:00.0"]["driver"] == "vfio-pci"
    assert gpus["0000:19:00.0"]["mode"]["cc"] == "on"
    assert facts["versions"]["helper"] == harness.get_info()["version"]
    assert [i["name"] for i in facts["images"]] == sorted([IMAGE, "guest"])


def test_second_run_changes_nothing(harness, users):
    state = host_state(harness, users)
    run = playbook(harness, users, "site.yml")
    assert run.stats["failures"] == 0, run.failures()
    assert run.stats["changed"] == 0, {n: t.get("changed") for n, t in run.tasks.items()}
    assert host_state(harness, users) == state  # the VM was not restarted either


def test_a_changed_compose_redefines_the_vm(harness, users):
    old = host_state(harness, users)
    compose = COMPOSE + "    command: sleep 1\n"
    # state present: the VM stopped for the redefinition runs again, as it did before
    run = playbook(harness, users, "site.yml", "--diff",
                   extra={"vm_compose": compose, "vm_state": "present"})
    assert run.stats["failures"] == 0, run.failures()
    assert run.stats["changed"] == 1, run.result
    vm = run["vm"]
    assert vm["changed"] and vm["redefined"]
    old_hash = old["vms"]["executor"][1]
    assert vm["compose_hash"] != old_hash
    assert old_hash in vm["diff"]["before"] and vm["compose_hash"] in vm["diff"]["after"]
    status = harness.run_frontend(users.op, "status", "executor", "--json").json
    assert status["State"] == "running" and status["ComposeHash"] == vm["compose_hash"]
    assert status["StartedAt"] >= old["started_at"]
    assert harness.run_frontend(users.op, "hash", "executor").rc == 0


def test_bad_input_fails_clearly_and_changes_nothing(harness, users):
    state = host_state(harness, users)
    run = playbook(harness, users, "bad.yml")
    expected = {
        "unknown slot": "0000:ee:00.0: not an NVIDIA GPU or NVSwitch on this host",
        "cc and ppcie together": "CC and Protected PCIe exclude each other",
        "bad sha256": "sha256 must be 64 hex digits",
        "bad vm name": "invalid VM name",
        "bad memory": "CVM_MEMORY",
        "undefined vm": "VM ghost is not defined: give env",
        "env without compose": "needs both the .env values",
    }
    assert set(run.tasks) == set(expected)
    for name, fragment in expected.items():
        task = run[name]
        assert task.get("failed") is True, (name, task)
        assert fragment in task["msg"], (name, task["msg"])
        assert not task.get("changed"), (name, task)
    assert run.stats["ignored"] == len(expected) and run.stats["changed"] == 0
    assert host_state(harness, users) == state


LOAD_TASK = "Load the vfio modules now and at every boot (through the helper)"


def test_role_host_persists_the_vfio_modules_once(harness, users):
    """The role's vfio part (tasks_from: vfio) as the operator: the helper persists the modules
    (they are loaded on the fake host, so nothing reaches the real kernel); a second run asks
    nothing."""
    persisted = harness.modules_load_dir / "lium-cvm.conf"
    assert not persisted.exists()
    mark = harness.audit_mark()
    run = playbook(harness, users, "role-vfio.yml")
    assert run.stats["failures"] == 0, run.failures()
    assert run[LOAD_TASK]["changed"] is True
    listed = [ln for ln in persisted.read_text().splitlines() if ln and not ln.startswith("#")]
    assert listed == ["vfio_pci", "vfio_iommu_type1"]
    [rec] = [r for r in harness.audit_records(since=mark) if r.method.endswith("LoadModules")]
    assert rec.ok and rec.uid == users.op.uid
    again = playbook(harness, users, "role-vfio.yml")
    assert again.stats["failures"] == 0 and again.stats["changed"] == 0, again.failures()
    assert again[LOAD_TASK].get("skipped") is True


def test_stopped_then_absent(harness, users):
    run = playbook(harness, users, "teardown.yml")
    assert run.stats["failures"] == 0, run.failures()
    assert run["stopped"]["changed"] and run["stopped"]["vm_state"] == "stopped"
    assert run["absent"]["changed"] and run["absent"]["vm_state"] == "absent"
    assert harness.run_frontend(users.op, "list", "--json").json == []
    assert not (harness.state_dir / "instances" / "executor").exists()
    again = playbook(harness, users, "teardown.yml", extra={"absent_only": True})
    assert again.stats["changed"] == 0 and again.stats["failures"] == 0, again.result
