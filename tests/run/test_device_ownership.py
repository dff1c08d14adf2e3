# SPDX-License-Identifier: MIT
"""One owner per device: a VM start and the GPU jobs exclude each other (helper-daemon.h,
"Device ownership"). The integration harness in private mount and network namespaces with the
fake HGX host of tests/fakes/fakepci.py (its kernel simulator running, so binds and unbinds
really complete) and a stand-in QEMU: a root-owned script whose `--version` probe waits at a
gate the test opens, so a start can be held inside its launch, and which otherwise sleeps, so
the VM stays alive holding its GPU.

Checked, in file order: a start while an unbind job holds the GPU is Busy naming the job, and
nothing of the VM exists afterwards; an unbind while a start holds the GPU is Busy naming the
VM, and while the VM runs DeviceInUse naming it, the GPU still on vfio-pci both times; after the
VM stopped the same unbind succeeds. A machine that cannot raise RLIMIT_MEMLOCK (a container
without CAP_SYS_RESOURCE, like the development machine) cannot run a VM with a GPU: there the
start fails at QEMU's spawn, after every lock, and the running-VM test is skipped saying so.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import lcvm_harness as lh
from lcvm_vms import props, write_image, write_vm

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "fakes"))
import fakehost  # noqa: E402
import fakepci  # noqa: E402

GPU = "0000:db:00.0"  # no driver on the fake host; bound to vfio-pci in prepare_harness
VM = "gpuvm"
BUSY = lh.ERROR_PREFIX + "Busy"
DEVICE_IN_USE = lh.ERROR_PREFIX + "DeviceInUse"
GATE_WAIT_S = 4  # the helper kills a --version probe after 5 s
NO_MEMLOCK = []  # why no VM with a GPU can run on this machine, when it cannot

FAKE_QEMU = """#!/bin/sh
# A stand-in QEMU (tests/run/test_device_ownership.py): --version waits at the gate.
if [ "$1" = "--version" ]; then
  : > {gate}/probing
  i=0
  while [ ! -e {gate}/open ] && [ $i -lt {ticks} ]; do sleep 0.05; i=$((i + 1)); done
  echo "QEMU emulator version 8.2.2"
  exit 0
fi
exec sleep 3600
"""


@pytest.fixture(scope="module")
def harness(users, tmp_path_factory):
    """The run/ harness without the e2e guest: the images are stand-ins, QEMU is a script."""
    guest = tmp_path_factory.mktemp("guest")
    for f in ("vmlinuz", "initramfs.gz", "OVMF_CODE.fd"):
        (guest / f).write_bytes(b"\0" * 65536)
    h = lh.Harness(users, prepare=lambda h: prepare_harness(h, guest), name="devown")
    with h:
        yield h


def prepare_harness(h, guest):
    gate = h.root / "gate"
    gate.mkdir()
    gate.chmod(0o777)  # the probe runs as nobody
    qemu = h.tools_dir / "qemu-system-x86_64"
    qemu.write_text(FAKE_QEMU.format(gate=gate, ticks=int(GATE_WAIT_S / 0.05)))
    qemu.chmod(0o755)
    h.extra_config.update({
        "qemu": {"path": qemu, "allow_no_tee": "true", "accel": "tcg"},
        "paths": {"dstack_client_conf": "", "proc_root": "/proc"},
    })
    for top in (h.sysfs, h.dev, h.proc):
        subprocess.run(["rm", "-rf", str(top)], check=True)
        top.mkdir()
    fakepci.build(str(h.root))
    fakehost.host_facts(str(h.root))
    fakepci.Kernel(str(h.root)).do_bind(GPU, "vfio-pci")
    write_image(h, guest, "guest")
    write_vm(h, VM, "guest", [2700])
    manifest_path = h.state_dir / "vms" / VM / "vm-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["gpus"] = [GPU]
    manifest_path.write_text(json.dumps(manifest, indent=4))


@pytest.fixture(scope="module")
def kernel(harness):
    """The fake kernel simulator, acting on the helper's sysfs writes."""
    ready = harness.root / "kernel.ready"
    p = subprocess.Popen([sys.executable, fakepci.__file__, "simulate", str(harness.root),
                          "--delay", "0.02", "--ready-file", str(ready)])
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline, "the kernel simulator did not start"
        time.sleep(0.01)
    yield p
    p.send_signal(signal.SIGCONT)
    p.terminate()
    p.wait()


def driver(harness, slot=GPU):
    link = harness.sysfs / "bus" / "pci" / "devices" / slot / "driver"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def in_background(fn, *args):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", fn(*args)))
    t.start()
    return t, result


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def unbind(harness, users):
    return harness.run_frontend(users.op, "--json", "gpu", "unbind", GPU)


def nft_ruleset():
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def test_a_start_while_a_gpu_job_holds_the_device_is_busy(harness, users, kernel):
    kernel.send_signal(signal.SIGSTOP)  # the unbind then waits for the kernel, holding the GPU
    try:
        mark = harness.audit_mark()
        job, job_result = in_background(unbind, harness, users)
        wait_for(lambda: any(r.method.endswith("UnbindVfio") and r.result.startswith("started")
                             for r in harness.audit_records(since=mark)), "the unbind job")
        r = harness.gdbus_call(users.op, "io.lium.Cvm1.Manager.StartVm", VM, "uint64 0")
        assert r.rc != 0 and "Error.Busy" in r.stderr, r
        assert f"device:{GPU} is busy with 'unbind-vfio'" in r.stderr, r
        # Nothing of the VM happened: no instance, no runtime directory, no guard, not live.
        assert not (harness.state_dir / "instances" / VM).exists()
        assert not (harness.runtime_dir / VM).exists()
        assert f"vm_{VM}" not in nft_ruleset()
        assert props(harness, VM)["State"] in ("defined", "stopped"), props(harness, VM)
    finally:
        kernel.send_signal(signal.SIGCONT)
    job.join()
    assert job_result["r"].rc == 0, job_result["r"]
    assert driver(harness) != "vfio-pci"  # released (the kernel may probe its own driver)
    r = harness.run_frontend(users.op, "gpu", "bind", GPU)  # back for the next tests
    assert r.rc == 0 and driver(harness) == "vfio-pci", r


def test_a_gpu_job_while_a_start_holds_the_device_is_busy(harness, users, kernel):
    gate = harness.root / "gate"
    start, start_result = in_background(
        harness.gdbus_call, users.op, "io.lium.Cvm1.Manager.StartVm", VM, "uint64 0")
    try:
        wait_for((gate / "probing").exists, "the start to reach its QEMU probe")
        r = unbind(harness, users)
        assert r.rc == 1 and r.error_name == BUSY, r
        assert f"device:{GPU} is busy with 'start of VM {VM}'" in r.json["error"], r
        assert driver(harness) == "vfio-pci"
    finally:
        (gate / "open").touch()
    start.join()
    r = start_result["r"]
    if r.rc != 0 and "spawn failed at step RLIMIT_MEMLOCK" in r.stderr:
        NO_MEMLOCK.append(r.stderr.strip())  # the start got past every lock: only QEMU failed
    else:
        assert r.rc == 0, r


def test_a_gpu_job_while_the_vm_runs_is_refused_naming_it(harness, users, kernel):
    if NO_MEMLOCK:
        pytest.skip(f"this machine cannot give QEMU the RLIMIT_MEMLOCK of a VFIO guest (no "
                    f"CAP_SYS_RESOURCE), so no VM with a GPU runs here: {NO_MEMLOCK[0]}")
    assert props(harness, VM)["Pid"] > 0
    before = fakepci.snapshot(str(harness.root))
    r = unbind(harness, users)
    assert r.rc == 1 and r.error_name == DEVICE_IN_USE, r
    assert f"{GPU} belongs to VM {VM} while it runs" in r.json["error"], r
    r = harness.gdbus_call(users.op, "QueryGpuMode", GPU)
    assert r.rc != 0 and "DeviceInUse" in r.stderr, r
    assert fakepci.snapshot(str(harness.root)) == before
    assert driver(harness) == "vfio-pci"


def test_once_the_vm_stopped_the_gpu_job_succeeds(harness, users, kernel):
    if not NO_MEMLOCK:
        r = harness.run_frontend(users.op, "stop", VM, "--force", timeout=120)
        assert r.rc == 0, r
    # Stopped, or its start failed: either way the start's lock and reservation are gone.
    r = unbind(harness, users)
    assert r.rc == 0, r
    assert driver(harness) != "vfio-pci"  # released (the kernel may probe its own driver)
