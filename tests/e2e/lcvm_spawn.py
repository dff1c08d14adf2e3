# SPDX-License-Identifier: MIT
"""The e2e tests' view of the confined spawn path: runs tests/probe/lcvm-spawn-run (which calls
helper_spawn) and reads /proc of the spawned process.

  Spawned(argv, fds={child_fd: parent_fd}, profile="qemu", ...)   starts one program
                           (sandbox=True: in its own mount and IPC namespaces, with show_dirs,
                           show_rw_dirs and show_devs={name: host_node} added to its view)
  .pid / .spawn_us         from lcvm-spawn-run's "spawned" line
  .signal("TERM"|"KILL")   sent through the pidfd by lcvm-spawn-run
  .wait_exit(timeout)      ("exited", code) | ("signaled", sig) | None on timeout
  task_status(pid)         {tid: {key: value}} from /proc/PID/task/*/status
"""

import os
import select
import subprocess
import time
from pathlib import Path

# Inside the default [qemu] uid_range (61000-61999, common/lcvm-config.c); a VM's uid needs no
# passwd entry, and neither does this one.
VM_UID = 61990
VM_GID = 61990

BUILD_ROOT = Path(os.environ.get("LCVM_BUILD_ROOT", Path(__file__).resolve().parents[2] / "build"))
SPAWN_RUN = Path(os.environ.get("LCVM_SPAWN_RUN", BUILD_ROOT / "tests/probe/lcvm-spawn-run"))
SPAWN_PROBE = Path(os.environ.get("LCVM_SPAWN_PROBE", BUILD_ROOT / "tests/probe/lcvm-spawn-probe"))
BUILD_GUEST = Path(__file__).resolve().parent / "build-guest.sh"
GUEST_DIR = Path(os.environ.get("LCVM_GUEST_DIR", BUILD_ROOT / "tests/e2e/guest"))
QEMU = Path(os.environ.get("LCVM_QEMU", "/usr/bin/qemu-system-x86_64"))


class SpawnFailed(Exception):
    pass


class Spawned:
    def __init__(self, argv, fds=None, profile="qemu", env=None, umask=None, cwd=None,
                 memlock=None, uid=VM_UID, gid=VM_GID, data_limit=None, file_size_limit=None,
                 sandbox=False, show_dirs=(), show_rw_dirs=(), show_devs=None):
        fds = fds or {}
        cmd = [str(SPAWN_RUN), "--uid", str(uid), "--gid", str(gid), "--profile", profile]
        if sandbox:
            cmd.append("--sandbox")
        cmd += [f"--show-dir={d}" for d in show_dirs]
        cmd += [f"--show-rw-dir={d}" for d in show_rw_dirs]
        cmd += [f"--show-dev={name}={node}" for name, node in (show_devs or {}).items()]
        for child_fd, parent_fd in fds.items():
            cmd += ["--fd", f"{child_fd}={parent_fd}"]
        for entry in env or []:
            cmd += ["--env", entry]
        if umask is not None:
            cmd += ["--umask", umask]
        if cwd is not None:
            cmd += ["--cwd", str(cwd)]
        if memlock is not None:
            cmd += ["--memlock", str(memlock)]
        if data_limit is not None:
            cmd += ["--data-limit", str(data_limit)]
        if file_size_limit is not None:
            cmd += ["--file-size-limit", str(file_size_limit)]
        cmd += ["--", *[str(a) for a in argv]]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, pass_fds=tuple(fds.values()))
        line = self.proc.stdout.readline().decode()
        if not line.startswith("spawned "):
            self.proc.wait(10)
            raise SpawnFailed(self.proc.stderr.read().decode().strip())
        fields = dict(kv.split("=") for kv in line.split()[1:])
        self.pid = int(fields["pid"])
        self.spawn_us = int(fields["spawn_us"])
        self.outcome = None

    def signal(self, name):
        self.proc.stdin.write(f"{name}\n".encode())
        self.proc.stdin.flush()

    def wait_exit(self, timeout):
        """How the child ended, seen by lcvm-spawn-run through its pidfd; None if still running."""
        if self.outcome is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:
                return None
            kind, value = self.proc.stdout.readline().decode().split()
            self.outcome = (kind, int(value.split("=")[1]))
            self.proc.wait(10)
        return self.outcome

    def close(self):
        if self.proc.poll() is None and self.outcome is None:
            self.signal("KILL")
            self.wait_exit(30)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


def task_status(pid):
    """/proc/PID/task/*/status of every thread, as {tid: {"Uid": "…", …}}."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = {}
        for line in (task / "status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        out[int(task.name)] = fields
    return out


def namespace(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def minimal_view():
    """The mount points every sandboxed child has (helper-sandbox-ns.c), in order: those of
    its /etc files this host has, then the rest."""
    base = ["/", "/usr", "/etc/ld.so.cache", "/etc/resolv.conf", "/etc/hosts",
            "/etc/nsswitch.conf", "/etc/localtime", "/sys", "/proc", "/dev", "/dev/shm", "/tmp"]
    return [p for p in base if p == "/" or os.path.exists(p)]


def mount_points(pid):
    """The mount points of /proc/PID/mountinfo, in order."""
    return [line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]


def sysv_ipc_owned_by(uid):
    """SysV shm, msg and sem ids of this IPC namespace owned by uid, as {"shm": [ids], ...}."""
    out = {}
    for kind in ("shm", "msg", "sem"):
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        header = lines[0].split()
        rows = [dict(zip(header, line.split())) for line in lines[1:]]
        out[kind] = [int(r[kind + "id"] if kind != "msg" else r["msqid"]) for r in rows
                     if int(r["uid"]) == uid]
    return out


def has_cap(cap_number):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << cap_number))
    return False


def wait_for(predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
