# SPDX-License-Identifier: MIT
"""Manager.StartVm through the real bus, polkitd and helper, with [attestation] enforce=true in
the helper's configuration: a VM whose OS image or QEMU validators will reject (the shipped
known-good list: the test image's digest is not in it, and Debian's QEMU 7.2 is not 9.2.1) is
refused before anything is reserved, prepared or spawned, even for a client that bypasses
`lium-cvm run`. The VM and image are test_dryrun's."""
import lcvm_harness as lh  # noqa: F401  (the harness fixtures)
import test_dryrun as dr

HARNESS_CONFIG = {**dr.HARNESS_CONFIG, "attestation": {"enforce": "true"}}
pytestmark = dr.pytestmark


def prepare_harness(h):
    dr.write_image(h)
    dr.write_vm(h, "vm1")


def test_start_of_what_validators_reject_is_refused_when_enforced(harness, users):
    before = dr.tree(harness.state_dir, harness.runtime_dir)
    r = harness.gdbus_call(users.op, "io.lium.Cvm1.Manager.StartVm", "'vm1'", "uint64 0")
    assert r.rc != 0 and dr.FAILED in r.stderr, r
    assert "enforce=true" in r.stderr and "validators will reject" in r.stderr
    assert dr.DIGEST in r.stderr and "QEMU 7.2" in r.stderr
    assert dr.tree(harness.state_dir, harness.runtime_dir) == before


def test_an_outsider_is_refused_before_the_judgement(harness, users):
    before = dr.tree(harness.state_dir, harness.runtime_dir)
    mark = harness.audit_mark()
    r = harness.gdbus_call(users.out, "io.lium.Cvm1.Manager.StartVm", "'vm1'", "uint64 0")
    assert r.rc != 0 and dr.NOT_AUTHORIZED in r.stderr
    assert "validators" not in r.stderr
    assert dr.tree(harness.state_dir, harness.runtime_dir) == before
    [rec] = harness.audit_records(since=mark)
    assert rec.refused and rec.uid == users.out.uid
