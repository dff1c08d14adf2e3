# SPDX-License-Identifier: MIT
"""The start path with GPUs on the fake HGX host of tests/fakes/fakepci.py, with its kernel
simulator running: the sanitize bus reset before every start (reference/field-2026.md §1) and
the iommufd fd passing of QEMU >= 10 (§7.2), through `lium-cvm run` on the real bus, polkitd
and helper. QEMU is tests/fakes/fake-qemu (a real QEMU cannot open simulated devices): it
reports its argv, its open fds, the owners of the vfio group nodes and how many resets the
simulator had logged when it ran, then exits 1, so every start here ends "failed" right after
the exec — what matters is what happened before it.

Order of tests matters only through the shared simulator log, which each test reads from a
mark it takes first. A host without CAP_SYS_RESOURCE (a container) cannot raise RLIMIT_MEMLOCK
to guest RAM + 1 GiB, which a VM with VFIO devices needs: there the spawn fails after
everything these tests check, and the tests that need QEMU's own view skip with that reason.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import resource

import lcvm_harness as lh
from lcvm_vms import write_image, write_vm

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "fakes"))
import fakehost  # noqa: E402
import fakepci  # noqa: E402

GPU = "0000:db:00.0"             # alone below bridge 0000:da:01.0
GPU_BRIDGE = "0000:da:01.0"
SWITCH = "0000:07:00.0"          # an NVSwitch: passed, never reset
SHARED_GPU = "0000:cb:00.0"      # shares bridge 0000:ca:01.0 with the NIC function 0000:cb:00.1
QUIRKED_GPU = "0000:bb:00.0"     # given GH200's id 0x2342: the kernel refuses its bus reset
PCI = "sys/bus/pci/devices"
FAKE_QEMU = lh.SOURCE_ROOT / "tests" / "fakes" / "fake-qemu"

MEMLOCK_REFUSED = "spawn failed at step RLIMIT_MEMLOCK"


def _can_raise_memlock():
    if resource.getrlimit(resource.RLIMIT_MEMLOCK)[1] == resource.RLIM_INFINITY:
        return True
    with open("/proc/self/status") as f:
        caps = {k: v for k, _, v in (line.partition(":\t") for line in f)}
    return bool(int(caps.get("CapEff", "0"), 16) & (1 << 24))  # CAP_SYS_RESOURCE


needs_exec = pytest.mark.skipif(
    not _can_raise_memlock(),
    reason="RLIMIT_MEMLOCK cannot be raised here (no CAP_SYS_RESOURCE), so a VM with VFIO "
           "devices never reaches QEMU's exec")

HARNESS_CONFIG = {
    "qemu": {"allow_no_tee": "true", "accel": "tcg"},
    "paths": {"dstack_client_conf": ""},
    "helper": {"bind_timeout": 5},
}


def qemu_dir(h, version):
    return h.tools_dir / ("qemu-" + version)


def install_qemu(h, version):
    """The fake QEMU, root-owned as the helper demands, answering --version with version."""
    d = qemu_dir(h, version)
    d.mkdir(mode=0o755, parents=True)
    shutil.copy(FAKE_QEMU, d / "qemu-system-x86_64")
    (d / "qemu-system-x86_64").chmod(0o755)
    (d / "fake-qemu.version").write_text(version + "\n")
    for f in d.iterdir():
        if f.name != "qemu-system-x86_64":
            f.chmod(0o644)
    # QEMU's view shows this directory and nothing of the simulator's tree: the simulator's log
    # (appended, never replaced) reaches the fake through a hard link.
    log = h.root / fakepci.KERNEL_LOG
    log.touch()
    os.link(log, d / fakepci.KERNEL_LOG)
    return d / "qemu-system-x86_64"


def prepare_harness(h, guest):
    for top in (h.sysfs, h.dev, h.proc):
        shutil.rmtree(top)
        top.mkdir()
    fakepci.build(str(h.root), nic_sibling_unbound=True, device_ids={QUIRKED_GPU: 0x2342})
    fakehost.host_facts(str(h.root))
    kernel = fakepci.Kernel(str(h.root))
    for slot in (GPU, SWITCH, SHARED_GPU, QUIRKED_GPU):
        if kernel.driver(slot):
            kernel.do_unbind(slot, kernel.driver(slot))
        kernel.do_bind(slot, "vfio-pci")
    h.tools_dir.mkdir(exist_ok=True)
    h.extra_config["qemu"]["path"] = str(install_qemu(h, "10.0.2"))
    install_qemu(h, "9.2.1")
    write_image(h, guest, "guest")
    write_vm(h, "gpu-vm", "guest", [2500], gpus=[GPU], nvswitches=[SWITCH])
    write_vm(h, "shared-vm", "guest", [2501], gpus=[SHARED_GPU])
    write_vm(h, "quirk-vm", "guest", [2502], gpus=[QUIRKED_GPU])
    write_vm(h, "two-gpu-vm", "guest", [2503], gpus=[GPU, SHARED_GPU], nvswitches=[SWITCH])
    h.simulator = subprocess.Popen(
        [sys.executable, fakepci.__file__, "simulate", str(h.root), "--delay", "0.02",
         "--ready-file", str(h.root / "kernel.ready")])
    deadline = time.monotonic() + 10
    while not (h.root / "kernel.ready").exists():
        assert time.monotonic() < deadline, "the kernel simulator did not start"
        time.sleep(0.01)


@pytest.fixture(scope="module", autouse=True)
def simulator(harness):
    yield
    harness.simulator.terminate()
    harness.simulator.wait()


# ---- helpers ------------------------------------------------------------------------------

def devdir(h, slot):
    return os.path.realpath(h.root / PCI / slot)


def log_since(h, mark):
    return fakepci.kernel_log(str(h.root))[mark:]


def fw(h, slot):
    return fakepci.fw_load(devdir(h, slot))


def set_fw(h, slot, **values):
    st = fw(h, slot)
    st.update(values)
    fakepci.fw_save(devdir(h, slot), st)


def methods(h, slot):
    with open(os.path.join(devdir(h, slot), "reset_method")) as f:
        return f.read()


def bridge_control(h, slot):
    return fakepci.config_read16(os.path.dirname(devdir(h, slot)), fakepci.BRIDGE_CONTROL)


def qemu_reports(h, name):
    """Every FAKE-QEMU report in the VM's qemu.log, oldest first."""
    path = h.state_dir / "instances" / name / "qemu.log"
    if not path.exists():
        return []
    return [json.loads(line[len("FAKE-QEMU "):]) for line in path.read_text().splitlines()
            if line.startswith("FAKE-QEMU ")]


def run_vm(h, name):
    return h.run_frontend(h.users.op, "run", name, timeout=120)


def start_got_past_the_checks(r, name):
    """The start went on to QEMU: the fake QEMU exited 1, or (see above) the spawn could not
    raise RLIMIT_MEMLOCK."""
    return r.rc == 1 and (f"VM {name} failed" in r.stderr or MEMLOCK_REFUSED in r.stderr)


def dry_run(h, name):
    r = h.run_frontend(h.users.op, "run", name, "--dry-run")
    assert r.rc == 0, r
    return r.stdout.split("\n")[:-1]


def vfio_node(h, slot):
    [node] = os.listdir(os.path.join(devdir(h, slot), "vfio-dev"))
    return str(h.dev / "vfio" / "devices" / node)


# ---- the tests ----------------------------------------------------------------------------

def test_start_bus_resets_the_gpu_before_qemu_runs_and_never_the_nvswitch(harness, users):
    mark = len(fakepci.kernel_log(str(harness.root)))
    set_fw(harness, GPU, spdm_stale=True)
    resets_before = fw(harness, GPU)["resets"]
    r = run_vm(harness, "gpu-vm")
    assert start_got_past_the_checks(r, "gpu-vm"), r
    events = [(e["event"], e["slot"], e.get("value"), e.get("method")) for e in
              log_since(harness, mark)]
    assert events == [("reset_method", GPU, "bus", None), ("reset", GPU, None, "bus"),
                      ("reset_method", GPU, "default", None)]
    bus = log_since(harness, mark)[1]
    assert bus["bridge"] == GPU_BRIDGE
    assert bus["bridge_control_during"] == fakepci.ROOT_PORT_BRIDGE_CONTROL | 0x40
    assert bridge_control(harness, GPU) == fakepci.ROOT_PORT_BRIDGE_CONTROL
    st = fw(harness, GPU)
    assert st["spdm_stale"] is False and st["resets"] == resets_before + 1
    assert fw(harness, SWITCH)["resets"] == 0
    assert methods(harness, GPU) == "flr bus\n"  # `default` written back


def test_dry_run_on_qemu_10_names_the_fds_a_start_passes(harness, users):
    argv = dry_run(harness, "gpu-vm")
    tail = argv[argv.index("-object", argv.index("-netdev")):argv.index("-append")]
    assert tail == [
        "-object", "iommufd,id=iommufd0,fd=11",
        "-device", "pcie-root-port,id=pci.1,bus=pcie.0,chassis=1",
        "-device", f"vfio-pci,host={GPU},bus=pci.1,iommufd=iommufd0,fd=12",
        "-device", "pcie-root-port,id=pci.2,bus=pcie.0,chassis=2",
        "-device", f"vfio-pci,host={SWITCH},bus=pci.2,iommufd=iommufd0,fd=13",
    ]


@needs_exec
def test_qemu_10_runs_after_the_reset_with_dev_iommu_and_each_vfio_cdev(harness, users):
    argv = dry_run(harness, "gpu-vm")
    r = run_vm(harness, "gpu-vm")
    assert r.rc == 1 and "VM gpu-vm failed" in r.stderr, r  # the fake QEMU exits 1
    report = qemu_reports(harness, "gpu-vm")[-1]
    assert report["resets_seen"] == len([e for e in fakepci.kernel_log(str(harness.root))
                                         if e["event"] == "reset"])
    assert report["argv"] == argv
    image = harness.state_dir / "images" / "guest"
    assert [report["fds"][fd] for fd in ("8", "9", "10")] == [
        str(image / "vmlinuz"), str(image / "initramfs.gz"), str(image / "OVMF_CODE.fd")]
    assert report["fds"]["11"] == str(harness.dev / "iommu")
    assert report["fds"]["12"] == vfio_node(harness, GPU)
    assert report["fds"]["13"] == vfio_node(harness, SWITCH)
    assert "14" not in report["fds"]
    # iommufd: QEMU's own /dev has no group node, and nothing was chowned on the host.
    assert report["group_owners"] == {}
    groups = {str(fakepci.Kernel(str(harness.root)).group(s)) for s in (GPU, SWITCH)}
    assert {os.stat(harness.dev / "vfio" / g).st_uid for g in groups} == {0}


def test_qemu_10_start_without_a_vfio_cdev_is_refused_before_qemu(harness, users):
    vdir = os.path.join(devdir(harness, SWITCH), "vfio-dev")
    os.rename(vdir, vdir + ".hidden")
    try:
        runs = len(qemu_reports(harness, "gpu-vm"))
        r = run_vm(harness, "gpu-vm")
        assert r.rc == 1, r
        assert f"{SWITCH} has no vfio-dev node, which QEMU >= 10 (iommufd) needs" in r.stderr
        assert "CONFIG_VFIO_DEVICE_CDEV" in r.stderr
        assert len(qemu_reports(harness, "gpu-vm")) == runs
        assert not (harness.runtime_dir / "gpu-vm").exists()
    finally:
        os.rename(vdir + ".hidden", vdir)


def test_qemu_10_start_without_dev_iommu_is_refused_before_qemu(harness, users):
    iommu = harness.dev / "iommu"
    iommu.rename(harness.dev / "iommu.hidden")
    try:
        r = run_vm(harness, "gpu-vm")
        assert r.rc == 1, r
        assert f"cannot open {iommu}" in r.stderr and "CONFIG_IOMMUFD" in r.stderr
        assert not (harness.runtime_dir / "gpu-vm").exists()
    finally:
        (harness.dev / "iommu.hidden").rename(iommu)


def test_a_gpu_sharing_its_bridge_is_refused_and_nothing_changes(harness, users):
    mark = len(fakepci.kernel_log(str(harness.root)))
    before = fakepci.snapshot(str(harness.root))
    r = run_vm(harness, "shared-vm")
    assert r.rc == 1, r
    assert f"GPU {SHARED_GPU} shares its bridge 0000:ca:01.0 with 0000:cb:00.1" in r.stderr
    assert "sanitize_on_attach=false" in r.stderr
    assert log_since(harness, mark) == []
    assert fakepci.snapshot(str(harness.root)) == before
    assert not (harness.state_dir / "instances" / "shared-vm").exists()
    assert not (harness.runtime_dir / "shared-vm").exists()


def test_a_bus_reset_the_kernel_refuses_aborts_the_start(harness, users):
    """GH200's id carries the kernel's NO_BUS_RESET quirk: the kernel keeps its method list,
    nothing is reset and QEMU never runs."""
    mark = len(fakepci.kernel_log(str(harness.root)))
    assert methods(harness, QUIRKED_GPU) == "flr\n"
    r = run_vm(harness, "quirk-vm")
    assert r.rc == 1, r
    assert f"the kernel refused a bus reset of GPU {QUIRKED_GPU} (0x10de:0x2342)" in r.stderr
    assert "NO_BUS_RESET" in r.stderr
    [event] = log_since(harness, mark)
    assert event["refused"] == "PCI_DEV_FLAGS_NO_BUS_RESET" and event["value"] == "bus"
    assert methods(harness, QUIRKED_GPU) == "flr\n"
    assert fw(harness, QUIRKED_GPU)["resets"] == 0
    assert qemu_reports(harness, "quirk-vm") == []


def test_a_gpu_whose_link_stays_down_fails_the_start_with_remove_and_rescan(harness, users):
    set_fw(harness, GPU, link_down_on_bus_reset=1)
    runs = len(qemu_reports(harness, "gpu-vm"))
    r = run_vm(harness, "gpu-vm")
    assert r.rc == 1, r
    assert f"GPU {GPU} does not answer after its bus reset" in r.stderr
    assert f"/bus/pci/devices/{GPU}/remove" in r.stderr and "/bus/pci/rescan" in r.stderr
    assert methods(harness, GPU) == "flr bus\n"
    assert len(qemu_reports(harness, "gpu-vm")) == runs  # QEMU never ran
    # what the operator would do: remove + rescan brings the config space back
    fakepci.config_write(devdir(harness, GPU), 0, bytes.fromhex("de103023"))
    set_fw(harness, GPU, broken=False)


def test_bridge_control_is_restored_when_the_reset_leaves_it_changed(harness, users):
    set_fw(harness, GPU, bridge_ctl_after=0x0052)
    mark = len(fakepci.kernel_log(str(harness.root)))
    r = run_vm(harness, "gpu-vm")
    assert start_got_past_the_checks(r, "gpu-vm"), r
    assert log_since(harness, mark)[1]["bridge_control_after"] == 0x0052
    assert bridge_control(harness, GPU) == fakepci.ROOT_PORT_BRIDGE_CONTROL
    assert "restoring Bridge Control of 0000:da:01.0 from 0x0052 to 0x0012" in \
        harness.helper_log.read_text()
    set_fw(harness, GPU, bridge_ctl_after=None)


def test_with_sanitize_off_the_start_resets_nothing(harness, users):
    harness.restart_helper(config={"gpu": {"sanitize_on_attach": "false"}})
    try:
        mark = len(fakepci.kernel_log(str(harness.root)))
        r = run_vm(harness, "gpu-vm")
        assert start_got_past_the_checks(r, "gpu-vm"), r
        assert log_since(harness, mark) == []
    finally:
        harness.restart_helper(config={"gpu": {"sanitize_on_attach": "true"}})


def _with_qemu(harness, version):
    path = str(qemu_dir(harness, version) / "qemu-system-x86_64")
    harness.restart_helper(config={"qemu": {"path": path}})


def test_dry_run_before_qemu_10_has_no_iommufd_and_no_fds(harness, users):
    _with_qemu(harness, "9.2.1")
    try:
        argv = dry_run(harness, "gpu-vm")
        assert not any("iommufd" in a or ",fd=" in a for a in argv[argv.index("-netdev"):])
        assert f"vfio-pci,host={GPU},bus=pci.1" in argv
    finally:
        _with_qemu(harness, "10.0.2")


@needs_exec
def test_qemu_before_10_opens_the_group_itself_which_the_vm_uid_owns_meanwhile(harness, users):
    _with_qemu(harness, "9.2.1")
    try:
        argv = dry_run(harness, "gpu-vm")
        r = run_vm(harness, "gpu-vm")
        assert r.rc == 1 and "VM gpu-vm failed" in r.stderr, r
        report = qemu_reports(harness, "gpu-vm")[-1]
        assert report["argv"] == argv
        assert not any(int(fd) >= 11 for fd in report["fds"])  # 8-10: kernel, initrd, bios
        groups = {str(fakepci.Kernel(str(harness.root)).group(s)) for s in (GPU, SWITCH)}
        assert {g: report["group_owners"][g] for g in groups} == \
            {g: report["uid"] for g in groups}
        for g in groups:  # given back once QEMU is gone
            assert os.stat(harness.dev / "vfio" / g).st_uid == 0
    finally:
        _with_qemu(harness, "10.0.2")


# ---- Lium's GPU mode policy (common/lcvm-board-policy.c) at the start -----------------------

@pytest.fixture
def cached_modes(harness):
    """Writes the helper's mode cache as a query would have; removes it afterwards."""
    def write(**modes):
        fakehost.write_gpu_modes(str(harness.state_dir), **modes)
    yield write
    (harness.state_dir / "gpu-modes.json").unlink()


def test_two_hopper_gpus_in_per_gpu_cc_on_an_nvswitch_board_are_refused(harness, users,
                                                                         cached_modes):
    cached_modes(cc="on", ppcie="off", switch_ppcie="off")
    mark = len(fakepci.kernel_log(str(harness.root)))
    for args in (["run", "two-gpu-vm"], ["run", "two-gpu-vm", "--dry-run"]):
        r = harness.run_frontend(users.op, *args, timeout=120)
        assert r.rc == 1, r
        assert "VM two-gpu-vm breaks the GPU mode policy: the VM passes 2 Hopper GPUs of an " \
               "NVSwitch board but not 0000:19:00.0" in r.stderr
        assert "(fix: set CVM_GPUS=all in the VM's .env" in r.stderr
        assert "not in Protected PCIe mode" in r.stderr
        assert "(fix: lium-cvm gpu cc all --mode off --ppcie on)" in r.stderr
    assert log_since(harness, mark) == []  # refused before the sanitize reset
    assert not (harness.runtime_dir / "two-gpu-vm").exists()


def test_a_one_gpu_vm_in_ppcie_mode_is_refused_naming_gpu_cc(harness, users, cached_modes):
    cached_modes(cc="off", ppcie="on", switch_ppcie="on")
    r = harness.run_frontend(users.op, "run", "gpu-vm", timeout=120)
    assert r.rc == 1, r
    assert f"GPU {GPU} (CC off, PPCIe on) not in CC mode: a VM with one GPU needs CC on and " \
           f"PPCIe off (fix: lium-cvm gpu cc {GPU} --mode on)" in r.stderr


def test_a_one_gpu_vm_in_cc_mode_passes_the_policy(harness, users, cached_modes):
    cached_modes(cc="on", ppcie="off", switch_ppcie="off")
    r = run_vm(harness, "gpu-vm")
    assert start_got_past_the_checks(r, "gpu-vm"), r
    assert "policy" not in r.stderr
