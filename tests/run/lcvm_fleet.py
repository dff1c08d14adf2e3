# SPDX-License-Identifier: MIT
"""The host the fleet tests (test_fleet_metrics.py, test_fleet_ansible.py) manage: the fake HGX
host of tests/fakes/fakepci.py with its kernel simulator running (binds, resets), the fake
gpu-admin-tools installed root-owned as an operator would, the e2e guest as OS image "guest"
(lcvm_vms.write_image), the real QEMU under TCG (allow_no_tee), and the key provider as fake
docker + fake provider (tests/fakes). Used by a module's prepare_harness(h, guest) before the
helper starts."""

import json
import os
import shutil
import subprocess
import sys
import time

import lcvm_harness as lh
from lcvm_vms import write_image

FAKES = lh.SOURCE_ROOT / "tests" / "fakes"
sys.path.insert(0, str(FAKES))
import fake_key_provider  # noqa: E402
import fakehost  # noqa: E402
import fakepci  # noqa: E402

QEMU = "/usr/bin/qemu-system-x86_64"
PCI = "sys/bus/pci/devices"


# The SGX key provider: fake docker (its state in tools/fake-docker.json: the prebuilt images
# exist, the enclave logs say PRODUCTION mode) and a fake provider speaking the wire format.
KEY_PROVIDER = fake_key_provider.FakeKeyProvider("normal").start()
DOCKER_STATE = {
    "images": {"lium-aesmd:local": "sha256:" + "a" * 64,
               "lium-key-provider:local": "sha256:" + "b" * 64},
    "containers": {},
    "logs": {"aesmd": ["aesm_service[10]: The server sock is 0x5581"],
             "gramine-sealing-key-provider": ["Enclave started in PRODUCTION mode"]},
    "calls": [],
}


def harness_config(extra=None):
    config = {
        "key-provider": {"address": KEY_PROVIDER.address},
        "qemu": {"path": QEMU, "allow_no_tee": "true", "accel": "tcg"},
        "paths": {"dstack_client_conf": ""},
        "helper": {"bind_timeout": 5},
        "tools": {"gpu_admin_tools_timeout": 4},
    }
    for group, keys in (extra or {}).items():
        config.setdefault(group, {}).update(keys)
    return config


def prepare_fleet_host(h, guest):
    """Builds the fake host under h.root, starts its kernel simulator (the harness kills it at
    teardown with everything else it started) and installs the fake gpu-admin-tools."""
    for top in (h.sysfs, h.dev, h.proc):
        shutil.rmtree(top)
        top.mkdir()
    fakepci.build(str(h.root))
    fakehost.host_facts(str(h.root))
    ready = h.root / "kernel.ready"
    subprocess.Popen([sys.executable, fakepci.__file__, "simulate", str(h.root), "--delay", "0.02",
                      "--ready-file", str(ready)])
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline, "the kernel simulator did not start"
        time.sleep(0.01)
    tools = h.tools_dir / "gpu-admin-tools"
    tools.mkdir(mode=0o755)
    shutil.copy(FAKES / "fake-gpu-admin-tools", tools / "nvidia_gpu_tools.py")
    (tools / "nvidia_gpu_tools.py").chmod(0o755)
    (tools / "fake-gpu-admin-tools.json").write_text(
        json.dumps({"root": str(h.root), "fakes": str(FAKES)}))
    (tools / "fake-gpu-admin-tools.json").chmod(0o644)
    h.extra_config.setdefault("tools", {})["gpu_admin_tools"] = str(tools / "nvidia_gpu_tools.py")
    write_image(h, guest, "guest")
    shutil.copy(FAKES / "fake-docker", h.tools_dir / "docker")
    (h.tools_dir / "docker").chmod(0o755)
    (h.tools_dir / "fake-docker.json").write_text(json.dumps(DOCKER_STATE))
    shutil.copy(lh.SOURCE_ROOT / "data" / "key-provider" / "docker-compose.yml",
                h.root / "key-provider" / "docker-compose.yml")


def driver(h, slot):
    link = h.root / PCI / slot / "driver"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def firmware(h, slot):
    """The fake device's CC/PPCIe state ({"cc": …, "ppcie": …, …})."""
    return fakepci.fw_load(os.path.realpath(h.root / PCI / slot))
