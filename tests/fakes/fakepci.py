#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake HGX-like host under one directory, and a small kernel simulator for it.

ROOT/sys   sysfs: bus/pci/{devices,drivers,drivers_probe}, devices/pci0000:XX/…, kernel/iommu_groups,
           class/iommu, module/{vfio,vfio_pci,vfio_iommu_type1}
ROOT/dev   vfio/vfio, iommu (with an IOMMU), vfio/devices/, vfio/GROUP and vfio/devices/vfioN
           while bound, nvidiaN
ROOT/proc  cmdline, driver/nvidia/gpus/SLOT/information
ROOT/fake-kernel.json   what the simulator needs to know (native drivers, dynamic ids)

The host: 8 GPUs (4 H200 on NUMA node 0, 4 H100 on node 1), 4 NVSwitches, a root port above
every endpoint, a ConnectX NIC, IOMMU groups of their own except two shared ones: GPU
0000:bb:00.0 with its bridge (viable) and GPU 0000:cb:00.0 with a NIC function (not viable
while the NIC is on mlx5_core). Six GPUs and two NVSwitches are on `nvidia`, the rest on none.

The simulator watches the attribute files with inotify and, like the kernel, reacts to writes
of driver_override, drivers/X/unbind, drivers/X/bind, drivers_probe, drivers/X/new_id and
remove_id: moves the `driver` link, creates vfio-dev/vfioN and dev/vfio/N. It acts `delay`
seconds after the write, so callers must wait for the effect. Modes: "normal"; "never" (vfio-pci
never binds); "fail-after=N" (the first N vfio-pci binds work, later ones never complete).
It also acts on a device's `reset` (at once, as the kernel's write returns only after the reset),
`remove` (the device leaves the bus, its driver released) and bus/pci/rescan (removed devices
come back with driver_override cleared and a driver probed).

Resets follow the kernel (drivers/pci/pci.c, pci-sysfs.c, quirks.c): every endpoint has a
`reset_method` listing its methods ("flr bus\n" when a bus reset is possible, else "flr\n").
Writing names selects them, but only if each one's probe passes: `bus` is refused (the list
stays as it was) for a device on a root bus, one flagged NO_BUS_RESET (NVIDIA 0x2340-0x237f
and 0x1eb8) and one that is not the only device on its bus; `default` restores the kernel's
list; an empty write disables reset. The simulator shows the new list with a newline when it
has acted (a writer that writes without one can wait for that). A `reset` tries the methods
in order: `flr` is a function reset, `bus` sets the Bridge Control SBR bit (0x40 at 0x3e) of
the device's bridge, clears it again and resets the device (this alone clears a stale SPDM
session, fw `spdm_stale`). Root ports carry their bus numbers and a Bridge Control word in
their config space. Every reset_method request, refusal and reset is appended to
ROOT/fake-kernel.log (JSON lines; kernel_log() reads it).

GPU firmware state (CC/PPCIe modes, read and set by tests/fakes/fake-gpu-admin-tools) lives in
DEVICE/.fake-fw.json (fw_load/fw_save): a reset makes pending modes active and, while
`break_on_reset` > 0, leaves the device broken; a remove + rescan repairs it.

Usage: fakepci.py build ROOT [--no-iommu] [--nic-sibling-unbound]
       fakepci.py simulate ROOT [--delay S] [--mode MODE]
       fakepci.py snapshot ROOT          (prints a JSON snapshot of sys/ and dev/)
"""
import argparse
import ctypes
import heapq
import json
import os
import re
import select
import signal
import struct
import sys
import time

NVIDIA = 0x10DE
H200, H100, NVSWITCH = 0x2335, 0x2330, 0x22A3

# slot, vendor, device, class, numa node, driver ("" = none), subsystem device
GPUS = [
    ("0000:19:00.0", H200, 0, "nvidia"), ("0000:3b:00.0", H200, 0, "nvidia"),
    ("0000:4c:00.0", H200, 0, "nvidia"), ("0000:5d:00.0", H200, 0, "nvidia"),
    ("0000:9b:00.0", H100, 1, "nvidia"), ("0000:bb:00.0", H100, 1, ""),
    ("0000:cb:00.0", H100, 1, "nvidia"), ("0000:db:00.0", H100, 1, ""),
]
NVSWITCHES = [
    ("0000:05:00.0", 0, "nvidia"), ("0000:06:00.0", 0, "nvidia"),
    ("0000:07:00.0", 0, ""), ("0000:08:00.0", 0, ""),
]
NIC = ("0000:2a:00.0", 0x15B3, 0x1021, 0)          # ConnectX-7, own group
NIC_SIBLING = ("0000:cb:00.1", 0x15B3, 0x1021, 1)  # shares GPU 0000:cb:00.0's group
SHARED_BRIDGE_GPU = "0000:bb:00.0"                 # its bridge is in its group
BRIDGE_CONTROL = 0x3E
BRIDGE_CTL_BUS_RESET = 0x40
ROOT_PORT_BRIDGE_CONTROL = 0x0012                  # SERR# enable, VGA 16-bit decode
SLOT_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
KERNEL_LOG = "fake-kernel.log"


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _link(target, name):
    os.symlink(os.path.relpath(target, os.path.dirname(name)), name)


def _config_space(vendor, device, cls, rev, sub_vendor, sub_device, header, command):
    cfg = bytearray(256)
    struct.pack_into("<HHHH", cfg, 0, vendor, device, command, 0x0010 if header == 0 else 0)
    cfg[8] = rev
    cfg[9] = cls & 0xFF
    cfg[10] = (cls >> 8) & 0xFF
    cfg[11] = (cls >> 16) & 0xFF
    cfg[0x0E] = header
    if header == 0:
        struct.pack_into("<HH", cfg, 0x2C, sub_vendor, sub_device)
    return bytes(cfg)


class Builder:
    def __init__(self, root, iommu=True, nic_sibling_driver="mlx5_core", device_ids=None):
        self.root = os.path.abspath(root)
        self.device_ids = device_ids or {}
        self.sys = os.path.join(self.root, "sys")
        self.dev = os.path.join(self.root, "dev")
        self.proc = os.path.join(self.root, "proc")
        self.iommu = iommu
        self.nic_sibling_driver = nic_sibling_driver
        self.next_group = 0
        self.groups = {}
        self.native = {}
        self.minor = 0

    def path(self, *parts):
        return os.path.join(self.sys, *parts)

    def driver_dir(self, name):
        d = self.path("bus", "pci", "drivers", name)
        if not os.path.isdir(d):
            os.makedirs(d)
            for attr in ("bind", "unbind", "new_id", "remove_id"):
                _write(os.path.join(d, attr), "", 0o200)
        return d

    def new_group(self):
        g = self.next_group
        self.next_group += 1
        return g

    def device(self, parent_dir, slot, vendor, device, cls, numa, driver, group,
               sub_device=0x0000, header=0, native=None):
        d = os.path.join(parent_dir, slot)
        os.makedirs(d)
        sub_vendor = vendor if header == 0 else 0
        command = 0x0406 if driver else 0x0000
        attrs = {
            "vendor": "0x%04x\n" % vendor, "device": "0x%04x\n" % device,
            "class": "0x%06x\n" % cls, "revision": "0xa1\n",
            "subsystem_vendor": "0x%04x\n" % sub_vendor,
            "subsystem_device": "0x%04x\n" % sub_device,
            "irq": "0\n", "numa_node": "%d\n" % numa, "enable": "1\n" if driver else "0\n",
            "resource": "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" * 13,
            "driver_override": "(null)\n",
            "modalias": "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X\n" % (
                vendor, device, sub_vendor, sub_device, cls >> 16, (cls >> 8) & 0xFF, cls & 0xFF),
        }
        for name, text in attrs.items():
            _write(os.path.join(d, name), text)
        if header == 0:
            for name in ("reset", "remove"):
                _write(os.path.join(d, name), "", 0o200)
            _write(os.path.join(d, "reset_method"), "")  # rendered once the bus is complete
        with open(os.path.join(d, "config"), "wb") as f:
            f.write(_config_space(vendor, device, cls, 0xA1, sub_vendor, sub_device, header,
                                  command))
        _link(d, self.path("bus", "pci", "devices", slot))
        if driver:
            drv = self.driver_dir(driver)
            _link(drv, os.path.join(d, "driver"))
            _link(d, os.path.join(drv, slot))
        if group is not None and self.iommu:
            gdir = self.path("kernel", "iommu_groups", str(group), "devices")
            os.makedirs(gdir, exist_ok=True)
            _link(d, os.path.join(gdir, slot))
            _link(os.path.dirname(gdir), os.path.join(d, "iommu_group"))
        self.native[slot] = native if native is not None else driver
        return d

    def root_port(self, domain_bus, port_slot, numa, group=None):
        top = self.path("devices", "pci0000:%s" % domain_bus)
        os.makedirs(top, exist_ok=True)
        if group is None:
            group = self.new_group()
        return self.device(top, port_slot, 0x8086, 0x352A, 0x060400, numa, "pcieport", group,
                           header=1), group

    def build(self):
        for d in ("bus/pci/devices", "bus/pci/drivers", "devices", "kernel/iommu_groups",
                  "class/iommu", "module/vfio/parameters", "module/vfio_pci/parameters",
                  "module/vfio_iommu_type1/parameters"):
            os.makedirs(self.path(*d.split("/")), exist_ok=True)
        _write(self.path("bus", "pci", "drivers_probe"), "", 0o200)
        _write(self.path("bus", "pci", "rescan"), "", 0o200)
        _write(self.path("module", "vfio_iommu_type1", "parameters", "dma_entry_limit"),
               "65535\n")
        if self.iommu:
            os.makedirs(self.path("devices", "virtual", "iommu", "dmar0"))
            os.makedirs(self.path("devices", "virtual", "iommu", "dmar1"))
            _link(self.path("devices", "virtual", "iommu", "dmar0"),
                  self.path("class", "iommu", "dmar0"))
            _link(self.path("devices", "virtual", "iommu", "dmar1"),
                  self.path("class", "iommu", "dmar1"))
        self.driver_dir("vfio-pci")
        self.driver_dir("nvidia")
        os.makedirs(os.path.join(self.dev, "vfio", "devices"))
        _write(os.path.join(self.dev, "vfio", "vfio"), "", 0o666)
        if self.iommu:
            _write(os.path.join(self.dev, "iommu"), "", 0o600)
        _write(os.path.join(self.dev, "nvidiactl"), "", 0o666)
        os.makedirs(os.path.join(self.proc, "driver", "nvidia", "gpus"))
        _write(os.path.join(self.proc, "cmdline"),
               "BOOT_IMAGE=/vmlinuz-6.14.0-1009-intel root=/dev/sda2 ro quiet\n")

        for slot, device, numa, driver in GPUS:
            self.gpu(slot, self.device_ids.get(slot, device), numa, driver)
        for slot, numa, driver in NVSWITCHES:
            self.endpoint_behind_port(slot, NVIDIA, NVSWITCH, 0x068000, numa, driver, 0x1796)
        nic_slot, vendor, device, numa = NIC
        self.endpoint_behind_port(nic_slot, vendor, device, 0x020000, numa, "mlx5_core", 0x0021)
        for slot in os.listdir(self.path("bus", "pci", "devices")):
            d = os.path.realpath(self.path("bus", "pci", "devices", slot))
            if os.path.exists(os.path.join(d, "reset_method")):
                _write(os.path.join(d, "reset_method"), render_methods(default_methods(d)))
        self.write_state()

    def endpoint_behind_port(self, slot, vendor, device, cls, numa, driver, sub_device,
                             bridge_in_group=False):
        bus = int(slot[5:7], 16)
        port_slot = "0000:%02x:01.0" % (bus - 1)
        port_dir, port_group = self.root_port("0000:%02x" % (bus - 1), port_slot, numa)
        config_write(port_dir, 0x18, bytes([bus - 1, bus, bus]))
        config_write16(port_dir, BRIDGE_CONTROL, ROOT_PORT_BRIDGE_CONTROL)
        group = port_group if bridge_in_group else self.new_group()
        native = "nvidia" if vendor == NVIDIA else driver
        self.device(port_dir, slot, vendor, device, cls, numa, driver, group, sub_device,
                    native=native)
        if driver == "nvidia" and cls >> 8 in (0x0300, 0x0302):
            self.nvidia_node(slot)
        return port_dir, group

    def gpu(self, slot, device, numa, driver):
        sub = 0x18BE if device == H200 else 0x16C1
        port_dir, group = self.endpoint_behind_port(
            slot, NVIDIA, device, 0x030200, numa, driver, sub,
            bridge_in_group=(slot == SHARED_BRIDGE_GPU))
        if slot == NIC_SIBLING[0][:-1] + "0":
            nslot, vendor, ndevice, nnuma = NIC_SIBLING
            self.device(port_dir, nslot, vendor, ndevice, 0x020000, nnuma,
                        self.nic_sibling_driver, group, 0x0021, native="mlx5_core")

    def nvidia_node(self, slot):
        d = os.path.join(self.proc, "driver", "nvidia", "gpus", slot)
        os.makedirs(d)
        _write(os.path.join(d, "information"),
               "Model: \t\t NVIDIA H200\nIRQ:   \t\t 0\nDevice Minor: \t %d\n" % self.minor)
        _write(os.path.join(self.dev, "nvidia%d" % self.minor), "", 0o666)
        self.minor += 1

    def write_state(self):
        state = {"native": self.native, "vfio_ids": []}
        with open(os.path.join(self.root, "fake-kernel.json"), "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)


def build(root, iommu=True, nic_sibling_unbound=False, device_ids=None):
    """Creates the fake host under root (which must not exist or be empty); device_ids
    {slot: id} gives GPUs another PCI device id (0x2342, GH200: the kernel's bus-reset quirk)."""
    Builder(root, iommu, "" if nic_sibling_unbound else "mlx5_core", device_ids).build()
    return os.path.abspath(root)


def snapshot(root):
    """Every path under sys/ and dev/ with its kind and link target or contents."""
    out = {}
    for top in ("sys", "dev"):
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                rel = os.path.relpath(p, root)
                if os.path.islink(p):
                    out[rel] = "link:" + os.readlink(p)
                elif os.path.isdir(p):
                    out[rel] = "dir"
                else:
                    with open(p, "rb") as f:
                        out[rel] = "file:" + f.read().hex()
    return out


# ---- GPU firmware state ----

FW_STATE = ".fake-fw.json"
FW_DEFAULTS = {
    "cc": "off", "ppcie": "off",  # active modes
    "pending": {},                # knob -> mode, active after the next reset
    "broken": False,              # BARs dead until a PCIe remove + rescan
    "break_on_reset": 0,          # the next N resets leave the device broken
    "stuck": False,               # resets never make pending modes active
    "old_fw": False,              # no PPCIe knob in the firmware
    "hang": None,                 # "query", "set-cc" or "set-ppcie": the tool never ends there
    "malformed": None,            # a line the tool prints instead of its CC mode line
    "resets": 0,
    "bus_resets": 0,
    "spdm_stale": False,          # stale FSP/SPDM session: only a bus reset clears it
    "link_down_on_bus_reset": 0,  # the next N bus resets leave the link down (config 0xffff)
    "bridge_ctl_after": None,     # Bridge Control a bus reset leaves (None: as it was)
}


def fw_load(devdir):
    st = dict(FW_DEFAULTS, pending={})
    try:
        with open(os.path.join(devdir, FW_STATE)) as f:
            st.update(json.load(f))
    except FileNotFoundError:
        pass
    return st


def fw_save(devdir, st):
    tmp = os.path.join(devdir, FW_STATE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(st, f, sort_keys=True)
    os.rename(tmp, os.path.join(devdir, FW_STATE))


def fw_reset(devdir, kind="flr"):
    st = fw_load(devdir)
    for knob, mode in st["pending"].items():
        if not st["stuck"]:
            st[knob] = mode
    st["pending"] = {}
    st["resets"] += 1
    if kind == "bus":
        st["bus_resets"] += 1
        st["spdm_stale"] = False
    if st["break_on_reset"] > 0:
        st["break_on_reset"] -= 1
        st["broken"] = True
    fw_save(devdir, st)


# ---- config space and reset rules ----

def config_write(devdir, offset, data):
    with open(os.path.join(devdir, "config"), "r+b") as f:
        f.seek(offset)
        f.write(data)


def config_write16(devdir, offset, value):
    config_write(devdir, offset, struct.pack("<H", value))


def config_read16(devdir, offset):
    with open(os.path.join(devdir, "config"), "rb") as f:
        f.seek(offset)
        return struct.unpack("<H", f.read(2))[0]


def functions_in(d):
    """The PCI devices directly below directory d."""
    return sorted(n for n in os.listdir(d) if SLOT_RE.match(n)
                  and os.path.isdir(os.path.join(d, n)) and not os.path.islink(os.path.join(d, n)))


def no_bus_reset_quirk(devdir):
    """quirks.c: quirk_nvidia_no_bus_reset ((device & 0xffc0) == 0x2340) and the T4 (0x1eb8)."""
    with open(os.path.join(devdir, "vendor")) as f:
        vendor = int(f.read(), 16)
    with open(os.path.join(devdir, "device")) as f:
        device = int(f.read(), 16)
    return vendor == NVIDIA and ((device & 0xFFC0) == 0x2340 or device == 0x1EB8)


def bus_reset_refusal(devdir):
    """Why pci_parent_bus_reset would refuse the device (None: it would not)."""
    parent = os.path.dirname(devdir)
    if not SLOT_RE.match(os.path.basename(parent)):
        return "on a root bus"
    if functions_in(devdir):
        return "has a subordinate bus"
    if no_bus_reset_quirk(devdir):
        return "PCI_DEV_FLAGS_NO_BUS_RESET"
    if functions_in(parent) != [os.path.basename(devdir)]:
        return "not the only device on its bus"
    return None


def default_methods(devdir):
    """pci_init_reset_methods: every method whose probe passes, in the kernel's order."""
    return ["flr"] + ([] if bus_reset_refusal(devdir) else ["bus"])


def render_methods(methods):
    return " ".join(methods) + "\n"


def kernel_log(root):
    """The simulator's log: one dict per reset_method request, refusal or reset, in order."""
    try:
        with open(os.path.join(root, KERNEL_LOG)) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


# ---- the kernel simulator ----

IN_CLOSE_WRITE = 0x00000008
_EVENT = struct.Struct("iIII")


class Kernel:
    """Reacts to attribute writes under ROOT/sys like the PCI core and vfio-pci would."""

    def __init__(self, root, delay=0.05, mode="normal"):
        self.root = os.path.abspath(root)
        self.sys = os.path.join(self.root, "sys")
        self.dev = os.path.join(self.root, "dev")
        self.delay = delay
        self.never = mode == "never"
        self.binds_left = None
        if mode.startswith("fail-after="):
            self.binds_left = int(mode.split("=", 1)[1])
        with open(os.path.join(self.root, "fake-kernel.json")) as f:
            self.state = json.load(f)
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        self.watches = {}
        self.pending = []
        self.removed = {}  # slot -> (device dir, iommu group)
        self.arriving = {}  # slot -> device dir: rescanned, probed before it shows on the bus
        self.seq = 0
        self.methods = {}  # device dir -> selected reset methods (the kernel's pdev->reset_methods)
        self.own_writes = {}  # path -> close-write events of our own that are still to come

    # paths
    def pci(self, *parts):
        return os.path.join(self.sys, "bus", "pci", *parts)

    def devdir(self, slot):
        if slot in self.arriving:
            return self.arriving[slot]
        return os.path.realpath(self.pci("devices", slot))

    def watch(self, path):
        wd = self.libc.inotify_add_watch(self.fd, path.encode(), IN_CLOSE_WRITE)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + path)
        self.watches[wd] = path

    def setup(self):
        self.watch(self.pci())
        for drv in os.listdir(self.pci("drivers")):
            self.watch(self.pci("drivers", drv))
        for slot in os.listdir(self.pci("devices")):
            self.watch(self.devdir(slot))
            text = self.read(os.path.join(self.devdir(slot), "reset_method"))
            self.methods[self.devdir(slot)] = text.split()

    # attribute helpers
    @staticmethod
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def clear(path):
        with open(path, "w"):
            pass

    def override(self, slot):
        v = self.read(os.path.join(self.devdir(slot), "driver_override")).strip()
        return None if v in ("", "(null)") else v

    def driver(self, slot):
        link = os.path.join(self.devdir(slot), "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def group(self, slot):
        link = os.path.join(self.devdir(slot), "iommu_group")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def ident(self, slot):
        d = self.devdir(slot)
        return (int(self.read(os.path.join(d, "vendor")), 16),
                int(self.read(os.path.join(d, "device")), 16))

    # events
    def on_write(self, dirpath, name):
        path = os.path.join(dirpath, name)
        if name == "driver_override":
            value = self.read(path)
            normal = "(null)\n" if value.strip() in ("", "(null)") else value.strip() + "\n"
            if value != normal:
                with open(path, "w") as f:
                    f.write(normal)
            return
        if self.own_writes.get(path):
            self.own_writes[path] -= 1
            return
        if name == "reset_method":
            self.select_methods(dirpath, self.read(path))
            return
        if name == "reset":
            if self.read(path).strip():
                self.reset(dirpath)
                self.clear(path)
            return
        if name not in ("bind", "unbind", "new_id", "remove_id", "drivers_probe", "remove",
                        "rescan"):
            return
        value = self.read(path).strip()
        if not value:
            return
        self.clear(path)
        drv = os.path.basename(dirpath)
        self.seq += 1
        heapq.heappush(self.pending, (time.monotonic() + self.delay, self.seq, name, drv, value))

    # resets
    def log(self, **event):
        with open(os.path.join(self.root, KERNEL_LOG), "a") as f:
            f.write(json.dumps(event, sort_keys=True) + "\n")

    def show_methods(self, devdir):
        path = os.path.join(devdir, "reset_method")
        self.own_writes[path] = self.own_writes.get(path, 0) + 1
        _write(path, render_methods(self.methods[devdir]))

    def select_methods(self, devdir, text):
        """reset_method_store: all names or nothing; a refusal leaves the list unchanged."""
        slot = os.path.basename(devdir)
        value = text.strip()
        if value == "default":
            wanted = default_methods(devdir)
        else:
            wanted = value.split()
            for m in wanted:
                why = None if m == "flr" else bus_reset_refusal(devdir) if m == "bus" else "unknown"
                if why:
                    self.log(event="reset_method", slot=slot, value=value, refused=why)
                    self.show_methods(devdir)
                    return
        self.methods[devdir] = wanted
        self.log(event="reset_method", slot=slot, value=value, methods=wanted)
        self.show_methods(devdir)

    def reset(self, devdir):
        """pci_reset_function: the selected methods in order, the first that works."""
        slot = os.path.basename(devdir)
        for m in self.methods.get(devdir, default_methods(devdir)):
            if m == "flr":
                fw_reset(devdir, "flr")
                self.log(event="reset", slot=slot, method="flr")
                return
            if m == "bus" and bus_reset_refusal(devdir) is None:
                self.bus_reset(devdir)
                return
        self.log(event="reset", slot=slot, refused="no usable reset method")

    def bus_reset(self, devdir):
        """pci_reset_secondary_bus on the parent bridge, then the device is as after a reset."""
        bridge = os.path.dirname(devdir)
        ctl = config_read16(bridge, BRIDGE_CONTROL)
        config_write16(bridge, BRIDGE_CONTROL, ctl | BRIDGE_CTL_BUS_RESET)
        during = config_read16(bridge, BRIDGE_CONTROL)
        st = fw_load(devdir)
        after = ctl if st["bridge_ctl_after"] is None else st["bridge_ctl_after"]
        config_write16(bridge, BRIDGE_CONTROL, after)
        fw_reset(devdir, "bus")
        st = fw_load(devdir)
        if st["link_down_on_bus_reset"] > 0:
            st["link_down_on_bus_reset"] -= 1
            st["broken"] = True
            fw_save(devdir, st)
            config_write(devdir, 0, b"\xff\xff\xff\xff")
        self.log(event="reset", slot=os.path.basename(devdir), method="bus",
                 bridge=os.path.basename(bridge), bridge_control_during=during,
                 bridge_control_after=after)

    def act(self, name, drv, value):
        if name == "drivers_probe":
            self.probe(value)
        elif name == "unbind":
            if self.driver(value) == drv:
                self.do_unbind(value, drv)
        elif name == "bind":
            self.bind_request(value, drv)
        elif name == "new_id" and drv == "vfio-pci":
            vid, did = (int(x, 16) for x in value.split()[:2])
            self.state["vfio_ids"].append([vid, did])
            for slot in sorted(os.listdir(self.pci("devices"))):
                if self.ident(slot) == (vid, did) and self.driver(slot) is None:
                    self.probe(slot)
        elif name == "remove_id" and drv == "vfio-pci":
            vid, did = (int(x, 16) for x in value.split()[:2])
            if [vid, did] in self.state["vfio_ids"]:
                self.state["vfio_ids"].remove([vid, did])
        elif name == "remove":
            self.remove_device(drv)  # written in the device's own directory: drv is its slot
        elif name == "rescan":
            self.rescan()

    def remove_device(self, slot):
        link = self.pci("devices", slot)
        if not os.path.islink(link):
            return
        d = self.devdir(slot)
        drv = self.driver(slot)
        if drv:
            self.do_unbind(slot, drv)
        group = self.group(slot)
        if group is not None:
            os.unlink(os.path.join(self.sys, "kernel", "iommu_groups", group, "devices", slot))
        os.makedirs(os.path.join(self.root, "removed"), exist_ok=True)
        os.rename(d, os.path.join(self.root, "removed", slot))
        os.unlink(link)
        self.removed[slot] = (d, group)

    def rescan(self):
        for slot, (d, group) in sorted(self.removed.items()):
            os.rename(os.path.join(self.root, "removed", slot), d)
            if group is not None:
                _link(d, os.path.join(self.sys, "kernel", "iommu_groups", group, "devices", slot))
            _write(os.path.join(d, "driver_override"), "(null)\n")
            if os.path.exists(os.path.join(d, FW_STATE)):
                st = fw_load(d)
                st["broken"] = False
                fw_save(d, st)
            ids = (int(self.read(os.path.join(d, "vendor")), 16),
                   int(self.read(os.path.join(d, "device")), 16))
            config_write(d, 0, struct.pack("<HH", *ids))
            self.arriving[slot] = d
            self.probe(slot)  # the kernel's rescan write returns after the probe
            del self.arriving[slot]
            _link(d, self.pci("devices", slot))
        self.removed.clear()

    def matches(self, slot, drv):
        override = self.override(slot)
        if override is not None:
            return override == drv
        if drv == "vfio-pci":
            return list(self.ident(slot)) in self.state["vfio_ids"]
        return self.state["native"].get(slot) == drv

    def probe(self, slot):
        if slot not in self.arriving and not os.path.exists(self.pci("devices", slot)):
            return
        if self.driver(slot) is not None:
            return
        override = self.override(slot)
        candidates = [override] if override else [self.state["native"].get(slot), "vfio-pci"]
        for drv in candidates:
            if drv and os.path.isdir(self.pci("drivers", drv)) and self.matches(slot, drv):
                self.do_bind(slot, drv)
                return

    def bind_request(self, slot, drv):
        if os.path.exists(self.pci("devices", slot)) and self.driver(slot) is None \
                and self.matches(slot, drv):
            self.do_bind(slot, drv)

    def do_bind(self, slot, drv):
        d = self.devdir(slot)
        if drv == "vfio-pci":
            if self.group(slot) is None or self.never:
                return  # vfio-pci's probe fails without an IOMMU group; "never" hangs
            if self.binds_left is not None:
                if self.binds_left == 0:
                    return
                self.binds_left -= 1
        drvdir = self.pci("drivers", drv)
        _link(drvdir, os.path.join(d, "driver"))
        _link(d, os.path.join(drvdir, slot))
        if drv == "vfio-pci":
            n = 0
            while os.path.exists(os.path.join(self.dev, "vfio", "devices", "vfio%d" % n)):
                n += 1
            node = os.path.join(d, "vfio-dev", "vfio%d" % n)
            os.makedirs(node)
            _write(os.path.join(node, "dev"), "511:%d\n" % n)
            _write(os.path.join(self.dev, "vfio", "devices", "vfio%d" % n), "", 0o600)
            gnode = os.path.join(self.dev, "vfio", self.group(slot))
            if not os.path.exists(gnode):
                _write(gnode, "", 0o600)

    def do_unbind(self, slot, drv):
        d = self.devdir(slot)
        os.unlink(os.path.join(d, "driver"))
        os.unlink(self.pci("drivers", drv, slot))
        if drv != "vfio-pci":
            return
        vdir = os.path.join(d, "vfio-dev")
        for node in os.listdir(vdir) if os.path.isdir(vdir) else []:
            os.unlink(os.path.join(vdir, node, "dev"))
            os.rmdir(os.path.join(vdir, node))
            os.unlink(os.path.join(self.dev, "vfio", "devices", node))
        if os.path.isdir(vdir):
            os.rmdir(vdir)
        group = self.group(slot)
        still = [s for s in os.listdir(self.pci("drivers", "vfio-pci"))
                 if s[0] != "." and s not in ("bind", "unbind", "new_id", "remove_id")
                 and self.group(s) == group]
        gnode = os.path.join(self.dev, "vfio", group)
        if not still and os.path.exists(gnode):
            os.unlink(gnode)

    def run(self, ready_file=None):
        self.setup()
        if ready_file:
            _write(ready_file, "%d\n" % os.getpid())
        stop = []
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        while not stop:
            timeout = None
            if self.pending:
                timeout = max(0.0, self.pending[0][0] - time.monotonic())
            try:
                r, _, _ = select.select([self.fd], [], [], timeout if timeout is not None else 0.5)
            except InterruptedError:
                continue
            if r:
                self.drain()
            now = time.monotonic()
            while self.pending and self.pending[0][0] <= now:
                _, _, name, drv, value = heapq.heappop(self.pending)
                self.act(name, drv, value)

    def drain(self):
        buf = os.read(self.fd, 65536)
        off = 0
        while off < len(buf):
            wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
            name = buf[off + _EVENT.size: off + _EVENT.size + length].rstrip(b"\0").decode()
            off += _EVENT.size + length
            if mask & IN_CLOSE_WRITE and wd in self.watches and name:
                self.on_write(self.watches[wd], name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("root")
    b.add_argument("--no-iommu", action="store_true")
    b.add_argument("--nic-sibling-unbound", action="store_true")
    s = sub.add_parser("simulate")
    s.add_argument("root")
    s.add_argument("--delay", type=float, default=0.05)
    s.add_argument("--mode", default="normal")
    s.add_argument("--ready-file")
    n = sub.add_parser("snapshot")
    n.add_argument("root")
    args = ap.parse_args()
    if args.cmd == "build":
        build(args.root, iommu=not args.no_iommu, nic_sibling_unbound=args.nic_sibling_unbound)
    elif args.cmd == "simulate":
        Kernel(args.root, args.delay, args.mode).run(args.ready_file)
    else:
        json.dump(snapshot(args.root), sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
