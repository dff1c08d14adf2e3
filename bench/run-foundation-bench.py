#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Foundation benchmarks through the real system bus and the real polkitd (bench/README.md).

Inside the integration harness (tests/integration/lcvm_harness.py: private mount namespace,
dbus-daemon, polkitd, the helper with a test config) it measures:
  - GetInfo from one client connection (allowed to all, so no polkit round trip):
    latency p50/p99 and calls per second;
  - LoadModules of a module that is already present (a no-op for the kernel), as an operator
    authorized by the shipped polkit rule: one CheckAuthorization per call;
  - the helper's resident memory when idle, after start and after the runs.
Needs root (exit status 77 otherwise, as meson expects for a skip).
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

SOURCE_ROOT = Path(os.environ.get("LCVM_SOURCE_ROOT", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(SOURCE_ROOT / "tests" / "integration"))
import lcvm_harness as lh  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lcvm_bench  # noqa: E402

CLIENT = Path(os.environ.get("LCVM_BENCH_CLIENT",
                             lh.BUILD_ROOT / "bench" / "lcvm-bench-client"))
TARGETS = {"getinfo_p50_ms": 2.0, "getinfo_calls_per_s": 1000, "idle_rss_mib": 8.0}


def memory_mib(pid):
    """VmRSS (the target's measure), its anonymous part, and the proportional share (Pss:
    library pages shared with other processes counted pro rata), in MiB."""
    fields = {}
    for path in (f"/proc/{pid}/status", f"/proc/{pid}/smaps_rollup"):
        for line in Path(path).read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "Pss") and rest.strip().endswith("kB"):
                fields[key] = round(int(rest.split()[0]) / 1024, 2)
    return {"rss": fields["VmRSS"], "rss_anon": fields["RssAnon"], "pss": fields["Pss"]}


def run_client(h, user, *args):
    r = h.run_as(user, [h.root / "bin" / CLIENT.name, *args], timeout=600)
    if r.rc != 0:
        raise RuntimeError(f"benchmark client failed: {r}")
    return json.loads(r.stdout)


def prepare(h):
    (h.sysfs / "module" / "vfio_pci").mkdir()
    dest = h.root / "bin" / CLIENT.name
    shutil.copy(CLIENT, dest)
    dest.chmod(0o755)


def measure(h, users, args):
    time.sleep(args.settle)
    idle_start = memory_mib(h.helper_pid)
    getinfo = run_client(h, users.out, "--method", "GetInfo", "--count", str(args.getinfo_calls),
                         "--warmup", "100")
    load = run_client(h, users.op, "--method", "LoadModules", "--module", "vfio_pci", "--count",
                      str(args.load_calls), "--warmup", "20")
    time.sleep(args.settle)
    idle_after = memory_mib(h.helper_pid)
    return {
        "getinfo": getinfo,
        "load_modules_noop": load,
        "helper_idle_mib_at_start": idle_start,
        "helper_idle_mib_after_runs": idle_after,
    }


def verdicts(figures):
    g = figures["getinfo"]
    rss = max(figures["helper_idle_mib_at_start"]["rss"],
              figures["helper_idle_mib_after_runs"]["rss"])
    return [
        ("GetInfo p50 < 2 ms", g["p50_us"] / 1000 < TARGETS["getinfo_p50_ms"]),
        ("GetInfo >= 1000 calls/s", g["calls_per_s"] >= TARGETS["getinfo_calls_per_s"]),
        ("helper idle RSS < 8 MiB", rss < TARGETS["idle_rss_mib"]),
    ]


def report(figures):
    g, lm = figures["getinfo"], figures["load_modules_noop"]
    print(f"GetInfo (one client, no polkit):   p50 {g['p50_us'] / 1000:.3f} ms   "
          f"p99 {g['p99_us'] / 1000:.3f} ms   max {g['max_us'] / 1000:.3f} ms   "
          f"{g['calls_per_s']:.0f} calls/s   ({g['calls']} calls)")
    print(f"LoadModules no-op (polkit YES):    p50 {lm['p50_us'] / 1000:.3f} ms   "
          f"p99 {lm['p99_us'] / 1000:.3f} ms   max {lm['max_us'] / 1000:.3f} ms   "
          f"{lm['calls_per_s']:.0f} calls/s   ({lm['calls']} calls)")
    for when, key in (("after start", "helper_idle_mib_at_start"),
                      ("after the runs", "helper_idle_mib_after_runs")):
        m = figures[key]
        print(f"helper idle memory {when + ':':16s}VmRSS {m['rss']:.2f} MiB   (anonymous "
              f"{m['rss_anon']:.2f} MiB, Pss {m['pss']:.2f} MiB)")
    for name, ok in verdicts(figures):
        print(f"  target {name}: {'met' if ok else 'MISSED'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--getinfo-calls", type=int, default=5000)
    parser.add_argument("--load-calls", type=int, default=500)
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait before reading the idle RSS")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    figures, status = lcvm_bench.run_in_harness(lh, prepare, measure, args, "bench", [CLIENT])
    if figures is None:
        return status
    report(figures)
    if args.json:
        print(json.dumps(figures, indent=2))
    missed = [name for name, ok in verdicts(figures) if not ok]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
