# SPDX-License-Identifier: MIT
"""A local user's flood of refused calls (helper/helper-flood.h, helper-audit.h): the ungrouped
user floods LoadModules from several connections with many calls in flight
(bench/lcvm-flood-client); every call is refused, nothing is loaded or written, an operator's
calls keep succeeding during the flood, and the audit trail holds a few coalesced records
whose counts add up to every refusal. The denial memory is per uid and never answers for a
caller that allows interactive authorization or for a challenge.
"""

import json
import re
import shutil
import threading
import time

import lcvm_harness as lh

FLOOD_CLIENT = lh.BUILD_ROOT / "bench" / "lcvm-flood-client"
NOT_AUTHORIZED = lh.ERROR_PREFIX + "NotAuthorized"
BUSY = lh.ERROR_PREFIX + "Busy"
INTERACTIVE_REQUIRED = lh.ERROR_PREFIX + "InteractiveAuthorizationRequired"
LOAD_MODULES = "io.lium.Cvm1.Host.LoadModules"
MORE = re.compile(r" \[(\d+) more like it from (\S+) to (\S+)\]$")


def prepare_harness(h):
    (h.sysfs / "module" / "vfio_pci").mkdir()
    dest = h.root / "bin" / FLOOD_CLIENT.name
    shutil.copy(FLOOD_CLIENT, dest)
    dest.chmod(0o755)


def load_modules(harness, user, interactive=False):
    return harness.gdbus_call(user, "LoadModules", "['vfio_pci']", "uint64 0",
                              interactive=interactive)


def refusals_counted(records):
    """Refusals the records stand for: one each, and the repeats a summary names."""
    total = 0
    for r in records:
        m = MORE.search(r.result)
        total += int(m.group(1)) if m else 1
    return total


def test_a_flood_is_refused_cheaply_while_operators_keep_working(harness, users):
    for f in harness.modules_load_dir.iterdir():
        f.unlink()
    mark = harness.audit_mark()
    out = {}
    flood = threading.Thread(target=lambda: out.setdefault("r", harness.run_as(
        users.out, [harness.root / "bin" / FLOOD_CLIENT.name, "--connections", "4",
                    "--in-flight", "16", "--seconds", "4"], timeout=120)))
    flood.start()
    deadline = time.monotonic() + 30
    while not any(r.uid == users.out.uid for r in harness.audit_records(since=mark)):
        assert time.monotonic() < deadline, "the flood never reached the helper"
        time.sleep(0.05)
    during = [load_modules(harness, users.op) for _ in range(5)]
    still_flooding = flood.is_alive()
    flood.join()
    assert still_flooding, "the flood ended before the operator's calls: make it longer"
    for r in during:
        assert r.rc == 0, r
    result = out["r"]
    assert result.rc == 0, result
    stats = json.loads(result.stdout)
    assert stats["ok"] == 0 and stats["answered"] > 100, stats
    assert set(stats["errors"]) <= {NOT_AUTHORIZED, BUSY}, stats
    assert stats["errors"].get(NOT_AUTHORIZED, 0) > 0, stats
    # Nothing privileged happened for the flood.
    assert list(harness.modules_load_dir.iterdir()) == []
    # A few records stand for every refusal: each first one at once, then one per window.
    deadline = time.monotonic() + 30
    while True:
        refused = [r for r in harness.audit_records(since=mark) if r.uid == users.out.uid]
        if refusals_counted(refused) >= stats["answered"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert all(r.refused and r.method == LOAD_MODULES for r in refused), refused
    assert refusals_counted(refused) == stats["answered"], (refused, stats)
    # Per (uid, method, action, result) and 5 s window: 4 records at once, then one summary.
    assert len(refused) <= 2 * 2 * 5, f"{len(refused)} records for one flood: not coalesced"
    summaries = [r for r in refused if MORE.search(r.result)]
    assert summaries, refused
    first, last = MORE.search(summaries[0].result).group(2, 3)
    assert first <= last
    ok = [r for r in harness.audit_records(since=mark) if r.uid == users.op.uid]
    assert len(ok) == 5 and all(r.result == "ok" for r in ok), ok


def test_denials_are_remembered_per_uid_never_for_challenges_or_interactive_callers(harness,
                                                                                    users):
    mark = harness.audit_mark()
    r = load_modules(harness, users.out)
    assert r.rc != 0 and "NotAuthorized" in r.stderr, r
    # Another uid is asked afresh: the operator is allowed at once.
    assert load_modules(harness, users.op).rc == 0
    # A challenge (auth_admin) is never remembered: still a challenge, not a plain no.
    for _ in range(2):
        r = load_modules(harness, users.ask)
        assert r.rc != 0 and "InteractiveAuthorizationRequired" in r.stderr, r
    # A caller that allows interactive authorization always goes to polkit (no agent here).
    r = load_modules(harness, users.ask, interactive=True)
    assert r.rc != 0 and "InteractiveAuthorizationRequired" not in r.stderr, r
    assert "NotAuthorized" in r.stderr, r
    assert list(harness.modules_load_dir.iterdir()) == []
    assert len([x for x in harness.audit_records(since=mark) if x.refused]) >= 1
