#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`lium-cvm lsgpu --json` against the old launcher's way on the simulated HGX host (8 GPUs,
4 NVSwitches, bridges, a NIC: tests/fakes/fakepci.py). Target: at least 10x faster.

The old way is dstack.py's `lsgpu` (reference/lium.md §2.1): python3 starts, runs `lspci -vvk`,
keeps the blocks with "NVIDIA" and "3D controller" and prints ID, NUMA node, "in use" and the
description. It is emulated by the script OLD_LSGPU below, with lspci pointed at the fake tree
(`-A linux-sysfs -O sysfs.path=…`). Both are measured the same way: wall time of the whole
process from fork to exit. lium-cvm does more (NVSwitches, IOMMU groups, driver_override,
vfio-dev, and a scan of every /proc/PID/fd for holders: proc_root is the real /proc here).

Usage: run-lsgpu-bench.py [--runs N] [--json] [--strict]
Env:   LCVM_FRONTEND (default LCVM_BUILD_ROOT/frontend/lium-cvm, LCVM_BUILD_ROOT=build)
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("LCVM_SOURCE_ROOT", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "fakes"))
import fakepci  # noqa: E402

TARGET_RATIO = 10.0

OLD_LSGPU = r'''
import subprocess, sys
out = subprocess.run(["lspci", "-vvk", "-A", "linux-sysfs", "-O", "sysfs.path=" + sys.argv[1]],
                     capture_output=True, text=True).stdout
print("ID       Numa Node  In Use  Description")
for block in out.strip().split("\n\n"):
    lines = block.splitlines()
    if not lines or "NVIDIA" not in lines[0] or "3D controller" not in lines[0]:
        continue
    slot, desc = lines[0].split(" ", 1)
    numa = next((l.split(":", 1)[1].strip() for l in lines if "NUMA node:" in l), "-")
    in_use = any(("Control:" in l and "I/O+" in l and "BusMaster+" in l) or "Latency:" in l
                 for l in lines)
    print(f"{slot}  {numa:>9}  {'Yes' if in_use else 'No':>6}  {desc}")
'''


def frontend():
    if os.environ.get("LCVM_FRONTEND"):
        return os.environ["LCVM_FRONTEND"]
    build = os.environ.get("LCVM_BUILD_ROOT", os.path.join(SOURCE, "build"))
    return os.path.join(build, "frontend", "lium-cvm")


def children_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000


def run_once(argv, env=None):
    """(wall ms, CPU ms of the process and its children, stdout)."""
    cpu = children_cpu_ms()
    start = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    elapsed = (time.perf_counter() - start) * 1000
    if r.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with status {r.returncode}")
    return elapsed, children_cpu_ms() - cpu, r.stdout


def measure(argv, runs, env=None):
    run_once(argv, env)  # warm the page cache
    samples = [run_once(argv, env) for _ in range(runs)]
    wall = [s[0] for s in samples]
    cpu = [s[1] for s in samples]
    return {"p50_ms": statistics.median(wall), "min_ms": min(wall), "max_ms": max(wall),
            "cpu_p50_ms": statistics.median(cpu)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args()
    if shutil.which("lspci") is None:
        print("lspci is missing (apt install pciutils)", file=sys.stderr)
        return 77

    root = tempfile.mkdtemp(prefix="lcvm-lsgpu-bench-")
    try:
        fakepci.build(root)
        conf = os.path.join(root, "lium-cvm.conf")
        with open(conf, "w") as f:
            f.write(f"[paths]\nsysfs_root={root}/sys\ndev_root={root}/dev\nproc_root=/proc\n")
        env = dict(os.environ, LIUM_CVM_CONFIG=conf)
        new_argv = [frontend(), "lsgpu", "--json"]
        old_argv = [sys.executable, "-c", OLD_LSGPU, os.path.join(root, "sys", "bus", "pci")]

        _, _, out = run_once(new_argv, env)
        listed = len(json.loads(out)["devices"])
        _, _, old_out = run_once(old_argv)
        old_listed = len(old_out.decode().splitlines()) - 1
        floor = measure([frontend(), "--version"], args.runs)
        new = measure(new_argv, args.runs, env)
        old = measure(old_argv, args.runs)
        nprocs = sum(1 for e in os.listdir("/proc") if e.isdigit())
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ratio = old["p50_ms"] / new["p50_ms"]
    cpu_ratio = old["cpu_p50_ms"] / max(new["cpu_p50_ms"], 0.001)
    load = os.getloadavg()[0]
    result = {
        "load_average_1min": load, "cpu_ratio_p50": round(cpu_ratio, 1),
        "runs": args.runs, "processes_scanned": nprocs,
        "lium_cvm_version_floor": floor,
        "lium_cvm_lsgpu_json": dict(new, devices=listed),
        "old_python_lspci_vvk": dict(old, devices=old_listed),
        "ratio_p50": round(ratio, 1), "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"simulated HGX host: 8 GPUs + 4 NVSwitches; {nprocs} processes in /proc; "
              f"{args.runs} runs each; load average {load:.1f}")
        for name, m, n in (("lium-cvm lsgpu --json", new, f"{listed} devices"),
                           ("python3 + lspci -vvk", old, f"{old_listed} GPUs")):
            print(f"  {name:24s} wall p50 {m['p50_ms']:7.2f} ms (min {m['min_ms']:.2f}, "
                  f"max {m['max_ms']:.2f})  CPU p50 {m['cpu_p50_ms']:6.2f} ms  {n}")
        print(f"  {'lium-cvm --version':24s} wall p50 {floor['p50_ms']:7.2f} ms  CPU p50 "
              f"{floor['cpu_p50_ms']:6.2f} ms  (process start alone: the floor)")
        print(f"  ratio: wall {ratio:.1f}x, CPU {cpu_ratio:.1f}x (target >= {TARGET_RATIO:.0f}x "
              f"on wall): {'met' if result['target_met'] else 'MISSED'}")
    return 1 if args.strict and not result["target_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
