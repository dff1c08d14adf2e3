# SPDX-License-Identifier: MIT
"""The key provider through the real bus and polkitd: `lium-cvm key-provider
status|start|stop|logs` run by the helper with tests/fakes/fake-docker as [tools] docker.

The fake keeps its state in tools/fake-docker.json (images that "exist", containers `up`
created, their logs, and every call with its argv, environment and working directory), so a
test can both set the scene and check exactly how docker was run. The port check talks to a
fake key provider speaking the real wire format.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

import lcvm_harness as lh

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "fakes"))
import fake_key_provider as fkp  # noqa: E402

NOT_AUTHORIZED = lh.ERROR_PREFIX + "NotAuthorized"
AESMD_ID = "sha256:" + "a" * 64
KP_ID = "sha256:" + "b" * 64
REBUILT_KP_ID = "sha256:" + "c" * 64
EXAMPLE_COMPOSE = lh.SOURCE_ROOT / "data" / "key-provider" / "docker-compose.yml"
MRENCLAVE = "8a5c0c8a3b61d3f0b5d3e1a9f5c7e2b4d6a8c0e2f4a6b8d0c2e4f6a8b0d2e4f6"
REBUILT_MRENCLAVE = "f" * 64
# What the provider prints as it starts: its entrypoint shows the enclave's SIGSTRUCT with
# gramine-sgx-sigstruct-view (Lium #1318: entrypoint-key-provider.sh line 24), then Gramine.
PRODUCTION_LOGS = {"aesmd": ["aesm_service[10]: The server sock is 0x5581"],
                   "gramine-sealing-key-provider": ["Attributes:",
                                                    "    mr_signer: " + "1" * 64,
                                                    "    mr_enclave: " + MRENCLAVE,
                                                    "    isv_prod_id: 0",
                                                    "    isv_svn: 0",
                                                    "    debug_enclave: False",
                                                    "Gramine is starting. Parsing TOML manifest",
                                                    "Enclave started in PRODUCTION mode",
                                                    "listening on 0.0.0.0:3443"]}

PROVIDER = fkp.FakeKeyProvider("normal").start()
# The data-disk inventory of `build` sees only this harness's state dir (no Lium registry, no
# sweep of the real /home).
HARNESS_CONFIG = {"key-provider": {"address": PROVIDER.address},
                  "inventory": {"lium_registry": "", "sweep_roots": "/nonexistent-lcvm-sweep"}}
# Lium's key-provider/docker-compose.build.yaml, reduced: builds what docker-compose.yml runs.
BUILD_COMPOSE = """services:
  aesmd:
    image: lium-aesmd:local
    build:
      context: .
      dockerfile: Dockerfile.aesmd
  gramine-sealing-key-provider:
    image: lium-key-provider:local
    build:
      context: .
      dockerfile: Dockerfile.key-provider
"""
BUILT_MRENCLAVE = "d" * 64


def prepare_harness(h):
    shutil.copy(lh.SOURCE_ROOT / "tests" / "fakes" / "fake-docker", h.tools_dir / "docker")
    (h.tools_dir / "docker").chmod(0o755)
    shutil.copy(EXAMPLE_COMPOSE, h.root / "key-provider" / "docker-compose.yml")


class Docker:
    """The fake docker's state file."""

    def __init__(self, h):
        self.path = h.tools_dir / "fake-docker.json"

    def reset(self, images=None, logs=None):
        self.path.write_text(json.dumps({
            "images": images or {"lium-aesmd:local": AESMD_ID, "lium-key-provider:local": KP_ID},
            "containers": {}, "logs": logs if logs is not None else PRODUCTION_LOGS,
            "calls": []}))

    @property
    def state(self):
        return json.loads(self.path.read_text())

    def update(self, **kw):
        s = self.state
        s.update(kw)
        self.path.write_text(json.dumps(s))

    @property
    def calls(self):
        return [c["argv"] for c in self.state["calls"]]

    def compose_calls(self, sub):
        return [a for a in self.calls if a[:1] == ["compose"] and sub in a[5:6]]


@pytest.fixture
def docker(harness):
    d = Docker(harness)
    d.reset()
    pin = harness.state_dir / "key-provider.pin"
    pin.unlink(missing_ok=True)
    (harness.state_dir / "key-provider.mrenclave").unlink(missing_ok=True)
    shutil.rmtree(harness.state_dir / "instances" / "vm1", ignore_errors=True)
    compose_dir = harness.root / "key-provider"
    for old in compose_dir.iterdir():
        old.unlink()
    shutil.copy(EXAMPLE_COMPOSE, compose_dir / "docker-compose.yml")
    os.chown(compose_dir, 0, 0)
    compose_dir.chmod(0o755)
    yield d


def start(harness, users, *extra):
    return harness.run_frontend(users.op, "key-provider", "start", *extra)


def status(harness, user):
    return harness.run_frontend(user, "key-provider", "status", "--json")


# ---- authorization ------------------------------------------------------------------------

def test_grouped_user_starts_the_key_provider_and_it_is_audited(harness, users, docker):
    mark = harness.audit_mark()
    r = start(harness, users)
    assert r.rc == 0, r
    assert set(docker.state["containers"]) == {"dstack-aesmd", "dstack-key-provider"}
    recs = [rec for rec in harness.audit_records(since=mark)
            if rec.method.endswith("StartKeyProvider")]
    assert recs and all(rec.uid == users.op.uid for rec in recs)
    assert recs[0].action == "io.lium.cvm1.manage-key-provider"


def test_ungrouped_user_cannot_start_stop_or_inspect_and_docker_never_runs(harness, users,
                                                                          docker):
    mark = harness.audit_mark()
    for args in (["start"], ["stop"], ["status"], ["logs"]):
        r = harness.run_frontend(users.out, "key-provider", *args, "--json")
        assert r.rc == 1 and r.error_name == NOT_AUTHORIZED, r
    assert docker.calls == []
    recs = harness.audit_records(since=mark)
    assert len(recs) == 4 and all(rec.refused and rec.uid == users.out.uid for rec in recs)


def test_foreign_client_is_refused_too(harness, users, docker):
    r = harness.gdbus_call(users.out, "StartKeyProvider", "uint64 0")
    assert r.rc != 0 and r.error_name == NOT_AUTHORIZED
    assert docker.calls == []


def test_unknown_flags_are_refused(harness, users, docker):
    r = harness.gdbus_call(users.op, "StartKeyProvider", "uint64 1")
    assert r.error_name == lh.ERROR_PREFIX + "InvalidArgument"
    assert docker.calls == []


# ---- how docker runs ----------------------------------------------------------------------

def test_docker_runs_with_a_clean_environment_explicit_file_and_no_build_or_pull(
        harness, users, docker):
    assert start(harness, users).rc == 0
    compose_dir = harness.root / "key-provider"
    calls = docker.state["calls"]
    assert calls
    for call in calls:
        assert set(call["env"]) <= {"PATH", "HOME", "LANG"}, call["env"]
        assert call["cwd"] == str(compose_dir)
        if call["argv"][0] == "compose":
            assert call["argv"][1:5] == ["--project-directory", str(compose_dir), "-f",
                                         str(compose_dir / "docker-compose.yml")]
    [up] = docker.compose_calls("up")
    assert up[5:] == ["up", "-d", "--no-build", "--pull", "never"]


def test_first_start_pins_the_image_ids(harness, users, docker):
    assert start(harness, users).rc == 0
    pin = json.loads((harness.state_dir / "key-provider.pin").read_text())
    assert pin["images"] == {"lium-aesmd:local": AESMD_ID, "lium-key-provider:local": KP_ID}
    st = (harness.state_dir / "key-provider.pin").stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o644)


def test_a_missing_image_is_refused_without_building_or_pulling(harness, users, docker):
    docker.reset(images={"lium-aesmd:local": AESMD_ID})
    r = start(harness, users, "--json")
    assert r.rc == 1
    assert "lium-key-provider:local is not on this host" in r.stderr
    assert "never builds or pulls" in r.stderr
    assert docker.compose_calls("up") == []


# ---- the pin --------------------------------------------------------------------------------

def make_data_disk(harness, name="vm1"):
    d = harness.state_dir / "instances" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "hda.img").write_bytes(b"\0" * 16)


def test_a_rebuilt_image_is_refused_while_a_data_disk_exists(harness, users, docker):
    assert start(harness, users).rc == 0
    make_data_disk(harness)
    docker.update(images={"lium-aesmd:local": AESMD_ID, "lium-key-provider:local": REBUILT_KP_ID})
    ups = len(docker.compose_calls("up"))
    r = start(harness, users)
    assert r.rc == 1
    assert "MRENCLAVE" in r.stderr and "vm1" in r.stderr and REBUILT_KP_ID in r.stderr
    assert len(docker.compose_calls("up")) == ups
    pin = json.loads((harness.state_dir / "key-provider.pin").read_text())
    assert pin["images"]["lium-key-provider:local"] == KP_ID


def test_a_rebuilt_image_is_pinned_anew_when_no_data_disk_exists(harness, users, docker):
    assert start(harness, users).rc == 0
    docker.update(images={"lium-aesmd:local": AESMD_ID, "lium-key-provider:local": REBUILT_KP_ID})
    r = start(harness, users)
    assert r.rc == 0, r
    assert "no VM has a data disk" in r.stdout + r.stderr
    pin = json.loads((harness.state_dir / "key-provider.pin").read_text())
    assert pin["images"]["lium-key-provider:local"] == REBUILT_KP_ID


def test_the_same_images_start_again_with_a_data_disk(harness, users, docker):
    assert start(harness, users).rc == 0
    make_data_disk(harness)
    assert start(harness, users).rc == 0


# ---- what is trusted ----------------------------------------------------------------------

def test_a_compose_dir_owned_by_an_operator_is_refused(harness, users, docker):
    compose_dir = harness.root / "key-provider"
    os.chown(compose_dir, users.op.uid, users.op.gid)
    r = start(harness, users)
    assert r.rc == 1
    assert f"{compose_dir} is owned by uid {users.op.uid}, not root" in r.stderr
    assert "[key-provider] compose_dir" in r.stderr
    assert docker.calls == []


def test_a_group_writable_compose_dir_is_refused(harness, users, docker):
    (harness.root / "key-provider").chmod(0o775)
    r = start(harness, users)
    assert r.rc == 1 and "writable by others than root" in r.stderr
    assert docker.calls == []


def test_a_compose_file_owned_by_an_operator_is_refused(harness, users, docker):
    os.chown(harness.root / "key-provider" / "docker-compose.yml", users.op.uid, users.op.gid)
    r = start(harness, users)
    assert r.rc == 1 and "is owned by uid" in r.stderr
    assert docker.calls == []


def test_an_untrusted_docker_is_refused(harness, users, docker):
    tool = harness.tools_dir / "docker"
    tool.chmod(0o777)
    try:
        r = start(harness, users)
    finally:
        tool.chmod(0o755)
    assert r.rc == 1 and "[tools] docker" in r.stderr and "writable" in r.stderr
    assert docker.calls == []


def test_a_compose_file_with_build_is_refused(harness, users, docker):
    path = harness.root / "key-provider" / "docker-compose.yml"
    text = path.read_text().replace("    image: lium-key-provider:local\n",
                                    "    image: lium-key-provider:local\n    build: .\n")
    path.write_text(text)
    r = start(harness, users)
    assert r.rc == 1 and "'build:'" in r.stderr and "MRENCLAVE" in r.stderr
    assert docker.calls == []


@pytest.mark.parametrize("name", ["docker-compose.override.yml", "compose.override.yaml"])
def test_an_override_file_is_refused(harness, users, docker, name):
    (harness.root / "key-provider" / name).write_text("services: {}\n")
    r = start(harness, users)
    assert r.rc == 1 and "override" in r.stderr and name in r.stderr
    assert docker.calls == []


def test_an_operator_owned_env_file_is_refused(harness, users, docker):
    env = harness.root / "key-provider" / ".env"
    env.write_text("KEY_PROVIDER_PORT=3443\n")
    os.chown(env, users.op.uid, users.op.gid)
    r = start(harness, users)
    assert r.rc == 1 and ".env" in r.stderr
    assert docker.calls == []


# ---- status, logs, stop -------------------------------------------------------------------

def test_status_is_ready_when_running_pinned_answering_and_in_production_mode(
        harness, users, docker):
    assert start(harness, users).rc == 0
    r = status(harness, users.op)
    assert r.rc == 0, r
    s = r.json
    assert s["ready"] and s["running"] and s["port_answering"] and s["production_mode"]
    assert s["pin_matches"] and s["problems"] == [] and s["enclave_errors"] == []
    assert s["address"] == PROVIDER.address
    by_name = {c["name"]: c for c in s["containers"]}
    assert by_name["dstack-key-provider"]["image_id"] == KP_ID
    assert by_name["dstack-key-provider"]["restart_count"] == 0
    assert by_name["dstack-aesmd"]["service"] == "aesmd"


# ---- the MRENCLAVE ----------------------------------------------------------------------

def test_start_and_status_show_and_record_the_mrenclave_the_provider_printed(harness, users,
                                                                             docker):
    r = start(harness, users)
    assert r.rc == 0, r
    assert "MRENCLAVE is " + MRENCLAVE in r.stdout + r.stderr
    recorded = harness.state_dir / "key-provider.mrenclave"
    assert recorded.read_text() == MRENCLAVE + "\n"
    assert recorded.stat().st_uid == 0 and (recorded.stat().st_mode & 0o777) == 0o644
    r = status(harness, users.op)
    assert r.json["mrenclave"] == MRENCLAVE
    r = harness.run_frontend(users.op, "key-provider", "status")
    assert "MRENCLAVE:       " + MRENCLAVE in r.stdout


def test_status_keeps_the_recorded_mrenclave_when_it_scrolled_out_of_the_logs(harness, users,
                                                                              docker):
    assert start(harness, users).rc == 0
    docker.update(logs={"gramine-sealing-key-provider": ["sealing key request"] * 3})
    assert status(harness, users.op).json["mrenclave"] == MRENCLAVE


def test_a_new_mrenclave_in_the_logs_replaces_the_record(harness, users, docker):
    assert start(harness, users).rc == 0
    docker.update(logs={"gramine-sealing-key-provider": ["mr_enclave: " + REBUILT_MRENCLAVE]})
    assert status(harness, users.op).json["mrenclave"] == REBUILT_MRENCLAVE
    assert (harness.state_dir / "key-provider.mrenclave").read_text() == REBUILT_MRENCLAVE + "\n"


def test_status_names_data_disks_made_under_another_mrenclave(harness, users, docker):
    assert start(harness, users).rc == 0
    make_data_disk(harness)
    (harness.state_dir / "instances" / "vm1" / "key-provider.mrenclave").write_text(
        REBUILT_MRENCLAVE + "\n")
    r = status(harness, users.op)
    assert r.rc == 1
    assert r.json["data_disks"] == ["vm1"]
    text = harness.run_frontend(users.op, "key-provider", "status")
    assert "VMs with a data disk" in text.stdout and "vm1" in text.stdout
    assert r.json["mrenclave_mismatch"] == ["vm1 (%s)" % REBUILT_MRENCLAVE]
    assert any("will not open with this key provider: vm1" in p for p in r.json["problems"])
    (harness.state_dir / "instances" / "vm1" / "key-provider.mrenclave").write_text(
        MRENCLAVE + "\n")
    r = status(harness, users.op)
    assert r.json["mrenclave_mismatch"] == [] and r.rc == 0, r.json["problems"]


def test_ungrouped_user_learns_no_mrenclave_and_nothing_is_recorded(harness, users, docker):
    # A running provider whose logs print the MRENCLAVE: the operator's status would record it.
    assert start(harness, users).rc == 0
    recorded = harness.state_dir / "key-provider.mrenclave"
    if recorded.exists():
        recorded.unlink()
    mark = harness.audit_mark()
    r = status(harness, users.out)
    assert r.rc == 1 and r.error_name == NOT_AUTHORIZED
    assert MRENCLAVE not in r.stdout + r.stderr
    assert not recorded.exists()
    [rec] = harness.audit_records(since=mark)
    assert rec.refused and rec.uid == users.out.uid
    # The twin: the operator's status does record it.
    assert status(harness, users.op).json["mrenclave"] == MRENCLAVE
    assert recorded.read_text().split()[0] == MRENCLAVE


# ---- key-provider build --------------------------------------------------------------------

def write_build_file(harness, text=BUILD_COMPOSE):
    path = harness.root / "key-provider" / "docker-compose.build.yaml"
    path.write_text(text)
    os.chown(path, 0, 0)
    path.chmod(0o644)
    return path


def build(harness, user, *extra):
    return harness.run_frontend(user, "key-provider", "build", *extra)


def test_operator_builds_through_the_helper_and_the_new_images_are_pinned(harness, users,
                                                                          docker):
    assert start(harness, users).rc == 0  # pins the images that exist now
    build_file = write_build_file(harness)
    docker.update(built_mrenclave=BUILT_MRENCLAVE)
    mark = harness.audit_mark()
    r = build(harness, users.op)
    assert r.rc == 0, r
    assert "MRENCLAVE " + BUILT_MRENCLAVE in r.stdout + r.stderr
    # The build's own output is the job's progress.
    assert "#1 [aesmd internal] load build definition from Dockerfile" in r.stdout + r.stderr
    [call] = [c for c in docker.state["calls"] if "build" in c["argv"][5:6]]
    assert call["argv"][1:] == ["--project-directory", str(harness.root / "key-provider"), "-f",
                                str(build_file), "build", "--progress", "plain"]
    assert set(call["env"]) <= {"PATH", "HOME", "LANG"}, call["env"]
    images = docker.state["images"]
    assert images["lium-key-provider:local"] != KP_ID
    pin = json.loads((harness.state_dir / "key-provider.pin").read_text())
    assert pin["images"] == images
    [rec] = [rec for rec in harness.audit_records(since=mark)
             if rec.method.endswith("BuildKeyProvider")][:1]
    assert rec.uid == users.op.uid and rec.action == "io.lium.cvm1.manage-key-provider"
    # The runtime file stays build-free: `up` still never builds.
    assert start(harness, users).rc == 0
    assert docker.compose_calls("up")[-1][5:] == ["up", "-d", "--no-build", "--pull", "never"]


def test_ungrouped_user_cannot_build_and_nothing_is_built(harness, users, docker):
    write_build_file(harness)
    mark = harness.audit_mark()
    r = build(harness, users.out, "--json")
    assert r.rc == 1 and r.error_name == NOT_AUTHORIZED, r
    r = harness.gdbus_call(users.out, "BuildKeyProvider", "uint64 0")
    assert r.rc != 0 and NOT_AUTHORIZED in r.stderr
    assert docker.calls == []
    assert not (harness.state_dir / "key-provider.pin").exists()
    recs = harness.audit_records(since=mark)
    assert len(recs) == 2 and all(rec.refused and rec.uid == users.out.uid for rec in recs)


def test_build_is_refused_while_a_data_disk_exists(harness, users, docker):
    assert start(harness, users).rc == 0
    write_build_file(harness)
    make_data_disk(harness)
    r = build(harness, users.op)
    assert r.rc == 1
    assert "data disks exist" in r.stderr and "instances/vm1/hda.img" in r.stderr
    assert "MRENCLAVE" in r.stderr and "lium-cvm inventory" in r.stderr
    assert docker.compose_calls("build") == []
    pin = json.loads((harness.state_dir / "key-provider.pin").read_text())
    assert pin["images"]["lium-key-provider:local"] == KP_ID


@pytest.mark.parametrize("bad,why", [
    ("      context: ../elsewhere\n", "outside the compose directory"),
    ("      context: /srv/src\n", "outside the compose directory"),
    ("      context: https://example.com/kp.git\n", "outside the compose directory"),
    ("      additional_contexts:\n        src: /srv\n", "outside the directory"),
    ("include:\n  - other.yaml\n", "pulls in another compose file"),
])
def test_a_build_file_reaching_outside_is_refused(harness, users, docker, bad, why):
    write_build_file(harness, BUILD_COMPOSE + bad if bad.startswith("include") else
                     BUILD_COMPOSE.replace("      context: .\n", bad, 1))
    r = build(harness, users.op)
    assert r.rc == 1 and why in r.stderr, r
    assert docker.compose_calls("build") == []


def test_a_build_file_building_other_images_is_refused(harness, users, docker):
    write_build_file(harness, BUILD_COMPOSE.replace("lium-aesmd:local", "other-aesmd:local"))
    r = build(harness, users.op)
    assert r.rc == 1 and "must name the same images" in r.stderr, r
    assert docker.compose_calls("build") == []


def test_an_operator_owned_build_file_is_refused(harness, users, docker):
    path = write_build_file(harness)
    os.chown(path, users.op.uid, users.op.gid)
    r = build(harness, users.op)
    assert r.rc == 1 and "docker-compose.build.yaml" in r.stderr, r
    assert docker.compose_calls("build") == []


def test_a_failed_build_names_its_last_lines_and_keeps_the_pin(harness, users, docker):
    assert start(harness, users).rc == 0
    write_build_file(harness)
    docker.update(build_fails=True)
    r = build(harness, users.op)
    assert r.rc == 1
    assert "docker compose build failed" in r.stderr and "failed to solve" in r.stderr
    pin = json.loads((harness.state_dir / "key-provider.pin").read_text())
    assert pin["images"]["lium-key-provider:local"] == KP_ID


def test_build_without_a_build_file_says_what_to_install(harness, users, docker):
    r = build(harness, users.op)
    assert r.rc == 1 and "holds no docker-compose.build.yaml" in r.stderr, r


def test_status_reports_aesm_error_44_and_restarts(harness, users, docker):
    assert start(harness, users).rc == 0
    state = docker.state
    state["containers"]["dstack-key-provider"]["restart_count"] = 7
    state["logs"] = {"gramine-sealing-key-provider": [
        "[error] AESM service returned error 44",
        "load_enclave failed: Operation not permitted (EPERM)"]}
    docker.path.write_text(json.dumps(state))
    r = status(harness, users.op)
    assert r.rc == 1
    s = r.json
    assert not s["ready"] and not s["production_mode"]
    assert len(s["enclave_errors"]) == 2
    assert any("error 44" in p for p in s["problems"])
    assert {c["name"]: c["restart_count"] for c in s["containers"]}["dstack-key-provider"] == 7


def test_status_reads_the_array_output_of_older_compose(harness, users, docker):
    assert start(harness, users).rc == 0
    docker.update(ps_array=True)
    s = status(harness, users.op).json
    assert s["ready"], s
    assert sorted(c["name"] for c in s["containers"]) == ["dstack-aesmd", "dstack-key-provider"]


def test_status_text_names_the_problems(harness, users, docker):
    r = harness.run_frontend(users.op, "key-provider", "status")
    assert r.rc == 1
    assert "Key provider: NOT READY" in r.stdout
    assert "not all containers are running" in r.stdout


def test_check_deep_asks_the_helper_for_the_key_provider_and_nftables(harness, users, docker):
    def deep():
        r = harness.run_frontend(users.op, "check", "--deep", "--json")
        return {c["id"]: c for c in r.json["checks"]}

    before = deep()["keyprovider.status"]
    assert before["status"] == "fail" and "not all containers are running" in before["observed"]
    assert "lium-cvm key-provider start" in before["remedy"]
    assert start(harness, users).rc == 0
    after = deep()
    assert after["keyprovider.status"]["status"] == "ok", after["keyprovider.status"]
    # The helper (root) checked the guard's commands against the kernel, committing nothing.
    assert after["nftables.guard"]["status"] == "ok", after["nftables.guard"]


def test_status_sees_a_silent_port(harness, users, docker):
    assert start(harness, users).rc == 0
    harness.restart_helper({"key-provider": {"address": "127.0.0.1:1"}})
    try:
        s = status(harness, users.op).json
    finally:
        harness.restart_helper({"key-provider": {"address": PROVIDER.address}})
    assert not s["port_answering"] and not s["ready"]


def test_logs_shows_the_last_lines(harness, users, docker):
    assert start(harness, users).rc == 0
    r = harness.run_frontend(users.op, "key-provider", "logs", "-n", "1")
    assert r.rc == 0, r
    assert "listening on 0.0.0.0:3443" in r.stdout
    assert "PRODUCTION mode" not in r.stdout
    call = docker.compose_calls("logs")[-1]  # start read them too (for the MRENCLAVE)
    assert call[5:] == ["logs", "--no-color", "--tail", "1"]


def test_stop_runs_compose_down(harness, users, docker):
    assert start(harness, users).rc == 0
    r = harness.run_frontend(users.op, "key-provider", "stop")
    assert r.rc == 0, r
    assert docker.state["containers"] == {}
    assert len(docker.compose_calls("down")) == 1
    assert status(harness, users.op).json["running"] is False
