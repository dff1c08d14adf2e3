#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An operator's LoadModules latency while a local user floods the helper with refused calls
(bench/README.md, "Refused-call flood"), through the real system bus and polkitd.

Inside the integration harness it measures, as the operator (group lium-cvm), one LoadModules
no-op per lcvm-bench-client run (so one slow call is seen as one figure):
  - idle: --idle-calls calls with no flood;
  - under flood: calls one after another for as long as the ungrouped user's
    lcvm-flood-client (--connections x --in-flight LoadModules outstanding) runs;
and the flood's own figures: calls answered (all refused) per second, audit records written.
LCVM_HELPER picks the helper binary, so the same script measures an older build.
Needs root (exit status 77 otherwise, as meson expects for a skip).
"""

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

SOURCE_ROOT = Path(os.environ.get("LCVM_SOURCE_ROOT", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(SOURCE_ROOT / "tests" / "integration"))
import lcvm_harness as lh  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lcvm_bench  # noqa: E402

BENCH = Path(os.environ.get("LCVM_BENCH_CLIENT", lh.BUILD_ROOT / "bench" / "lcvm-bench-client"))
FLOOD = Path(os.environ.get("LCVM_FLOOD_CLIENT", lh.BUILD_ROOT / "bench" / "lcvm-flood-client"))
TARGET_P50_RATIO = 3.0  # operator p50 under flood / idle p50


def prepare(h):
    (h.sysfs / "module" / "vfio_pci").mkdir()
    for client in (BENCH, FLOOD):
        dest = h.root / "bin" / client.name
        shutil.copy(client, dest)
        dest.chmod(0o755)


def one_call_ms(h, users):
    r = h.run_as(users.op, [h.root / "bin" / BENCH.name, "--method", "LoadModules", "--module",
                            "vfio_pci", "--count", "1", "--warmup", "0"], timeout=600)
    if r.rc != 0:
        raise RuntimeError(f"the operator's call failed: {r}")
    return json.loads(r.stdout)["p50_us"] / 1000


def summary(values):
    s = sorted(values)
    return {"calls": len(s), "p50_ms": round(s[len(s) // 2], 2),
            "p90_ms": round(s[int(0.9 * (len(s) - 1))], 2), "max_ms": round(s[-1], 2)}


def measure(h, users, args):
    idle = [one_call_ms(h, users) for _ in range(args.idle_calls)]
    mark = h.audit_mark()
    out = {}
    started = time.monotonic()
    flood = threading.Thread(target=lambda: out.setdefault("r", h.run_as(
        users.out, [h.root / "bin" / FLOOD.name, "--connections", str(args.connections),
                    "--in-flight", str(args.in_flight), "--seconds", str(args.seconds)],
        timeout=args.seconds + 600)))
    flood.start()
    time.sleep(1.0)  # the flood under way
    during = []
    while flood.is_alive():
        during.append(one_call_ms(h, users))
    flood.join()
    elapsed = time.monotonic() - started
    stats = json.loads(out["r"].stdout)
    time.sleep(6)  # the last coalescing window
    records = [r for r in h.audit_records(since=mark) if r.uid == users.out.uid]
    return {
        "helper": str(lh.HELPER),
        "idle": summary(idle),
        "under_flood": summary(during) if during else None,
        "flood": {"connections": args.connections, "in_flight": args.in_flight,
                  "seconds": round(elapsed, 1), "answered": stats["answered"], "ok": stats["ok"],
                  "answered_per_s": round(stats["answered"] / elapsed),
                  "errors": stats["errors"], "audit_records": len(records)},
    }


def report(f):
    i, d, fl = f["idle"], f["under_flood"], f["flood"]
    print(f"helper: {f['helper']}")
    print(f"operator LoadModules, idle:        p50 {i['p50_ms']:.2f} ms  p90 {i['p90_ms']:.2f} ms"
          f"  max {i['max_ms']:.2f} ms  ({i['calls']} calls)")
    if d:
        print(f"operator LoadModules, under flood: p50 {d['p50_ms']:.2f} ms  p90 "
              f"{d['p90_ms']:.2f} ms  max {d['max_ms']:.2f} ms  ({d['calls']} calls)")
    print(f"flood: {fl['connections']}x{fl['in_flight']} in flight for {fl['seconds']} s: "
          f"{fl['answered']} refused ({fl['answered_per_s']}/s, ok {fl['ok']}), "
          f"{fl['audit_records']} audit records; {fl['errors']}")
    if d:
        ratio = d["p50_ms"] / i["p50_ms"]
        print(f"  target operator p50 under flood <= {TARGET_P50_RATIO:.0f}x idle: "
              f"{'met' if ratio <= TARGET_P50_RATIO else 'MISSED'} ({ratio:.1f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-calls", type=int, default=30)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    figures, status = lcvm_bench.run_in_harness(lh, prepare, measure, args, "flood", [BENCH, FLOOD])
    if figures is None:
        return status
    report(figures)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
