#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`lium-cvm new/list/show/hash/rm` end to end with the real binary in a temp state dir, and
`new`'s atomicity: every failure, injected or not, leaves nothing in state_dir/vms.
"""
import functools
import http.server
import json
import os
import pty
import resource
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmtest  # noqa: E402

NOBODY = 65534
IS_ROOT = os.geteuid() == 0


class New(vmtest.Host):
    def test_new_writes_the_definition(self):
        r = self.new()
        self.assert_ok(r)
        d = os.path.join(self.vms, "vm1")
        self.assertEqual(sorted(os.listdir(d)), [".user-config", "app-compose.json",
                                                 "init_script.sh", "pre_launch_script.sh",
                                                 "vm-manifest.json"])
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode) & 0o770, 0o770)
        for f in os.listdir(d):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode), 0o640)
        m = self.manifest()
        self.assertEqual(m["name"], "vm1")
        self.assertEqual(m["image"], vmtest.IMAGE)
        self.assertEqual(m["vcpus"], 16)
        self.assertEqual(m["memory"], 64 << 30)
        self.assertEqual(m["disk"], 200 << 30)
        self.assertEqual(m["os_image_hash"], self.image_digest)
        self.assertEqual([(p["host_port"], p["guest_port"]) for p in m["ports"]],
                         [(2200, 2200), (8001, 8001), (19001, 19001), (19002, 19002),
                          (19003, 19003)])
        self.assertEqual({p["address"] for p in m["ports"]}, {"0.0.0.0"})
        self.assertEqual((m["gpus"], m["nvswitches"], m["hugepages"], m["pin_numa"]),
                         ([], [], False, False))
        self.assertEqual(self.vm_file("vm1", "init_script.sh"), b"#!/bin/sh\necho init\n")
        self.assertIn("OS image hash:       " + self.image_digest, r.stdout)

    def test_user_config_holds_every_env_key_as_python_writes_it(self):
        self.write(".env", vmtest.BASE_ENV + "export EXTRA='a $(b) # c'\nUNI=\"caf\u00e9\"\r\n")
        self.assert_ok(self.new())
        expected = {}
        for line in vmtest.BASE_ENV.splitlines():
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                expected[k] = v.strip('"')
        expected["EXTRA"] = "a $(b) # c"
        expected["UNI"] = "caf\u00e9"
        self.assertEqual(self.vm_file("vm1", ".user-config"),
                         vmtest.python_json_bytes({"env_vars": expected}))

    def test_new_json_output(self):
        r = self.cli("--json", "new", "vm1")
        self.assert_ok(r)
        out = json.loads(r.stdout)
        self.assertEqual(out["compose_hash"], self.manifest()["compose_hash"])
        self.assertEqual(out["path"], os.path.join(self.vms, "vm1"))

    def test_dry_run_prints_the_definition_and_writes_nothing(self):
        r = self.cli("--json", "new", "vm1", "--dry-run")
        self.assert_ok(r)
        preview = json.loads(r.stdout)
        self.assertTrue(preview["dry_run"])
        self.assertEqual(os.listdir(self.vms) if os.path.exists(self.vms) else [], [])
        self.assert_ok(self.new("vm1"))
        # the name exists now: a dry run still answers, with the same measured definition
        again = json.loads(self.cli("--json", "new", "vm1", "--dry-run").stdout)
        manifest = self.manifest()
        for key in ("compose_hash", "os_image_hash", "vcpus", "memory", "ports", "image"):
            self.assertEqual(preview[key], manifest[key])
            self.assertEqual(again[key], manifest[key])
        self.write("app/docker-compose.yml", "changed: 1\n")
        changed = json.loads(self.cli("--json", "new", "vm1", "--dry-run").stdout)
        self.assertNotEqual(changed["compose_hash"], manifest["compose_hash"])
        self.assertEqual(self.manifest(), manifest)
        self.assertEqual(os.listdir(self.vms), ["vm1"])
        self.assert_failed(self.new("vm1", "--dry-run", "--download"), 2, "drop --download")
    WHITELIST_INIT = ("#!/bin/sh\nfor k in INTERNAL_PORT EXTERNAL_PORT SSH_PORT RENTING_PORT_RANGE"
                      " MINER_HOTKEY_SS58_ADDRESS ENABLE_TDX_ATTESTATION; do :; done\n")

    def test_new_names_env_keys_the_guest_whitelist_drops(self):
        self.write("app/init_script.sh", self.WHITELIST_INIT)
        self.write(".env", vmtest.BASE_ENV + "EXECUTOR_LOCAL_RENT_ENABLED=true\n")
        r = self.new()
        self.assert_ok(r)
        notes = [l for l in r.stderr.splitlines() if l.startswith("note: ")]
        self.assertEqual(len(notes), 1, r.stderr)
        self.assertIn("EXECUTOR_LOCAL_RENT_ENABLED is set in .env", notes[0])
        self.assertIn("the guest's .env will not have it", notes[0])

    def test_new_is_quiet_when_the_definition_is_what_lium_makes(self):
        self.write("app/init_script.sh", self.WHITELIST_INIT)
        r = self.cli("--json", "new", "vm1")
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout)["notes"], [])
        self.assertNotIn("note:", r.stderr)

    def test_new_announces_hugepages_and_numa_pinning_in_json(self):
        self.write("app/init_script.sh", self.WHITELIST_INIT)
        self.write(".env", vmtest.BASE_ENV + "CVM_HUGEPAGES=true\nCVM_PIN_NUMA=true\n")
        os.makedirs(os.path.join(self.sysfs, "devices/system/node/node0"), exist_ok=True)
        r = self.cli("--json", "new", "vm1")
        self.assert_ok(r)
        notes = json.loads(r.stdout)["notes"]
        self.assertEqual(len(notes), 2, notes)
        self.assertIn("CVM_HUGEPAGES=true", notes[0])
        self.assertIn("a layout Lium's launcher never produces", notes[0])
        self.assertIn("CVM_PIN_NUMA=true", notes[1])

    def test_new_is_silent_when_validators_accept_image_and_qemu(self):
        r = self.new()
        self.assert_ok(r)
        self.assertNotIn("warning:", r.stderr)

    def test_new_warns_that_validators_will_reject_an_unlisted_image(self):
        self.write_known_good(["ab" * 32])
        r = self.new()
        self.assert_ok(r)
        self.assertIn("warning: OS image %s has digest %s" % (vmtest.IMAGE, self.image_digest),
                      r.stderr)
        self.assertIn("validators will reject", r.stderr)
        self.assertIn("ab" * 32, r.stderr)

    def test_new_warns_that_validators_will_reject_the_qemu(self):
        self.write_qemu("10.2.1")
        r = self.new()
        self.assert_ok(r)
        self.assertIn("warning: QEMU 10.2.1 is not in the known-good list", r.stderr)
        self.assertIn("validators will reject", r.stderr)

    def test_new_refuses_what_validators_reject_when_enforced(self):
        self.write_known_good(["ab" * 32])
        with open(self.config, "a") as f:
            f.write("enforce=true\n")
        self.assert_failed(self.new(), 1, "refused because [attestation] enforce=true",
                           "validators will reject")
        self.assertFalse(os.path.exists(os.path.join(self.vms, "vm1")))

    def test_new_warns_when_the_known_good_list_is_missing(self):
        os.unlink(self.known_good)
        r = self.new()
        self.assert_ok(r)
        self.assertIn("the known-good list cannot be read", r.stderr)

    def test_run_refuses_an_image_validators_reject_when_enforced(self):
        self.assert_ok(self.new())
        self.write_known_good(["ab" * 32])
        with open(self.config, "a") as f:
            f.write("enforce=true\n")
        r = self.cli("run", "vm1")
        self.assert_failed(r, 1, "refused because [attestation] enforce=true",
                           "OS image %s has digest %s" % (vmtest.IMAGE, self.image_digest))
        self.assertNotIn("helper", r.stderr)  # refused before asking the helper anything

    def test_run_warns_about_a_qemu_validators_reject(self):
        self.assert_ok(self.new())
        self.write_qemu("10.2.1")
        r = self.cli("--no-ask-password", "run", "vm1")
        self.assertIn("warning: QEMU 10.2.1 is not in the known-good list", r.stderr)

    def test_show_names_the_qemu_versions_of_the_known_good_list(self):
        self.assert_ok(self.new())
        self.write_known_good([self.image_digest], ("9.2.1", "10.2.1"))
        r = self.cli("--json", "show", "vm1")
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout)["qemu_version_expected"],
                         "9.2.1, 10.2.1 (not a distribution's package)")

    def test_env_file_option(self):
        self.write("other.env", vmtest.BASE_ENV.replace("CVM_VCPUS=16", "CVM_VCPUS=2"))
        os.unlink(self.path(".env"))
        self.assert_ok(self.new("vm1", "--env-file", "other.env"))
        self.assertEqual(self.manifest()["vcpus"], 2)

    def test_image_option_and_its_hash(self):
        digest = self.make_image("dstack-0.5.8")
        self.assert_ok(self.new("vm1", "--image", "dstack-0.5.8"))
        self.assertEqual(self.manifest()["image"], "dstack-0.5.8")
        self.assertEqual(self.manifest()["os_image_hash"], digest)

    def test_all_gpus_resolve_to_gpus_and_nvswitches(self):
        subprocess.run([sys.executable, os.path.join(vmtest.SOURCE_ROOT, "tests/fakes/fakepci.py"),
                        "build", os.path.dirname(self.sysfs)], check=True, capture_output=True)
        self.write(".env", vmtest.BASE_ENV + "CVM_GPUS=all\n")
        self.assert_ok(self.new("vm1"))
        m = self.manifest()
        self.assertEqual(m["gpu_attach"], "all")
        self.assertEqual(len(m["gpus"]), 8)
        self.assertEqual(m["nvswitches"], ["0000:05:00.0", "0000:06:00.0", "0000:07:00.0",
                                           "0000:08:00.0"])
        self.write(".env", vmtest.BASE_ENV + "CVM_GPUS=3b:00.0, 06:00.0,19:00.0\n")
        self.assert_ok(self.new("vm2"))
        m = self.manifest("vm2")
        self.assertEqual((m["gpu_attach"], m["gpus"], m["nvswitches"]),
                         ("listed", ["0000:3b:00.0", "0000:19:00.0"], ["0000:06:00.0"]))

    def test_new_warns_of_a_mode_policy_violation_and_writes_the_definition(self):
        subprocess.run([sys.executable, os.path.join(vmtest.SOURCE_ROOT, "tests/fakes/fakepci.py"),
                        "build", os.path.dirname(self.sysfs)], check=True, capture_output=True)
        sys.path.insert(0, os.path.join(vmtest.SOURCE_ROOT, "tests", "fakes"))
        import fakehost
        fakehost.write_gpu_modes(self.state, cc="on", ppcie="off")
        self.write(".env", vmtest.BASE_ENV + "CVM_GPUS=19:00.0\n")
        r = self.new("one")
        self.assert_ok(r)
        self.assertNotIn("warning: GPU modes", r.stderr)
        self.write(".env", vmtest.BASE_ENV + "CVM_GPUS=all\n")
        r = self.new("board")
        self.assert_ok(r)
        self.assertIn("warning: GPU modes: 0000:19:00.0 (CC on, PPCIe off), ", r.stderr)
        self.assertIn("not in Protected PCIe mode: a VM with several Hopper GPUs on an NVSwitch "
                      "board needs PPCIe on every GPU and NVSwitch of the board (per-GPU CC there "
                      "turns NVLink off); fix: lium-cvm gpu cc all --mode off --ppcie on "
                      "('lium-cvm run board' refuses the VM until then)", r.stderr)
        self.assertEqual(len(self.manifest("board")["gpus"]), 8)

    def test_a_listed_slot_that_is_not_an_nvidia_device_is_refused(self):
        subprocess.run([sys.executable, os.path.join(vmtest.SOURCE_ROOT, "tests/fakes/fakepci.py"),
                        "build", os.path.dirname(self.sysfs)], check=True, capture_output=True)
        self.write(".env", vmtest.BASE_ENV + "CVM_GPUS=2a:00.0\n")
        self.assert_failed(self.new(), 1, "0000:2a:00.0", "not an NVIDIA GPU or NVSwitch")
        self.assert_nothing_left()

    def test_existing_name_is_refused_and_kept(self):
        self.assert_ok(self.new())
        before = self.vm_file("vm1", "vm-manifest.json")
        self.write("app/docker-compose.yml", "changed: 1\n")
        self.assert_failed(self.new(), 1, "CVM 'vm1' already exists at " +
                           os.path.join(self.vms, "vm1"))
        self.assertEqual(self.vm_file("vm1", "vm-manifest.json"), before)
        self.assertEqual(os.listdir(self.vms), ["vm1"])

    def test_invalid_name_is_a_usage_error(self):
        self.assert_failed(self.new("../evil"), 2, "invalid VM name")
        self.assertFalse(os.path.exists(os.path.join(self.state, "evil")))


class NewFailsCleanly(vmtest.Host):
    """Each failure: the right exit status and message, and nothing left in vms/."""

    def test_invalid_env_value(self):
        self.write(".env", vmtest.BASE_ENV.replace("CVM_MEMORY=64G", "CVM_MEMORY=64X"))
        self.assert_failed(self.new(), 1, "CVM_MEMORY='64X' is not valid", "T, G or M suffix")
        self.assert_nothing_left()

    def test_every_bad_env_value_is_reported(self):
        self.write(".env", vmtest.BASE_ENV + "CVM_GPUS=nope\nRENTING_PORT_MAPPINGS=[[1,2]]\n")
        self.assert_failed(self.new(), 1, "CVM_GPUS='nope'", "both set")
        self.assert_nothing_left()

    def test_deeply_nested_port_mappings_are_refused_not_a_crash(self):
        # Found by fuzzing: json-glib recursed once per '[' and a 150 KB .env overflowed the stack.
        env = vmtest.BASE_ENV.replace('RENTING_PORT_RANGE="19001,19002,19003"\n', "")
        self.write(".env", env + "RENTING_PORT_MAPPINGS=" + "[" * 150000 + "\n")
        r = self.new()
        self.assert_failed(r, 1, "RENTING_PORT_MAPPINGS='[[[", "is not valid")
        self.assertLess(len(r.stderr), 4096)
        self.assert_nothing_left()

    def test_env_syntax_error(self):
        self.write(".env", vmtest.BASE_ENV + "rm -rf /\n")
        self.assert_failed(self.new(), 1, "line 12", "not KEY=VALUE")
        self.assert_nothing_left()

    def test_missing_env_file(self):
        os.unlink(self.path(".env"))
        self.assert_failed(self.new(), 1, "Env file not found: .env")
        self.assert_nothing_left()

    def test_unknown_environment(self):
        self.assert_failed(self.new("vm1", "--env", "qa"), 2,
                           "Unknown environment: 'qa'. Valid values are: local, staging, prod")
        self.assert_nothing_left()

    def test_missing_compose_file(self):
        self.assert_failed(self.new("vm1", "--env", "local"), 1,
                           "Docker Compose file not found: app/docker-compose.local.yml")
        self.assert_nothing_left()

    def test_compose_that_cannot_be_read(self):
        os.mkdir(self.path("app/dir.yml"))
        self.assert_failed(self.new("vm1", "--compose", "app/dir.yml"), 1, "cannot read")
        self.assert_nothing_left()

    def test_compose_that_is_not_utf8(self):
        self.write("app/docker-compose.yml", b"name: caf\xe9\n", "wb")
        self.assert_failed(self.new(), 1, "is not valid UTF-8")
        self.assert_nothing_left()

    def test_missing_runner_digest(self):
        self.write(".env", vmtest.BASE_ENV.replace("EXECUTOR_RUNNER_IMAGE_DIGEST=" + vmtest.DIGEST,
                                                   "EXECUTOR_RUNNER_IMAGE_DIGEST="))
        self.assert_failed(self.new(), 1, "EXECUTOR_RUNNER_IMAGE_DIGEST is not set")
        self.assert_nothing_left()

    def test_runner_digest_in_the_wrong_form(self):
        self.write(".env", vmtest.BASE_ENV.replace("=" + vmtest.DIGEST, "=latest"))
        self.assert_failed(self.new(), 1, "EXECUTOR_RUNNER_IMAGE_DIGEST='latest' is not valid")
        self.assert_nothing_left()

    def test_explicit_script_missing(self):
        self.assert_failed(self.new("vm1", "--init-script", "nope.sh"), 1,
                           "init script not found: nope.sh")
        self.assert_nothing_left()

    def test_missing_default_pre_launch_script_is_refused(self):
        os.unlink(self.path("app/pre_launch_script.sh"))
        self.assert_failed(self.new(), 1,
                           "pre-launch script not found: app/pre_launch_script.sh",
                           "--pre-launch-script FILE", "--no-scripts")
        self.assert_nothing_left()

    def test_missing_default_init_script_is_refused(self):
        os.unlink(self.path("app/init_script.sh"))
        self.assert_failed(self.new(), 1, "init script not found: app/init_script.sh",
                           "--init-script FILE")
        self.assert_nothing_left()

    def test_no_scripts_measures_none_when_the_defaults_are_missing(self):
        os.unlink(self.path("app/init_script.sh"))
        os.unlink(self.path("app/pre_launch_script.sh"))
        self.assert_ok(self.new("vm1", "--no-scripts"))
        self.assertNotIn(b"init_script", self.vm_file("vm1", "app-compose.json"))

    def test_no_scripts_with_a_script_is_a_usage_error(self):
        r = self.new("vm1", "--no-scripts", "--init-script", "x.sh")
        self.assertEqual(r.returncode, 2)
        self.assert_nothing_left()

    def test_missing_image_without_a_terminal(self):
        self.assert_failed(self.new("vm1", "--image", "dstack-9.9.9"), 1,
                           "OS image dstack-9.9.9 is not downloaded",
                           "lium-cvm download dstack-9.9.9")
        self.assert_nothing_left()

    def test_port_outside_the_configured_range(self):
        self.write(".env", vmtest.BASE_ENV.replace("SSH_PORT=2200", "SSH_PORT=22"))
        self.assert_failed(self.new(), 1, "host port 22 is outside this host's port range")
        self.assert_nothing_left()

    def test_write_failure_midway(self):
        # app-compose.json is larger than the file-size limit: its write fails with EFBIG.
        self.write("app/docker-compose.yml", "x: " + "y" * 200000 + "\n")
        os.makedirs(self.vms)

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))

        self.assert_failed(self.new(preexec_fn=limit), 1, "app-compose.json")
        self.assert_nothing_left()

    @unittest.skipUnless(IS_ROOT, "needs root to run the frontend as another user")
    def test_read_only_definitions_directory(self):
        os.makedirs(self.vms)
        os.chmod(self.vms, 0o555)
        os.chmod(self.work, 0o755)
        r = self.new(user=NOBODY)
        self.assert_failed(r, 1, "Permission denied")
        self.assert_nothing_left()

    @unittest.skipUnless(IS_ROOT, "needs root to run the frontend as another user")
    def test_unreadable_compose_file(self):
        os.makedirs(self.vms)
        for d in (self.state, self.vms, self.work):
            os.chown(d, NOBODY, NOBODY)
        os.chmod(self.path("app/docker-compose.yml"), 0)
        r = self.new(user=NOBODY)
        self.assert_failed(r, 1, "cannot read the Docker Compose file")
        self.assert_nothing_left()


class NewDownloadsAMissingImage(vmtest.Host):
    """A missing image is fetched through `lium-cvm download` (a local HTTP server here)."""

    def setUp(self):
        super().setUp()
        served = os.path.join(self.root, "served")
        os.makedirs(served)
        src = os.path.join(self.state, "images", vmtest.IMAGE)
        with tarfile.open(os.path.join(served, "dstack-0.5.7.tar.gz"), "w:gz") as tar:
            tar.add(src, arcname="dstack-0.5.7")
        handler = functools.partial(QuietHandler, directory=served)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        with open(self.config, "a") as f:
            f.write("[images]\nurl=http://127.0.0.1:%d/%%s.tar.gz\n" % self.server.server_port)

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        super().tearDown()

    def new_on_a_terminal(self, answer, *args):
        master, slave = pty.openpty()
        os.write(master, answer)
        try:
            return subprocess.run([vmtest.FRONTEND, "--config", self.config, "new", "vm1"] +
                                  list(args), cwd=self.work, capture_output=True, text=True,
                                  stdin=slave)
        finally:
            os.close(slave)
            os.close(master)

    def test_download_flag_fetches_without_asking(self):
        r = self.new("vm1", "--image", "dstack-0.5.7", "--download")
        self.assert_ok(r)
        self.assertEqual(self.manifest()["os_image_hash"], self.image_digest)
        self.assertTrue(os.path.isdir(os.path.join(self.state, "images", "dstack-0.5.7")))

    def test_terminal_answer_yes_downloads(self):
        r = self.new_on_a_terminal(b"y\n", "--image", "dstack-0.5.7")
        self.assert_ok(r)
        self.assertIn("Download it now? [y/N]", r.stdout)
        self.assertEqual(self.manifest()["image"], "dstack-0.5.7")

    def test_terminal_answer_no_creates_nothing(self):
        r = self.new_on_a_terminal(b"n\n", "--image", "dstack-0.5.7")
        self.assert_failed(r, 1, "run 'lium-cvm download dstack-0.5.7' first")
        self.assert_nothing_left()
        self.assertFalse(os.path.exists(os.path.join(self.state, "images", "dstack-0.5.7")))

    def test_failed_download_creates_nothing(self):
        self.assert_failed(self.new("vm1", "--image", "dstack-0.5.6", "--download"), 1,
                           "the download of OS image dstack-0.5.6 failed")
        self.assert_nothing_left()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Inspect(vmtest.Host):
    def setUp(self):
        super().setUp()
        self.assert_ok(self.new("vm1"))
        self.hash = self.manifest()["compose_hash"]

    def test_list(self):
        self.write(".env", vmtest.BASE_ENV.replace("CVM_VCPUS=16", "CVM_VCPUS=4"))
        self.assert_ok(self.new("a-vm"))
        r = self.cli("list")
        self.assert_ok(r)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "STATE", "VCPUS", "MEMORY", "GPUS", "PORTS",
                                            "IMAGE"])
        self.assertTrue(lines[1].startswith("a-vm "))
        self.assertEqual(lines[2].split()[:5], ["vm1", "defined", "16", "64G", "-"])
        self.assertIn("2200, 8001, 19001-19003", lines[2])
        self.assertTrue(lines[2].endswith(vmtest.IMAGE))

    def test_list_json(self):
        r = self.cli("--json", "list")
        self.assert_ok(r)
        vms = json.loads(r.stdout)
        self.assertEqual([(v["name"], v["state"], v["compose_hash"]) for v in vms],
                         [("vm1", "defined", self.hash)])

    def test_list_shows_a_tampered_definition_as_invalid(self):
        m = self.manifest()
        m["image_path"] = "/etc"
        with open(os.path.join(self.vms, "vm1", "vm-manifest.json"), "w") as f:
            json.dump(m, f)
        os.symlink("vm1", os.path.join(self.vms, "vm2"))
        vms = json.loads(self.cli("--json", "list").stdout)
        self.assertEqual([(v["name"], v["state"]) for v in vms],
                         [("vm1", "invalid"), ("vm2", "invalid")])
        self.assertIn("unknown key \"image_path\"", vms[0]["problem"])
        self.assert_failed(self.cli("show", "vm1"), 1, "unknown key \"image_path\"")

    def test_list_without_definitions(self):
        self.assert_ok(self.cli("rm", "--yes", "vm1"))
        r = self.cli("list")
        self.assert_ok(r)
        self.assertIn("no VMs defined", r.stdout)

    def test_show(self):
        r = self.cli("show", "vm1")
        self.assert_ok(r)
        self.assertIn("Compose hash:          " + self.hash, r.stdout)
        self.assertIn("OS image hash:         " + self.image_digest, r.stdout)
        self.assertIn("QEMU version expected: 9.2.1", r.stdout)
        self.assertIn("OS image:              %s (present)" % vmtest.IMAGE, r.stdout)

    def test_show_json(self):
        r = self.cli("--json", "show", "vm1")
        self.assert_ok(r)
        out = json.loads(r.stdout)
        self.assertEqual(out["compose_hash"], self.hash)
        self.assertEqual(out["os_image_hash"], self.image_digest)
        self.assertTrue(out["qemu_version_expected"].startswith("9.2.1"))
        self.assertEqual(out["state"], "defined")

    def test_show_notices_a_changed_image(self):
        with open(os.path.join(self.state, "images", vmtest.IMAGE, "digest.txt"), "w") as f:
            f.write("0" * 64 + "\n")
        r = self.cli("show", "vm1")
        self.assert_ok(r)
        self.assertIn("digest differs", r.stdout)

    def test_show_unknown_vm(self):
        self.assert_failed(self.cli("show", "nope"), 1, "CVM 'nope' not found")

    def test_hash_matches(self):
        r = self.cli("hash", "vm1", "--expect", self.hash.upper())
        self.assert_ok(r)
        self.assertEqual(r.stdout.splitlines()[0], self.hash)

    def test_hash_expect_mismatch_exits_1(self):
        r = self.cli("hash", "vm1", "--expect", "0" * 64)
        self.assertEqual(r.returncode, 1)
        self.assertIn("MISMATCH: this CVM will not pass the validator whitelist", r.stdout)

    def test_hash_notices_a_changed_app_compose(self):
        path = os.path.join(self.vms, "vm1", "app-compose.json")
        with open(path, "ab") as f:
            f.write(b"\n")
        r = self.cli("--json", "hash", "vm1")
        self.assertEqual(r.returncode, 1)
        out = json.loads(r.stdout)
        self.assertFalse(out["matches_recorded"])
        self.assertEqual(out["recorded"], self.hash)

    def test_hash_refuses_a_bad_expectation(self):
        self.assertEqual(self.cli("hash", "vm1", "--expect", "xyz").returncode, 2)

    def test_rm_needs_confirmation_without_a_terminal(self):
        self.assert_failed(self.cli("rm", "vm1"), 2, "give --yes")
        self.assertTrue(os.path.isdir(os.path.join(self.vms, "vm1")))

    def test_rm_removes_the_definition(self):
        r = self.cli("--json", "rm", "--yes", "vm1")
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {"removed": "vm1"})
        self.assertEqual(os.listdir(self.vms), [])
        self.assert_ok(self.new("vm1"))

    def test_rm_unknown_vm(self):
        self.assert_failed(self.cli("rm", "--yes", "nope"), 1, "CVM 'nope' not found")


if __name__ == "__main__":
    unittest.main(verbosity=2)
