# SPDX-License-Identifier: MIT
"""pytest wiring for the e2e tests: skips (meson status 77) without root or a prerequisite,
and the fixtures.

  run_dir  (function)  a fresh directory the VM uid can read (0755, root-owned), removed after
  probe    (function)  a copy of lcvm-spawn-probe in run_dir (the build tree may be unreadable
                       for the VM uid)
  guest    (session)   the tiny guest built by build-guest.sh (once per build dir), needs
                       qemu-system-x86, ovmf, busybox-static, linux-image-amd64, cpio
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lcvm_spawn as ls  # noqa: E402

MESON_SKIP = 77
COUNTS = {"passed": 0, "skipped": 0}


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # meson's timeout sends SIGTERM: unwind the fixtures (and kill spawned QEMUs) as for Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_runtest_logreport(report):
    if report.skipped:
        COUNTS["skipped"] += 1
    elif report.when == "call" and report.passed:
        COUNTS["passed"] += 1


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and COUNTS["skipped"] and not COUNTS["passed"]:
        session.exitstatus = MESON_SKIP


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: the spawn path changes uid and drops capabilities")
    for tool in (ls.SPAWN_RUN, ls.SPAWN_PROBE):
        if not tool.exists():
            pytest.skip(f"{tool} is not built (ninja -C build)")


@pytest.fixture
def run_dir():
    _require_root()
    d = Path(tempfile.mkdtemp(prefix="lcvm-e2e-"))
    d.chmod(0o755)
    yield d
    if os.environ.get("LCVM_KEEP_TMP") != "1":
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def probe(run_dir):
    p = run_dir / "lcvm-spawn-probe"
    shutil.copy(ls.SPAWN_PROBE, p)
    p.chmod(0o755)
    return p


@pytest.fixture(scope="session")
def guest():
    _require_root()
    if not ls.QEMU.exists():
        pytest.skip(f"{ls.QEMU} not found (apt-get install qemu-system-x86)")
    r = subprocess.run([str(ls.BUILD_GUEST), str(ls.GUEST_DIR)], capture_output=True, text=True)
    if r.returncode == MESON_SKIP:
        pytest.skip(f"cannot build the test guest: {r.stderr.strip()}")
    assert r.returncode == 0, f"build-guest.sh failed: {r.stderr}"
    return ls.GUEST_DIR
