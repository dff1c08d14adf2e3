# SPDX-License-Identifier: MIT
"""GPUs through the real bus and polkitd: `lsgpu`, `gpu bind|unbind` (BindVfio/UnbindVfio) and
`gpu dma-limit` (SetDmaEntryLimit) on the fake HGX host of tests/fakes/fakepci.py, with its
kernel simulator acting on the helper's sysfs writes asynchronously.

proc_root is the real /proc here, so a real process holding a fake /dev/vfio node open is seen
by the helper's held-open check. Each test gets a freshly built host.
"""

import os
import subprocess
import sys
import time

import pytest

import lcvm_harness as lh

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "fakes"))
import fakepci  # noqa: E402

HARNESS_CONFIG = {"paths": {"proc_root": "/proc"}, "helper": {"bind_timeout": 2}}
NOT_AUTHORIZED = lh.ERROR_PREFIX + "NotAuthorized"
INVALID_ARGUMENT = lh.ERROR_PREFIX + "InvalidArgument"
NOT_FOUND = lh.ERROR_PREFIX + "NotFound"
MANAGE_DEVICES = "io.lium.cvm1.manage-devices"
GPU = "0000:19:00.0"
PCI = "sys/bus/pci/devices"


class FakeHost:
    """The fake host under the harness root and its running kernel simulator."""

    def __init__(self, harness):
        self.h = harness
        self.root = str(harness.root)
        self.kernel = None

    def build(self, mode="normal", **variant):
        self.stop()
        for top in (self.h.sysfs, self.h.dev, self.h.proc, self.h.runtime_dir / "vfio"):
            subprocess.run(["rm", "-rf", str(top)], check=True)
            top.mkdir()
        (self.h.runtime_dir / "vfio").rmdir()
        fakepci.build(self.root, **variant)
        ready = os.path.join(self.root, "kernel.ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.kernel = subprocess.Popen(
            [sys.executable, fakepci.__file__, "simulate", self.root, "--delay", "0.02",
             "--mode", mode, "--ready-file", ready])
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            assert time.monotonic() < deadline, "the kernel simulator did not start"
            time.sleep(0.01)
        return self

    def stop(self):
        if self.kernel is not None:
            self.kernel.terminate()
            self.kernel.wait()
            self.kernel = None

    def snapshot(self):
        return fakepci.snapshot(self.root)

    def driver(self, slot):
        link = os.path.join(self.root, PCI, slot, "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def vfio_dev(self, slot):
        d = os.path.join(self.root, PCI, slot, "vfio-dev")
        return sorted(os.listdir(d))[0] if os.path.isdir(d) and os.listdir(d) else None

    def group(self, slot):
        return os.path.basename(os.readlink(os.path.join(self.root, PCI, slot, "iommu_group")))


@pytest.fixture
def host(harness):
    fake = FakeHost(harness)
    yield fake
    fake.stop()


def bind(harness, user, *slots):
    return harness.run_frontend(user, "gpu", "bind", *slots)


def unbind(harness, user, *slots):
    return harness.run_frontend(user, "gpu", "unbind", *slots)


# ---- lsgpu -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["op", "out"])
def test_lsgpu_lists_the_hgx_host_to_any_user(harness, users, host, who):
    host.build()
    r = harness.run_frontend(getattr(users, who), "lsgpu", "--json")
    assert r.rc == 0, r
    doc = r.json
    assert doc["iommu_active"] is True
    devices = {d["slot"]: d for d in doc["devices"]}
    assert len(devices) == 12
    assert sum(d["kind"] == "gpu" for d in devices.values()) == 8
    assert "0000:2a:00.0" not in devices
    g = devices[GPU]
    assert (g["id"], g["model"], g["driver"], g["numa_node"], g["vfio_ready"]) == (
        "10de:2335", "GH100 [H200 SXM 141GB]", "nvidia", 0, False)
    assert g["cc_capable"] is True and g["iommu_group"] == int(host.group(GPU))
    assert devices["0000:db:00.0"]["driver"] is None
    assert devices["0000:db:00.0"]["numa_node"] == 1

    text = harness.run_frontend(getattr(users, who), "lsgpu", "19:00.0")
    assert text.rc == 0, text
    assert text.stdout.startswith(f"{GPU} 3D controller [0302]: NVIDIA Corporation "
                                  "GH100 [H200 SXM 141GB] [10de:2335] (rev a1)\n")
    assert "\tKernel driver in use: nvidia\n" in text.stdout


def test_lsgpu_of_a_non_nvidia_slot_fails(harness, users, host):
    host.build()
    r = harness.run_frontend(users.op, "lsgpu", "2a:00.0")
    assert r.rc == 1 and "not an NVIDIA GPU or NVSwitch" in r.stderr, r


# ---- bind / unbind ---------------------------------------------------------------------------


def test_bind_and_unbind_one_gpu_restores_the_tree(harness, users, host):
    host.build()
    before = host.snapshot()
    mark = harness.audit_mark()
    r = bind(harness, users.op, "19:00.0")
    assert r.rc == 0, r
    assert host.driver(GPU) == "vfio-pci" and host.vfio_dev(GPU) is not None
    assert r.stdout == f"{GPU}  vfio-pci  {host.vfio_dev(GPU)}\n"
    assert os.path.exists(os.path.join(host.root, "dev", "vfio", host.group(GPU)))
    rec = harness.audit_records(since=mark)
    assert [x.method for x in rec] == ["io.lium.Cvm1.Host.BindVfio"] * 2
    assert rec[0].action == MANAGE_DEVICES and rec[0].uid == users.op.uid
    assert rec[-1].result.startswith("ok: ")

    listed = harness.run_frontend(users.op, "lsgpu", "--json").json
    assert {d["slot"]: d["vfio_ready"] for d in listed["devices"]}[GPU] is True

    again = bind(harness, users.op, GPU)
    assert again.rc == 0, again

    r = unbind(harness, users.op, GPU)
    assert r.rc == 0, r
    assert host.driver(GPU) == "nvidia"
    assert host.snapshot() == before


def test_unbind_after_a_helper_restart_restores_the_driver(harness, users, host):
    """runtime_dir/vfio holds the drivers before the bind; a restarted helper must not take
    it for a VM's runtime directory (and remove it as a dead VM's)."""
    host.build()
    before = host.snapshot()
    assert bind(harness, users.op, GPU).rc == 0
    harness.restart_helper()
    assert os.listdir(harness.runtime_dir / "vfio") == [GPU]
    vms = harness.run_frontend(users.op, "list", "--json")
    assert vms.rc == 0 and "vfio" not in vms.stdout, vms
    r = unbind(harness, users.op, GPU)
    assert r.rc == 0, r
    assert host.driver(GPU) == "nvidia"
    assert host.snapshot() == before


def test_bind_all_and_unbind_all(harness, users, host):
    host.build(nic_sibling_unbound=True)
    before = host.snapshot()
    r = bind(harness, users.op, "all")
    assert r.rc == 0, r
    listed = harness.run_frontend(users.op, "lsgpu", "--json").json["devices"]
    assert len(listed) == 12 and all(d["vfio_ready"] for d in listed)
    r = unbind(harness, users.op, "all")
    assert r.rc == 0, r
    assert host.snapshot() == before


def test_binding_gpus_without_their_nvswitches_warns(harness, users, host):
    host.build()
    r = bind(harness, users.op, GPU)
    assert r.rc == 0, r
    assert "4 NVSwitches of this host stay on the host" in r.stderr
    unbind(harness, users.op, GPU)


def test_bind_refuses_a_group_that_is_not_viable_and_changes_nothing(harness, users, host):
    host.build()
    before = host.snapshot()
    r = bind(harness, users.op, "all")
    assert r.rc == 1, r
    assert "IOMMU group" in r.stderr and "not viable" in r.stderr
    assert "0000:cb:00.1 is bound to mlx5_core" in r.stderr
    assert host.snapshot() == before


def test_unbind_refuses_a_device_held_open_by_another_process(harness, users, host):
    host.build()
    assert bind(harness, users.op, GPU).rc == 0
    node = os.path.join(host.root, "dev", "vfio", host.group(GPU))
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import time; f = open({node!r}); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        r = unbind(harness, users.op, GPU)
        assert r.rc == 1, r
        assert f"process {holder.pid} (python3) holds {node} open" in r.stderr
        assert host.driver(GPU) == "vfio-pci"
        seen = harness.run_frontend(users.root, "lsgpu", "--json").json["devices"]
        held = {d["slot"]: d["held_by"] for d in seen}[GPU]
        assert [h["pid"] for h in held] == [holder.pid]
    finally:
        holder.kill()
        holder.wait()
    assert unbind(harness, users.op, GPU).rc == 0
    assert host.driver(GPU) == "nvidia"


def test_bind_that_never_completes_times_out_and_restores_the_tree(harness, users, host):
    host.build(mode="never")
    before = host.snapshot()
    start = time.monotonic()
    r = bind(harness, users.op, GPU)
    assert r.rc == 1, r
    assert time.monotonic() - start >= 2
    assert "did not bind to vfio-pci" in r.stderr and f"restored {GPU}" in r.stderr
    assert host.snapshot() == before


def test_failure_midway_leaves_the_tree_exactly_as_before(harness, users, host):
    host.build(mode="fail-after=1")
    before = host.snapshot()
    r = bind(harness, users.op, GPU, "bb:00.0")
    assert r.rc == 1, r
    assert "restored 0000:bb:00.0, 0000:19:00.0" in r.stderr
    assert host.snapshot() == before


def test_bind_with_the_iommu_off_prints_the_grub_line(harness, users, host):
    host.build(iommu=False)
    r = bind(harness, users.op, GPU)
    assert r.rc == 1, r
    assert "the IOMMU is off" in r.stderr
    assert ("  kvm_intel.tdx=on intel_iommu=on iommu=pt nohibernate "
            "vfio-pci.ids=10de:22a3,10de:2335,10de:2330") in r.stderr
    assert "vfio_iommu_type1.dma_entry_limit=16777216\n" in r.stderr
    assert "GRUB_CMDLINE_LINUX_DEFAULT" in r.stderr
    assert "sudo update-grub && sudo reboot" in r.stderr


# ---- validation through a foreign client -----------------------------------------------------


@pytest.mark.parametrize("slots,error,text", [
    ("['0000:ee:00.0']", NOT_FOUND, "no PCI device 0000:ee:00.0"),
    ("['0000:2a:00.0']", INVALID_ARGUMENT, "not an NVIDIA GPU or NVSwitch"),
    ("['../../../../etc/passwd']", INVALID_ARGUMENT, "not a PCI slot"),
    ("['0000:19:00.0/../0000:2a:00.0']", INVALID_ARGUMENT, "not a PCI slot"),
    ("['19:00.0']", INVALID_ARGUMENT, "not a PCI slot"),
    ("@as []", INVALID_ARGUMENT, "between 1 and"),
])
@pytest.mark.parametrize("method", ["BindVfio", "UnbindVfio"])
def test_helper_refuses_bad_slots_and_changes_nothing(harness, users, host, method, slots,
                                                      error, text):
    host.build()
    before = host.snapshot()
    r = harness.gdbus_call(users.op, method, slots, "uint64 0")
    assert r.rc != 0 and r.error_name == error and text in r.stderr, r
    assert host.snapshot() == before


def test_frontend_refuses_a_slot_with_a_path_before_calling(harness, users, host):
    host.build()
    mark = harness.audit_mark()
    r = bind(harness, users.op, "../19:00.0")
    assert r.rc == 2 and "invalid PCI slot" in r.stderr, r
    assert harness.audit_records(since=mark) == []


@pytest.mark.parametrize("method,args", [
    ("BindVfio", ["['0000:19:00.0']", "uint64 0"]),
    ("UnbindVfio", ["['0000:19:00.0']", "uint64 0"]),
    ("SetDmaEntryLimit", ["uint64 16777216", "uint64 1"]),
])
def test_ungrouped_user_is_refused_every_method(harness, users, host, method, args):
    host.build()
    before = host.snapshot()
    mark = harness.audit_mark()
    r = harness.gdbus_call(users.out, method, *args)
    assert r.rc != 0 and r.error_name == NOT_AUTHORIZED, r
    rec = harness.audit_records(since=mark)
    assert len(rec) == 1 and rec[0].refused and rec[0].action == MANAGE_DEVICES
    assert host.snapshot() == before
    assert not (harness.modprobe_dir / "lium-cvm-vfio.conf").exists()


def test_ungrouped_user_cannot_bind_through_the_frontend(harness, users, host):
    host.build()
    r = bind(harness, users.out, GPU)
    assert r.rc == 1 and "not authorized" in r.stderr, r
    assert host.driver(GPU) == "nvidia"


# ---- DMA entry limit -------------------------------------------------------------------------


def test_dma_limit_default_and_persist(harness, users, host):
    host.build()
    param = harness.sysfs / "module" / "vfio_iommu_type1" / "parameters" / "dma_entry_limit"
    r = harness.run_frontend(users.op, "gpu", "dma-limit", "--persist")
    assert r.rc == 0, r
    assert r.stdout == "dma_entry_limit: 16777216 (was 65535), also at boot\n"
    assert param.read_text() == "16777216"
    conf = harness.modprobe_dir / "lium-cvm-vfio.conf"
    assert "\noptions vfio_iommu_type1 dma_entry_limit=16777216\n" in conf.read_text()
    conf.unlink()

    r = harness.gdbus_call(users.op, "SetDmaEntryLimit", "uint64 2097152", "uint64 0")
    assert r.rc == 0, r
    assert param.read_text() == "2097152"
    for bad in (["uint64 0", "uint64 0"], ["uint64 4294967296", "uint64 0"],
                ["uint64 1", "uint64 2"]):
        r = harness.gdbus_call(users.op, "SetDmaEntryLimit", *bad)
        assert r.error_name == INVALID_ARGUMENT, r
    assert param.read_text() == "2097152"
    assert not conf.exists()
