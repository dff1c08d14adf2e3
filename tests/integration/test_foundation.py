# SPDX-License-Identifier: MIT
"""Foundation: the helper on a real system bus under the real polkitd, called by the real
frontend and by a foreign client (gdbus) as users in and out of group lium-cvm.

Module loading never reaches the real kernel here: every module a test loads successfully is
present in the fake sysfs (the helper checks sysfs_root/module/NAME first), and every other
request is refused before libkmod is asked.
"""

import os
import re
import subprocess
import time

import pytest

import lcvm_harness as lh

NOT_AUTHORIZED = lh.ERROR_PREFIX + "NotAuthorized"
INTERACTIVE_REQUIRED = lh.ERROR_PREFIX + "InteractiveAuthorizationRequired"
INVALID_ARGUMENT = lh.ERROR_PREFIX + "InvalidArgument"
LOAD_MODULES = "io.lium.Cvm1.Host.LoadModules"
MANAGE_DEVICES = "io.lium.cvm1.manage-devices"


def prepare_harness(h):
    (h.sysfs / "module" / "vfio_pci").mkdir()


def project_version():
    if os.environ.get("LCVM_VERSION"):
        return os.environ["LCVM_VERSION"]
    text = (lh.SOURCE_ROOT / "meson.build").read_text()
    return re.search(r"version:\s*'([^']+)'", text).group(1)


@pytest.fixture
def modules_load_dir(harness):
    """The helper's modules_load_dir, emptied before the test."""
    for f in harness.modules_load_dir.iterdir():
        f.unlink()
    return harness.modules_load_dir


def only_record(harness, mark):
    records = harness.audit_records(since=mark)
    assert len(records) == 1, f"expected one audit record, got {records}"
    return records[0]


# ---- LoadModules through the frontend --------------------------------------------------------


def test_grouped_user_loads_a_present_module_and_the_call_is_audited(harness, users,
                                                                      modules_load_dir):
    mark = harness.audit_mark()
    r = harness.run_frontend(users.op, "load-modules", "vfio_pci")
    assert r.rc == 0, r
    assert r.stdout == "loaded: vfio_pci\n"
    rec = only_record(harness, mark)
    assert (rec.uid, rec.pid) == (users.op.uid, r.pid)
    assert rec.bus_name.startswith(":")
    assert (rec.method, rec.object, rec.action) == (LOAD_MODULES, lh.OBJECT_PATH, MANAGE_DEVICES)
    assert rec.message_id == "6b1f3c2a9d4e4f0b8a7c5e2d1f0a9b38"
    assert "vfio_pci" in rec.args
    assert rec.ok, rec.result
    assert list(modules_load_dir.iterdir()) == []


def test_persist_writes_the_modules_load_file(harness, users, modules_load_dir):
    r = harness.run_frontend(users.op, "load-modules", "vfio_pci", "--persist", "--json")
    assert r.rc == 0, r
    assert r.json == {"loaded": ["vfio_pci"], "persisted": True}
    path = modules_load_dir / "lium-cvm.conf"
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert lines == ["vfio_pci"]
    st = path.stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o644)


def test_ungrouped_user_is_refused_with_not_authorized_and_nothing_is_written(
        harness, users, modules_load_dir):
    mark = harness.audit_mark()
    r = harness.run_frontend(users.out, "load-modules", "vfio_pci", "--persist", "--json")
    assert r.rc == 1, r
    assert r.error_name == NOT_AUTHORIZED
    assert "not authorized" in r.json["error"]
    assert "lium-cvm" in r.stderr, "the message names the group that grants access"
    assert list(modules_load_dir.iterdir()) == []
    rec = only_record(harness, mark)
    assert (rec.uid, rec.pid, rec.method) == (users.out.uid, r.pid, LOAD_MODULES)
    assert rec.result.startswith("refused: " + NOT_AUTHORIZED)


def test_ungrouped_user_sees_a_one_line_error_without_json(harness, users):
    r = harness.run_frontend(users.out, "load-modules", "vfio_pci")
    assert r.rc == 1, r
    assert r.stdout == ""
    assert r.stderr.startswith("lium-cvm: not authorized for " + MANAGE_DEVICES)
    assert r.stderr.count("\n") == 1


def test_user_without_a_rule_gets_interactive_authorization_required_with_no_ask_password(
        harness, users, modules_load_dir):
    mark = harness.audit_mark()
    r = harness.run_frontend(users.ask, "load-modules", "vfio_pci", "--persist",
                             "--no-ask-password", "--json")
    assert r.rc == 1, r
    assert r.error_name == INTERACTIVE_REQUIRED
    assert list(modules_load_dir.iterdir()) == []
    rec = only_record(harness, mark)
    assert (rec.uid, rec.method) == (users.ask.uid, LOAD_MODULES)
    assert rec.result.startswith("refused: " + INTERACTIVE_REQUIRED)


def test_interactive_call_without_an_agent_is_refused_at_once(harness, users,
                                                             modules_load_dir):
    started = time.monotonic()
    r = harness.gdbus_call(users.ask, "LoadModules", "['vfio_pci']", "uint64 1",
                           interactive=True, timeout=20)
    assert time.monotonic() - started < 10
    assert r.error_name == NOT_AUTHORIZED, r
    assert list(modules_load_dir.iterdir()) == []


def test_frontend_without_a_terminal_never_prompts(harness, users):
    started = time.monotonic()
    r = harness.run_frontend(users.ask, "load-modules", "vfio_pci", "--json", timeout=20)
    assert r.rc == 1, r
    assert r.error_name == INTERACTIVE_REQUIRED
    assert time.monotonic() - started < 10


# ---- default deny, walked from the live introspection ----------------------------------------


def methods_marked_none(harness, user):
    info = harness.get_info(user)
    return {f"{iface}.{method}" for iface, method, action in info["methods"] if action == "none"}


def test_every_introspected_method_not_marked_none_is_refused_for_the_ungrouped_user(
        harness, users):
    none = methods_marked_none(harness, users.out)
    methods = [m for m in harness.introspected_methods(users.out) if m.qualified not in none]
    assert LOAD_MODULES in {m.qualified for m in methods}, "the walk found the Host interface"
    wrong = []
    for m in methods:
        mark = harness.audit_mark()
        r = harness.gdbus_call(users.out, m.qualified, *m.dummy_arguments(),
                               object_path=m.path)
        records = harness.audit_records(since=mark)
        if r.rc == 0 or r.error_name != NOT_AUTHORIZED:
            wrong.append(f"{m.path} {m.qualified}: rc={r.rc} error={r.error_name}")
        elif [(x.uid, x.method, x.result.split(":")[0]) for x in records] != [
                (users.out.uid, m.qualified, "refused")]:
            wrong.append(f"{m.path} {m.qualified}: not audited as refused: {records}")
    assert wrong == [], "\n".join(wrong)


def test_methods_marked_none_answer_the_ungrouped_user(harness, users):
    none = methods_marked_none(harness, users.out)
    assert "io.lium.Cvm1.Host.GetInfo" in none
    live = [m for m in harness.introspected_methods(users.out) if m.qualified in none]
    assert {m.qualified for m in live} >= {"io.lium.Cvm1.Host.GetInfo"}
    for m in live:
        r = harness.gdbus_call(users.out, m.qualified, *m.dummy_arguments(),
                               object_path=m.path)
        assert r.error_name not in (NOT_AUTHORIZED, INTERACTIVE_REQUIRED), r
    r = harness.gdbus_call(users.out, "GetInfo")
    assert r.rc == 0, r
    assert "'version'" in r.stdout


def documented_flags(xml, method):
    """The flags the XML's comment before <method name="METHOD"> documents: "flags: none (0)"
    is 0, "flags: 1 = persist …" the values or'ed; None when it documents none."""
    at = xml.index(f'<method name="{method}">')
    comment = xml[xml.rindex("<!--", 0, at):at]
    m = re.search(r"flags:\s*([^.]*)", comment)
    if m is None:
        return None
    if m.group(1).startswith("none (0)"):
        return 0
    values = [int(v) for v in re.findall(r"\b(\d+) = ", m.group(1))]
    assert values, f"{method}: cannot read its flags from {comment!r}"
    flags = 0
    for v in values:
        flags |= v
    return flags


def test_every_introspected_flags_argument_takes_exactly_what_the_xml_documents(harness, users):
    xml = (lh.SOURCE_ROOT / "dbus" / "io.lium.Cvm1.xml").read_text()
    methods = [m for m in harness.introspected_methods(users.op) if "flags" in m.in_names]
    assert LOAD_MODULES in {m.qualified for m in methods}, "the walk found the Host interface"
    wrong = []
    for m in methods:
        documented = documented_flags(xml, m.name)
        if documented is None:
            wrong.append(f"{m.qualified}: takes flags its XML comment does not document")
            continue
        args = m.dummy_arguments()
        at = m.in_names.index("flags")
        unknown = 1 << documented.bit_length()
        args[at] = f"uint64 {documented | unknown}"
        r = harness.gdbus_call(users.op, m.qualified, *args, object_path=m.path)
        if r.error_name != INVALID_ARGUMENT or f"unknown flags {unknown:#x}" not in r.stderr:
            wrong.append(f"{m.qualified}: flag {unknown:#x} not refused: {r}")
        if documented:
            # the documented flags pass the check (the dummy arguments fail after it)
            args[at] = f"uint64 {documented}"
            r = harness.gdbus_call(users.op, m.qualified, *args, object_path=m.path)
            if r.error_name in (NOT_AUTHORIZED, INTERACTIVE_REQUIRED) or "unknown flags" in r.stderr:
                wrong.append(f"{m.qualified}: documented flags {documented:#x} refused: {r}")
    assert wrong == [], "\n".join(wrong)


def test_only_root_may_own_the_bus_name(harness, users):
    r = harness.gdbus_call(users.op, "org.freedesktop.DBus.RequestName", "'io.lium.Cvm1'",
                           "uint32 4", dest="org.freedesktop.DBus",
                           object_path="/org/freedesktop/DBus")
    assert r.error_name == "org.freedesktop.DBus.Error.AccessDenied", r
    r = harness.gdbus_call(users.root, "org.freedesktop.DBus.RequestName", "'io.lium.Cvm1'",
                           "uint32 4", dest="org.freedesktop.DBus",
                           object_path="/org/freedesktop/DBus")
    assert r.stdout.strip() == "(uint32 3,)", "root may, but the running helper has it"


# ---- the foreign client ----------------------------------------------------------------------


@pytest.mark.parametrize("who,expected", [("op", None), ("out", NOT_AUTHORIZED),
                                          ("ask", INTERACTIVE_REQUIRED)])
def test_foreign_client_gets_the_same_answer_as_the_frontend(harness, users, who, expected):
    user = getattr(users, who)
    front = harness.run_frontend(user, "load-modules", "vfio_pci", "--json",
                                 "--no-ask-password")
    foreign = harness.gdbus_call(user, "LoadModules", "['vfio_pci']", "uint64 0")
    assert (front.rc == 0, front.error_name if front.rc else None) == (expected is None,
                                                                       expected), front
    assert (foreign.rc == 0, foreign.error_name if foreign.rc else None) == (expected is None,
                                                                             expected), foreign


# ---- refused module names --------------------------------------------------------------------


def assert_invalid_and_nothing_written(harness, users, r, mark):
    assert r.rc != 0, r
    assert r.error_name == INVALID_ARGUMENT, r
    assert list(harness.modules_load_dir.iterdir()) == []
    assert sorted(p.name for p in (harness.sysfs / "module").iterdir()) == ["vfio_pci"]
    rec = only_record(harness, mark)
    assert (rec.uid, rec.method, rec.action) == (users.op.uid, LOAD_MODULES, MANAGE_DEVICES)
    assert rec.failed and rec.result.startswith("failed: " + INVALID_ARGUMENT), rec


@pytest.mark.parametrize("names", [["../x"], ["nvidia"], ["vfio_pci", "nvidia"],
                                   ["vfio"] * 10000],
                         ids=["dotdot", "nvidia", "one-bad-among-good", "10000-names"])
def test_frontend_refuses_names_outside_the_allow_list(harness, users, modules_load_dir, names):
    mark = harness.audit_mark()
    r = harness.run_frontend(users.op, "load-modules", *names, "--persist", "--json")
    assert_invalid_and_nothing_written(harness, users, r, mark)


@pytest.mark.parametrize("modules,flags", [
    ("@as []", "uint64 1"),
    ("['../x']", "uint64 1"),
    ("['nvidia']", "uint64 1"),
    ("['/lib/modules/x/vfio.ko']", "uint64 1"),
    ("[" + ", ".join(["'vfio'"] * 10000) + "]", "uint64 1"),
    ("['vfio_pci']", "uint64 3"),
    ("['vfio_pci']", "uint64 9223372036854775808"),
], ids=["empty-list", "dotdot", "nvidia", "path", "10000-names", "unknown-flag-bit",
        "top-flag-bit"])
def test_foreign_client_is_refused_invalid_requests(harness, users, modules_load_dir, modules,
                                                    flags):
    mark = harness.audit_mark()
    r = harness.gdbus_call(users.op, "LoadModules", modules, flags)
    assert_invalid_and_nothing_written(harness, users, r, mark)


# ---- GetInfo and versions --------------------------------------------------------------------


def test_version_shows_both_versions_to_an_ungrouped_user(harness, users):
    version = project_version()
    r = harness.run_frontend(users.out, "version")
    assert r.rc == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == f"lium-cvm {version}"
    assert lines[1] == f"helper: lium-cvm-helper {version} on io.lium.Cvm1"
    doc = harness.run_frontend(users.out, "version", "--json").json
    assert doc["frontend_version"] == version
    assert doc["helper"]["version"] == version
    assert doc["helper"]["config"]["paths.sysfs_root"] == str(harness.sysfs)
    assert doc["helper"]["config"]["helper.idle_timeout"] == "0"


def test_version_without_a_helper_says_so_and_fails(harness, users):
    harness.stop_helper()
    try:
        r = harness.run_frontend(users.out, "version")
        assert r.rc == 1, r
        assert "helper: unavailable" in r.stdout
    finally:
        harness.start_helper()
    assert harness.run_frontend(users.out, "version").rc == 0


# ---- polkitd going away ----------------------------------------------------------------------


def test_without_polkitd_a_privileged_call_fails_fast_and_recovers_when_it_returns(
        harness, users, modules_load_dir):
    harness.stop_polkitd()
    try:
        mark = harness.audit_mark()
        started = time.monotonic()
        r = harness.run_frontend(users.op, "load-modules", "vfio_pci", "--persist", "--json",
                                 timeout=30)
        assert time.monotonic() - started < 10, "answered, not hung until the D-Bus timeout"
        assert r.rc == 1, r
        assert r.error_name == NOT_AUTHORIZED
        assert "polkitd" in r.json["error"]
        assert list(modules_load_dir.iterdir()) == []
        assert only_record(harness, mark).refused
    finally:
        harness.start_polkitd()
    r = harness.run_frontend(users.op, "load-modules", "vfio_pci")
    assert r.rc == 0, r


# ---- the helper's own start-up (no bus needed) -----------------------------------------------


def run_helper(*args):
    return subprocess.run([str(lh.HELPER), *args], capture_output=True, text=True, timeout=20,
                          env={"PATH": "/usr/bin:/bin", "DBUS_SYSTEM_BUS_ADDRESS":
                               "unix:path=/nonexistent/lcvm-no-bus"})


def test_helper_refuses_to_start_without_its_config_file(tmp_path):
    missing = tmp_path / "absent.conf"
    r = run_helper("--config", str(missing))
    assert r.returncode == 1, r
    assert "refusing to start" in r.stderr
    assert str(missing) in r.stderr


@pytest.mark.parametrize("text,names", [
    ("[helper]\nidle_timeout=soon\n", "helper.idle_timeout"),
    ("[paths]\nsysfs_root=relative/sys\n", "paths.sysfs_root"),
    ("[paths]\nstate_dir=/var/lib/../../etc\n", "paths.state_dir"),
    ("[helper]\nidle_timeuot=5\n", "helper.idle_timeuot"),
    ("[helpers]\nidle_timeout=5\n", "[helpers]"),
    ("not a key file\n", "lium-cvm.conf"),
], ids=["not-a-number", "relative-path", "dotdot-path", "misspelt-key", "unknown-group",
        "not-a-keyfile"])
def test_helper_refuses_to_start_with_a_malformed_config_naming_the_key(tmp_path, text, names):
    path = tmp_path / "lium-cvm.conf"
    path.write_text(text)
    r = run_helper("--config", str(path))
    assert r.returncode == 1, r
    assert "refusing to start" in r.stderr
    assert names in r.stderr, r.stderr
