# SPDX-License-Identifier: MIT
"""The validation a start runs, through Manager.DryRun on the real bus, polkitd and helper, on
the fake 2-socket, 224-CPU, 2 TiB HGX host of tests/fakes/fakepci.py and fakehost.py: devices
must be NVIDIA, of the kind the definition says and bound to vfio-pci; forwards must be inside
port_range, off reserved_ports and the host-API range, and free; memory and vCPUs within
[limits] and the host. A dry run prints the argv all the same and lists EVERY refusal (exit 1);
each names what to do, and nothing in state_dir or runtime_dir changes.

(The instance assembly a start performs after this validation is tested as root in
tests/unit/test-instance.c: no D-Bus method calls it yet.)
"""

import os
import shutil
import socket
import sys

import pytest

import lcvm_harness as lh
from test_dryrun import QEMU, expected_argv, tree, write_image, write_vm

sys.path.insert(0, str(lh.SOURCE_ROOT / "tests" / "fakes"))
import fakehost  # noqa: E402
import fakepci  # noqa: E402

MAX_VCPUS = 64
HARNESS_CONFIG = {
    "qemu": {"path": QEMU},
    "paths": {"dstack_client_conf": "", "proc_root": "/proc"},
    "limits": {"max_vcpus": MAX_VCPUS, "max_memory": "4G"},
}
INVALID_ARGUMENT = lh.ERROR_PREFIX + "InvalidArgument"
NOT_FOUND = lh.ERROR_PREFIX + "NotFound"
BUSY = lh.ERROR_PREFIX + "Busy"
DEVICE_IN_USE = lh.ERROR_PREFIX + "DeviceInUse"
FAILED = lh.ERROR_PREFIX + "Failed"

VFIO_GPU = "0000:db:00.0"       # no driver on the fake host; bound to vfio-pci below
VFIO_NVSWITCH = "0000:07:00.0"  # likewise
NVIDIA_GPU = "0000:19:00.0"     # on the nvidia driver
NIC = "0000:2a:00.0"            # a ConnectX NIC: not NVIDIA
ABSENT = "0000:ee:00.0"

pytestmark = pytest.mark.skipif(not os.path.exists(QEMU),
                                reason=f"{QEMU} missing (apt-get install qemu-system-x86)")


def prepare_harness(h):
    for top in (h.sysfs, h.dev, h.proc):
        shutil.rmtree(top)
        top.mkdir()
    fakepci.build(str(h.root))
    fakehost.host_facts(str(h.root))
    kernel = fakepci.Kernel(str(h.root))
    for slot in (VFIO_GPU, VFIO_NVSWITCH):
        kernel.do_bind(slot, "vfio-pci")
    write_image(h)


def port_forward(port):
    return [{"protocol": "tcp", "address": "0.0.0.0", "host_port": port, "guest_port": 22}]


def dry_run(harness, users, name):
    """DryRun of `name` as the operator (--json); not a single file created or changed."""
    before = tree(harness.state_dir, harness.runtime_dir)
    r = harness.run_frontend(users.op, "--json", "run", name, "--dry-run")
    assert tree(harness.state_dir, harness.runtime_dir) == before
    assert list((harness.state_dir / "instances").iterdir()) == []
    return r


def refused(harness, users, name, error_name, *fragments):
    """The dry run still shows the argv, exits 1, and lists a refusal error_name whose message
    holds every fragment; returns that message."""
    r = dry_run(harness, users, name)
    assert r.rc == 1, r
    assert r.json["argv"][0] == QEMU and "-append" in r.json["argv"], r
    found = [x["message"] for x in r.json["refusals"]
             if x["error_name"] == error_name and all(f in x["message"] for f in fragments)]
    assert found, r.json["refusals"]
    return found[0]


def failed(harness, users, name, error_name, fragment):
    """Nothing to show: the definition itself is refused, an error and no argv."""
    r = dry_run(harness, users, name)
    assert r.rc == 1 and r.error_name == error_name, r
    assert fragment in r.json["error"] and "argv" not in r.json, r


def free_port_outside(excluded):
    """A TCP port nothing listens on, outside the given (min, max) range."""
    while True:
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if not excluded[0] <= port <= excluded[1]:
            return port


# ---- passed-through devices ----------------------------------------------------------------


def test_vfio_bound_gpu_and_nvswitch_pass_validation(harness, users):
    write_vm(harness, "gpus-ok", extra={"gpus": [VFIO_GPU], "nvswitches": [VFIO_NVSWITCH]})
    r = harness.run_frontend(users.op, "run", "gpus-ok", "--dry-run")
    assert r.rc == 0, r
    argv = r.stdout.split("\n")[:-1]
    assert argv[:argv.index("-append")] == expected_argv(harness, "gpus-ok")[:-2] + [
        "-device", "pcie-root-port,id=pci.1,bus=pcie.0,chassis=1",
        "-device", f"vfio-pci,host={VFIO_GPU},bus=pci.1",
        "-device", "pcie-root-port,id=pci.2,bus=pcie.0,chassis=2",
        "-device", f"vfio-pci,host={VFIO_NVSWITCH},bus=pci.2",
    ]


def test_gpu_not_bound_to_vfio_is_refused_naming_the_bind_command(harness, users):
    write_vm(harness, "gpu-nvidia", extra={"gpus": [NVIDIA_GPU]})
    refused(harness, users, "gpu-nvidia", INVALID_ARGUMENT,
            f"GPU {NVIDIA_GPU} is bound to nvidia, not vfio-pci",
            f"lium-cvm gpu bind {NVIDIA_GPU}")


def test_foreign_slot_is_refused(harness, users):
    write_vm(harness, "gpu-foreign", extra={"gpus": [NIC]})
    refused(harness, users, "gpu-foreign", INVALID_ARGUMENT,
            f"{NIC} is not an NVIDIA GPU or NVSwitch (vendor 0x15b3")


def test_absent_slot_is_not_found(harness, users):
    write_vm(harness, "gpu-absent", extra={"gpus": [ABSENT]})
    refused(harness, users, "gpu-absent", NOT_FOUND, f"GPU {ABSENT} is not on this host's PCI bus")


def test_nvswitch_listed_as_gpu_is_refused(harness, users):
    write_vm(harness, "gpu-kind", extra={"gpus": [VFIO_NVSWITCH]})
    refused(harness, users, "gpu-kind", INVALID_ARGUMENT,
            f"lists {VFIO_NVSWITCH} as a GPU, but it is an NVSwitch")


def test_gpu_held_open_by_a_process_is_in_use(harness, users):
    write_vm(harness, "gpu-held", extra={"gpus": [VFIO_GPU]})
    group = os.path.basename(os.readlink(harness.sysfs / "bus/pci/devices" / VFIO_GPU /
                                         "iommu_group"))
    node = harness.dev / "vfio" / group
    with open(node, "rb"):
        refused(harness, users, "gpu-held", DEVICE_IN_USE,
                f"GPU {VFIO_GPU} is in use: process {os.getpid()}", str(node))


# ---- forwarded ports -----------------------------------------------------------------------


def test_forward_on_a_reserved_port_is_refused(harness, users):
    write_vm(harness, "port-3443", extra={"ports": port_forward(3443)})
    refused(harness, users, "port-3443", INVALID_ARGUMENT,
            "host port 3443 is reserved on this host ([limits] reserved_ports)")


def test_forward_inside_the_host_api_range_is_refused(harness, users):
    write_vm(harness, "port-hostapi", extra={"ports": port_forward(40001)})
    refused(harness, users, "port-hostapi", INVALID_ARGUMENT,
            "host port 40001 is inside the host-API port range 40000-40999")


def test_forward_on_a_port_in_use_is_busy(harness, users):
    port = free_port_outside((40000, 40999))
    write_vm(harness, "port-taken", extra={"ports": port_forward(port)})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        refused(harness, users, "port-taken", BUSY, f"tcp port {port} is in use on 0.0.0.0")
    r = harness.run_frontend(users.op, "run", "port-taken", "--dry-run")
    assert r.rc == 0, r
    assert f"user,id=nic0_td,hostfwd=tcp:0.0.0.0:{port}-:22" in r.stdout.split("\n")


# ---- memory and vCPUs ----------------------------------------------------------------------


def test_memory_over_the_limit_is_refused(harness, users):
    write_vm(harness, "mem-over", extra={"memory": 8 << 30})
    refused(harness, users, "mem-over", INVALID_ARGUMENT,
            "8192 MiB of memory exceed this host's limit of 4096 MiB ([limits] max_memory)")


def test_vcpus_over_the_limit_are_refused(harness, users):
    write_vm(harness, "vcpus-over", extra={"vcpus": MAX_VCPUS + 1})
    refused(harness, users, "vcpus-over", INVALID_ARGUMENT,
            f"{MAX_VCPUS + 1} vCPUs exceed this host's limit of {MAX_VCPUS} ([limits] max_vcpus)")


def test_vcpus_over_the_host_cpus_are_refused_with_every_other_reason(harness, users):
    write_vm(harness, "vcpus-host", extra={"vcpus": 225})
    message = refused(harness, users, "vcpus-host", INVALID_ARGUMENT,
                      "225 vCPUs exceed the 224 CPUs this host has online", "CVM_VCPUS=224")
    assert "limit" not in message
    refused(harness, users, "vcpus-host", INVALID_ARGUMENT, "([limits] max_vcpus)")


def test_memory_over_the_host_is_refused(harness, users):
    harness.restart_helper({"limits": {"max_memory": "0"}})
    try:
        write_vm(harness, "mem-host", extra={"memory": 3 << 40})
        refused(harness, users, "mem-host", INVALID_ARGUMENT,
                "3145728 MiB of memory exceed the 2097152 MiB this host has", "CVM_MEMORY=2048G")
    finally:
        harness.restart_helper({"limits": {"max_memory": "4G"}})


def test_dry_run_answers_for_a_host_that_could_never_run_the_vm(harness, users):
    write_vm(harness, "hopeless", extra={"gpus": [NVIDIA_GPU, ABSENT], "vcpus": 300,
                                         "memory": 8 << 30, "ports": port_forward(3443)})
    r = dry_run(harness, users, "hopeless")
    assert r.rc == 1, r
    messages = [x["message"] for x in r.json["refusals"]]
    assert len(messages) == 6, messages
    for fragment in ("([limits] max_vcpus)", "([limits] max_memory)",
                     "host port 3443 is reserved", "300 vCPUs exceed the 224 CPUs",
                     f"GPU {NVIDIA_GPU} is bound to nvidia, not vfio-pci",
                     f"GPU {ABSENT} is not on this host's PCI bus"):
        assert any(fragment in m for m in messages), (fragment, messages)
    assert f"vfio-pci,host={NVIDIA_GPU},bus=pci.1" in r.json["argv"]
    # Text: the argv on stdout, the refusals on stderr, one per line.
    t = harness.run_frontend(users.op, "run", "hopeless", "--dry-run")
    assert t.rc == 1 and t.stdout.split("\n")[:-1] == r.json["argv"], t
    assert "`lium-cvm run hopeless` would be refused on this host:" in t.stderr
    assert t.stderr.count("\n  - ") == 6, t.stderr


def test_host_facts_come_from_sysfs_root(harness, users):
    online = harness.sysfs / "devices/system/cpu/online"
    write_vm(harness, "small-host", extra={"vcpus": 4})
    assert dry_run(harness, users, "small-host").rc == 0
    online.write_text("0-1\n")
    try:
        refused(harness, users, "small-host", INVALID_ARGUMENT,
                "4 vCPUs exceed the 2 CPUs this host has online")
        online.unlink()
        refused(harness, users, "small-host", FAILED, "the host's CPUs are unknown",
                "devices/system/cpu/online")
    finally:
        online.write_text("0-223\n")


# ---- the definition's files ----------------------------------------------------------------


def test_fifo_in_place_of_the_compose_file_is_refused_without_blocking(harness, users):
    d = write_vm(harness, "fifo")
    (d / "app-compose.json").unlink()
    os.mkfifo(d / "app-compose.json", 0o660)
    failed(harness, users, "fifo", INVALID_ARGUMENT, "app-compose.json is not a regular file")
