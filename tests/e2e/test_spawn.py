# SPDX-License-Identifier: MIT
"""The confined spawn path (helper/helper-spawn.c, DESIGN §6) with real processes: the probe
(tests/probe/lcvm-spawn-probe.c) is spawned through helper_spawn() by lcvm-spawn-run and
reports what it got; /proc of the running probe is read from outside."""

import ctypes
import os
import socket
import stat
from pathlib import Path

import pytest

import lcvm_spawn as ls

SIGKILL, SIGTERM, SIGSYS = 9, 15, 31
PROFILES = ["qemu", "bridge"]


def run_call(probe, call, profile, **kwargs):
    """Spawns `probe call CALL`; returns (outcome, the probe's output line)."""
    r, w = os.pipe()
    try:
        s = ls.Spawned([probe, "call", call], fds={1: w}, profile=profile, **kwargs)
    finally:
        os.close(w)
    try:
        outcome = s.wait_exit(30)
    finally:
        s.close()
    with os.fdopen(r) as out:
        return outcome, out.read().strip()


@pytest.fixture
def held_probe(probe, run_dir):
    """A probe in `status` mode that has reported and blocks on its stdin until teardown."""
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    extra = os.open(run_dir / "extra", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        s = ls.Spawned([probe, "status"], fds={0: in_r, 1: out_w, 5: extra},
                       env=["LC_ALL=C", "HOME=/nonexistent"], memlock=4 << 20)
    finally:
        for fd in (in_r, out_w, extra):
            os.close(fd)
    out = os.fdopen(out_r)
    lines = []
    for line in out:
        if line == "end\n":
            break
        lines.append(line.rstrip("\n"))
    s.report = lines
    yield s
    os.close(in_w)
    out.close()
    s.close()


def report_values(report, prefix):
    return [line[len(prefix) + 1:] for line in report if line.startswith(prefix + " ")]


def test_probe_runs_as_the_vm_uid_without_any_privilege(held_probe):
    tasks = ls.task_status(held_probe.pid)
    assert tasks
    uid = str(ls.VM_UID)
    for status in tasks.values():
        assert status["Uid"].split() == [uid] * 4
        assert status["Gid"].split() == [str(ls.VM_GID)] * 4
        assert status["Groups"].split() == []
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[cap], 16) == 0, f"{cap} = {status[cap]}"
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"
        assert status["Seccomp_filters"] == "1"


def held(argv, sandbox=True, **kwargs):
    """Spawns argv (a probe in status or leave mode); returns (Spawned, report lines, stdin)."""
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    try:
        s = ls.Spawned(argv, fds={0: in_r, 1: out_w}, sandbox=sandbox, **kwargs)
    finally:
        os.close(in_r)
        os.close(out_w)
    lines = []
    with os.fdopen(out_r) as out:
        for line in out:
            if line == "end\n":
                break
            lines.append(line.rstrip("\n"))
    return s, lines, in_w


def release(s, stdin):
    os.close(stdin)
    assert s.wait_exit(30) == ("exited", 0)
    s.close()


# The sandbox (helper/helper-sandbox-ns.c): QEMU's own mount and IPC namespaces and a root
# built from nothing.
def test_sandboxed_child_has_its_own_mount_and_ipc_namespaces(probe, run_dir):
    s, _, stdin = held([probe, "status"], show_dirs=[run_dir])
    try:
        for kind in ("mnt", "ipc"):
            assert ls.namespace(s.pid, kind) != ls.namespace(os.getpid(), kind), kind
    finally:
        release(s, stdin)


def test_sandboxed_child_sees_only_the_minimal_view(probe, run_dir):
    s, report, stdin = held([probe, "status"], show_dirs=[run_dir])
    try:
        assert ls.mount_points(s.pid) == ls.minimal_view() + [str(run_dir)]
        root = f"/proc/{s.pid}/root"
        assert set(os.listdir(root)) == (
            {"usr", "etc", "sys", "proc", "dev", "tmp", "run", run_dir.parts[1]}
            | {n for n in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
               if os.path.lexists(f"/{n}")})
        assert os.listdir(f"{root}/run") == []  # no /run/dbus: the system bus is unreachable
        assert not os.path.exists(f"{root}/home") and not os.path.exists(f"{root}/var")
        assert sorted(os.listdir(f"{root}/etc")) == sorted(
            n for n in ("ld.so.cache", "resolv.conf", "hosts", "nsswitch.conf", "localtime")
            if os.path.exists(f"/etc/{n}"))
        # /proc is a procfs of its own that shows the child nothing of other uids.
        info = Path(f"/proc/{s.pid}/mountinfo").read_text()
        assert "hidepid=invisible" in info or "hidepid=2" in info
        assert all(t["Groups"] == "" for t in ls.task_status(s.pid).values())
    finally:
        release(s, stdin)


def test_sandboxed_child_gets_its_devices_as_own_nodes(probe, run_dir):
    s, _, stdin = held([probe, "status"], show_dirs=[run_dir], show_devs={"kvm": "/dev/zero"})
    try:
        st = os.stat(f"/proc/{s.pid}/root/dev/kvm")
        host = os.stat("/dev/zero")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == host.st_rdev
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (ls.VM_UID, ls.VM_GID, 0o600)
        assert (host.st_uid, stat.S_IMODE(host.st_mode)) == (0, 0o666)  # the host's is untouched
    finally:
        release(s, stdin)


def test_sandboxed_child_leaves_no_ipc_object_or_file_on_the_host(probe, run_dir):
    before = ls.sysv_ipc_owned_by(ls.VM_UID)
    s, report, stdin = held([probe, "leave"], show_dirs=[run_dir])
    try:
        left = report_values(report, "left")
        assert {v.split()[0] for v in left} == {"shm", "msg", "sem", "mqueue", "file"}, left
        assert all(not v.split()[1].startswith("-") for v in left), left  # each was created
        assert ls.sysv_ipc_owned_by(ls.VM_UID) == before
        assert os.path.exists(f"/proc/{s.pid}/root/tmp/lcvm-probe-left")
        assert not os.path.exists("/tmp/lcvm-probe-left")
        assert not os.path.exists("/dev/shm/lcvm-probe-left")
    finally:
        release(s, stdin)


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(..., VERSION)


def test_sandboxed_child_cannot_reach_abstract_sockets_bound_outside(probe, run_dir):
    if landlock_abi() < 6:
        pytest.skip("Landlock scopes need Linux 6.12 (ABI 6); the sandbox skips them here")
    name = f"lcvm-e2e-abstract-{os.getpid()}"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind("\0" + name)
        listener.listen(4)
        env = [f"LCVM_PROBE_ABSTRACT={name}"]
        # Unconfined by the sandbox it connects (the test can fail), in it it may not.
        assert run_call(probe, "abstract-connect", "qemu", env=env) == (
            ("exited", 0), "abstract-connect: ok")
        assert run_call(probe, "abstract-connect", "qemu", env=env, sandbox=True,
                        show_dirs=[run_dir]) == (("exited", 0), "abstract-connect: errno EPERM")


def test_a_directory_that_is_no_device_is_refused_before_the_spawn(probe, run_dir):
    with pytest.raises(ls.SpawnFailed) as e:
        ls.Spawned([probe, "status"], sandbox=True, show_devs={"kvm": str(run_dir)})
    assert str(e.value) == (f"{run_dir} cannot be given to QEMU as /dev/kvm: a directory; check "
                            "dev_root in lium-cvm.conf")


def test_a_directory_inside_one_already_shown_is_refused(probe, run_dir):
    # Its mount point would be created in the host's directory.
    with pytest.raises(ls.SpawnFailed) as e:
        ls.Spawned([probe, "status"], sandbox=True, show_rw_dirs=[run_dir, run_dir / "sub"])
    assert "overlaps" in str(e.value)
    assert not (run_dir / "sub").exists()
    with pytest.raises(ls.SpawnFailed) as e:
        ls.Spawned([probe, "status"], sandbox=True, show_dirs=["/usr/lib"])
    assert str(e.value) == ("cannot show /usr/lib to a confined child: it overlaps /usr, which "
                            "it already sees")
    for hidden in ("/tmp", "/proc/sys"):
        with pytest.raises(ls.SpawnFailed) as e:
            ls.Spawned([probe, "status"], sandbox=True, show_dirs=[hidden])
        assert "overlaps" in str(e.value)


def test_a_failing_sandbox_step_is_named(probe, run_dir):
    missing = Path(f"/nonexistent-lcvm-{os.getpid()}")
    with pytest.raises(ls.SpawnFailed) as e:
        ls.Spawned([probe, "status"], sandbox=True, show_dirs=[run_dir, missing])
    assert str(e.value) == (
        "spawn failed at step enter the sandbox (bind-mount onto /newroot"
        f"{missing} from /oldroot{missing}): No such file or directory")


def test_probe_starts_with_no_blocked_or_ignored_signal(held_probe):
    # lcvm-spawn-run blocks SIGTERM and ignores SIGPIPE before spawning, like a worker thread.
    status = ls.task_status(held_probe.pid)[held_probe.pid]
    assert int(status["SigBlk"], 16) == 0
    assert int(status["SigIgn"], 16) == 0


def test_probe_gets_only_the_named_fds_and_a_fresh_environment(held_probe, run_dir):
    fds = dict(v.split(" ", 1) for v in report_values(held_probe.report, "fd"))
    assert sorted(int(n) for n in fds) == [0, 1, 2, 5]
    assert fds["0"].startswith("pipe:")
    assert fds["1"].startswith("pipe:")
    assert fds["2"] == "/dev/null"
    assert fds["5"] == str(run_dir / "extra")
    assert report_values(held_probe.report, "env") == ["LC_ALL=C", "HOME=/nonexistent"]
    assert report_values(held_probe.report, "umask") == ["0077"]  # the default
    assert report_values(held_probe.report, "sid") == [str(held_probe.pid)]
    assert report_values(held_probe.report, "cwd") == ["/"]


def test_probe_gets_the_requested_umask(probe):
    r, w = os.pipe()
    s = ls.Spawned([probe, "status"], fds={1: w}, umask="0027")
    os.close(w)
    with os.fdopen(r) as out:
        assert "umask 0027\n" in out.read()
    assert s.wait_exit(30) == ("exited", 0)
    s.close()


def test_probe_gets_the_memlock_limit_and_no_core_dumps(held_probe):
    assert report_values(held_probe.report, "rlimit memlock") == [f"{4 << 20} {4 << 20}"]
    assert report_values(held_probe.report, "rlimit core") == ["0 0"]


@pytest.mark.skipif(not ls.has_cap(24), reason="root here lacks CAP_SYS_RESOURCE, which raising "
                    "RLIMIT_MEMLOCK above the inherited hard limit needs")
def test_vfio_sized_memlock_limit_is_applied(probe):
    limit = (512 << 20) + (1 << 30)  # helper_spawn_memlock_for(512 MiB, 1 device)
    r, w = os.pipe()
    s = ls.Spawned([probe, "status"], fds={1: w}, memlock=limit)
    os.close(w)
    with os.fdopen(r) as out:
        assert f"rlimit memlock {limit} {limit}" in out.read()
    assert s.wait_exit(30) == ("exited", 0)
    s.close()


# Issue 19: the bridge's memory and file sizes are capped by the spawn, as root, soft = hard, so
# a guest that took the bridge over cannot grow it (or the event file) past them.
def test_data_and_file_size_limits_are_applied(probe):
    r, w = os.pipe()
    s = ls.Spawned([probe, "status"], fds={1: w}, profile="bridge", data_limit=256 << 20,
                   file_size_limit=1 << 20)
    os.close(w)
    with os.fdopen(r) as out:
        report = out.read()
    assert f"rlimit data {256 << 20} {256 << 20}" in report
    assert f"rlimit fsize {1 << 20} {1 << 20}" in report
    assert s.wait_exit(30) == ("exited", 0)
    s.close()


def test_sigterm_through_the_pidfd_ends_the_probe(held_probe):
    held_probe.signal("TERM")
    assert held_probe.wait_exit(10) == ("signaled", SIGTERM)


def test_sigkill_through_the_pidfd_ends_the_probe(held_probe):
    held_probe.signal("KILL")
    assert held_probe.wait_exit(10) == ("signaled", SIGKILL)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("call", [
    "kexec_load", "init_module", "mount", "umount2", "ptrace", "execveat", "clone-newuser",
    "i386-int80", "x32",
])
def test_never_legitimate_calls_kill_the_process(probe, profile, call):
    outcome, output = run_call(probe, call, profile)
    assert outcome == ("signaled", SIGSYS)
    assert output == ""


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("call, errno", [
    ("io_uring_setup", "ENOSYS"), ("clone3", "ENOSYS"), ("userfaultfd", "EPERM"),
    ("bpf", "EPERM"), ("perf_event_open", "EPERM"), ("keyctl", "EPERM"), ("unshare", "EPERM"),
])
def test_probeable_calls_fail_with_an_errno(probe, profile, call, errno):
    assert run_call(probe, call, profile) == (("exited", 0), f"{call}: errno {errno}")


@pytest.mark.parametrize("call", ["thread", "fork", "socket-inet", "socket-netlink-route"])
def test_qemu_profile_keeps_threads_processes_and_sockets(probe, call):
    # "thread": glibc tries clone3 first and falls back to clone only on ENOSYS.
    assert run_call(probe, call, "qemu") == (("exited", 0), f"{call}: ok")


# QEMU's socket-family allow-list: UNIX, INET, INET6 and NETLINK_ROUTE; AF_VSOCK (which would
# reach other guests' CIDs), AF_PACKET, AF_ALG, other netlink families and every family above
# AF_NETLINK are refused before the kernel could autoload a module for them.
@pytest.mark.parametrize("call, result", [
    ("socket-unix", "ok"), ("socket-inet", "ok"), ("socket-inet6", "ok"),
    ("socket-netlink-route", "ok"),
    ("socket-vsock", "errno EAFNOSUPPORT"),
    ("socket-packet", "errno EAFNOSUPPORT"),
    ("socket-packet-high-bits", "errno EAFNOSUPPORT"),
    ("socket-alg", "errno EAFNOSUPPORT"),
    ("socket-netlink-audit", "errno EPROTONOSUPPORT"),
    ("socket-netlink-uevent", "errno EPROTONOSUPPORT"),
    ("socket-netlink-diag", "errno EPROTONOSUPPORT"),
])
def test_qemu_profile_allows_only_its_sockets(probe, call, result):
    assert run_call(probe, call, "qemu") == (("exited", 0), f"{call}: {result}")


def test_bridge_profile_kills_fork(probe):
    assert run_call(probe, "fork", "bridge") == (("signaled", SIGSYS), "")


@pytest.mark.parametrize("call, result", [
    ("thread", "ok"), ("socket-inet", "ok"), ("socket-netlink-diag", "ok"),
    ("socket-packet", "errno EAFNOSUPPORT"),
    ("socket-packet-high-bits", "errno EAFNOSUPPORT"),
    ("socket-netlink-route", "errno EPROTONOSUPPORT"),
])
def test_bridge_profile_allows_only_its_sockets(probe, call, result):
    assert run_call(probe, call, "bridge") == (("exited", 0), f"{call}: {result}")


def test_failed_exec_names_the_step(run_dir):
    with pytest.raises(ls.SpawnFailed) as e:
        ls.Spawned([run_dir / "missing"])
    assert str(e.value) == "spawn failed at step execve: No such file or directory"


def test_unreachable_cwd_names_the_step(probe, run_dir):
    private = run_dir / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(ls.SpawnFailed) as e:
        ls.Spawned([probe, "status"], cwd=private)
    assert str(e.value) == "spawn failed at step chdir: Permission denied"

