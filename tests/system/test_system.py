# SPDX-License-Identifier: MIT
"""The system suite's assertions, on what tests/system/checks/*.sh recorded inside the booted
container (run-system.sh sets LCVM_SYSTEM_RESULTS). One test per behaviour of issue 13: the
package on a fresh Debian root, D-Bus activation and idle exit under systemd, every persist
path under the shipped unit's ProtectSystem=strict, the refused caller, the journal audit
records, bash completion, and a clean purge. A check that did not run fails every test that
reads it (its files are missing), so a broken container cannot pass.
"""

import json
import os
from pathlib import Path

import pytest

RESULTS = Path(os.environ.get("LCVM_SYSTEM_RESULTS", "/nonexistent"))
AUDIT_MESSAGE_ID = "6b1f3c2a9d4e4f0b8a7c5e2d1f0a9b38"


class Recorded:
    """One `record NAME CMD…` of a check: .out, .err, .rc."""

    def __init__(self, check, name):
        base = RESULTS / check / name
        try:
            self.rc = int((base.parent / (name + ".rc")).read_text())
            self.out = (base.parent / (name + ".out")).read_text()
            self.err = (base.parent / (name + ".err")).read_text()
        except FileNotFoundError as e:
            log = RESULTS / check / "check.log"
            detail = log.read_text() if log.exists() else "(no check.log: the check never ran)"
            console = RESULTS / "console.log"
            tail = console.read_text()[-3000:] if console.exists() else ""
            pytest.fail(f"{check}/{name} was not recorded ({e}).\ncheck.log:\n{detail}\n"
                        f"console tail:\n{tail}")

    def __repr__(self):
        return f"rc={self.rc}\nstdout:\n{self.out}\nstderr:\n{self.err}"

    def props(self):
        """systemctl show -p … output as a dict."""
        return dict(line.split("=", 1) for line in self.out.splitlines() if "=" in line)

    def json(self):
        return json.loads(self.out)


def rec(check, name):
    return Recorded(check, name)


def ok(check, name):
    r = rec(check, name)
    assert r.rc == 0, f"{check}/{name} failed:\n{r}"
    return r


def uid(who):
    return (RESULTS / "10-install" / f"{who}.uid").read_text().strip()


def test_probe_ran_every_check():
    assert (RESULTS / "probe.done").exists(), "the probe did not finish (see console.log)"
    for check in sorted(p for p in RESULTS.iterdir() if p.is_dir()):
        assert (check / "check.rc").read_text().strip() == "0", (check / "check.log").read_text()


# ---- the package -------------------------------------------------------------------------


def test_apt_installs_the_package():
    ok("10-install", "apt-install")
    assert ok("10-install", "group").out.startswith("lium-cvm:x:")
    assert "/etc/lium-cvm/lium-cvm.conf" in ok("10-install", "conffiles").out


def test_tmpfiles_create_the_state_and_persist_directories():
    # The minimal root has no /etc/modprobe.d before the package; the helper needs it.
    assert rec("10-install", "modprobe-d-before").rc != 0
    assert ok("10-install", "persist-dirs").out.split("\n")[:2] == [
        "/etc/modules-load.d root:root 755", "/etc/modprobe.d root:root 755"]
    assert ok("10-install", "state-dirs").out.splitlines() == [
        "/var/lib/lium-cvm root:root 755",
        "/var/lib/lium-cvm/images root:lium-cvm 2775",
        "/var/lib/lium-cvm/vms root:lium-cvm 2770",
        "/var/lib/lium-cvm/instances root:root 711",
        "/run/lium-cvm root:root 700",
    ]


def test_polkit_rules_directory_stays_as_polkitd_set_it():
    before = ok("10-install", "polkit-dir-before").out
    assert ok("10-install", "polkit-dir").out == before


def test_unit_is_strict_with_the_persist_paths_writable():
    props = ok("10-install", "unit").props()
    assert props["ProtectSystem"] == "strict"
    assert props["ReadWritePaths"].split() == ["-/etc/modules-load.d", "-/etc/modprobe.d"]
    assert props["KillMode"] == "process"
    assert props["Type"] == "dbus"


# ---- D-Bus activation --------------------------------------------------------------------


def test_helper_not_running_before_the_first_call():
    assert rec("20-activation", "before-state").out.strip() == "inactive"
    assert ok("20-activation", "before-owner").out.strip() == "b false"


def test_first_call_activates_the_service():
    info = ok("20-activation", "first-call").json()
    assert info["helper"]["version"] == info["frontend_version"]
    props = ok("20-activation", "first-state").props()
    assert props["ActiveState"] == "active"
    assert int(props["MainPID"]) > 0
    # StateDirectory=/RuntimeDirectory= keep the modes tmpfiles.d gave (the helper refuses a
    # runtime_dir that is not root's alone).
    assert ok("20-activation", "dirs-while-running").out.splitlines() == [
        "/var/lib/lium-cvm root:root 755", "/run/lium-cvm root:root 700"]


def test_helper_exits_when_idle_and_is_activated_again():
    ok("20-activation", "idle-wait")
    idle = ok("20-activation", "idle-state").props()
    assert idle["ActiveState"] == "inactive"
    assert idle["Result"] == "success", idle
    assert idle["ExecMainStatus"] == "0"
    assert idle["NRestarts"] == "0"
    ok("20-activation", "second-call").json()
    second = ok("20-activation", "second-state").props()
    assert second["ActiveState"] == "active"
    assert second["InvocationID"] != ok("20-activation", "first-state").props()["InvocationID"]


# ---- every persist path, allowed and refused ---------------------------------------------


def refused(r):
    assert r.rc == 1, r
    assert r.json()["error_name"] in ("io.lium.Cvm1.Error.NotAuthorized",
                                      "io.lium.Cvm1.Error.InteractiveAuthorizationRequired"), r


def test_ungrouped_user_is_refused_and_nothing_is_written():
    refused(rec("30-persist", "out-load"))
    refused(rec("30-persist", "out-dma"))
    listing = ok("30-persist", "out-files").out
    assert "lium-cvm" not in listing, listing
    assert ok("30-persist", "out-sysfs").out.strip() == "65535"


def test_load_modules_persist_writes_modules_load_d():
    assert ok("30-persist", "op-load").json() == {"loaded": ["vfio_pci"], "persisted": True}
    lines = ok("30-persist", "op-modules-file").out.splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["vfio_pci"]


def test_dma_limit_persist_writes_modprobe_d_and_sysfs():
    assert ok("30-persist", "op-dma").json() == {
        "dma_entry_limit": 16777216, "previous": 65535, "persisted": True}
    assert "options vfio_iommu_type1 dma_entry_limit=16777216" in \
        ok("30-persist", "op-dma-file").out.splitlines()
    assert ok("30-persist", "op-sysfs").out.strip() == "16777216"
    assert ok("30-persist", "op-files").out.splitlines() == [
        "/etc/modules-load.d/lium-cvm.conf root:root 644",
        "/etc/modprobe.d/lium-cvm-vfio.conf root:root 644",
    ]


# ---- the audit trail ---------------------------------------------------------------------


def audit(who):
    r = ok("40-audit", f"audit-{who}")
    return [json.loads(line) for line in r.out.splitlines() if line.strip()]


@pytest.mark.parametrize("who,expect", [("op", "ok"), ("out", "refused: ")])
def test_each_privileged_call_is_one_journal_record(who, expect):
    records = audit(who)
    methods = sorted(r["LCVM_METHOD"] for r in records)
    # The two persist calls of 30-persist, nothing more and nothing less.
    assert methods == ["io.lium.Cvm1.Host.LoadModules", "io.lium.Cvm1.Host.SetDmaEntryLimit"]
    for r in records:
        assert r["MESSAGE_ID"] == AUDIT_MESSAGE_ID
        assert r["LCVM_CALLER_UID"] == uid(who)
        assert int(r["LCVM_CALLER_PID"]) > 0
        assert r["LCVM_CALLER_BUS_NAME"].startswith(":1.")
        assert r["LCVM_ACTION"] == "io.lium.cvm1.manage-devices"
        assert r["LCVM_RESULT"].startswith(expect), r["LCVM_RESULT"]
        assert r["_SYSTEMD_UNIT"] == "lium-cvm-helper.service"
        assert r["_UID"] == "0"


# ---- bash completion ---------------------------------------------------------------------


@pytest.mark.parametrize("name,expect", [
    ("commands", ["stop", "status"]),
    ("gpu-verbs", ["bind", "unbind", "cc", "reset", "dma-limit"]),
    ("run-options", ["--dry-run"]),
    ("images-verify", ["dstack-systest-0.5.11"]),
    ("new-image", ["dstack-systest-0.5.11"]),
])
def test_bash_completion(name, expect):
    assert ok("50-completion", name).out.split() == expect


# ---- purge -------------------------------------------------------------------------------


def test_purge_stops_the_helper_and_leaves_nothing():
    assert ok("90-purge", "helper-state-before").out.strip() == "active"
    ok("90-purge", "purge")
    left = rec("90-purge", "left")
    assert left.out.strip() == "", left
    assert rec("90-purge", "dpkg-status").rc != 0
    assert rec("90-purge", "helper-state").out.strip() == "inactive"


# ---- a running VM outlives its helper ----------------------------------------------------


def vm_status(name):
    return ok("60-vm", name).json()


def test_operator_starts_a_confined_vm_under_the_unit():
    ok("60-vm", "run")
    ok("60-vm", "ready")
    status = vm_status("status-started")
    pid = int((RESULTS / "60-vm" / "qemu.pid").read_text())
    assert status["State"] == "running" and status["Pid"] == pid
    fields = dict(line.split(":", 1) for line in ok("60-vm", "qemu-status").out.splitlines()
                  if ":" in line)
    uid = fields["Uid"].split()
    assert 61000 <= int(uid[0]) <= 61999 and uid == [uid[0]] * 4
    assert fields["Seccomp"].strip() == "2" and fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0


@pytest.mark.parametrize("how", ["restart", "stop"])
def test_vm_survives_the_helper_and_is_readopted(how):
    pid = int((RESULTS / "60-vm" / "qemu.pid").read_text())
    ok("60-vm", f"helper-{how}")
    if how == "stop":
        assert rec("60-vm", "helper-state-after-stop").out.strip() == "inactive"
    ok("60-vm", f"alive-after-{how}")
    ok("60-vm", f"readopt-after-{how}")
    status = vm_status(f"status-after-{how}")
    assert status["State"] == "running" and status["Pid"] == pid, status


def test_stop_powers_off_a_readopted_vm():
    ok("60-vm", "vm-stop")
    assert rec("60-vm", "alive-after-vm-stop").rc != 0
    assert vm_status("status-stopped")["State"] == "stopped"


# ---- each VM in its own scope ------------------------------------------------------------


def test_vm_runs_in_its_own_scope():
    props = ok("60-vm", "scope-started").props()
    assert props["ActiveState"] == "active", props
    assert props["Slice"] == "machine.slice"
    assert props["CollectMode"] == "inactive-or-failed"
    assert props["CPUAccounting"] == props["MemoryAccounting"] == "yes"
    pid = (RESULTS / "60-vm" / "qemu.pid").read_text().strip()
    status = ok("60-vm", "scope-status").out
    assert f"{pid} " in status and "lium-cvm-hostapi" in status, status
    cgroups = ok("60-vm", "qemu-cgroup").out
    assert "/machine.slice/lium-cvm-vm-vm1.scope" in cgroups, cgroups
    assert "lium-cvm-helper.service" not in cgroups


def test_scope_outlives_the_helper_and_goes_with_the_vm():
    assert ok("60-vm", "scope-after-stop").props()["ActiveState"] == "active"
    ok("60-vm", "scope-gone")
    assert ok("60-vm", "scope-after-vm-stop").props()["ActiveState"] == "inactive"
