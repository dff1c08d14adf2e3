#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`lium-cvm inventory`: every CVM data disk on the host — lium-cvm's own and Lium checkouts'
(registered roots and a sweep) — with what each was made with, and exit statuses as Lium's
upgrade guard (0 none, 3 disks, 4 incomplete). The real frontend on fake trees."""
import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmtest  # noqa: E402

MRENCLAVE = "8a5c0c8a3b61d3f0b5d3e1a9f5c7e2b4d6a8c0e2f4a6b8d0c2e4f6a8b0d2e4f6"
LIUM_OS_HASH = "a6eafc5f007f642d8ea90c7fa8881f1e6715720ccb531941a28218f4f26d7b02"
IS_ROOT = os.geteuid() == 0


class Inventory(vmtest.Host):
    def setUp(self):
        super().setUp()
        self.home = os.path.join(self.root, "home")
        self.registry = os.path.join(self.root, "vm-dirs")
        os.makedirs(self.home)
        with open(self.config, "a") as f:
            f.write("[inventory]\nlium_registry=%s\nsweep_roots=%s %s\n"
                    % (self.registry, self.home, os.path.join(self.root, "absent")))

    def inventory(self, *args, **kw):
        r = self.cli("--json", "inventory", *args, **kw)
        return r, (json.loads(r.stdout) if r.stdout.startswith("{") else None)

    def own_disk(self, name, mrenclave=None):
        d = os.path.join(self.state, "instances", name)
        os.makedirs(d, exist_ok=True)
        self.touch(os.path.join(d, "hda.img"))
        if mrenclave:
            with open(os.path.join(d, "key-provider.mrenclave"), "w") as f:
                f.write(mrenclave + "\n")
        return d

    def lium_vm(self, vms_dir, name, running=False, manifest=True):
        d = os.path.join(vms_dir, name)
        os.makedirs(os.path.join(d, "shared"))
        self.touch(os.path.join(d, "hda.img"))
        compose = b'{\n    "manifest_version": 1\n}'
        with open(os.path.join(d, "shared", "app-compose.json"), "wb") as f:
            f.write(compose)
        vm_config = json.dumps({"spec_version": 1, "os_image_hash": LIUM_OS_HASH})
        with open(os.path.join(d, "shared", ".sys-config.json"), "w") as f:
            json.dump({"host_api_url": "http://10.0.2.2:1/api", "vm_config": vm_config}, f)
        if manifest:
            with open(os.path.join(d, "vm-manifest.json"), "w") as f:
                json.dump({"id": name, "image": "dstack-nvidia-0.5.11", "vcpu": 4}, f)
        if running:
            with open(os.path.join(d, "runtime.json"), "w") as f:
                json.dump({"cid": 7, "pid": 1}, f)
        return d, hashlib.sha256(compose).hexdigest()

    @staticmethod
    def touch(path):
        with open(path, "wb") as f:
            f.write(b"QFI\xfb")

    def test_no_disk_anywhere_exits_0(self):
        self.assert_ok(self.new())  # a definition without a data disk does not count
        r, doc = self.inventory()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((doc["disks"], doc["incomplete"], doc["exit_status"]), ([], [], 0))
        r = self.cli("inventory")
        self.assertIn("No CVM data disk on this host.", r.stdout)

    def test_own_disks_with_definition_hashes_and_mrenclave_exit_3(self):
        self.assert_ok(self.new())
        self.own_disk("vm1", MRENCLAVE)
        self.own_disk("gone")
        r, doc = self.inventory()
        self.assertEqual(r.returncode, 3, r.stderr)
        disks = {d["name"]: d for d in doc["disks"]}
        m = self.manifest()
        vm1 = disks["vm1"]
        self.assertEqual((vm1["owner"], vm1["state"], vm1["image"]),
                         ("lium-cvm", "defined", vmtest.IMAGE))
        self.assertEqual(vm1["compose_hash"], m["compose_hash"])
        self.assertEqual(vm1["os_image_hash"], self.image_digest)
        self.assertEqual(vm1["key_provider_mrenclave"], MRENCLAVE)
        self.assertTrue(vm1["disk"].endswith("/instances/vm1/hda.img"))
        gone = disks["gone"]
        self.assertEqual((gone["state"], gone["compose_hash"], gone["key_provider_mrenclave"]),
                         ("orphan", None, None))

    def test_lium_checkouts_registered_and_swept(self):
        registered = os.path.join(self.root, "srv", "lium", "run", "vms")
        _, compose_hash = self.lium_vm(registered, "exec1", running=True)
        swept = os.path.join(self.home, "alice", "lium-io", "neurons", "executor", "dstacktee",
                             "run", "vms")
        self.lium_vm(swept, "exec2")
        self.lium_vm(swept, "leftover", manifest=False)
        with open(self.registry, "w") as f:
            f.write(registered + "\n")
        r, doc = self.inventory()
        self.assertEqual(r.returncode, 3, r.stderr)
        disks = {d["name"]: d for d in doc["disks"]}
        self.assertEqual(set(disks), {"exec1", "exec2", "leftover"})
        e1 = disks["exec1"]
        self.assertEqual((e1["owner"], e1["state"], e1["image"]),
                         ("lium-cvm.sh", "running", "dstack-nvidia-0.5.11"))
        self.assertEqual(e1["compose_hash"], compose_hash)
        self.assertEqual(e1["os_image_hash"], LIUM_OS_HASH)
        self.assertIsNone(e1["key_provider_mrenclave"])
        self.assertEqual(disks["exec2"]["state"], "stopped")
        self.assertEqual(disks["leftover"]["state"], "orphan")
        text = self.cli("inventory")
        self.assertEqual(text.returncode, 3)
        self.assertIn("exec1 (lium-cvm.sh, running)", text.stdout)
        self.assertIn("3 CVM data disk(s)", text.stdout)

    def test_a_disk_reached_twice_is_listed_once(self):
        swept = os.path.join(self.home, "bob", "run", "vms")
        self.lium_vm(swept, "exec1")
        with open(self.registry, "w") as f:
            f.write(swept + "\n")
        r, doc = self.inventory()
        self.assertEqual([d["name"] for d in doc["disks"]], ["exec1"])

    def test_a_missing_registered_root_makes_it_incomplete_exit_4(self):
        with open(self.registry, "w") as f:
            f.write("/nonexistent/lium/run/vms\n")
        r, doc = self.inventory()
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual(doc["incomplete"],
                         ["the registered VM root /nonexistent/lium/run/vms is missing"])
        self.assertIn("the inventory is incomplete", self.cli("inventory").stdout)

    def test_symlinks_are_never_followed(self):
        elsewhere = os.path.join(self.root, "elsewhere", "run", "vms")
        self.lium_vm(elsewhere, "hidden")
        os.symlink(os.path.join(self.root, "elsewhere"), os.path.join(self.home, "link"))
        r, doc = self.inventory()
        self.assertEqual((r.returncode, doc["disks"]), (0, []))

    @unittest.skipUnless(IS_ROOT, "needs root to run the frontend as another user")
    def test_an_unreadable_directory_makes_it_incomplete(self):
        private = os.path.join(self.home, "carol")
        self.lium_vm(os.path.join(private, "run", "vms"), "exec9")
        os.chmod(private, 0o700)
        for d in (self.root, self.state, self.home):
            os.chmod(d, 0o755)
        os.chmod(self.config, 0o644)
        r = self.cli("--json", "inventory", user=65534)
        doc = json.loads(r.stdout)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual(doc["disks"], [])
        self.assertTrue(any(private in x and "Permission denied" in x for x in doc["incomplete"]),
                        doc["incomplete"])

    @unittest.skipUnless(IS_ROOT, "needs root to run the frontend as another user")
    def test_an_operator_sees_defined_disks_in_the_root_owned_instances_dir(self):
        self.assert_ok(self.new())
        self.own_disk("vm1", MRENCLAVE)
        self.own_disk("orphan")
        instances = os.path.join(self.state, "instances")
        os.chmod(instances, 0o711)  # as tmpfiles.d makes it: reachable, not listable
        for d in (self.root, self.state, self.vms, os.path.join(self.vms, "vm1"), self.home):
            os.chmod(d, 0o755)
        for f in os.listdir(os.path.join(self.vms, "vm1")):
            os.chmod(os.path.join(self.vms, "vm1", f), 0o644)
        os.chmod(self.config, 0o644)
        r = self.cli("--json", "inventory", user=65534)
        doc = json.loads(r.stdout)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual([(d["name"], d["key_provider_mrenclave"]) for d in doc["disks"]],
                         [("vm1", MRENCLAVE)])
        self.assertIn("instances is not listable by you", doc["notes"][0])


if __name__ == "__main__":
    unittest.main()
