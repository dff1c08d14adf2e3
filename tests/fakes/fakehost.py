#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fake hosts for `lium-cvm check`: proc/, sys/, dev/, a state dir, a dstack client.conf, a fake
QEMU and docker, and the lium-cvm.conf that points the real binary at them.

Kinds:
  ready             a TDX host ready to run VMs: 2 sockets, 224 CPUs, 2 TiB, Granite Rapids, TDX module 2.0 build 882
                    initialised, kvm_intel tdx=Y, SGX nodes, IOMMU on, vfio loaded with the DMA
                    limit, 8 GPUs + 4 NVSwitches on vfio-pci (fakepci.py's HGX tree) with CC mode
                    on in the helper's cache (state/gpu-modes.json), the dstack QEMU 9.2.1, an OS
                    image with a valid digest, docker + compose
  bare-vm           a VM like the one the tests run on: AMD CPU, no kvm_intel, no IOMMU, no
                    vfio, no GPU, no SGX, distro QEMU 7.2 in PATH only, no image, no docker
  iommu-off-nvidia  the ready host booted without intel_iommu=on: no IOMMU groups, vfio not
                    loaded, GPUs and NVSwitches on nvidia
  numa-mismatch     the ready host with firmware that declares more NUMA nodes than are online
  distro-qemu       the ready host whose client.conf names a distro QEMU 10.1
  tdx-off           the ready host with the TDX SEAM loader off in BIOS: no tdx_host_platform,
                    kvm_intel tdx=N, "virt/tdx: module not loaded" in the kernel log

Device nodes are symlinks to /dev/null (a character device nobody needs root to create).

Usage: fakehost.py KIND ROOT [--key-provider HOST:PORT]   (prints the config path)
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakepci  # noqa: E402

KINDS = ("ready", "bare-vm", "iommu-off-nvidia", "numa-mismatch", "distro-qemu", "tdx-off")
IMAGE = "dstack-nvidia-0.5.11"

INTEL_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 173
model name\t: Intel(R) Xeon(R) 6960P
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr vmx smx est sgx sgx_lc {tdx}
bugs\t\t: spectre_v1 spectre_v2

processor\t: 1
vendor_id\t: GenuineIntel
"""

AMD_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep svm

"""

READY_CMDLINE = ("BOOT_IMAGE=/vmlinuz-6.14.0-1009-intel root=/dev/sda2 ro kvm_intel.tdx=on "
                 "intel_iommu=on iommu=pt nohibernate vfio-pci.ids=10de:2335,10de:2330,10de:22a3 "
                 "vfio_iommu_type1.dma_entry_limit=16777216\n")

READY_KMSG = [
    "x86/tme: enabled by BIOS",
    "virt/tdx: BIOS enabled: private KeyID range [32, 64)",
    "virt/tdx: TDX module: attributes 0x0, vendor_id 0x8086, major_version 2, minor_version 0, "
    "build_date 20250101, build_num 882",
    "virt/tdx: 1034220 KB allocated for PAMT",
    "virt/tdx: module initialized",
]


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def kmsg_records(messages):
    """/dev/kmsg records, with a continuation line after each like the kernel writes."""
    out = []
    for seq, m in enumerate(messages):
        out.append("6,%d,%d,-;%s\n SUBSYSTEM=virt\n" % (seq + 100, 1000000 + seq, m))
    return "".join(out)


def node(root, name):
    path = os.path.join(root, "dev", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink("/dev/null", path)


def fake_program(path, stdout_line, counter=None):
    """A shell script that prints one line (and counts its runs in counter)."""
    count = 'echo x >> "%s"\n' % counter if counter else ""
    write(path, "#!/bin/sh\n%secho '%s'\n" % (count, stdout_line), 0o755)


def bind_all_to_vfio(root):
    """Moves every NVIDIA device's driver link to vfio-pci, as binding would."""
    sysdir = os.path.join(root, "sys")
    devices = os.path.join(sysdir, "bus", "pci", "devices")
    vfio = os.path.join(sysdir, "bus", "pci", "drivers", "vfio-pci")
    for slot in os.listdir(devices):
        d = os.path.realpath(os.path.join(devices, slot))
        with open(os.path.join(d, "vendor")) as f:
            if f.read().strip() != "0x10de":
                continue
        link = os.path.join(d, "driver")
        if os.path.lexists(link):
            old = os.path.realpath(link)
            os.remove(link)
            if os.path.lexists(os.path.join(old, slot)):
                os.remove(os.path.join(old, slot))
        os.symlink(vfio, link)
        os.symlink(d, os.path.join(vfio, slot))


def write_image(state):
    d = os.path.join(state, "images", IMAGE)
    files = {"ovmf.fd": "firmware", "bzImage": "kernel", "initramfs.cpio.gz": "initrd",
             "metadata.json": '{"bios": "ovmf.fd", "kernel": "bzImage", '
                              '"initrd": "initramfs.cpio.gz", "version": "0.5.11"}\n'}
    sums = ""
    for name, text in files.items():
        write(os.path.join(d, name), text)
        sums += "%s  %s\n" % (hashlib.sha256(text.encode()).hexdigest(), name)
    write(os.path.join(d, "sha256sum.txt"), sums)
    digest = hashlib.sha256(sums.encode()).hexdigest()
    write(os.path.join(d, "digest.txt"), digest + "\n")
    write_known_good(os.path.join(os.path.dirname(state), "etc", "lium-cvm", "known-good.conf"),
                     digest)


def write_known_good(path, *digests):
    """The shipped known-good list with more accepted digests of its image (the fake images')."""
    with open(KNOWN_GOOD) as f:
        text = f.read()
    marker = "[image %s]\ndigests=" % IMAGE
    assert marker in text, "the shipped known-good list lost its %s entry" % IMAGE
    write(path, text.replace(marker, marker + "".join(d + ";" for d in digests)))


def write_gpu_modes(state, cc="on", ppcie="off", switch_ppcie="off", skip=()):
    """The helper's GPU mode cache: every GPU with cc/ppcie, every NVSwitch with switch_ppcie."""
    devices = {}
    for slot, _device, _numa, _driver in fakepci.GPUS:
        devices[slot] = {"kind": "gpu", "cc": cc, "ppcie": ppcie}
    for slot, _numa, _driver in fakepci.NVSWITCHES:
        devices[slot] = {"kind": "nvswitch", "cc": "unsupported", "ppcie": switch_ppcie}
    for slot in devices:
        devices[slot].update(queried_at=1764240000, broken=False)
    for slot in skip:
        del devices[slot]
    write(os.path.join(state, "gpu-modes.json"), json.dumps({"version": 1, "devices": devices}))


# Intel's sgx_default_qcnl.conf layout (// comments, leading commas), set for a local PCCS.
QCNL_CONF = """{
  // *** ATTENTION : This file is in JSON format so the keys are case sensitive. Don't change them.

  //PCCS server address
  "pccs_url": "https://localhost:8081/sgx/certification/v4/"

  // To accept insecure HTTPS certificate, set this option to false
  ,"use_secure_cert": false

  //,"collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/"
  ,"retry_times": 6
  ,"retry_delay": 10
  ,"local_cache_only": false
}
"""


TIB = 1 << 40


def host_facts(root, cpus="0-223", node_bytes=(TIB, TIB)):
    """The CPUs and memory the helper reads from sysfs_root: by default a 2-socket HGX host,
    224 CPUs online (56 cores x 2 threads per socket) and 1 TiB per NUMA node."""
    system = os.path.join(root, "sys", "devices", "system")
    write(os.path.join(system, "cpu", "online"), cpus + "\n")
    last = len(node_bytes) - 1
    write(os.path.join(system, "node", "online"), "0\n" if last == 0 else "0-%d\n" % last)
    for n, size in enumerate(node_bytes):
        write(os.path.join(system, "node", "node%d" % n, "meminfo"),
              "Node %d MemTotal:       %d kB\nNode %d MemFree:        %d kB\n"
              % (n, size >> 10, n, size >> 11))


def intel_host(root, tdx=True):
    """Everything but the PCI devices for a TDX host (fakepci provides those)."""
    sysdir, proc = os.path.join(root, "sys"), os.path.join(root, "proc")
    write(os.path.join(proc, "cpuinfo"), INTEL_CPUINFO.format(tdx="tdx_host_platform" if tdx else ""))
    write(os.path.join(proc, "cmdline"), READY_CMDLINE)
    write(os.path.join(proc, "sys", "kernel", "osrelease"), "6.14.0-1009-intel\n")
    write(os.path.join(proc, "mounts"), "hugetlbfs /dev/hugepages hugetlbfs rw,pagesize=1024M 0 0\n")
    write(os.path.join(sysdir, "module", "kvm_intel", "parameters", "tdx"), "Y\n" if tdx else "N\n")
    write(os.path.join(sysdir, "module", "vfio_iommu_type1", "parameters", "dma_entry_limit"),
          "16777216\n")
    write(os.path.join(sysdir, "devices", "system", "node", "possible"), "0-1\n")
    host_facts(root)
    huge = os.path.join(sysdir, "kernel", "mm", "hugepages", "hugepages-1048576kB")
    write(os.path.join(huge, "nr_hugepages"), "64\n")
    write(os.path.join(huge, "free_hugepages"), "64\n")
    for n in ("kvm", "sgx_enclave", "sgx_provision", "sgx_vepc"):
        node(root, n)
    messages = READY_KMSG if tdx else [
        "x86/tme: enabled by BIOS", "virt/tdx: module not loaded",
        "kvm_intel: TDX not supported by the host platform"]
    write(os.path.join(root, "dev", "kmsg"), kmsg_records(messages))
    write_image(os.path.join(root, "state"))
    write_gpu_modes(os.path.join(root, "state"))
    write(os.path.join(root, "etc", "modprobe.d", "vfio-dma.conf"),
          "options vfio_iommu_type1 dma_entry_limit=16777216\n")
    qemu = os.path.join(root, "opt", "qemu-dstack", "bin", "qemu-system-x86_64")
    fake_program(qemu, "QEMU emulator version 9.2.1 (v9.2.1-dstack)",
                 os.path.join(root, "qemu-runs"))
    write(os.path.join(root, "etc", "dstack", "client.conf"), "[qemu]\npath = %s\n" % qemu)
    write(os.path.join(root, "etc", "sgx_default_qcnl.conf"), QCNL_CONF)
    fake_program(os.path.join(root, "usr", "bin", "docker"), "Docker version 27.5.1")
    fake_program(os.path.join(root, "usr", "libexec", "docker", "cli-plugins", "docker-compose"),
                 "Docker Compose version v2.32.4")


def bare_vm(root):
    sysdir, proc = os.path.join(root, "sys"), os.path.join(root, "proc")
    write(os.path.join(proc, "cpuinfo"), AMD_CPUINFO)
    write(os.path.join(proc, "cmdline"), "console=ttyS0 quiet panic=1 -- --init-arg\n")
    write(os.path.join(proc, "sys", "kernel", "osrelease"), "6.1.0-28-amd64\n")
    write(os.path.join(proc, "mounts"), "proc /proc proc rw 0 0\n")
    os.makedirs(os.path.join(sysdir, "bus", "pci", "devices"))
    os.makedirs(os.path.join(sysdir, "class", "iommu"))
    write(os.path.join(sysdir, "devices", "system", "node", "possible"), "0\n")
    host_facts(root, cpus="0-1", node_bytes=(4 << 30,))
    write(os.path.join(root, "dev", "kmsg"), kmsg_records(["Linux version 6.1.0-28-amd64"]))
    node(root, "kvm")
    os.makedirs(os.path.join(root, "state"))
    os.makedirs(os.path.join(root, "etc", "modprobe.d"))
    fake_program(os.path.join(root, "bin", "qemu-system-x86_64"),
                 "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)")


def unload_vfio(root):
    for m in ("vfio", "vfio_pci", "vfio_iommu_type1"):
        shutil.rmtree(os.path.join(root, "sys", "module", m), ignore_errors=True)
    shutil.rmtree(os.path.join(root, "sys", "bus", "pci", "drivers", "vfio-pci"))
    os.remove(os.path.join(root, "etc", "modprobe.d", "vfio-dma.conf"))


# The shipped known-good list (data/known-good.conf of this source tree).
KNOWN_GOOD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "data", "known-good.conf")


def config(root, key_provider, qemu_path=""):
    """lium-cvm.conf for the fake host; returns its path."""
    r = os.path.abspath(root)
    known_good = os.path.join(r, "etc", "lium-cvm", "known-good.conf")
    if not os.path.exists(known_good):
        known_good = KNOWN_GOOD
    text = """[paths]
state_dir={r}/state
runtime_dir={r}/run
hugepages_dir=/dev/hugepages
sysfs_root={r}/sys
dev_root={r}/dev
proc_root={r}/proc
modules_load_dir={r}/etc/modules-load.d
modprobe_dir={r}/etc/modprobe.d
dstack_client_conf={r}/etc/dstack/client.conf
qcnl_conf={r}/etc/sgx_default_qcnl.conf

[qemu]
path={qemu}

[tools]
docker={r}/usr/bin/docker
gpu_admin_tools=
journalctl={r}/usr/bin/journalctl
mpa_manage={r}/opt/intel/sgx-ra-service/mpa_manage

[key-provider]
address={kp}
compose_dir={r}/etc/lium-cvm/key-provider

[attestation]
known_good={kg}
""".format(r=r, kp=key_provider, qemu=qemu_path, kg=known_good)
    path = os.path.join(r, "lium-cvm.conf")
    write(path, text)
    return path


def build(kind, root, key_provider="127.0.0.1:9"):
    """Builds a fake host of the given kind under root; returns the config path."""
    if kind not in KINDS:
        raise ValueError("unknown kind %s (one of %s)" % (kind, ", ".join(KINDS)))
    root = os.path.abspath(root)
    os.makedirs(root, exist_ok=True)
    if kind == "bare-vm":
        bare_vm(root)
        return config(root, key_provider)
    fakepci.build(root, iommu=(kind != "iommu-off-nvidia"))
    intel_host(root, tdx=(kind != "tdx-off"))
    if kind == "iommu-off-nvidia":
        write(os.path.join(root, "proc", "cmdline"),
              "BOOT_IMAGE=/vmlinuz-6.14.0-1009-intel root=/dev/sda2 ro nohibernate\n")
        unload_vfio(root)
    else:
        bind_all_to_vfio(root)
    if kind == "numa-mismatch":
        write(os.path.join(root, "sys", "devices", "system", "node", "possible"), "0-19\n")
    if kind == "distro-qemu":
        qemu = os.path.join(root, "usr", "bin", "qemu-system-x86_64")
        fake_program(qemu, "QEMU emulator version 10.1.0 (Debian 1:10.1.0+ds-5ubuntu2)")
        write(os.path.join(root, "etc", "dstack", "client.conf"), "[qemu]\npath = %s\n" % qemu)
    return config(root, key_provider)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("root")
    ap.add_argument("--key-provider", default="127.0.0.1:9")
    a = ap.parse_args()
    print(build(a.kind, a.root, a.key_provider))


if __name__ == "__main__":
    main()
