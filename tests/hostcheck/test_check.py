# SPDX-License-Identifier: MIT
"""`lium-cvm check` against fake hosts (tests/fakes/fakehost.py): the real binary, a test
config pointing every root at the fake tree, no root and no bus needed. Each test names the
behaviour it asserts; statuses, remedies, the JSON schema and exit codes are all checked."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import jsonschema
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "fakes"))
import fakehost  # noqa: E402

SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
LIUM_CVM = os.environ.get("LIUM_CVM", os.path.join(SOURCE, "build", "frontend", "lium-cvm"))
with open(os.path.join(SOURCE, "data", "check-report.schema.json")) as f:
    SCHEMA = json.load(f)


@pytest.fixture
def key_provider():
    """A TCP listener standing in for the key provider."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield "127.0.0.1:%d" % s.getsockname()[1]
    s.close()


@pytest.fixture
def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "127.0.0.1:%d" % port


@pytest.fixture
def root():
    """A world-traversable temp dir, so a test may run the binary as another uid."""
    d = tempfile.mkdtemp(prefix="lcvm-check-")
    os.chmod(d, 0o755)
    yield d
    for top, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(top, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
    shutil.rmtree(d)


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.doc = None
        if self.out.lstrip().startswith("{"):
            self.doc = json.loads(self.out)
            if "error" in self.doc:  # the check could not run: {"error": …}, exit 2
                return
            jsonschema.validate(self.doc, SCHEMA)
            self.checks = {c["id"]: c for c in self.doc["checks"]}

    def __getitem__(self, check_id):
        return self.checks[check_id]

    def status(self, check_id):
        return self.checks[check_id]["status"]


def run(root, config, *args, as_other_user=False, stdin=None, path=None):
    env = {
        "PATH": path or os.path.join(os.path.dirname(config), "bin"),
        "XDG_CACHE_HOME": os.path.join(root, "cache"),
        "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(root, "no-bus"),
        "LC_ALL": "C.UTF-8",
    }
    cmd = [LIUM_CVM, "check", "--config", config] + list(args)
    if as_other_user and os.geteuid() == 0:
        # root reads any file; drop to nobody so a mode-0 file really is unreadable.
        cmd = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=30)
    return Result(proc)


def host(root, kind, kp):
    return fakehost.build(kind, os.path.join(root, kind), kp)


# ---- a ready host ----

def test_ready_host_is_ready_and_exits_0(root, key_provider):
    config = host(root, "ready", key_provider)
    r = run(root, config, "--json")
    assert r.rc == 0, r.out
    assert r.doc["ready"] is True
    assert r.doc["summary"]["fail"] == 0
    for check_id in ("cpu.vendor", "cpu.generation", "cpu.tdx_host_platform", "kvm.device",
                     "kvm.tdx", "tdx.module", "tdx.module.version", "sgx.devices",
                     "kernel.version", "kernel.cmdline.nohibernate", "kernel.cmdline.intel_iommu",
                     "numa.nodes", "memory.hugepages", "iommu.active", "vfio.modules",
                     "vfio.dma_entry_limit", "vfio.dma_entry_limit.persisted", "gpu.present",
                     "gpu.0000:19:00.0.driver", "nvswitch.0000:05:00.0.driver",
                     "gpu.0000:19:00.0.iommu_group", "qemu.binary", "qemu.version", "image.os",
                     "keyprovider.port", "docker.binary", "docker.compose"):
        assert r.status(check_id) == "ok", r[check_id]
        assert r[check_id]["remedy"] is None
    assert r["tdx.module.version"]["observed"] == "2.0 build 882"
    assert "8 GPU(s), 4 NVSwitch(es)" == r["gpu.present"]["observed"]
    assert r.status("sgx.qgsd") == "skip"  # socket tables belong to the running kernel


def test_ready_host_human_output_is_a_plain_table_when_not_a_tty(root, key_provider):
    config = host(root, "ready", key_provider)
    r = run(root, config)
    assert r.rc == 0
    assert "\033[" not in r.out
    assert "ok       cpu.tdx_host_platform" in r.out
    assert r.out.rstrip().endswith("Ready: 0 failed, 0 warnings, 0 unknown, 1 skipped, 63 ok.")


# ---- a bare VM like the machine the tests run on ----

def test_bare_vm_is_not_ready_and_says_why(root, closed_port):
    config = host(root, "bare-vm", closed_port)
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.doc["ready"] is False
    assert r.status("cpu.vendor") == "fail"
    assert "Intel Xeon" in r["cpu.vendor"]["remedy"]
    assert r.status("cpu.generation") == "skip"
    assert r.status("tdx.module") == "skip"
    assert r.status("kvm.tdx") == "fail"
    assert "kvm_intel.tdx=1" in r["kvm.tdx"]["remedy"]
    assert r.status("sgx.devices") == "fail"
    assert "SW Guard Extensions (SGX) = Enable" in r["sgx.devices"]["remedy"]
    assert r.status("kernel.cmdline.nohibernate") == "fail"
    assert "add nohibernate to GRUB_CMDLINE_LINUX_DEFAULT" in r["kernel.cmdline.nohibernate"]["remedy"]
    assert r.status("iommu.active") == "fail"
    assert "VT-d" in r["iommu.active"]["remedy"]
    assert r.status("vfio.modules") == "fail"
    assert r["vfio.modules"]["fix"] == "load-vfio-modules"
    assert r["vfio.modules"]["remedy"].startswith("lium-cvm load-modules --persist")
    assert r.status("vfio.dma_entry_limit") == "skip"
    assert r.status("gpu.present") == "fail"
    assert r.status("qemu.binary") == "ok"
    assert r["qemu.binary"]["observed"].endswith("(from PATH)")
    assert r.status("qemu.version") == "fail"
    assert "dstack-qemu-9.2.1" in r["qemu.version"]["remedy"]
    assert r.status("image.os") == "fail"
    assert r["image.os"]["remedy"] == "lium-cvm download"
    assert r.status("keyprovider.port") == "fail"
    assert "docker compose" in r["keyprovider.port"]["remedy"]
    assert r.status("docker.binary") == "fail"
    assert r.status("docker.compose") == "skip"


def test_no_remedy_tells_operators_to_join_the_docker_group(root, closed_port):
    for kind in ("bare-vm", "iommu-off-nvidia"):
        r = run(root, host(root, kind, closed_port), "--json")
        for c in r.doc["checks"]:
            assert "usermod" not in (c["remedy"] or "")
            assert "-aG docker" not in (c["remedy"] or "")


def test_cmdline_words_after_double_dash_belong_to_init(root, closed_port):
    config = host(root, "bare-vm", closed_port)
    with open(os.path.join(root, "bare-vm", "proc", "cmdline"), "w") as f:
        f.write("console=ttyS0 -- nohibernate intel_iommu=on\n")
    r = run(root, config, "--json")
    assert r.status("kernel.cmdline.nohibernate") == "fail"
    assert r.status("kernel.cmdline.intel_iommu") == "fail"


# ---- IOMMU off, GPUs on nvidia ----

def test_iommu_off_with_gpus_on_nvidia(root, key_provider):
    config = host(root, "iommu-off-nvidia", key_provider)
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("iommu.active") == "fail"
    assert r.status("kernel.cmdline.intel_iommu") == "fail"
    assert "intel_iommu=on" in r["kernel.cmdline.intel_iommu"]["remedy"]
    assert r.status("vfio.modules") == "fail"
    devices = [c for c in r.doc["checks"] if c["id"].endswith(".driver")]
    assert len(devices) == 12
    for c in devices:
        assert c["status"] == "fail"
        assert c["observed"].split(" ")[0] in ("nvidia", "no")
        assert "lium-cvm gpu bind " + c["id"].split(".", 1)[1][:12] in c["remedy"]
        assert "vfio-pci.ids=10de:22a3,10de:2335,10de:2330" in c["remedy"]
    assert r["gpu.0000:bb:00.0.driver"]["observed"].startswith("no driver")
    for c in r.doc["checks"]:
        if c["id"].endswith(".iommu_group"):
            assert c["status"] == "fail"
            assert "intel_iommu=on" in c["remedy"]


# ---- NUMA possible != online ----

def test_numa_possible_not_online_warns_about_gramine(root, key_provider):
    config = host(root, "numa-mismatch", key_provider)
    r = run(root, config, "--json")
    assert r.rc == 0  # a warning does not make the host unready
    assert r.status("numa.nodes") == "warn"
    assert r["numa.nodes"]["observed"] == "possible 0-19, online 0-1"
    assert "Gramine" in r["numa.nodes"]["remedy"]


# ---- QEMU ----

def test_distro_qemu_10_fails_with_the_reason(root, key_provider):
    config = host(root, "distro-qemu", key_provider)
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("qemu.binary") == "ok"
    assert "client.conf" in r["qemu.binary"]["observed"]
    assert r.status("qemu.version") == "fail"
    assert "10.1.0" in r["qemu.version"]["observed"]
    assert "validators will reject" in r["qemu.version"]["observed"]
    assert "path = /opt/qemu-dstack/bin/qemu-system-x86_64" in r["qemu.version"]["remedy"]


def test_config_qemu_path_wins_over_client_conf(root, key_provider):
    config = host(root, "distro-qemu", key_provider)
    dstack = os.path.join(root, "distro-qemu", "opt", "qemu-dstack", "bin", "qemu-system-x86_64")
    fakehost.config(os.path.join(root, "distro-qemu"), key_provider, qemu_path=dstack)
    r = run(root, config, "--json")
    assert r.status("qemu.version") == "ok"
    assert "lium-cvm.conf" in r["qemu.binary"]["observed"]


def test_client_conf_naming_a_missing_binary_fails(root, key_provider):
    config = host(root, "ready", key_provider)
    with open(os.path.join(root, "ready", "etc", "dstack", "client.conf"), "w") as f:
        f.write("[qemu]\npath = /nonexistent/qemu-system-x86_64\n")
    r = run(root, config, "--json")
    assert r.status("qemu.binary") == "fail"
    assert r.status("qemu.version") == "skip"


def test_qemu_version_is_probed_once_and_cached_by_binary(root, key_provider):
    config = host(root, "ready", key_provider)
    runs = os.path.join(root, "ready", "qemu-runs")
    run(root, config, "--json")
    run(root, config, "--json")
    with open(runs) as f:
        assert len(f.read().split()) == 1
    qemu = os.path.join(root, "ready", "opt", "qemu-dstack", "bin", "qemu-system-x86_64")
    st = os.stat(qemu)
    os.utime(qemu, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    r = run(root, config, "--json")
    with open(runs) as f:
        assert len(f.read().split()) == 2
    assert r.status("qemu.version") == "ok"


# ---- TDX ----

def test_tdx_off_in_bios_names_the_seam_loader(root, key_provider):
    config = host(root, "tdx-off", key_provider)
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("cpu.tdx_host_platform") == "fail"
    assert "TDX SEAM Loader" in r["cpu.tdx_host_platform"]["remedy"]
    assert r.status("kvm.tdx") == "fail"
    assert "TDX not supported by the host platform" in r["kvm.tdx"]["observed"]
    assert r.status("tdx.module") == "fail"
    assert r.status("tdx.module.version") == "skip"


def write_kmsg(root, kind, messages):
    with open(os.path.join(root, kind, "dev", "kmsg"), "w") as f:
        f.write(fakehost.kmsg_records(messages))


def test_tdx_module_below_build_882_fails(root, key_provider):
    config = host(root, "ready", key_provider)
    write_kmsg(root, "ready", ["virt/tdx: TDX module 2.0.2, build number 786, build date 20240101",
                               "virt/tdx: module initialized"])
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("tdx.module") == "ok"
    assert r.status("tdx.module.version") == "fail"
    assert "786" in r["tdx.module.version"]["observed"]
    assert "intel_tdx_module.so" in r["tdx.module.version"]["remedy"]


# ---- the known-good list (data/known-good.conf) ----

def known_good_path(root, kind):
    return os.path.join(root, kind, "etc", "lium-cvm", "known-good.conf")


def edit_known_good(root, kind, old, new):
    path = known_good_path(root, kind)
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def test_tdx_minimum_comes_from_the_known_good_list(root, key_provider):
    config = host(root, "ready", key_provider)
    edit_known_good(root, "ready", "min_build=882", "min_build=900")
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("tdx.module.version") == "fail"
    assert "below the known-good minimum build 900" in r["tdx.module.version"]["observed"]
    assert "validators will reject" in r["tdx.module.version"]["observed"]


def test_image_validators_reject_is_a_warning_and_a_failure_when_enforced(root, key_provider):
    config = host(root, "ready", key_provider)
    with open(known_good_path(root, "ready")) as f:
        shipped_only = f.read().replace("\ndigests=", "\n#digests=", 1)
    with open(known_good_path(root, "ready"), "w") as f:
        f.write(shipped_only.replace("#digests=", "digests=a6eafc5f007f642d8ea90c7fa8881f1e6715720c"
                                     "cb531941a28218f4f26d7b02;\n#", 1))
    r = run(root, config, "--json")
    assert r.rc == 0
    assert r.status("image.known_good") == "warn"
    assert "validators will reject" in r["image.known_good"]["observed"]
    assert "a6eafc5f007f642d8ea90c7fa8881f1e6715720ccb531941a28218f4f26d7b02" in \
        r["image.known_good"]["observed"]
    with open(config, "a") as f:
        f.write("enforce=true\n")
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("image.known_good") == "fail"


def test_qemu_versions_come_from_the_known_good_list(root, key_provider):
    config = host(root, "ready", key_provider)
    edit_known_good(root, "ready", "versions=9.2.1;", "versions=10.2.1;")
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("qemu.version") == "fail"
    assert "accepts 10.2.1" in r["qemu.version"]["observed"]


def test_a_damaged_known_good_list_fails_and_judges_nothing(root, key_provider):
    config = host(root, "ready", key_provider)
    edit_known_good(root, "ready", "min_build=882", "min_build=lots")
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("attestation.known_good") == "fail"
    assert "[tdx-module] min_build must be a number" in r["attestation.known_good"]["observed"]
    assert r.status("qemu.version") == "unknown"
    assert r.status("image.known_good") == "unknown"


def test_hibernation_failure_in_the_log_points_at_nohibernate(root, key_provider):
    config = host(root, "tdx-off", key_provider)
    write_kmsg(root, "tdx-off", ["virt/tdx: initialization failed: Hibernation support is enabled"])
    r = run(root, config, "--json")
    assert "add nohibernate" in r["cpu.tdx_host_platform"]["remedy"]
    assert "add nohibernate" in r["tdx.module"]["remedy"]


def test_unreadable_kernel_log_is_unknown_never_fail(root, key_provider):
    config = host(root, "ready", key_provider)
    os.chmod(os.path.join(root, "ready", "dev", "kmsg"), 0)
    r = run(root, config, "--json", as_other_user=True)
    assert r.status("tdx.module") == "unknown"
    assert "not readable" in r["tdx.module"]["observed"]
    assert "dmesg" in r["tdx.module"]["remedy"]
    assert r.status("tdx.module.version") == "unknown"
    assert r.rc == 0


def test_unreadable_cpuinfo_makes_cpu_checks_unknown(root, key_provider):
    config = host(root, "ready", key_provider)
    os.chmod(os.path.join(root, "ready", "proc", "cpuinfo"), 0)
    r = run(root, config, "--json", as_other_user=True)
    for check_id in ("cpu.vendor", "cpu.generation", "cpu.tdx_host_platform"):
        assert r.status(check_id) == "unknown"
    assert r.status("tdx.module") == "ok"  # the log still answers


def test_missing_files_are_reported_not_fatal(root, key_provider):
    config = host(root, "ready", key_provider)
    os.remove(os.path.join(root, "ready", "sys", "module", "kvm_intel", "parameters", "tdx"))
    os.remove(os.path.join(root, "ready", "sys", "devices", "system", "node", "online"))
    os.remove(os.path.join(root, "ready", "dev", "sgx_provision"))
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("kvm.tdx") == "fail"
    assert "no tdx parameter" in r["kvm.tdx"]["observed"]
    assert r.status("numa.nodes") == "unknown"
    assert r.status("sgx.devices") == "fail"
    assert r["sgx.devices"]["observed"].startswith("sgx_provision missing")


# ---- vfio ----

def test_low_dma_entry_limit_fails_and_is_fixable(root, key_provider):
    config = host(root, "ready", key_provider)
    with open(os.path.join(root, "ready", "sys", "module", "vfio_iommu_type1", "parameters",
                           "dma_entry_limit"), "w") as f:
        f.write("65535\n")
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("vfio.dma_entry_limit") == "fail"
    assert r["vfio.dma_entry_limit"]["fix"] == "set-dma-entry-limit"
    assert "16777216" in r["vfio.dma_entry_limit"]["remedy"]


def test_dma_limit_persisted_in_modprobe_d_is_found(root, key_provider):
    config = host(root, "ready", key_provider)
    cmdline = os.path.join(root, "ready", "proc", "cmdline")
    with open(cmdline, "w") as f:
        f.write("ro nohibernate intel_iommu=on iommu=pt\n")
    r = run(root, config, "--json")
    assert r.status("vfio.dma_entry_limit.persisted") == "ok"
    assert "vfio-dma.conf" in r["vfio.dma_entry_limit.persisted"]["observed"]


# ---- services ----

def test_key_provider_not_answering_fails(root, closed_port):
    config = host(root, "ready", closed_port)
    r = run(root, config, "--json")
    assert r.rc == 1
    assert r.status("keyprovider.port") == "fail"
    assert "refused" in r["keyprovider.port"]["observed"]


def test_image_with_a_wrong_digest_fails(root, key_provider):
    config = host(root, "ready", key_provider)
    with open(os.path.join(root, "ready", "state", "images", fakehost.IMAGE, "digest.txt"),
              "w") as f:
        f.write("0" * 64 + "\n")
    r = run(root, config, "--json")
    assert r.status("image.os") == "fail"
    assert "lium-cvm download" in r["image.os"]["remedy"]


def test_compose_plugin_missing_fails(root, key_provider):
    config = host(root, "ready", key_provider)
    os.remove(os.path.join(root, "ready", "usr", "libexec", "docker", "cli-plugins",
                           "docker-compose"))
    r = run(root, config, "--json")
    assert r.status("docker.binary") == "ok"
    assert r.status("docker.compose") == "fail"


# ---- exit status 2 ----

def test_missing_proc_root_exits_2(root, key_provider):
    config = host(root, "ready", key_provider)
    shutil.rmtree(os.path.join(root, "ready", "proc"))
    r = run(root, config, "--json")
    assert r.rc == 2
    assert "proc_root" in r.err


def test_unreadable_config_exits_2(root, key_provider):
    config = host(root, "ready", key_provider)
    os.chmod(config, 0)
    r = run(root, config, as_other_user=True)
    assert r.rc == 2
    assert "configuration" in r.err


def test_missing_config_exits_2(root):
    r = run(root, os.path.join(root, "nonexistent.conf"))
    assert r.rc == 2


def test_arguments_are_a_usage_error(root, key_provider):
    config = host(root, "ready", key_provider)
    assert run(root, config, "extra").rc == 2
    assert run(root, config, "--yes").rc == 2


# ---- --fix and --deep ----

def test_fix_refuses_json(root, key_provider):
    config = host(root, "ready", key_provider)
    r = run(root, config, "--fix", "--json")
    assert r.rc == 2


def test_fix_yes_asks_the_helper_and_prints_the_rest_as_commands(root, closed_port):
    config = host(root, "iommu-off-nvidia", closed_port)
    r = run(root, config, "--fix", "--yes", "--no-ask-password")
    assert r.rc == 1
    assert "Load vfio_pci and vfio_iommu_type1" in r.out
    assert "yes (--yes)" in r.out
    assert "failed:" in r.out  # no helper on this bus
    assert "cannot set the DMA entry limit" in r.out
    manual = r.out.split("Do these yourself")[1]
    assert "never edits GRUB" in r.out
    assert "iommu.active:" in manual
    assert "vfio.modules: lium-cvm load-modules" in manual  # the helper fix did not happen
    assert "lium-cvm gpu bind 0000:19:00.0" in manual
    assert "vfio.dma_entry_limit.persisted:" in manual


def test_fix_declined_changes_nothing(root, closed_port):
    config = host(root, "iommu-off-nvidia", closed_port)
    r = run(root, config, "--fix", stdin="n\n")
    assert r.rc == 1
    assert "failed:" not in r.out
    assert "vfio.modules: lium-cvm load-modules" in r.out


def test_fix_on_a_ready_host_offers_nothing(root, key_provider):
    config = host(root, "ready", key_provider)
    r = run(root, config, "--fix")
    assert r.rc == 0
    assert "[y/N]" not in r.out
    assert "Do these yourself" not in r.out


def test_deep_without_a_helper_is_unknown_and_says_why(root, key_provider):
    config = host(root, "ready", key_provider)
    fakehost.write_gpu_modes(os.path.join(root, "ready", "state"), skip=["0000:3b:00.0"])
    j = run(root, config, "--deep", "--json")
    assert j.doc["deep"]["requested"] is True
    assert "keyprovider.status" in j.doc["deep"]["available"]
    for check_id in ("keyprovider.status", "nftables.guard", "gpu.0000:3b:00.0.cc_mode_query"):
        assert j.status(check_id) == "unknown", j[check_id]
        assert "cannot ask the helper" in j[check_id]["observed"] or check_id.endswith("query")
    # An unknown is not a failure of the host: only the never-queried GPU fails.
    assert j.status("gpu.0000:3b:00.0.cc_mode") == "fail"
    r = run(root, config, "--deep")
    assert "keyprovider.status" in r.out and "nftables.guard" in r.out


# ---- check --deep: the quote path (qgsd's journal, the PCCS, registration) ----

QGSD_OK = ("2026-12-05T10:00:00+0000 host systemd[1]: Started qgsd.service - Intel TD Quoting "
           "Generation Service.\n"
           "2026-12-05T10:00:01+0000 host qgsd[812]: Added cid 1001 to the vsock listener\n")
QGSD_B011 = (QGSD_OK +
             "2026-12-09T11:02:00+0000 host qgsd[812]: [QPL] Failed to get quote config. Error code "
             "is 0xb011\n"
             "2026-12-09T11:02:00+0000 host qgsd[812]: [QGS] tee_att_get_quote_size return 0x11001"
             "\n")
QGSD_B033 = (QGSD_OK +
             "2026-12-05T10:01:00+0000 host qgsd[812]: [QCNL] Encountered CURL error: (60) SSL peer "
             "certificate or SSH remote key was not OK\n"
             "2026-12-05T10:01:00+0000 host qgsd[812]: [QPL] Failed to get quote config. Error code "
             "is 0xb033\n")


class FakePccs:
    """A PCCS on loopback answering GET .../sgx/certification/v4/rootcacrl (and 404 else),
    over TLS with a self-signed certificate made at test time, or plain HTTP."""

    def __init__(self, tmp, tls=True):
        import http.server
        import ssl
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                ok = self.path == "/sgx/certification/v4/rootcacrl"
                body = b"308201213081c8020101" if ok else b"not found"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            key, cert = self.certificate()
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = "%s://localhost:%d/sgx/certification/v4/" % (scheme, self.server.server_port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    _made = None

    @classmethod
    def certificate(cls):
        """One self-signed certificate for the whole run (made with openssl)."""
        if cls._made is None:
            d = tempfile.mkdtemp(prefix="lcvm-pccs-")
            key, cert = os.path.join(d, "pccs.key"), os.path.join(d, "pccs.crt")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                            "/CN=localhost", "-keyout", key, "-out", cert],
                           check=True, capture_output=True)
            cls._made = (key, cert)
        return cls._made

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def quote_host(root, key_provider, journal=QGSD_OK, pccs_url=None, secure=False,
               registration="Registration status: completed successfully"):
    config = host(root, "ready", key_provider)
    base = os.path.join(root, "ready")
    journalctl = os.path.join(base, "usr", "bin", "journalctl")
    os.makedirs(os.path.dirname(journalctl), exist_ok=True)
    shutil.copy(os.path.join(SOURCE, "tests", "fakes", "fake-journalctl"), journalctl)
    if journal is not None:
        with open(os.path.join(base, "usr", "bin", "journal-qgsd.service.txt"), "w") as f:
            f.write(journal)
    if registration is not None:
        fakehost.fake_program(os.path.join(base, "opt", "intel", "sgx-ra-service", "mpa_manage"),
                              registration)
    if pccs_url is not None:
        with open(os.path.join(base, "etc", "sgx_default_qcnl.conf"), "w") as f:
            json.dump({"pccs_url": pccs_url, "use_secure_cert": secure}, f)
    return config


@pytest.fixture
def pccs(root):
    p = FakePccs(root)
    yield p
    p.close()


def test_deep_quote_path_healthy(root, key_provider, pccs):
    config = quote_host(root, key_provider, pccs_url=pccs.url)
    r = run(root, config, "--deep", "--json")
    for check_id in ("qgsd.health", "pccs.reachable", "sgx.registration"):
        assert r.status(check_id) == "ok", r[check_id]
        assert check_id in r.doc["deep"]["available"]
    assert "answers 200 (use_secure_cert: false)" in r["pccs.reachable"]["observed"]
    with open(os.path.join(root, "ready", "usr", "bin", "journalctl-calls.txt")) as f:
        assert "--unit qgsd.service" in f.read()


def test_deep_qgsd_0xb011_fails_with_the_daily_restart_remedy(root, key_provider):
    config = quote_host(root, key_provider, journal=QGSD_B011)
    r = run(root, config, "--deep", "--json")
    assert r.rc == 1
    c = r["qgsd.health"]
    assert c["status"] == "fail"
    assert c["observed"].startswith("0xb011: SGX_QCNL_ERROR_STATUS_UNEXPECTED")
    assert "systemctl restart qgsd" in c["remedy"] and "daily" in c["remedy"]


def test_deep_qgsd_restarted_after_a_failure_is_a_warning(root, key_provider):
    journal = QGSD_B011 + ("2026-12-09T12:00:00+0000 host systemd[1]: Started qgsd.service - "
                           "Intel TD Quoting Generation Service.\n")
    config = quote_host(root, key_provider, journal=journal)
    r = run(root, config, "--deep", "--json")
    assert r.status("qgsd.health") == "warn"
    assert "restarted since it logged 0xb011" in r["qgsd.health"]["observed"]


def test_deep_qgsd_0xb033_names_use_secure_cert(root, key_provider):
    config = quote_host(root, key_provider, journal=QGSD_B033)
    r = run(root, config, "--deep", "--json")
    assert r.status("qgsd.health") == "fail"
    assert "use_secure_cert" in r["qgsd.health"]["remedy"]


def test_deep_qgsd_journal_unreadable_is_unknown(root, key_provider):
    config = quote_host(root, key_provider, journal=None)
    r = run(root, config, "--deep", "--json")
    assert r.status("qgsd.health") == "unknown"
    assert "systemd-journal" in r["qgsd.health"]["remedy"]


def test_deep_pccs_self_signed_with_use_secure_cert_true_fails_like_0xb033(root, key_provider,
                                                                           pccs):
    config = quote_host(root, key_provider, pccs_url=pccs.url, secure=True)
    r = run(root, config, "--deep", "--json")
    c = r["pccs.reachable"]
    assert c["status"] == "fail", c
    assert "TLS verification failed" in c["observed"] and "0xb033" in c["observed"]
    assert '"use_secure_cert": false' in c["remedy"]


def test_deep_pccs_that_does_not_answer_fails(root, key_provider, closed_port):
    url = "https://%s/sgx/certification/v4/" % closed_port
    config = quote_host(root, key_provider, pccs_url=url)
    r = run(root, config, "--deep", "--json")
    assert r.status("pccs.reachable") == "fail"
    assert "does not answer" in r["pccs.reachable"]["observed"]
    assert "systemctl start pccs" in r["pccs.reachable"]["remedy"]


def test_deep_pccs_wrong_path_fails_with_its_status(root, key_provider):
    plain = FakePccs(root, tls=False)
    try:
        config = quote_host(root, key_provider, pccs_url=plain.url.replace("/v4/", "/v3/"))
        r = run(root, config, "--deep", "--json")
    finally:
        plain.close()
    assert r.status("pccs.reachable") == "fail"
    assert "answered 404" in r["pccs.reachable"]["observed"]


def test_deep_unregistered_platform_fails_and_missing_tool_is_unknown(root, key_provider):
    config = quote_host(root, key_provider,
                        registration="Registration status: platform is not registered")
    r = run(root, config, "--deep", "--json")
    assert r.status("sgx.registration") == "fail"
    assert "not registered" in r["sgx.registration"]["observed"]
    assert "SGX Auto MP Registration" in r["sgx.registration"]["remedy"]
    os.remove(os.path.join(root, "ready", "opt", "intel", "sgx-ra-service", "mpa_manage"))
    r = run(root, config, "--deep", "--json")
    assert r.status("sgx.registration") == "unknown"


def test_deep_is_not_run_without_deep(root, key_provider):
    j = run(root, host(root, "ready", key_provider), "--json")
    assert "keyprovider.status" not in j.checks and "nftables.guard" not in j.checks


# ---- QCNL (the PCCS settings qgsd and the key provider use) ----

def test_intel_style_qcnl_with_comments_and_leading_commas_is_read(root, key_provider):
    r = run(root, host(root, "ready", key_provider), "--json")
    assert r.status("sgx.qcnl") == "ok"
    assert r["sgx.qcnl"]["observed"] == "pccs_url https://localhost:8081/sgx/certification/v4/"
    assert r.status("sgx.qcnl.use_secure_cert") == "ok"


def test_secure_cert_with_a_local_pccs_warns(root, key_provider):
    config = host(root, "ready", key_provider)
    qcnl = os.path.join(root, "ready", "etc", "sgx_default_qcnl.conf")
    with open(qcnl) as f:
        text = f.read().replace('"use_secure_cert": false', '"use_secure_cert": true')
    with open(qcnl, "w") as f:
        f.write(text)
    r = run(root, config, "--json")
    c = r["sgx.qcnl.use_secure_cert"]
    assert c["status"] == "warn" and "CURL error: (60)" in c["remedy"]


@pytest.mark.parametrize("text, observed", [
    (None, "No such file"),
    ('{\n  "pccs_url": "https://localhost:8081/"\n  "use_secure_cert": false\n}', "not a JSON"),
    ('{"use_secure_cert": false}', "has no pccs_url"),
])
def test_a_missing_broken_or_incomplete_qcnl_fails(root, key_provider, text, observed):
    config = host(root, "ready", key_provider)
    qcnl = os.path.join(root, "ready", "etc", "sgx_default_qcnl.conf")
    os.remove(qcnl)
    if text is not None:
        with open(qcnl, "w") as f:
            f.write(text)
    r = run(root, config, "--json")
    c = r["sgx.qcnl"]
    assert c["status"] == "fail" and observed in c["observed"], c
    assert "write the whole file" in c["remedy"]
    assert r.rc == 1


# ---- GPU CC mode (the helper's cache, state/gpu-modes.json) ----

def test_ready_host_gpus_are_in_cc_mode(root, key_provider):
    r = run(root, host(root, "ready", key_provider), "--json")
    assert r.status("gpu.0000:19:00.0.cc_mode") == "ok"
    assert r["gpu.0000:19:00.0.cc_mode"]["observed"].startswith("on (queried ")
    assert "nvswitch.0000:05:00.0.cc_mode" not in r.checks  # NVSwitches have no CC mode


def test_gpu_with_cc_off_fails_and_names_the_command(root, key_provider):
    config = host(root, "ready", key_provider)
    fakehost.write_gpu_modes(os.path.join(root, "ready", "state"), cc="off")
    r = run(root, config, "--json")
    assert r.rc == 1 and r.doc["ready"] is False
    c = r["gpu.0000:19:00.0.cc_mode"]
    assert c["status"] == "fail"
    assert c["observed"].startswith("CC off, PPCIe off (queried ")
    assert "lium-cvm gpu cc 0000:19:00.0 --mode on" in c["remedy"]


def test_gpu_never_queried_fails_and_says_to_query(root, key_provider):
    config = host(root, "ready", key_provider)
    fakehost.write_gpu_modes(os.path.join(root, "ready", "state"), skip=["0000:3b:00.0"])
    r = run(root, config, "--json")
    assert r.status("gpu.0000:19:00.0.cc_mode") == "ok"
    c = r["gpu.0000:3b:00.0.cc_mode"]
    assert c["status"] == "fail" and "never queried" in c["observed"]
    assert "lium-cvm lsgpu --query 0000:3b:00.0" in c["remedy"]


def test_board_in_protected_pcie_mode_passes(root, key_provider):
    config = host(root, "ready", key_provider)
    fakehost.write_gpu_modes(os.path.join(root, "ready", "state"), cc="off", ppcie="on",
                             switch_ppcie="on")
    r = run(root, config, "--json")
    assert r.rc == 0, r.out
    c = r["gpu.0000:19:00.0.cc_mode"]
    assert c["status"] == "ok" and "Protected PCIe mode" in c["observed"]


def test_ppcie_on_without_the_nvswitches_fails(root, key_provider):
    config = host(root, "ready", key_provider)
    fakehost.write_gpu_modes(os.path.join(root, "ready", "state"), cc="off", ppcie="on",
                             switch_ppcie="off")
    r = run(root, config, "--json")
    assert r.status("gpu.0000:19:00.0.cc_mode") == "fail"
    assert r["gpu.0000:19:00.0.cc_mode"]["observed"].startswith("CC off, PPCIe on")


def test_schema_rejects_a_failure_without_remedy():
    doc = {"version": "0", "ready": False,
           "summary": {"ok": 0, "warn": 0, "fail": 1, "unknown": 0, "skip": 0},
           "deep": {"requested": False, "available": []},
           "checks": [{"id": "cpu.vendor", "title": "t", "status": "fail", "observed": "x",
                       "expected": "y", "remedy": None, "fix": None}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


# ---- Lium's mode policy (common/lcvm-board-policy.c) --------------------------------------

def define_vm(root, name, gpus, nvswitches=()):
    """A VM definition as `lium-cvm new` writes it (only its manifest matters here)."""
    d = os.path.join(root, "ready", "state", "vms", name)
    os.makedirs(d)
    manifest = {
        "manifest_version": 1, "name": name, "image": fakehost.IMAGE, "vcpus": 4,
        "memory": 8 << 30, "disk": 20 << 30, "gpu_attach": "listed", "gpus": list(gpus),
        "nvswitches": list(nvswitches), "ports": [], "hugepages": False, "pin_numa": False,
        "compose_hash": "ab" * 32, "os_image_hash": "cd" * 32, "created_at_ms": 1764230037000,
    }
    with open(os.path.join(d, "vm-manifest.json"), "w") as f:
        json.dump(manifest, f, indent=4)


def test_ready_board_and_a_one_gpu_vm_follow_the_mode_policy(root, key_provider):
    config = host(root, "ready", key_provider)
    define_vm(root, "one", ["0000:19:00.0"])
    r = run(root, config, "--json")
    assert r.rc == 0, r.out
    assert r.status("gpu.board_mode_policy") == "ok"
    assert r.status("vm.one.gpu_mode_policy") == "ok"


def test_a_two_gpu_vm_in_per_gpu_cc_on_an_nvswitch_board_fails_with_the_fix(root, key_provider):
    config = host(root, "ready", key_provider)
    define_vm(root, "pair", ["0000:19:00.0", "0000:3b:00.0"])
    r = run(root, config, "--json")
    assert r.rc == 1
    c = r["vm.pair.gpu_mode_policy"]
    assert c["status"] == "fail"
    assert "the VM passes 2 Hopper GPUs of an NVSwitch board but not 0000:4c:00.0" in \
        c["observed"]
    assert "not in Protected PCIe mode" in c["observed"]
    assert c["remedy"] == ("set CVM_GPUS=all in the VM's .env and run 'lium-cvm new' again (the "
                           "whole board: every GPU and NVSwitch); then lium-cvm gpu cc all "
                           "--mode off --ppcie on")
    assert r.status("gpu.board_mode_policy") == "ok"


def test_a_whole_board_vm_in_ppcie_passes_and_a_partial_board_fails(root, key_provider):
    config = host(root, "ready", key_provider)
    state = os.path.join(root, "ready", "state")
    define_vm(root, "board", [g[0] for g in fakehost.fakepci.GPUS],
              [s[0] for s in fakehost.fakepci.NVSWITCHES])
    fakehost.write_gpu_modes(state, cc="off", ppcie="on", switch_ppcie="on")
    r = run(root, config, "--json")
    assert r.status("vm.board.gpu_mode_policy") == "ok", r["vm.board.gpu_mode_policy"]
    assert r.status("gpu.board_mode_policy") == "ok"
    fakehost.write_gpu_modes(state, cc="off", ppcie="on", switch_ppcie="off")
    r = run(root, config, "--json")
    c = r["gpu.board_mode_policy"]
    assert c["status"] == "fail" and "partly in Protected PCIe mode" in c["observed"]
    assert c["remedy"] == ("lium-cvm gpu cc all --mode off --ppcie on (the whole board for one "
                           "VM), or lium-cvm gpu cc all --mode on --ppcie off (one-GPU VMs)")
    assert "0000:08:00.0 (PPCIe off) are not in Protected PCIe mode" in \
        r["vm.board.gpu_mode_policy"]["observed"]
