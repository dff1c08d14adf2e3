# SPDX-License-Identifier: MIT
"""Shared pieces of the VM-definition tests: a throw-away host (config, state dir, an OS image,
a work directory with app/ and .env), a runner for the real `lium-cvm` binary, and the
reference: what lium-cvm.sh + dstack.py write, computed by Python itself at test time.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

FRONTEND = os.environ.get("LCVM_FRONTEND", "lium-cvm")
SOURCE_ROOT = os.environ.get("LCVM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = "dstack-nvidia-0.5.11"
DIGEST = "sha256:8c07d3a91f8900bd3f0e19025fb7a2c32f82577385550187b28c7769060d18b7"
DIGEST_REF = "${EXECUTOR_RUNNER_IMAGE_DIGEST}"

BASE_ENV = (
    "# executor settings\n"
    "INTERNAL_PORT=8001\n"
    "EXTERNAL_PORT=8001\n"
    "SSH_PORT=2200\n"
    'RENTING_PORT_RANGE="19001,19002,19003"\n'
    "MINER_HOTKEY_SS58_ADDRESS=\n"
    "ENABLE_TDX_ATTESTATION=true\n"
    "EXECUTOR_RUNNER_IMAGE_DIGEST=" + DIGEST + "\n"
    "CVM_VCPUS=16\n"
    "CVM_MEMORY=64G\n"
    "CVM_DISK=200G\n"
)


def python_reads(path):
    """dstack.py's open(path).read() on a UTF-8 host: strict UTF-8, universal newlines."""
    with open(path, "r", encoding="utf-8") as f:
        return f.read()


def envsubst_digest(raw, digest):
    """lium-cvm.sh's `envsubst '${EXECUTOR_RUNNER_IMAGE_DIGEST}'`, run for real when present."""
    if shutil.which("envsubst"):
        env = dict(os.environ, EXECUTOR_RUNNER_IMAGE_DIGEST=digest)
        return subprocess.run(["envsubst", DIGEST_REF], input=raw, env=env,
                              capture_output=True, check=True).stdout
    import re
    return re.sub(rb"\$(\{EXECUTOR_RUNNER_IMAGE_DIGEST\}|EXECUTOR_RUNNER_IMAGE_DIGEST(?![A-Za-z0-9_]))",
                  digest.encode(), raw)


def reference_app_compose(compose, init=None, pre=None, logs=False, sysinfo=False,
                          digest=DIGEST, workdir=None):
    """The bytes lium-cvm.sh new + Lium's dstack.py write for these inputs."""
    with open(compose, "rb") as f:
        raw = f.read()
    if DIGEST_REF.encode() in raw:
        raw = envsubst_digest(raw, digest)
    with tempfile.NamedTemporaryFile(dir=workdir, delete=False) as t:
        t.write(raw)
    try:
        text = python_reads(t.name)
    finally:
        os.unlink(t.name)
    obj = {
        "manifest_version": 1,
        "name": "example",
        "version": "1.0.0",
        "features": [],
        "runner": "docker-compose",
        "docker_compose_file": text,
        "local_key_provider_enabled": True,
        "public_logs": logs,
        "secure_time": False,
    }
    if sysinfo:
        obj["public_sysinfo"] = True
        obj["public_tcbinfo"] = True
    if init is not None:
        obj["init_script"] = python_reads(init)
    if pre is not None:
        obj["pre_launch_script"] = python_reads(pre)
    with tempfile.NamedTemporaryFile("w", dir=workdir, delete=False) as f:
        json.dump(obj, f, indent=4)
    with open(f.name, "rb") as g:
        data = g.read()
    os.unlink(f.name)
    return data


def python_json_bytes(obj):
    return json.dumps(obj, indent=4).encode("ascii")


class Host(unittest.TestCase):
    """A temp root: ROOT/lium-cvm.conf, ROOT/state (images/IMAGE), ROOT/work (cwd of `new`)."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="lcvm-vm-")
        os.chmod(self.root, 0o755)
        self.state = os.path.join(self.root, "state")
        self.vms = os.path.join(self.state, "vms")
        self.work = os.path.join(self.root, "work")
        os.makedirs(os.path.join(self.work, "app"))
        self.sysfs = os.path.join(self.root, "fake", "sys")
        self.config = os.path.join(self.root, "lium-cvm.conf")
        self.image_digest = self.make_image(IMAGE)
        # The attestation gate's inputs: a known-good list accepting this image and a QEMU
        # that prints an accepted version (tests change either to see the gate act).
        self.known_good = os.path.join(self.root, "known-good.conf")
        self.write_known_good([self.image_digest])
        self.qemu = os.path.join(self.root, "bin", "qemu-system-x86_64")
        self.write_qemu("9.2.1")
        with open(self.config, "w") as f:
            f.write("[paths]\nstate_dir=%s\nsysfs_root=%s\ndstack_client_conf=\n"
                    "[qemu]\npath=%s\n[attestation]\nknown_good=%s\n"
                    % (self.state, self.sysfs, self.qemu, self.known_good))
        self.write("app/docker-compose.yml", "services:\n  executor:\n    image: x@%s\n" % DIGEST_REF)
        self.write("app/init_script.sh", "#!/bin/sh\necho init\n")
        self.write("app/pre_launch_script.sh", "#!/bin/sh\necho pre\n")
        self.write(".env", BASE_ENV)

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def write_known_good(self, digests, qemu_versions=("9.2.1",)):
        with open(self.known_good, "w") as f:
            f.write("[image %s]\ndigests=%s\n[qemu]\nversions=%s\n[tdx-module]\nmin_major=2\n"
                    "min_build=882\n" % (IMAGE, "".join(d + ";" for d in digests),
                                         "".join(v + ";" for v in qemu_versions)))

    def write_qemu(self, version):
        os.makedirs(os.path.dirname(self.qemu), exist_ok=True)
        with open(self.qemu, "w") as f:
            f.write("#!/bin/sh\necho 'QEMU emulator version %s'\n" % version)
        os.chmod(self.qemu, 0o755)

    def make_image(self, name):
        d = os.path.join(self.state, "images", name)
        os.makedirs(d)
        for fname, text in (("bzImage", "kernel"), ("initramfs.cpio.gz", "initrd")):
            with open(os.path.join(d, fname), "w") as f:
                f.write(text)
        meta = {"kernel": "bzImage", "initrd": "initramfs.cpio.gz", "version": "0.5.11"}
        with open(os.path.join(d, "metadata.json"), "w") as f:
            json.dump(meta, f)
        lines = ""
        for fname in ("bzImage", "initramfs.cpio.gz", "metadata.json"):
            with open(os.path.join(d, fname), "rb") as f:
                lines += "%s  %s\n" % (hashlib.sha256(f.read()).hexdigest(), fname)
        with open(os.path.join(d, "sha256sum.txt"), "w") as f:
            f.write(lines)
        digest = hashlib.sha256(lines.encode()).hexdigest()
        with open(os.path.join(d, "digest.txt"), "w") as f:
            f.write(digest + "\n")
        return digest

    def write(self, rel, text, mode="w"):
        path = os.path.join(self.work, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as f:
            f.write(text)
        return path

    def path(self, rel):
        return os.path.join(self.work, rel)

    def cli(self, *args, preexec_fn=None, user=None):
        argv = [FRONTEND, "--config", self.config] + list(args)
        if user is not None:
            argv = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + argv
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(self.root, "cache"))
        return subprocess.run(argv, cwd=self.work, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, preexec_fn=preexec_fn, env=env)

    def new(self, name="vm1", *args, **kw):
        return self.cli("new", name, *args, **kw)

    def assert_ok(self, r):
        self.assertEqual(r.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr))

    def assert_failed(self, r, status, *parts):
        self.assertEqual(r.returncode, status, "stdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr))
        for p in parts:
            self.assertIn(p, r.stderr)

    def vm_file(self, name, fname, mode="rb"):
        with open(os.path.join(self.vms, name, fname), mode) as f:
            return f.read()

    def manifest(self, name="vm1"):
        return json.loads(self.vm_file(name, "vm-manifest.json"))

    def assert_nothing_left(self):
        left = os.listdir(self.vms) if os.path.isdir(self.vms) else []
        self.assertEqual(left, [], "the failed `new` left %s behind" % left)
