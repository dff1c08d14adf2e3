#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""VM start/stop benchmarks through the real bus, polkitd and helper (bench/README.md).

Inside the integration harness, in private mount and network namespaces (the loopback guard is
installed for real), with the real qemu-system-x86_64 (allow_no_tee, accel=tcg) and the tiny
guest of tests/e2e/build-guest.sh, it measures:
  - StartVm → QEMU's exec: the helper's own figure (validation, reservations, instance
    assembly, fds, nftables guard, confined spawn until execve), per start;
  - QEMU's exit → the stop Job's end: the exit seen through a pidfd here, the Job's Finished
    signal seen on the bus here (a forced stop: SIGTERM, which QEMU answers by exiting);
  - the helper's RSS with 8 VMs supervised (64 MiB guests).
Needs root and /usr/bin/python3 with python3-gi (exit status 77 otherwise).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

SOURCE_ROOT = Path(os.environ.get("LCVM_SOURCE_ROOT", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(SOURCE_ROOT / "tests" / "integration"))
sys.path.insert(0, str(SOURCE_ROOT / "tests" / "run"))
import lcvm_harness as lh  # noqa: E402
from lcvm_vms import IMAGES, write_image, write_vm  # noqa: E402

QEMU = "/usr/bin/qemu-system-x86_64"
GUEST_DIR = Path(os.environ.get("LCVM_GUEST_DIR", lh.BUILD_ROOT / "tests" / "e2e" / "guest"))
BUILD_GUEST = SOURCE_ROOT / "tests" / "e2e" / "build-guest.sh"
CONFIG = {"qemu": {"path": QEMU, "allow_no_tee": "true", "accel": "tcg"},
          "paths": {"dstack_client_conf": ""}}
TARGETS = {"start_to_exec_ms_p50": 50.0, "exit_to_job_end_ms_p50": 100.0}
SUPERVISED = 8


def in_namespaces():
    """Re-executes under `unshare -n` once, then the harness's mount namespace."""
    if os.geteuid() == 0 and os.environ.get("LCVM_OUTER_NET_NS") is None:
        os.environ["LCVM_OUTER_NET_NS"] = os.readlink("/proc/self/ns/net")
        os.execvp("unshare", ["unshare", "-n", "--", sys.executable] + sys.argv)
    lh.ensure_private_mount_namespace([sys.executable] + sys.argv)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)


def prepare(h):
    for image in IMAGES:
        write_image(h, GUEST_DIR, image)
    write_vm(h, "bench", "stubborn", [2200])
    for i in range(SUPERVISED):
        write_vm(h, f"many{i}", "stubborn", [2300 + i], memory=64 << 20)


def frontend(h, users, *args):
    r = h.run_frontend(users.op, *args, timeout=300)
    if r.rc != 0:
        raise RuntimeError(f"lium-cvm {' '.join(args)} failed: {r}")
    return r


def exec_figures(h):
    text = h.helper_log.read_text()
    return [float(ms) for ms in re.findall(r"exec'd ([0-9.]+) ms after StartVm", text)]


def exit_to_job_end(h, users, Gio, GLib):
    """Forced stop of VM bench: pidfd readable (QEMU gone) → Job.Finished on the bus."""
    pid = json.loads(frontend(h, users, "status", "bench", "--json").stdout)["Pid"]
    pidfd = os.pidfd_open(pid)
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    times = {}
    loop = GLib.MainLoop()

    def finished(*_):
        times["end"] = time.monotonic()
        loop.quit()

    sub = bus.signal_subscribe(lh.BUS_NAME, "io.lium.Cvm1.Job", "Finished", None, None,
                               Gio.DBusSignalFlags.NONE, finished)

    def exited(*_):
        times.setdefault("exit", time.monotonic())
        return GLib.SOURCE_REMOVE

    GLib.unix_fd_add_full(GLib.PRIORITY_HIGH, pidfd, GLib.IOCondition.IN, exited)
    stopper = subprocess.Popen(["setpriv", f"--reuid={users.op.uid}", f"--regid={users.op.gid}",
                                "--init-groups", "--", str(h.frontend), "stop", "bench",
                                "--force"], env={"LIUM_CVM_CONFIG": str(h.config_path),
                                                 "PATH": "/usr/bin:/bin"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    GLib.timeout_add_seconds(60, loop.quit)
    loop.run()
    stopper.wait(60)
    bus.signal_unsubscribe(sub)
    os.close(pidfd)
    return (times["end"] - times["exit"]) * 1000.0


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 2)
    return None


def measure(h, users, args, Gio, GLib):
    exits = []
    for _ in range(args.runs):
        frontend(h, users, "run", "bench")
        exits.append(exit_to_job_end(h, users, Gio, GLib))
    starts = exec_figures(h)
    idle = rss_mib(h.helper_pid)
    for i in range(SUPERVISED):
        frontend(h, users, "run", f"many{i}")
    many = rss_mib(h.helper_pid)
    for i in range(SUPERVISED):
        frontend(h, users, "stop", f"many{i}", "--force")
    return {
        "first_start_to_exec_ms": starts[0],
        "start_to_exec_ms_p50": statistics.median(starts[1:] or starts),
        "start_to_exec_ms_max": max(starts[1:] or starts),
        "exit_to_job_end_ms_p50": statistics.median(exits),
        "exit_to_job_end_ms_max": max(exits),
        "helper_rss_mib_no_vm": idle,
        f"helper_rss_mib_{SUPERVISED}_vms": many,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="start/stop cycles (default 10)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    try:
        import gi
        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib
    except (ImportError, ValueError):
        print("SKIP: needs python3-gi (run with /usr/bin/python3)")
        return 77
    in_namespaces()
    reason = lh.unavailable_reason()
    if reason is None and not os.path.exists(QEMU):
        reason = f"{QEMU} is missing (apt-get install qemu-system-x86)"
    if reason is None and subprocess.run([str(BUILD_GUEST), str(GUEST_DIR)]).returncode != 0:
        reason = "the test guest cannot be built (see build-guest.sh)"
    if reason is not None:
        print(f"SKIP: {reason}")
        return 77
    users = lh.TestUsers()
    try:
        with lh.Harness(users, config=CONFIG, prepare=prepare, name="vmbench") as h:
            figures = measure(h, users, args, Gio, GLib)
    finally:
        users.close()
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else (" (target < %g: %s)" %
                                             (target, "met" if value < target else "MISSED"))
        print(f"{name:32} {value:10.2f}{verdict}")
    if args.json:
        print(json.dumps(figures, indent=2))
    missed = [n for n, t in TARGETS.items() if figures[n] >= t]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
