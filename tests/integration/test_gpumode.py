# SPDX-License-Identifier: MIT
"""GPU CC/PPCIe modes through the real bus and polkitd: QueryGpuMode (`lsgpu --query`),
SetGpuMode (`gpu cc`) and ResetGpu (`gpu reset`) on the fake HGX host of tests/fakes/fakepci.py,
its kernel simulator acting on sysfs writes (bind, reset, remove, rescan), and the fake
gpu-admin-tools of tests/fakes/fake-gpu-admin-tools installed root-owned, as an operator would.

proc_root is the real /proc, so a real process holding a fake /dev/vfio node open is seen by
the helper's held-open check. Each test gets a freshly built host and a fresh fake tool.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import lcvm_harness as lh

FAKES = lh.SOURCE_ROOT / "tests" / "fakes"
sys.path.insert(0, str(FAKES))
import fakepci  # noqa: E402

TOOL_TIMEOUT = 4
HARNESS_CONFIG = {
    "paths": {"proc_root": "/proc"},
    "helper": {"bind_timeout": 5},
    "tools": {"gpu_admin_tools_timeout": TOOL_TIMEOUT},
}
ERR = lh.ERROR_PREFIX
GPU = "0000:19:00.0"  # on nvidia until bound
FREE_GPU = "0000:db:00.0"  # no driver
SWITCH = "0000:07:00.0"  # no driver
PCI = "sys/bus/pci/devices"
CONFIGURE_GPU = "io.lium.cvm1.configure-gpu"
INSPECT = "io.lium.cvm1.inspect"


def prepare_harness(h):
    h.extra_config["tools"]["gpu_admin_tools"] = str(tool_path(h))


def tool_dir(h):
    return h.tools_dir / "gpu-admin-tools"


def tool_path(h):
    return tool_dir(h) / "nvidia_gpu_tools.py"


class FakeHost:
    """The fake host under the harness root, its kernel simulator and the installed fake tool."""

    def __init__(self, harness):
        self.h = harness
        self.root = str(harness.root)
        self.kernel = None

    def build(self, **variant):
        self.stop()
        for top in (self.h.sysfs, self.h.dev, self.h.proc, self.h.runtime_dir / "vfio",
                    self.h.root / "removed", self.h.root / fakepci.KERNEL_LOG):
            subprocess.run(["rm", "-rf", str(top)], check=True)
        for top in (self.h.sysfs, self.h.dev, self.h.proc):
            top.mkdir()
        modes = self.h.state_dir / "gpu-modes.json"
        if modes.exists():
            modes.unlink()
        fakepci.build(self.root, **variant)
        ready = os.path.join(self.root, "kernel.ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.kernel = subprocess.Popen(
            [sys.executable, fakepci.__file__, "simulate", self.root, "--delay", "0.02",
             "--ready-file", ready])
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            assert time.monotonic() < deadline, "the kernel simulator did not start"
            time.sleep(0.01)
        self.install_tool()
        return self

    def install_tool(self):
        d = tool_dir(self.h)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(mode=0o755)
        shutil.copy(FAKES / "fake-gpu-admin-tools", tool_path(self.h))
        tool_path(self.h).chmod(0o755)
        config = d / "fake-gpu-admin-tools.json"
        config.write_text(json.dumps({"root": self.root, "fakes": str(FAKES)}))
        config.chmod(0o644)

    def stop(self):
        if self.kernel is not None:
            self.kernel.terminate()
            self.kernel.wait()
            self.kernel = None

    def devdir(self, slot):
        return os.path.realpath(os.path.join(self.root, PCI, slot))

    def fw(self, slot):
        return fakepci.fw_load(self.devdir(slot))

    def set_fw(self, slot, **values):
        st = self.fw(slot)
        st.update(values)
        fakepci.fw_save(self.devdir(slot), st)

    def driver(self, slot):
        link = os.path.join(self.root, PCI, slot, "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def override(self, slot):
        with open(os.path.join(self.root, PCI, slot, "driver_override")) as f:
            return f.read().strip()

    def group(self, slot):
        return os.path.basename(os.readlink(os.path.join(self.root, PCI, slot, "iommu_group")))

    def cached(self):
        path = self.h.state_dir / "gpu-modes.json"
        return json.loads(path.read_text())["devices"] if path.exists() else {}


@pytest.fixture
def host(harness):
    fake = FakeHost(harness)
    fake.build()
    yield fake
    fake.stop()


def cc(harness, user, *args):
    return harness.run_frontend(user, "gpu", "cc", *args)


def bind(harness, user, slot):
    r = harness.run_frontend(user, "gpu", "bind", slot)
    assert r.rc == 0, r
    return r


def tool_processes(harness):
    out = subprocess.run(["pgrep", "-f", str(tool_path(harness))], capture_output=True, text=True)
    return out.stdout.split()


# ---- who may -----------------------------------------------------------------------------------


def test_operators_may_query_a_gpu_and_the_answer_is_cached(harness, users, host):
    mark = harness.audit_mark()
    r = harness.run_frontend(users.op, "lsgpu", "--query", "19:00.0", "--json")
    assert r.rc == 0, r
    [d] = r.json["devices"]
    assert d["mode"]["cc"] == "off" and d["mode"]["ppcie"] == "off"
    assert d["mode"]["broken"] is False and d["mode"]["age_s"] < 60
    assert host.cached()[GPU]["cc"] == "off"
    [rec] = harness.audit_records(since=mark)
    assert rec.method == "io.lium.Cvm1.Host.QueryGpuMode" and rec.action == INSPECT
    assert rec.ok and rec.uid == users.op.uid
    reply = harness.gdbus_call(users.op, "QueryGpuMode", f"'{GPU}'")
    assert reply.rc == 0 and "'cc': <'off'>" in reply.stdout and "'queried_at': <int64" in \
        reply.stdout, reply


@pytest.mark.parametrize("who, error", [("out", "NotAuthorized"),
                                        ("ask", "InteractiveAuthorizationRequired")])
def test_others_may_not_query_set_or_reset(harness, users, host, who, error):
    user = getattr(users, who)
    before = host.fw(GPU)
    mark = harness.audit_mark()
    calls = [("QueryGpuMode", f"'{GPU}'"),
             ("SetGpuMode", f"'{GPU}'", "'on'", "'off'", "uint64 0"),
             ("ResetGpu", f"'{GPU}'", "uint64 0"),
             ("ResetGpu", f"'{GPU}'", "uint64 1")]
    log = fakepci.kernel_log(host.root)
    for method, *args in calls:
        r = harness.gdbus_call(user, method, *args)
        assert r.rc != 0 and r.error_name == ERR + error, r
    r = cc(harness, user, "19:00.0", "--mode", "on", "--json")
    assert r.rc == 1 and r.error_name == ERR + error, r
    r = harness.run_frontend(user, "gpu", "reset", "19:00.0", "--bus", "--json")
    assert r.rc == 1 and r.error_name == ERR + error, r
    assert host.fw(GPU) == before and host.cached() == {}
    assert fakepci.kernel_log(host.root) == log
    records = harness.audit_records(since=mark)
    assert len(records) == 6 and all(rec.refused and rec.uid == user.uid for rec in records)
    assert [rec.action for rec in records] == [INSPECT, CONFIGURE_GPU, CONFIGURE_GPU,
                                              CONFIGURE_GPU, CONFIGURE_GPU, CONFIGURE_GPU]


# ---- the flip ------------------------------------------------------------------------------------


def test_flip_of_a_bound_gpu_ends_bound_and_in_cc_mode(harness, users, host):
    bind(harness, users.op, GPU)
    mark = harness.audit_mark()
    r = cc(harness, users.op, "19:00.0", "--mode", "on")
    assert r.rc == 0, r
    assert r.stdout == f"{GPU}  gpu      cc on          ppcie off\n"
    for step in (f"taking {GPU} off vfio-pci and clearing driver_override",
                 f"PPCIe off on {GPU}: gpu-admin-tools --gpu-bdf={GPU} --set-ppcie-mode=off "
                 "--reset-after-ppcie-mode-switch",
                 f"CC on on {GPU}: gpu-admin-tools --gpu-bdf={GPU} --set-cc-mode=on "
                 "--reset-after-cc-mode-switch",
                 f"binding {GPU} to vfio-pci again"):
        assert step in r.stderr, r
    assert host.driver(GPU) == "vfio-pci" and host.override(GPU) == "vfio-pci"
    fw = host.fw(GPU)
    assert (fw["cc"], fw["ppcie"], fw["resets"]) == ("on", "off", 2)
    assert host.cached()[GPU]["cc"] == "on"

    records = harness.audit_records(since=mark)
    assert all(rec.method == "io.lium.Cvm1.Host.SetGpuMode" for rec in records)
    steps = [rec.result for rec in records if rec.result.startswith("step: ")]
    assert len(steps) == 4, records
    assert records[0].result.startswith("started: ") and records[-1].result.startswith("ok: ")

    listed = harness.run_frontend(users.op, "lsgpu")
    assert listed.rc == 0
    [row] = [line for line in listed.stdout.splitlines() if line.startswith(GPU)]
    assert " on/off now " in row, listed
    # the record of what the GPU had before its bind survived the flip
    r = harness.run_frontend(users.op, "gpu", "unbind", GPU)
    assert r.rc == 0, r
    assert host.driver(GPU) == "nvidia"


def test_a_gpu_on_another_driver_is_refused(harness, users, host):
    r = cc(harness, users.op, GPU, "--mode", "on")
    assert r.rc == 1, r
    assert f"{GPU} is bound to nvidia" in r.stderr and f"lium-cvm gpu bind {GPU}" in r.stderr
    assert host.fw(GPU)["resets"] == 0 and host.driver(GPU) == "nvidia"


def test_a_gpu_without_driver_stays_without_one(harness, users, host):
    r = cc(harness, users.op, FREE_GPU, "--mode", "devtools")
    assert r.rc == 0, r
    assert "vfio-pci" not in r.stderr
    assert host.driver(FREE_GPU) is None and host.fw(FREE_GPU)["cc"] == "devtools"


def test_the_cache_survives_a_helper_restart(harness, users, host):
    assert cc(harness, users.op, FREE_GPU, "--mode", "on").rc == 0
    harness.restart_helper()
    r = harness.run_frontend(users.op, "lsgpu", "--query", "3b:00.0")
    assert r.rc == 0, r
    cached = host.cached()
    assert cached[FREE_GPU]["cc"] == "on" and cached["0000:3b:00.0"]["cc"] == "off"


def test_nvswitch_gets_ppcie_only(harness, users, host):
    r = cc(harness, users.op, "07:00.0", "--mode", "on", "--json")
    assert r.rc == 0, r
    assert f"PPCIe off on {SWITCH}" in r.stderr and "set-cc-mode" not in r.stderr
    [d] = r.json["devices"]
    assert (d["mode"]["cc"], d["mode"]["ppcie"]) == ("unsupported", "off")
    assert host.fw(SWITCH)["resets"] == 1
    bad = harness.gdbus_call(users.op, "SetGpuMode", f"'{SWITCH}'", "'on'", "''", "uint64 0")
    assert bad.rc != 0 and bad.error_name == ERR + "InvalidArgument", bad
    assert "it has no CC mode, only PPCIe" in bad.stderr


def test_board_into_protected_pcie_mode(harness, users, host):
    host.build(nic_sibling_unbound=True)
    bind(harness, users.op, "all")
    r = cc(harness, users.op, "all", "--mode", "off", "--ppcie", "on", "--json")
    assert r.rc == 0, r
    modes = {d["slot"]: d["mode"] for d in r.json["devices"]}
    assert len(modes) == 12 and all(m["ppcie"] == "on" for m in modes.values())
    assert all(modes[s]["cc"] == "off" for s in modes if s not in
               ("0000:05:00.0", "0000:06:00.0", "0000:07:00.0", "0000:08:00.0"))
    assert list(modes)[:4] == ["0000:05:00.0", "0000:06:00.0", "0000:07:00.0", "0000:08:00.0"]
    listed = harness.run_frontend(users.op, "lsgpu", "--json").json["devices"]
    assert all(d["vfio_ready"] for d in listed)


def test_switching_part_of_an_nvswitch_board_to_ppcie_warns_with_the_fix(harness, users, host):
    """(The helper's in-memory cache still holds what earlier tests queried: the warning's
    lists are checked for the two devices this test switched.)"""
    r = cc(harness, users.op, "bb:00.0", FREE_GPU, "--mode", "on")
    assert r.rc == 0, r
    r = cc(harness, users.op, FREE_GPU, "--mode", "off", "--ppcie", "on")
    assert r.rc == 0, r
    [warning] = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    on, _, off = warning.partition("; off: ")
    assert on.startswith("warning: GPU modes: the NVSwitch board is partly in Protected PCIe "
                         "mode (on: ") and FREE_GPU in on and "0000:bb:00.0" not in on
    assert "0000:bb:00.0" in off.split(")")[0]
    assert warning.endswith("PPCIe is all or nothing per board; fix: lium-cvm gpu cc all --mode "
                            "off --ppcie on (the whole board for one VM), or lium-cvm gpu cc all "
                            "--mode on --ppcie off (one-GPU VMs)")


def test_cc_and_ppcie_on_together_are_refused(harness, users, host):
    r = cc(harness, users.op, GPU, "--mode", "on", "--ppcie", "on")
    assert r.rc == 2 and "exclude each other" in r.stderr, r
    r = harness.gdbus_call(users.op, "SetGpuMode", f"'{GPU}'", "'on'", "'on'", "uint64 0")
    assert r.error_name == ERR + "InvalidArgument", r
    assert host.fw(GPU)["resets"] == 0


# ---- refusals and failures -----------------------------------------------------------------------


def test_a_device_held_open_is_refused_and_untouched(harness, users, host):
    bind(harness, users.op, GPU)
    node = os.path.join(host.root, "dev", "vfio", host.group(GPU))
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import time; f = open({node!r}); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        calls = [("QueryGpuMode", f"'{GPU}'"),
                 ("SetGpuMode", f"'{GPU}'", "'on'", "'off'", "uint64 0"),
                 ("ResetGpu", f"'{GPU}'", "uint64 0")]
        for method, *args in calls:
            r = harness.gdbus_call(users.op, method, *args)
            assert r.error_name == ERR + "DeviceInUse", r
            assert f"process {holder.pid} (python3) holds {node} open" in r.stderr
        r = cc(harness, users.op, GPU, "--mode", "on")
        assert r.rc == 1 and "stop the VM that uses it first" in r.stderr, r
    finally:
        holder.kill()
        holder.wait()
    assert host.fw(GPU)["resets"] == 0 and host.driver(GPU) == "vfio-pci"
    assert host.cached() == {}


def test_missing_tool_says_how_to_install_it(harness, users, host):
    shutil.rmtree(tool_dir(harness))
    r = harness.run_frontend(users.op, "lsgpu", "--query", GPU)
    assert r.rc == 1 and "gpu-admin-tools is not installed" in r.stderr, r
    r = cc(harness, users.op, GPU, "--mode", "on", "--json")
    assert r.rc == 1 and r.error_name == ERR + "NotFound", r
    assert "git clone https://github.com/NVIDIA/gpu-admin-tools /opt/gpu-admin-tools" in \
        r.json["error"]


def test_tool_in_a_user_writable_directory_is_refused(harness, users, host):
    os.chown(tool_dir(harness), users.op.uid, users.op.gid)
    r = cc(harness, users.op, GPU, "--mode", "on", "--json")
    assert r.rc == 1 and r.error_name == ERR + "Failed", r
    msg = r.json["error"]
    assert "refusing to run gpu-admin-tools as root" in msg
    assert f"is owned by uid {users.op.uid}, not root" in msg
    assert "chown -R root:root /opt/gpu-admin-tools" in msg
    assert host.fw(GPU)["resets"] == 0
    os.chown(tool_dir(harness), 0, 0)
    os.chmod(tool_path(harness), 0o775)
    r = harness.run_frontend(users.op, "lsgpu", "--query", GPU)
    assert r.rc == 1 and "is writable by others than root (mode 0775)" in r.stderr, r


def test_a_hung_tool_is_killed_and_the_device_bound_again(harness, users, host):
    bind(harness, users.op, GPU)
    host.set_fw(GPU, hang="set-cc")
    started = time.monotonic()
    r = cc(harness, users.op, GPU, "--mode", "on")
    assert r.rc == 1, r
    assert time.monotonic() - started < 4 * TOOL_TIMEOUT
    assert (f"step 'CC on' failed: CC on did not finish within {TOOL_TIMEOUT} s, so "
            "gpu-admin-tools was killed") in r.stderr, r
    assert f"{GPU} is bound to vfio-pci again, as it was" in r.stderr
    assert host.driver(GPU) == "vfio-pci" and host.override(GPU) == "vfio-pci"
    assert tool_processes(harness) == []


def test_a_failed_switch_names_the_step_quotes_the_tool_and_rebinds(harness, users, host):
    bind(harness, users.op, GPU)
    host.set_fw(GPU, stuck=True)
    r = cc(harness, users.op, GPU, "--mode", "on")
    assert r.rc == 1, r
    assert (f"step 'CC on' failed: gpu-admin-tools failed (exit 1): \"gpu.error.GpuError: GPU "
            f"{GPU} H200 0x2335 BAR0 ") in r.stderr, r
    assert "failed to switch to CC mode on, current mode is off.\"" in r.stderr
    assert f"{GPU} is bound to vfio-pci again, as it was" in r.stderr
    assert host.driver(GPU) == "vfio-pci" and host.fw(GPU)["cc"] == "off"
    assert GPU not in host.cached()


def test_malformed_output_is_an_error_quoting_the_line(harness, users, host):
    line = f"GPU {GPU} CC mode: on (probably)"
    host.set_fw(GPU, malformed=line)
    r = harness.run_frontend(users.op, "lsgpu", "--query", GPU)
    assert r.rc == 1, r
    assert "gpu-admin-tools printed a line lium-cvm cannot read" in r.stderr
    assert f'"{line}"' in r.stderr and "no mode is assumed" in r.stderr
    assert GPU not in host.cached()


def test_a_gpu_broken_by_the_reset_is_recovered_by_remove_and_rescan(harness, users, host):
    bind(harness, users.op, GPU)
    host.set_fw(GPU, break_on_reset=1)
    mark = harness.audit_mark()
    r = cc(harness, users.op, GPU, "--mode", "on")
    assert r.rc == 0, r
    assert f"{GPU} reports itself broken: PCIe remove and rescan" in r.stderr
    assert f"PPCIe off: {GPU} recovered and reports PPCIe off" in r.stderr
    fw = host.fw(GPU)
    assert (fw["cc"], fw["ppcie"], fw["broken"]) == ("on", "off", False)
    assert host.driver(GPU) == "vfio-pci"
    steps = [rec.result for rec in harness.audit_records(since=mark)]
    assert any("PCIe remove and rescan" in s for s in steps)


def test_a_broken_gpu_query_says_how_to_recover(harness, users, host):
    host.set_fw(GPU, broken=True)
    r = harness.run_frontend(users.op, "lsgpu", "--query", GPU)
    assert r.rc == 1 and "reports itself broken" in r.stderr, r
    assert host.cached()[GPU]["broken"] is True
    listed = harness.run_frontend(users.op, "lsgpu", GPU)
    assert "the device reported itself broken" in listed.stdout


def test_firmware_too_old_for_ppcie(harness, users, host):
    host.set_fw(FREE_GPU, old_fw=True)
    r = cc(harness, users.op, FREE_GPU, "--mode", "on")
    assert r.rc == 0, r
    assert f"the firmware of {FREE_GPU} has no PPCIe setting, so PPCIe is off" in r.stderr
    assert host.fw(FREE_GPU)["cc"] == "on"
    r = cc(harness, users.op, FREE_GPU, "--mode", "off", "--ppcie", "on")
    assert r.rc == 1, r
    assert f"the firmware of {FREE_GPU} is too old for Protected PCIe" in r.stderr
    assert "does not support PPCIe on current FW. A FW update is required." in r.stderr


# ---- reset ---------------------------------------------------------------------------------------


def methods(host, slot):
    with open(os.path.join(host.devdir(slot), "reset_method")) as f:
        return f.read()


def reset_applied(host, slot):
    """The kernel's write to `reset` returns once the device is reset; the fake kernel acts on
    it from its inotify thread and empties the file when done, so wait for that before looking
    at what the reset did."""
    path = os.path.join(host.devdir(slot), "reset")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(path) as f:
            if not f.read().strip():
                return
        time.sleep(0.01)
    raise AssertionError(f"the fake kernel never acted on {path}")


def test_reset_applies_a_pending_mode_and_drops_the_cached_one(harness, users, host):
    assert harness.run_frontend(users.op, "lsgpu", "--query", GPU).rc == 0
    host.set_fw(GPU, pending={"cc": "on"})
    mark = harness.audit_mark()
    r = harness.run_frontend(users.op, "gpu", "reset", "19:00.0")
    assert r.rc == 0, r
    assert r.stdout == f"{GPU} reset\n"
    reset_applied(host, GPU)
    fw = host.fw(GPU)
    assert (fw["cc"], fw["resets"]) == ("on", 1)
    assert GPU not in host.cached()
    records = harness.audit_records(since=mark)
    assert records[0].action == CONFIGURE_GPU and records[-1].result.startswith("ok: ")


def test_bus_reset_goes_through_the_bridge_and_writes_the_default_methods_back(harness, users,
                                                                               host):
    host.set_fw(GPU, spdm_stale=True, pending={"cc": "on"})
    mark = harness.audit_mark()
    r = harness.run_frontend(users.op, "gpu", "reset", "19:00.0", "--bus")
    assert r.rc == 0, r
    assert r.stdout == f"{GPU} reset (bus reset)\n"
    log = fakepci.kernel_log(host.root)
    assert [(e["event"], e.get("value"), e.get("method")) for e in log] == [
        ("reset_method", "bus", None), ("reset", None, "bus"), ("reset_method", "default", None)]
    assert log[1]["bridge"] == "0000:18:01.0" and log[1]["bridge_control_during"] & 0x40
    fw = host.fw(GPU)
    assert (fw["spdm_stale"], fw["cc"], fw["bus_resets"]) == (False, "on", 1)
    assert methods(host, GPU) == "flr bus\n"
    records = harness.audit_records(since=mark)
    assert records[0].args == f"('{GPU}', 1)" and records[0].action == CONFIGURE_GPU
    assert any(f"bus reset of GPU {GPU} through its bridge 0000:18:01.0" in rec.result
               for rec in records[1:]), records


def test_a_plain_reset_is_an_flr_and_leaves_stale_spdm_state(harness, users, host):
    host.set_fw(GPU, spdm_stale=True)
    r = harness.run_frontend(users.op, "gpu", "reset", "19:00.0")
    assert r.rc == 0, r
    reset_applied(host, GPU)
    assert [(e["event"], e["method"]) for e in fakepci.kernel_log(host.root)] == [("reset", "flr")]
    assert host.fw(GPU)["spdm_stale"] is True


def test_bus_reset_of_an_nvswitch_is_refused(harness, users, host):
    r = harness.run_frontend(users.op, "--json", "gpu", "reset", SWITCH, "--bus")
    assert r.rc == 1 and r.error_name == ERR + "InvalidArgument", r
    assert "NVSwitches are never bus-reset" in r.json["error"]
    assert fakepci.kernel_log(host.root) == [] and host.fw(SWITCH)["resets"] == 0


def test_bus_reset_refuses_a_gpu_that_shares_its_bridge(harness, users, host):
    shared = "0000:cb:00.0"
    host.build(nic_sibling_unbound=True)
    r = harness.run_frontend(users.op, "gpu", "reset", shared, "--bus")
    assert r.rc == 1, r
    assert f"GPU {shared} shares its bridge 0000:ca:01.0 with 0000:cb:00.1" in r.stderr
    assert fakepci.kernel_log(host.root) == [] and methods(host, shared) == "flr\n"


def test_bus_reset_refuses_a_reset_reaching_outside_the_gpus_iommu_group(harness, users, host):
    """A device below the GPU (as behind a switch it might hide) in another group."""
    below = os.path.join(host.devdir(FREE_GPU), "0000:dc:00.0")
    os.makedirs(below)
    os.symlink(os.path.relpath(harness.sysfs / "kernel/iommu_groups/0", below),
               os.path.join(below, "iommu_group"))
    r = harness.run_frontend(users.op, "gpu", "reset", FREE_GPU, "--bus")
    assert r.rc == 1, r
    assert ("a bus reset of bridge 0000:da:01.0 would also reset 0000:dc:00.0, which is in "
            "IOMMU group 0, not in IOMMU group") in r.stderr
    assert fakepci.kernel_log(host.root) == []


def test_reset_gpu_refuses_unknown_flags(harness, users, host):
    r = harness.gdbus_call(users.op, "ResetGpu", f"'{GPU}'", "uint64 2")
    assert r.rc != 0 and r.error_name == ERR + "InvalidArgument", r
    assert "unknown flags 0x2 (defined: 0x1" in r.stderr
    assert host.fw(GPU)["resets"] == 0


@pytest.mark.parametrize("slot", ["../../../../etc/passwd", "19:00.0", "0000:19:00.0/../x"])
@pytest.mark.parametrize("method,rest", [("QueryGpuMode", []),
                                         ("SetGpuMode", ["'on'", "''", "uint64 0"]),
                                         ("ResetGpu", ["uint64 0"])])
def test_a_malformed_slot_is_refused_and_nothing_happens(harness, users, host, method, rest, slot):
    before = host.fw(GPU)
    log = fakepci.kernel_log(host.root)
    mark = harness.audit_mark()
    r = harness.gdbus_call(users.op, method, f"'{slot}'", *rest)
    assert r.rc != 0 and r.error_name == ERR + "InvalidArgument", r
    assert "not a PCI slot" in r.stderr
    [rec] = harness.audit_records(since=mark)
    assert rec.result.startswith("failed: " + ERR + "InvalidArgument")
    # No Job, no tool run, nothing cached, the device untouched, and nothing left held: a query
    # of the real slot right after works.
    assert host.fw(GPU) == before and host.cached() == {}
    assert fakepci.kernel_log(host.root) == log
    assert harness.gdbus_call(users.op, "QueryGpuMode", f"'{GPU}'").rc == 0


# ---- the fake itself -----------------------------------------------------------------------------


def test_the_fake_kernel_refuses_bus_for_a_device_not_alone_on_its_bus(harness, users, host):
    """pci_parent_bus_reset's rule, enforced by the simulator itself (the helper refuses such a
    GPU before ever writing): the method list stays, the refusal is logged."""
    slot = "0000:cb:00.0"
    path = os.path.join(host.devdir(slot), "reset_method")
    with open(path, "w") as f:
        f.write("bus")
    deadline = time.monotonic() + 5
    while methods(host, slot) != "flr\n":
        assert time.monotonic() < deadline, methods(host, slot)
        time.sleep(0.01)
    [event] = fakepci.kernel_log(host.root)
    assert event["refused"] == "not the only device on its bus"


def test_the_fake_tool_changes_nothing_while_vfio_pci_holds_the_gpu(harness, users, host):
    """As reference/lium.md §8.12 says of the real tool: the mode change silently does nothing,
    so its own re-query after the reset fails."""
    bind(harness, users.op, GPU)
    r = subprocess.run(["/usr/bin/python3", "-E", "-s", "-B", str(tool_path(harness)), f"--gpu-bdf={GPU}", "--set-cc-mode=on",
                        "--reset-after-cc-mode-switch"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout.startswith("NVIDIA GPU Tools version v2025.10.20o\nCommand line arguments: [")
    assert "\nTopo:\n  Intel root port 0000:18:01.0\n   GPU 0000:19:00.0 H200 0x2335 BAR0 " \
        in r.stdout
    assert "failed to switch to CC mode on, current mode is off." in r.stderr.splitlines()[-1]
    assert host.fw(GPU)["cc"] == "off"
