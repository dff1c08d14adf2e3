# SPDX-License-Identifier: MIT
"""pytest wiring of the harness (lcvm_harness.py): the private mount namespace, fixtures, the
meson skip status and the harness logs in failure reports.

Fixtures:
  users    (session)  the TestUsers: users.op (group lium-cvm), users.out (refused by rule),
                      users.ask (no rule: auth_admin → InteractiveAuthorizationRequired).
  harness  (module)   a started Harness. A test module customises it with module globals:
                        HARNESS_CONFIG = {"qemu": {"allow_no_tee": "true"}}   extra config keys
                        HARNESS_RULES = {"95-x.rules": "…"}                    extra polkit rules
                        def prepare_harness(h): …   fills h.sysfs/h.dev/h.proc before the
                                                    helper starts
Skips when not root or a tool is missing; the run then exits 77 (meson's SKIP).
"""

import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lcvm_harness  # noqa: E402

MESON_SKIP = 77


COUNTS = {"passed": 0, "failed": 0, "skipped": 0}
HARNESS_UNAVAILABLE = []


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    lcvm_harness.ensure_private_mount_namespace()
    # meson's timeout sends SIGTERM: tear the harnesses down as for Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_runtest_logreport(report):
    if report.skipped:
        COUNTS["skipped"] += 1
    elif report.failed:
        COUNTS["failed"] += 1
    elif report.when == "call":
        COUNTS["passed"] += 1


def pytest_sessionfinish(session, exitstatus):
    """A run whose harness could not start is a skip for meson, even when the tests that need
    no harness passed: otherwise a machine without root or polkitd would look green."""
    if exitstatus == 0 and (HARNESS_UNAVAILABLE or (COUNTS["skipped"] and not COUNTS["passed"])):
        session.exitstatus = MESON_SKIP


@pytest.fixture(scope="session")
def users():
    reason = lcvm_harness.unavailable_reason()
    if reason is not None:
        HARNESS_UNAVAILABLE.append(reason)
        pytest.skip(reason)
    u = lcvm_harness.TestUsers()
    yield u
    u.close()


@pytest.fixture(scope="module")
def harness(request, users):
    module = request.module
    h = lcvm_harness.Harness(
        users,
        config=getattr(module, "HARNESS_CONFIG", None),
        prepare=getattr(module, "prepare_harness", None),
        rules=getattr(module, "HARNESS_RULES", None),
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
