# SPDX-License-Identifier: MIT
"""The integration harness: a private system bus, the real polkitd and the real helper.

Everything happens as root inside a private mount namespace, so the host is never modified:
/etc/passwd, /etc/group, /etc/shadow and /etc/gshadow are replaced by bind-mounted copies
that hold the test users, /run/dbus is a tmpfs, and polkit's action and rule directories are
bind-mounted directories holding our files. Nothing here may run in the host's mount
namespace: `ensure_private_mount_namespace()` re-executes the caller inside one first.

The objects:
  TestUsers  the unprivileged test users (created once per run, see USERS).
  Harness    one dbus-daemon + polkitd + lium-cvm-helper, with a test config and fake
             sysfs/dev/proc trees under a temporary directory. One per test module.
  Result     what a command run as a user returned (rc, stdout, stderr, parsed error).
  AuditRecord one parsed `AUDIT …` line of the helper's stderr.

tests/README.md documents the API; tests/integration/conftest.py turns it into fixtures.
"""

import configparser
import ctypes
import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

BUS_NAME = "io.lium.Cvm1"
OBJECT_PATH = "/io/lium/Cvm1"
INTERFACE_PREFIX = "io.lium.Cvm1."
ERROR_PREFIX = "io.lium.Cvm1.Error."
POLKIT_NAME = "org.freedesktop.PolicyKit1"
GROUP = "lium-cvm"
SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket"

SOURCE_ROOT = Path(os.environ.get("LCVM_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
BUILD_ROOT = Path(os.environ.get("LCVM_BUILD_ROOT", SOURCE_ROOT / "build"))
HELPER = Path(os.environ.get("LCVM_HELPER", BUILD_ROOT / "helper" / "lium-cvm-helper"))
FRONTEND = Path(os.environ.get("LCVM_FRONTEND", BUILD_ROOT / "frontend" / "lium-cvm"))
HOSTAPI = Path(os.environ.get("LCVM_HOSTAPI",
                             BUILD_ROOT / "helper" / "hostapi" / "lium-cvm-hostapi"))

POLKITD_CANDIDATES = [
    os.environ.get("LCVM_POLKITD", ""),
    "/usr/lib/polkit-1/polkitd",
    "/usr/libexec/polkitd",
    "/usr/libexec/polkit-1/polkitd",
]

# Programs the harness runs, and the Debian package that has each.
TOOLS = {
    "dbus-daemon": "dbus-daemon",
    "gdbus": "libglib2.0-bin",
    "setpriv": "util-linux",
    "mount": "mount",
    "umount": "mount",
}

# The test users. Their names are what the test polkit rule and the tests refer to.
#   lcvm-op   member of group lium-cvm: the shipped 50-lium-cvm.rules says YES.
#   lcvm-out  not a member; the test rule 90-lcvm-test.rules says NO → NotAuthorized.
#   lcvm-ask  not a member and matched by no rule: the .policy default auth_admin applies,
#             so without an agent the helper answers InteractiveAuthorizationRequired.
USERS = {"op": ("lcvm-op", [GROUP]), "out": ("lcvm-out", []), "ask": ("lcvm-ask", [])}
FIRST_TEST_ID = 62000  # clear of the VMs' uid_range (61000-61999 by default)

TEST_RULES = """\
// Test only: lcvm-out is refused every lium-cvm action outright (NotAuthorized).
// lcvm-ask is matched by no rule, so the .policy defaults (auth_admin) apply to it.
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("io.lium.cvm1.") == 0 && subject.user == "lcvm-out")
        return polkit.Result.NO;
});
"""

BUS_CONFIG = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- A system bus for the tests: Debian's deny-by-default system.conf without <user>, <fork>,
     activation or syslog; service policies from polkit's system.d and ours. -->
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>{ours}</includedir>
</busconfig>
"""

AUDIT_RE = re.compile(
    r"^AUDIT MESSAGE_ID=(?P<message_id>\S+) uid=(?P<uid>\d+) pid=(?P<pid>\d+)"
    r" bus_name=(?P<bus_name>\S+) method=(?P<method>\S+) object=(?P<object>\S+)"
    r' action=(?P<action>\S+) args="(?P<args>(?:[^"\\]|\\.)*)"'
    r' result="(?P<result>(?:[^"\\]|\\.)*)"$'
)
GDBUS_ERROR_RE = re.compile(r"GDBus\.Error:(?P<name>[A-Za-z0-9_.]+):")

START_TIMEOUT = 15.0
RUN_TIMEOUT = 60.0


def _libc():
    return ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------------------------
# The private mount namespace


def _mount_namespace():
    return os.readlink("/proc/self/ns/mnt")


def _in_private_mount_namespace():
    outer = os.environ.get("LCVM_OUTER_MOUNT_NS")
    return outer is not None and outer != _mount_namespace()


def ensure_private_mount_namespace(argv=None):
    """Re-executes this process (sys.orig_argv, or argv) inside `unshare -m --propagation
    private`, remembering the namespace it came from in LCVM_OUTER_MOUNT_NS. Returns at once
    when it already runs in such a namespace, or when it cannot (not root, no unshare): then
    unavailable_reason() says why."""
    if os.geteuid() != 0 or _in_private_mount_namespace():
        return
    if os.environ.get("LCVM_OUTER_MOUNT_NS") is not None:
        os.environ["LCVM_HARNESS_UNAVAILABLE"] = "unshare did not give a new mount namespace"
        return
    unshare = shutil.which("unshare")
    if unshare is None:
        os.environ["LCVM_HARNESS_UNAVAILABLE"] = "unshare is missing (apt install util-linux)"
        return
    probe = subprocess.run([unshare, "-m", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        os.environ["LCVM_HARNESS_UNAVAILABLE"] = (
            "cannot create a mount namespace: " + probe.stderr.strip())
        return
    argv = argv if argv is not None else [sys.executable] + sys.orig_argv[1:]
    os.environ["LCVM_OUTER_MOUNT_NS"] = _mount_namespace()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(unshare, [unshare, "-m", "--propagation", "private", "--"] + argv)


def find_polkitd():
    for candidate in POLKITD_CANDIDATES:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def unavailable_reason():
    """Why the harness cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return ("integration tests need root: they run dbus-daemon, polkitd and the helper "
                "in a private mount namespace")
    if os.environ.get("LCVM_HARNESS_UNAVAILABLE"):
        return os.environ["LCVM_HARNESS_UNAVAILABLE"]
    if not _in_private_mount_namespace():
        return "not in a private mount namespace (call ensure_private_mount_namespace first)"
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt install {package})"
    if find_polkitd() is None:
        return "polkitd is missing (apt install polkitd)"
    for path in ("/usr/share/polkit-1/actions", "/etc/polkit-1/rules.d",
                 "/usr/share/polkit-1/rules.d", "/usr/share/dbus-1/system.d"):
        if not os.path.isdir(path):
            return f"{path} does not exist (apt install polkitd dbus)"
    return None


class Mounts:
    """A stack of mounts made in the private namespace, undone in reverse order."""

    def __init__(self):
        self._stack = []

    def bind(self, source, target):
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        self._stack.append(str(target))

    def tmpfs(self, target, mode="0755"):
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode={mode}", "tmpfs", str(target)],
                       check=True)
        self._stack.append(str(target))

    def undo(self):
        while self._stack:
            target = self._stack.pop()
            subprocess.run(["umount", "-l", target], check=False)


# --------------------------------------------------------------------------------------------
# Users


@dataclass
class TestUser:
    __test__ = False  # not a pytest test class

    name: str
    uid: int
    gid: int
    groups: list
    home: Path

    def __str__(self):
        return self.name


def _parse_colon_file(path):
    if not path.exists():
        return []
    return [line.split(":") for line in path.read_text().splitlines() if line.strip()]


def _free_id(used, start):
    n = start
    while n in used:
        n += 1
    return n


class TestUsers:
    """Copies of the account files with the test users added, bind-mounted over /etc.

    users.op, users.out, users.ask (TestUser); users.root is uid 0; users.group_gid is the
    gid of group lium-cvm in the copies (the host's, when the host already has the group)."""

    __test__ = False  # not a pytest test class
    ACCOUNT_FILES = ("passwd", "group", "shadow", "gshadow")

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="lcvm-it-users-"))
        self.dir.chmod(0o755)
        self._mounts = Mounts()
        self.root = TestUser("root", 0, 0, [], Path("/root"))
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _create(self):
        for name in self.ACCOUNT_FILES:
            src = Path("/etc") / name
            if src.exists():
                shutil.copy2(src, self.dir / name)
                st = src.stat()
                os.chown(self.dir / name, st.st_uid, st.st_gid)
        passwd = _parse_colon_file(self.dir / "passwd")
        groups = _parse_colon_file(self.dir / "group")
        names = {u for u, _ in USERS.values()}
        passwd = [p for p in passwd if p[0] not in names]
        groups = [g for g in groups if g[0] not in names]
        used_uids = {int(p[2]) for p in passwd if len(p) > 2 and p[2].isdigit()}
        used_gids = {int(g[2]) for g in groups if len(g) > 2 and g[2].isdigit()}

        group_entry = next((g for g in groups if g[0] == GROUP), None)
        if group_entry is None:
            gid = _free_id(used_gids, FIRST_TEST_ID)
            used_gids.add(gid)
            group_entry = [GROUP, "x", str(gid), ""]
            groups.append(group_entry)
        self.group_gid = int(group_entry[2])

        homes = self.dir / "home"
        homes.mkdir(mode=0o755)
        for key, (name, extra) in USERS.items():
            uid = _free_id(used_uids | used_gids, FIRST_TEST_ID)
            used_uids.add(uid)
            used_gids.add(uid)
            home = homes / name
            home.mkdir(mode=0o700)
            os.chown(home, uid, uid)
            passwd.append([name, "x", str(uid), str(uid), "lium-cvm test user", str(home),
                           "/bin/sh"])
            groups.append([name, "x", str(uid), ""])
            for g in groups:
                if g[0] in extra:
                    members = [m for m in g[3].split(",") if m] + [name]
                    g[3] = ",".join(members)
            setattr(self, key, TestUser(name, uid, uid, list(extra), home))

        (self.dir / "passwd").write_text("".join(":".join(p) + "\n" for p in passwd))
        (self.dir / "group").write_text("".join(":".join(g) + "\n" for g in groups))
        self._append_shadow("shadow", "{name}:!:19000:0:99999:7:::\n")
        self._append_shadow("gshadow", "{name}:!::\n", with_group=True)
        for name in self.ACCOUNT_FILES:
            if (self.dir / name).exists():
                self._mounts.bind(self.dir / name, Path("/etc") / name)

    def _append_shadow(self, filename, template, with_group=False):
        path = self.dir / filename
        if not path.exists():
            return
        lines = [ln for ln in path.read_text().splitlines(keepends=True)
                 if ln.split(":")[0] not in {u for u, _ in USERS.values()}]
        names = [u for u, _ in USERS.values()]
        if with_group and not any(ln.startswith(GROUP + ":") for ln in lines):
            names.append(GROUP)
        lines += [template.format(name=n) for n in names]
        path.write_text("".join(lines))

    def all(self):
        return [self.op, self.out, self.ask]

    def close(self):
        self._mounts.undo()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Results and audit records


@dataclass
class Result:
    """What a command returned. error_name comes from `--json` output of the
    frontend or from gdbus's "GDBus.Error:NAME: message" text, whichever is present."""

    argv: list
    rc: int
    stdout: str
    stderr: str
    pid: int = 0

    @property
    def json(self):
        return json.loads(self.stdout)

    @property
    def error_name(self):
        try:
            doc = json.loads(self.stdout)
            if isinstance(doc, dict) and "error_name" in doc:
                return doc["error_name"]
        except ValueError:
            pass
        m = GDBUS_ERROR_RE.search(self.stderr)
        return m.group("name") if m else None

    def __str__(self):
        return (f"{' '.join(map(str, self.argv))}\n  rc={self.rc}\n  stdout={self.stdout!r}\n"
                f"  stderr={self.stderr!r}")


def _c_unescape(text):
    """Undoes g_strescape(): C escapes and octal bytes, then UTF-8."""
    raw = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1").decode("utf-8", "replace")


@dataclass
class AuditRecord:
    message_id: str
    uid: int
    pid: int
    bus_name: str
    method: str
    object: str
    action: str
    args: str
    result: str

    @classmethod
    def parse(cls, line):
        m = AUDIT_RE.match(line)
        if m is None:
            return None
        d = m.groupdict()
        d["uid"] = int(d["uid"])
        d["pid"] = int(d["pid"])
        d["args"] = _c_unescape(d["args"])
        d["result"] = _c_unescape(d["result"])
        return cls(**d)

    @property
    def ok(self):
        return self.result == "ok" or self.result.startswith("started:")

    @property
    def refused(self):
        return self.result.startswith("refused:")

    @property
    def failed(self):
        return self.result.startswith("failed:")


# --------------------------------------------------------------------------------------------
# Processes


def _base_env(extra=None):
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8"}
    for key, value in os.environ.items():
        if key.endswith("SAN_OPTIONS") or key in ("G_SLICE", "MALLOC_PERTURB_"):
            env[key] = value
    env.update(extra or {})
    return env


def _set_child_subreaper():
    """Orphans of our children (double-forked daemons, QEMU) become our children, so the
    teardown finds and kills every process the harness started."""
    PR_SET_CHILD_SUBREAPER = 36
    _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            kids.append(int(entry))
    return kids


def _descendants(pid):
    out = []
    todo = _children_of(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children_of(p))
    return out


def _stop_process(proc, timeout=5.0):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_until(predicate, timeout, what, on_timeout=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    detail = on_timeout() if on_timeout else ""
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


# --------------------------------------------------------------------------------------------
# D-Bus argument text for gdbus


def _split_signature(sig):
    """Splits a D-Bus signature into its complete types."""
    out, i = [], 0
    while i < len(sig):
        j = _complete_type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _complete_type_end(sig, i):
    c = sig[i]
    if c == "a":
        return _complete_type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while sig[j] != close:
            j = _complete_type_end(sig, j)
        return j + 1
    return i + 1


BASIC_DUMMIES = {
    "y": "byte 0", "b": "false", "n": "int16 0", "q": "uint16 0", "i": "int32 0",
    "u": "uint32 0", "x": "int64 0", "t": "uint64 0", "d": "0.0", "s": "'lcvm-dummy'",
    "o": "objectpath '/'", "g": "signature ''", "h": "handle 0", "v": "<0>",
}


def dummy_argument(sig):
    """A type-correct GVariant text value for one complete type (arrays and dicts empty)."""
    if sig in BASIC_DUMMIES:
        return BASIC_DUMMIES[sig]
    if sig[0] == "a":
        return f"@{sig} []" if sig[1] != "{" else f"@{sig} {{}}"
    if sig[0] == "(":
        inner = [dummy_argument(t) for t in _split_signature(sig[1:-1])]
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
    raise ValueError(f"no dummy for D-Bus type {sig!r}")


@dataclass
class IntrospectedMethod:
    path: str
    interface: str
    name: str
    in_signature: list = field(default_factory=list)
    in_names: list = field(default_factory=list)

    @property
    def qualified(self):
        return f"{self.interface}.{self.name}"

    def dummy_arguments(self):
        return [dummy_argument(t) for t in self.in_signature]


# --------------------------------------------------------------------------------------------
# The harness


def _ini_text(groups):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    for group, keys in groups.items():
        parser[group] = {k: str(v) for k, v in keys.items()}
    buf = io.StringIO()
    parser.write(buf, space_around_delimiters=False)
    return buf.getvalue()


def _merge(base, extra):
    out = {g: dict(k) for g, k in base.items()}
    for group, keys in (extra or {}).items():
        out.setdefault(group, {}).update(keys)
    return out


class Harness:
    """One private system bus, the real polkitd and the real helper.

    Construct, populate the fake trees if the helper must see something at start
    (`prepare(harness)` is called between creating them and starting the helper), then
    start(); or use it as a context manager. Attributes after construction:
      root                 the temporary directory (world-readable: polkitd is not root)
      sysfs, dev, proc     fake trees; the config's sysfs_root, dev_root, proc_root
      state_dir, runtime_dir, modules_load_dir, modprobe_dir, hugepages_dir
      config_path          the helper's and the frontend's lium-cvm.conf
      helper_log           the helper's stderr (all its runs): audit records live here
      users                the TestUsers
    """

    def __init__(self, users, config=None, prepare=None, rules=None, name="lcvm"):
        for binary in (HELPER, FRONTEND):
            if not binary.exists():
                raise FileNotFoundError(f"{binary} is missing: build first (ninja -C BUILD), "
                                        "or set LCVM_BUILD_ROOT to the build directory")
        self.users = users
        self.extra_config = config or {}
        self.prepare = prepare
        self.extra_rules = rules or {}
        self.root = Path(tempfile.mkdtemp(prefix=f"lcvm-it-{name}-"))
        self.root.chmod(0o755)
        self.logs = self.root / "logs"
        self.sysfs = self.root / "sys"
        self.dev = self.root / "dev"
        self.proc = self.root / "proc"
        self.state_dir = self.root / "state"
        self.runtime_dir = self.root / "run"
        self.hugepages_dir = self.root / "hugepages"
        self.modules_load_dir = self.root / "etc" / "modules-load.d"
        self.modprobe_dir = self.root / "etc" / "modprobe.d"
        self.tools_dir = self.root / "tools"
        self.config_path = self.root / "lium-cvm.conf"
        self.helper_log = self.logs / "helper.log"
        self.frontend = self.root / "bin" / "lium-cvm"
        self._mounts = Mounts()
        self._bus = self._polkitd = self._helper = None
        self._polkitd_path = find_polkitd()
        self._make_tree()

    # ---- layout -------------------------------------------------------------------------

    def _make_tree(self):
        for d in (self.logs, self.sysfs / "module", self.sysfs / "bus" / "pci" / "devices",
                  self.dev, self.proc, self.runtime_dir, self.hugepages_dir,
                  self.modules_load_dir, self.modprobe_dir, self.tools_dir,
                  self.root / "bin", self.root / "key-provider"):
            d.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        self._mirror_host_facts()
        # state_dir as data/lium-cvm.tmpfiles.conf lays it out.
        gid = self.users.group_gid
        for sub, mode, group in (("", 0o755, 0), ("images", 0o2775, gid), ("vms", 0o2770, gid),
                                 ("instances", 0o711, 0)):
            d = self.state_dir / sub
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, 0, group)
            d.chmod(mode)
        shutil.copy2(FRONTEND, self.frontend)
        self.frontend.chmod(0o755)

    def _mirror_host_facts(self):
        """This machine's online CPUs and NUMA memory, which the helper reads from sysfs_root
        (the VMs of the run tests really run here); a module's prepare may pose as another
        host (tests/fakes/fakehost.py host_facts)."""
        system = Path("/sys/devices/system")
        files = [Path("cpu/online"), Path("node/online")]
        files += [p.relative_to(system) for p in system.glob("node/node*/meminfo")]
        for rel in files:
            if (system / rel).exists():
                (self.sysfs / "devices/system" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(system / rel, self.sysfs / "devices/system" / rel)

    def config(self):
        """The effective config as {group: {key: value}} (defaults plus the extra keys)."""
        base = {
            "paths": {
                "state_dir": self.state_dir, "runtime_dir": self.runtime_dir,
                "hugepages_dir": self.hugepages_dir, "sysfs_root": self.sysfs,
                "dev_root": self.dev, "proc_root": self.proc,
                "modules_load_dir": self.modules_load_dir, "modprobe_dir": self.modprobe_dir,
            },
            "tools": {"gpu_admin_tools": self.tools_dir / "nvidia_gpu_tools.py",
                      "docker": self.tools_dir / "docker", "hostapi": HOSTAPI},
            "key-provider": {"compose_dir": self.root / "key-provider"},
            "attestation": {"known_good": SOURCE_ROOT / "data" / "known-good.conf"},
            "helper": {"idle_timeout": 0},
        }
        return _merge(base, self.extra_config)

    def write_config(self):
        self.config_path.write_text(_ini_text(self.config()))
        self.config_path.chmod(0o644)

    def _write_bus_config(self):
        ours = self.root / "dbus" / "system.d"
        ours.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCE_ROOT / "dbus" / "io.lium.Cvm1.conf", ours)
        path = self.root / "dbus" / "bus.conf"
        path.write_text(BUS_CONFIG.format(socket=SYSTEM_BUS_SOCKET, ours=ours))
        return path

    def _write_polkit_dirs(self):
        actions = self.root / "polkit" / "actions"
        rules = self.root / "polkit" / "rules.d"
        empty = self.root / "polkit" / "empty"
        for d in (actions, rules, empty):
            d.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCE_ROOT / "polkit" / "io.lium.cvm1.policy", actions)
        shutil.copy2(SOURCE_ROOT / "polkit" / "50-lium-cvm.rules", rules)
        (rules / "90-lcvm-test.rules").write_text(TEST_RULES)
        for name, text in self.extra_rules.items():
            (rules / name).write_text(text)
        for p in (self.root / "polkit").rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        return actions, rules, empty

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        _set_child_subreaper()
        try:
            self.write_config()
            self._mount_environment()
            self._start_bus()
            self.start_polkitd()
            if self.prepare is not None:
                self.prepare(self)
            self.start_helper()
        except BaseException:
            self.close()
            raise

    def _mount_environment(self):
        actions, rules, empty = self._write_polkit_dirs()
        self._mounts.tmpfs("/run/dbus")
        self._mounts.bind(actions, "/usr/share/polkit-1/actions")
        self._mounts.bind(rules, "/etc/polkit-1/rules.d")
        self._mounts.bind(empty, "/usr/share/polkit-1/rules.d")
        # Newer polkit versions also read these; hide the host's rules there too.
        for extra in ("/run/polkit-1/rules.d", "/usr/local/share/polkit-1/rules.d"):
            if os.path.isdir(extra):
                self._mounts.bind(empty, extra)
        # Audit records must reach the helper's stderr, not the host's journal.
        if os.path.isdir("/run/systemd/journal"):
            self._mounts.tmpfs("/run/systemd/journal")

    def _start_bus(self):
        config = self._write_bus_config()
        log = open(self.logs / "dbus-daemon.log", "ab")
        self._bus = subprocess.Popen(
            ["dbus-daemon", "--nofork", "--nopidfile", f"--config-file={config}",
             "--print-address=1"],
            stdout=subprocess.PIPE, stderr=log, env=_base_env(), close_fds=True)
        log.close()
        ready, _, _ = select.select([self._bus.stdout], [], [], START_TIMEOUT)
        line = self._bus.stdout.readline() if ready else b""
        self._bus.stdout.close()
        if not line.startswith(b"unix:"):
            raise RuntimeError("dbus-daemon did not start: " + self._tail("dbus-daemon.log"))

    def start_polkitd(self):
        log = open(self.logs / "polkitd.log", "ab")
        self._polkitd = subprocess.Popen([self._polkitd_path, "--no-debug"], stdout=log,
                                         stderr=subprocess.STDOUT, env=_base_env(),
                                         stdin=subprocess.DEVNULL)
        log.close()
        self._wait_for_name(POLKIT_NAME, self._polkitd, "polkitd.log")

    def stop_polkitd(self):
        _stop_process(self._polkitd)
        _wait_until(lambda: not self.name_has_owner(POLKIT_NAME), START_TIMEOUT,
                    f"{POLKIT_NAME} to disappear")

    def start_helper(self):
        self.write_config()
        log = open(self.helper_log, "ab")
        self._helper = subprocess.Popen(
            [str(HELPER), "--config", str(self.config_path)], stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=_base_env({"G_DEBUG": "fatal-criticals"}))
        log.close()
        self._wait_for_name(BUS_NAME, self._helper, "helper.log")

    def stop_helper(self):
        _stop_process(self._helper)
        _wait_until(lambda: not self.name_has_owner(BUS_NAME), START_TIMEOUT,
                    f"{BUS_NAME} to disappear")
        report = self._sanitizer_report()
        if report:
            raise AssertionError("the helper's sanitizers reported at exit:\n" + report)

    def _sanitizer_report(self):
        """What ASan, LeakSanitizer or UBSan wrote to the helper's log (an ASan build ends the
        helper with SIGTERM, so the exit-time leak check runs), or ""."""
        try:
            text = self.helper_log.read_text(errors="replace")
        except OSError:
            return ""
        marks = ("ERROR: LeakSanitizer", "ERROR: AddressSanitizer", ": runtime error: ")
        at = min((text.find(m) for m in marks if m in text), default=-1)
        return text[max(0, at - 200):at + 6000] if at >= 0 else ""

    def restart_helper(self, config=None):
        """Stops the helper, merges `config` ({group: {key: value}}) into the extra keys,
        rewrites the config and starts the helper again."""
        self.stop_helper()
        if config:
            self.extra_config = _merge(self.extra_config, config)
        self.start_helper()

    @property
    def helper_pid(self):
        return self._helper.pid if self._helper and self._helper.poll() is None else None

    def _wait_for_name(self, name, proc, logname):
        def owned():
            if proc.poll() is not None:
                raise RuntimeError(f"{logname.split('.')[0]} exited with status {proc.returncode}"
                                   f" before owning {name}:\n{self._tail(logname)}")
            return self.name_has_owner(name)

        _wait_until(owned, START_TIMEOUT, f"{name} on the bus",
                    lambda: "\n" + self._tail(logname))

    def name_has_owner(self, name):
        r = self.run_as(self.users.root, ["gdbus", "call", "--system", "--dest",
                                          "org.freedesktop.DBus", "--object-path",
                                          "/org/freedesktop/DBus", "--method",
                                          "org.freedesktop.DBus.NameHasOwner", name])
        return r.rc == 0 and "true" in r.stdout

    def close(self):
        """Stops the helper, polkitd and the bus, kills anything left that they started,
        undoes the mounts and removes the temporary tree (kept when LCVM_KEEP_TMP=1)."""
        for proc in (self._helper, self._polkitd, self._bus):
            _stop_process(proc)
        report = self._sanitizer_report()
        for pid in _descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()
        self._mounts.undo()
        if os.environ.get("LCVM_KEEP_TMP") == "1":
            print(f"lcvm harness: kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        if report:
            raise AssertionError("the helper's sanitizers reported at exit:\n" + report)

    @staticmethod
    def _reap():
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def _tail(self, logname, lines=40):
        path = self.logs / logname
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def logs_text(self):
        """All logs, for a failure report, after how each daemon stands: polkitd logs nothing
        with --no-debug, so its exit status is the only trace when it is gone."""
        parts = []
        for name, proc in (("helper", self._helper), ("polkitd", self._polkitd),
                           ("dbus-daemon", self._bus)):
            status = "not started" if proc is None else proc.poll()
            parts.append(f"---- {name}: {'running' if status is None else f'exited {status}'}")
        for path in sorted(self.logs.glob("*.log")):
            parts.append(f"---- {path.name} ----\n{self._tail(path.name, 200)}")
        return "\n".join(parts)

    # ---- running things -----------------------------------------------------------------

    def _user(self, user):
        if isinstance(user, TestUser):
            return user
        if user in (None, "root"):
            return self.users.root
        for u in self.users.all():
            if u.name == user:
                return u
        raise KeyError(f"no test user {user!r}")

    def run_as(self, user, argv, env=None, timeout=RUN_TIMEOUT):
        """Runs argv as the user (setpriv: real+effective uid/gid, the user's groups), with
        stdin from /dev/null, a clean environment plus `env`. Returns a Result."""
        u = self._user(user)
        base = {"HOME": str(u.home), "USER": u.name, "LOGNAME": u.name,
                "LIUM_CVM_CONFIG": str(self.config_path)}
        cmd = [str(a) for a in argv]
        if u.uid != 0:
            cmd = ["setpriv", f"--reuid={u.uid}", f"--regid={u.gid}", "--init-groups",
                   "--"] + cmd
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_base_env({**base, **(env or {})}), cwd=str(u.home))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"{' '.join(cmd)} did not finish within {timeout} s\n"
                                 f"stdout={out!r}\nstderr={err!r}")
        return Result(cmd, proc.returncode, out, err, proc.pid)

    def run_frontend(self, user, *args, env=None, timeout=RUN_TIMEOUT):
        """Runs the real `lium-cvm ARGS…` as the user, without a terminal (it never prompts).
        The frontend reads the harness config through LIUM_CVM_CONFIG."""
        return self.run_as(user, [self.frontend, *args], env=env, timeout=timeout)

    def gdbus_call(self, user, method, *args, object_path=OBJECT_PATH, dest=BUS_NAME,
                   interactive=False, timeout=RUN_TIMEOUT):
        """`gdbus call --system` as the user: the foreign client. method is
        "Interface.Method" (or just "Method" for io.lium.Cvm1.Host); args are GVariant
        text, e.g. "['vfio_pci']", "uint64 0", "@as []"."""
        if "." not in method:
            method = INTERFACE_PREFIX + "Host." + method
        cmd = ["gdbus", "call", "--system", "--dest", dest, "--object-path", object_path,
               "--method", method]
        if interactive:
            cmd.append("--interactive")
        return self.run_as(user, cmd + ["--"] + list(args), timeout=timeout)

    def introspect(self, user, object_path=OBJECT_PATH):
        r = self.run_as(user, ["gdbus", "introspect", "--system", "--dest", BUS_NAME,
                               "--object-path", object_path, "--xml"])
        if r.rc != 0:
            raise AssertionError(f"introspection of {object_path} failed: {r}")
        return ET.fromstring(r.stdout)

    def introspected_methods(self, user="root", object_path=OBJECT_PATH):
        """Every method of every io.lium.Cvm1.* interface on every object under object_path,
        from the live Introspect data (walking child nodes)."""
        methods = []
        node = self.introspect(user, object_path)
        for iface in node.findall("interface"):
            name = iface.get("name")
            if not name.startswith(INTERFACE_PREFIX):
                continue
            for m in iface.findall("method"):
                ins = [a for a in m.findall("arg") if a.get("direction", "in") == "in"]
                methods.append(IntrospectedMethod(object_path, name, m.get("name"),
                                                  [a.get("type") for a in ins],
                                                  [a.get("name") for a in ins]))
        for child in node.findall("node"):
            child_path = object_path.rstrip("/") + "/" + child.get("name")
            methods.extend(self.introspected_methods(user, child_path))
        return methods

    def get_info(self, user="root"):
        """GetInfo through the frontend's --json (a dict), as the user."""
        r = self.run_frontend(user, "version", "--json")
        if r.rc != 0:
            raise AssertionError(f"lium-cvm version failed: {r}")
        return r.json["helper"]

    # ---- audit --------------------------------------------------------------------------

    def audit_records(self, since=0):
        """The helper's audit records (all its runs), from position `since` on."""
        if not self.helper_log.exists():
            return []
        records = []
        for line in self.helper_log.read_text(errors="replace").splitlines():
            if line.startswith("AUDIT "):
                rec = AuditRecord.parse(line)
                if rec is None:
                    raise AssertionError(f"malformed audit record: {line!r}")
                records.append(rec)
        return records[since:]

    def audit_mark(self):
        """A position for audit_records(since=…): records written after this call."""
        return len(self.audit_records())
