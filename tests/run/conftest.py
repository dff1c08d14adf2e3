# SPDX-License-Identifier: MIT
"""pytest wiring of the VM-run tests: the integration harness (real bus, polkitd, helper and
frontend) started inside a private NETWORK namespace as well as a private mount namespace, so
the loopback guard's nftables rules and QEMU's forwarded ports never touch the host, and a
private IPC namespace, so the SysV and POSIX IPC objects tests leave as VM uids (and the
helper purges) are nobody else's; and the tiny guest of tests/e2e/build-guest.sh.

Fixtures: users (session), harness (module; HARNESS_CONFIG / prepare_harness as in
tests/integration), guest (session: the built guest's directory). Skips (meson 77) without
root, a harness tool, qemu-system-x86_64 or what the guest is built from.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE.parent / "e2e"))
import lcvm_harness  # noqa: E402

MESON_SKIP = 77
QEMU = Path(os.environ.get("LCVM_QEMU", "/usr/bin/qemu-system-x86_64"))
BUILD_GUEST = HERE.parent / "e2e" / "build-guest.sh"
GUEST_DIR = Path(os.environ.get("LCVM_GUEST_DIR",
                                lcvm_harness.BUILD_ROOT / "tests" / "e2e" / "guest"))
COUNTS = {"passed": 0, "skipped": 0}
UNAVAILABLE = []


def _net_namespace():
    return os.readlink("/proc/self/ns/net")


def _ensure_private_net_namespace():
    """Re-executes pytest under `unshare -n -i` once (LCVM_OUTER_NET_NS remembers the outer one);
    the harness then adds its mount namespace. Loopback comes up inside."""
    outer = os.environ.get("LCVM_OUTER_NET_NS")
    if os.geteuid() != 0 or lcvm_harness._in_private_mount_namespace():
        return
    if outer is None:
        os.environ["LCVM_OUTER_NET_NS"] = _net_namespace()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvp("unshare", ["unshare", "-n", "-i", "--", sys.executable] + sys.orig_argv[1:])
    if outer == _net_namespace():
        os.environ["LCVM_HARNESS_UNAVAILABLE"] = "unshare -n did not give a new network namespace"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    _ensure_private_net_namespace()
    lcvm_harness.ensure_private_mount_namespace()
    if os.environ.get("LCVM_OUTER_NET_NS") not in (None, _net_namespace()):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_runtest_logreport(report):
    if report.skipped:
        COUNTS["skipped"] += 1
    elif report.when == "call" and report.passed:
        COUNTS["passed"] += 1


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and (UNAVAILABLE or (COUNTS["skipped"] and not COUNTS["passed"])):
        session.exitstatus = MESON_SKIP


@pytest.fixture(scope="session")
def users():
    reason = lcvm_harness.unavailable_reason()
    if reason is None and os.environ.get("LCVM_OUTER_NET_NS") in (None, _net_namespace()):
        reason = "not in a private network namespace (unshare -n failed)"
    if reason is None and not QEMU.exists():
        reason = f"{QEMU} not found (apt-get install qemu-system-x86)"
    if reason is not None:
        UNAVAILABLE.append(reason)
        pytest.skip(reason)
    u = lcvm_harness.TestUsers()
    yield u
    u.close()


@pytest.fixture(scope="session")
def guest(users):
    r = subprocess.run([str(BUILD_GUEST), str(GUEST_DIR)], capture_output=True, text=True)
    if r.returncode == MESON_SKIP:
        UNAVAILABLE.append(r.stderr.strip())
        pytest.skip(f"cannot build the test guest: {r.stderr.strip()}")
    assert r.returncode == 0, f"build-guest.sh failed: {r.stderr}"
    return GUEST_DIR


@pytest.fixture(scope="module")
def harness(request, users, guest):
    module = request.module
    prepare = getattr(module, "prepare_harness", None)
    h = lcvm_harness.Harness(
        users,
        config=getattr(module, "HARNESS_CONFIG", None),
        prepare=(lambda h: prepare(h, guest)) if prepare else None,
        name=module.__name__.rsplit(".", 1)[-1],
    )
    with h:
        yield h


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    h = getattr(item, "funcargs", {}).get("harness")
    if report.failed and h is not None:
        report.sections.append(("lcvm harness logs", h.logs_text()))
