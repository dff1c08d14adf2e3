# SPDX-License-Identifier: MIT
"""Manager.StartVm through the real bus, polkitd and helper refuses a VM whose data disk was
made under another key provider MRENCLAVE than the one running now (the guest could not open
the disk), before anything is reserved, prepared or spawned; an outsider is refused first.
The VM and image are test_dryrun's (a valid definition for the real Debian QEMU)."""
import os

import pytest

import lcvm_harness as lh
import test_dryrun as dr

OLD = "8a5c0c8a3b61d3f0b5d3e1a9f5c7e2b4d6a8c0e2f4a6b8d0c2e4f6a8b0d2e4f6"
NEW = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
HARNESS_CONFIG = dr.HARNESS_CONFIG
pytestmark = dr.pytestmark


def prepare_harness(h):
    dr.write_image(h)
    dr.write_vm(h, "vm1")
    inst = h.state_dir / "instances" / "vm1"
    inst.mkdir(parents=True)
    inst.chmod(0o711)
    (inst / "hda.img").write_bytes(b"QFI\xfb")
    (inst / "key-provider.mrenclave").write_text(OLD + "\n")
    (h.state_dir / "key-provider.mrenclave").write_text(NEW + "\n")


def start(harness, user):
    return harness.gdbus_call(user, "io.lium.Cvm1.Manager.StartVm", "'vm1'", "uint64 0")


def test_outsider_is_refused_before_anything_is_looked_at(harness, users):
    before = dr.tree(harness.state_dir, harness.runtime_dir)
    r = start(harness, users.out)
    assert r.rc != 0 and dr.NOT_AUTHORIZED in r.stderr
    assert dr.tree(harness.state_dir, harness.runtime_dir) == before


def test_a_disk_made_under_another_mrenclave_is_refused_and_nothing_happens(harness, users):
    before = dr.tree(harness.state_dir, harness.runtime_dir)
    mark = harness.audit_mark()
    r = start(harness, users.op)
    assert r.rc != 0 and dr.FAILED in r.stderr, r
    assert OLD in r.stderr and NEW in r.stderr
    assert "Failed to open encrypted data disk" in r.stderr
    assert dr.tree(harness.state_dir, harness.runtime_dir) == before
    assert any(rec.method.endswith("StartVm") and rec.failed
               for rec in harness.audit_records(since=mark))
    r = harness.run_frontend(users.op, "--json", "show", "vm1")
    assert r.json["key_provider_mrenclave"] == OLD
