# SPDX-License-Identifier: MIT
"""lium-cvm-hostapi, the guest's host API, driven over real HTTP.

Each test starts the real bridge the way the helper does: a loopback socket the test bound and
listens on, the shared/ directory and the event file passed as fds, the key provider's address
and the one uid it serves. The key provider is tests/fakes/fake_key_provider.py, speaking the
real wire format. After every test the bridge must still be running: no input may crash it.
"""

import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "fakes"))
import fake_key_provider as fkp  # noqa: E402

BUILD_ROOT = Path(os.environ.get("LCVM_BUILD_ROOT", HERE.parents[1] / "build"))
HOSTAPI = Path(os.environ.get("LCVM_HOSTAPI",
                              BUILD_ROOT / "helper" / "hostapi" / "lium-cvm-hostapi"))
# "PROGRAM ARG…" to run the bridge through (meson runs the suite a second time under
# seccomp-exec, the bridge's production seccomp profile).
WRAPPER = os.environ.get("LCVM_HOSTAPI_WRAPPER", "").split()


def _sanitizer_env(extra=None):
    """The sanitizer options the suite runs under (tools/run-tests.sh), for the bridge. Under
    its seccomp profile LeakSanitizer is off: its exit-time scan stops the threads with ptrace
    from a cloned task, which the profile kills (SIGSYS). The unconfined run checks leaks."""
    env = {k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}
    if WRAPPER:
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    for key, value in (extra or {}).items():  # a later ASan option overrides an earlier one
        env[key] = ":".join(filter(None, [env.get(key), value])) if key in env else value
    return env
QUOTE = bytes(range(256)) * 20  # a TDX quote is a few KiB
NOBODY = 65534
INFO_REQUEST = b"POST /api/Info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"


class Bridge:
    """One running lium-cvm-hostapi and the files it was given."""

    def __init__(self, tmp_path, provider, peer_uid=None, extra=(), events_flags=None,
                 file_size_limit=None, env=None):
        self.shared = tmp_path / "shared"
        self.shared.mkdir()
        self.events = tmp_path / "events.jsonl"
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.shared_fd = os.open(self.shared, os.O_RDONLY | os.O_DIRECTORY)
        flags = events_flags if events_flags is not None else (
            os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.events_fd = os.open(self.events, flags, 0o600)
        self.peer_uid = os.getuid() if peer_uid is None else peer_uid
        self.argv = [*WRAPPER, str(HOSTAPI), f"--listen-fd={self.listener.fileno()}",
                     f"--key-provider={provider}", f"--peer-uid={self.peer_uid}",
                     f"--shared-fd={self.shared_fd}", f"--events-fd={self.events_fd}",
                     *extra]
        self.stderr_path = tmp_path / "hostapi.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv, pass_fds=(self.listener.fileno(), self.shared_fd, self.events_fd),
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                preexec_fn=None if file_size_limit is None else (
                    lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                               (file_size_limit, file_size_limit))),
                env={"G_DEBUG": "fatal-criticals", "PATH": "/usr/bin:/bin",
                     **_sanitizer_env(env)})

    @property
    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def post(self, path, body, timeout=30, headers=None):
        """POSTs body (bytes, or an object sent as JSON) → (status, parsed JSON answer)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn = self.connection(timeout)
        try:
            conn.request("POST", path, body=data,
                         headers={"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def raw(self, data, timeout=10):
        """Sends raw bytes on a new connection and returns everything read until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            return _read_all(s)

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.listener.close()
        os.close(self.shared_fd)
        os.close(self.events_fd)
        # An ASan build reports what the bridge leaked when it exits on SIGTERM.
        assert "LeakSanitizer" not in self.stderr, self.stderr


def _read_all(s):
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def _status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")) else None


@pytest.fixture
def provider():
    with fkp.FakeKeyProvider("normal") as p:
        yield p


@pytest.fixture
def make_bridge(tmp_path):
    if not HOSTAPI.exists():
        pytest.fail(f"{HOSTAPI} is missing: build first or set LCVM_BUILD_ROOT")
    made = []

    def make(provider_address, **kw):
        sub = tmp_path / f"b{len(made)}"
        sub.mkdir()
        b = Bridge(sub, provider_address, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        alive = b.proc.poll() is None
        stderr = b.stderr
        b.close()
        assert alive, f"the bridge died (status {b.proc.returncode}):\n{stderr}"
        # libsoup's own warning about a negative Content-Length is expected where a test sends one.
        ours = "\n".join(line for line in stderr.splitlines()
                         if "for property 'content-length'" not in line)
        assert "CRITICAL" not in ours and "WARNING" not in ours, stderr


@pytest.fixture
def bridge(make_bridge, provider):
    return make_bridge(provider.address)


# ---- GetSealingKey ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/GetSealingKey", "/api/GetSealingKey?json"])
def test_get_sealing_key_returns_the_providers_answer_as_hex(bridge, provider, path):
    status, answer = bridge.post(path, {"quote": QUOTE.hex()})
    key, pq = fkp.answer_for(QUOTE)
    assert status == 200, answer
    assert answer == {"encrypted_key": key.hex(), "provider_quote": pq.hex()}
    assert provider.received == [QUOTE] and provider.framing_errors == []


def test_get_sealing_key_accepts_uppercase_hex(bridge, provider):
    status, answer = bridge.post("/api/GetSealingKey", {"quote": QUOTE[:64].hex().upper()})
    assert status == 200 and answer["encrypted_key"] == fkp.answer_for(QUOTE[:64])[0].hex()


def test_get_sealing_key_opens_one_provider_connection_per_request(bridge, provider):
    conn = bridge.connection()
    for i in range(3):
        conn.request("POST", "/api/GetSealingKey", body=json.dumps({"quote": f"0{i}"}))
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()
    assert provider.connections == 3
    assert provider.received == [b"\x00", b"\x01", b"\x02"]


@pytest.mark.parametrize("quote", ["", "abc", "zz", "0g", "12 34", None, 42, ["00"]])
def test_get_sealing_key_refuses_a_quote_that_is_not_hex(bridge, provider, quote):
    status, answer = bridge.post("/api/GetSealingKey", {"quote": quote})
    assert status == 400 and "quote" in answer["error"]
    assert provider.connections == 0


def test_get_sealing_key_refuses_a_missing_quote(bridge, provider):
    status, answer = bridge.post("/api/GetSealingKey", {"other": "00"})
    assert status == 400 and "quote" in answer["error"]


@pytest.mark.parametrize("mode", ["oversized", "zero", "malformed", "wrong-shape", "short",
                                  "close-early"])
def test_get_sealing_key_reports_a_broken_provider_answer_as_bad_gateway(make_bridge, mode):
    with fkp.FakeKeyProvider(mode) as p:
        b = make_bridge(p.address)
        status, answer = b.post("/api/GetSealingKey", {"quote": "0011"})
    assert status == 502, answer
    assert "key provider" in answer["error"]


def test_get_sealing_key_times_out_on_a_hanging_provider(make_bridge):
    with fkp.FakeKeyProvider("hang") as p:
        b = make_bridge(p.address, extra=["--provider-timeout=2"])
        start = time.monotonic()
        status, answer = b.post("/api/GetSealingKey", {"quote": "0011"})
        elapsed = time.monotonic() - start
    assert status == 504 and "in time" in answer["error"]
    assert 1.5 < elapsed < 6


def test_a_client_that_leaves_during_a_provider_call_does_not_hurt_the_bridge(make_bridge):
    with fkp.FakeKeyProvider("hang") as p:
        b = make_bridge(p.address, extra=["--provider-timeout=1"])
        body = json.dumps({"quote": "0011"}).encode()
        with socket.create_connection(("127.0.0.1", b.port)) as s:
            s.sendall(b"POST /api/GetSealingKey HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                      b"\r\n\r\n%s" % (len(body), body))
            time.sleep(0.3)
        time.sleep(1.5)  # the provider call times out after the client is gone
        assert b.post("/api/Info", b"")[0] == 200


def test_get_sealing_key_reports_an_unreachable_provider(make_bridge):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = make_bridge(f"127.0.0.1:{port}")
    status, answer = b.post("/api/GetSealingKey", {"quote": "0011"})
    assert status == 503 and "is it running" in answer["error"]


# ---- Notify -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/Notify", "/api/Notify?json"])
def test_notify_instance_info_writes_the_file_atomically(bridge, path):
    info = json.dumps({"instance_id": "ab" * 10, "app_id": "cd" * 10})
    (bridge.shared / ".instance_info").write_text("old")
    status, answer = bridge.post(path, {"event": "instance.info", "payload": info})
    assert status == 200 and answer == {}
    assert (bridge.shared / ".instance_info").read_text() == info
    assert sorted(p.name for p in bridge.shared.iterdir()) == [".instance_info"]


# The helper carries at most 10 KiB of it into the next boot (dstack-util reads no more): the
# bridge refuses what would not be kept instead of accepting 64 KiB and losing it later.
def test_notify_instance_info_over_10_kib_is_refused_and_the_old_file_kept(bridge):
    (bridge.shared / ".instance_info").write_text("old")
    ok = json.dumps({"app_id": "a" * (10 * 1024 - 20)})
    assert len(ok) <= 10 * 1024
    assert bridge.post("/api/Notify", {"event": "instance.info", "payload": ok})[0] == 200
    status, answer = bridge.post("/api/Notify", {"event": "instance.info", "payload": "x" * 10241})
    assert status == 413 and "10240 bytes" in answer["error"]
    assert (bridge.shared / ".instance_info").read_text() == ok


def test_notify_instance_info_replaces_a_planted_symlink_without_following_it(bridge, tmp_path):
    target = tmp_path / "outside"
    target.write_text("untouched")
    (bridge.shared / ".instance_info").symlink_to(target)
    status, _ = bridge.post("/api/Notify", {"event": "instance.info", "payload": "{}"})
    assert status == 200
    assert target.read_text() == "untouched"
    assert not (bridge.shared / ".instance_info").is_symlink()
    assert (bridge.shared / ".instance_info").read_text() == "{}"


def test_notify_boot_events_are_appended_to_the_event_file(bridge):
    sent = [("boot.progress", "attesting GPU"), ("boot.progress", "data disk ready"),
            ("boot.error", "failed to start containers"),
            ("shutdown.progress", "powering off")]
    for event, payload in sent:
        assert bridge.post("/api/Notify", {"event": event, "payload": payload})[0] == 200
    lines = [json.loads(line) for line in bridge.events.read_text().splitlines()]
    assert [(e["event"], e["payload"]) for e in lines] == sent
    assert all(isinstance(e["time_us"], int) for e in lines)


def test_notify_keeps_a_hostile_payload_on_one_line(bridge):
    payload = 'x"}{"event":"boot.error"}\u2028\u2029'
    assert bridge.post("/api/Notify", {"event": "boot.progress", "payload": payload})[0] == 200
    [line, end] = bridge.events.read_text().split("\n")  # JSON lines end at "\n" only
    assert end == "" and json.loads(line)["payload"] == payload


# Issue 19 item 4: a guest's OSC 52 reached the operator's clipboard through `lium-cvm status`.
@pytest.mark.parametrize("payload", ["\x1b]52;c;aGk=\x07", "\x1b[2J", "\x9b2J", "two\nlines",
                                     "tab\there", "nul\x00", "del\x7f"])
def test_notify_refuses_control_characters_in_an_event_payload(bridge, payload):
    status, answer = bridge.post("/api/Notify", {"event": "boot.progress", "payload": payload})
    assert status == 400, answer
    assert "control characters" in answer["error"] or "NUL character" in answer["error"]
    assert bridge.events.read_text() == ""


# Found by fuzzing: json-glib turned "\udc80x" into bytes that are not UTF-8; the 400 answer that
# quoted them was no longer JSON, and the event line the helper read was silently dropped.
@pytest.mark.parametrize("body", [b'{"event": "boot.progress", "payload": "\\udc80x"}',
                                  b'{"event": "boot.progress\\ud800 ", "payload": "x"}',
                                  b'{"quote": "\\udc80x"}'])
def test_a_lone_surrogate_is_400_with_a_json_answer(bridge, body):
    path = "/api/GetSealingKey" if b"quote" in body else "/api/Notify"
    status, answer = bridge.post(path, body)  # post() fails unless the answer is JSON
    assert status == 400 and "UTF-8" in answer["error"]
    assert bridge.events.read_text() == ""


def test_a_json_glib_error_text_is_valid_utf8_in_the_answer(bridge):
    # json-glib quotes the text near the error, cut at a byte count.
    body = b'{"event": "boot.progress", "payload": "x"' + "\u00e9".encode() * 20 + b"\xc3"
    conn = bridge.connection()
    conn.request("POST", "/api/Notify", body=body)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    assert resp.status == 400
    raw.decode("utf-8")  # strict
    assert "error" in json.loads(raw)


# Found by fuzzing: json-glib 1.6 parses a body of several values and leaks all but the first;
# 100 such bodies grew the bridge by 500 MiB.
@pytest.mark.parametrize("body", [b'{"event": "boot.progress", "payload": "x"}{}',
                                  b'{"event": "boot.progress", "payload": "x"} [1]',
                                  b'{"event": "boot.progress", "payload": "x"}\n{"a": 1}'])
def test_a_body_of_several_values_is_400_and_nothing_is_kept(bridge, body):
    status, answer = bridge.post("/api/Notify", body)
    assert status == 400 and "first JSON value" in answer["error"]
    assert bridge.events.read_text() == ""


def test_a_flood_of_many_value_bodies_does_not_grow_the_bridge(make_bridge, provider):
    # An ASan build keeps freed memory in quarantine (256 MiB): not what this test measures.
    bridge = make_bridge(provider.address, env={"ASAN_OPTIONS": "quarantine_size_mb=0"})
    value = b'{"a": "' + b"x" * 4000 + b'"}'
    body = b'{"event": "boot.progress", "payload": "x"}' + value * 30  # ~120 KiB
    def rss_kib():
        with open(f"/proc/{bridge.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    bridge.post("/api/Notify", body)
    before = rss_kib()
    for _ in range(100):
        assert bridge.post("/api/Notify", body)[0] == 400
    assert rss_kib() - before < 32 * 1024, "the bridge kept what it refused"


def test_notify_without_payload_means_empty(bridge):
    assert bridge.post("/api/Notify", {"event": "boot.progress"})[0] == 200
    assert json.loads(bridge.events.read_text())["payload"] == ""


def test_notify_unknown_event_is_accepted_and_ignored(bridge):
    status, answer = bridge.post("/api/Notify", {"event": "something.new", "payload": "x"})
    assert status == 200 and answer == {}
    assert bridge.events.read_text() == ""
    assert list(bridge.shared.iterdir()) == []


@pytest.mark.parametrize("body", [{"payload": "x"}, {"event": 1, "payload": "x"},
                                  {"event": "boot.progress", "payload": {"a": 1}}])
def test_notify_refuses_non_string_fields(bridge, body):
    status, answer = bridge.post("/api/Notify", body)
    assert status == 400 and "strings" in answer["error"]


def test_notify_refuses_an_event_payload_over_4_kib(bridge):
    status, answer = bridge.post("/api/Notify", {"event": "boot.progress", "payload": "x" * 5000})
    assert status == 413
    assert bridge.events.read_text() == ""


def test_notify_stops_appending_when_the_event_file_is_full(bridge):
    os.truncate(bridge.events, 1024 * 1024 - 10)
    status, answer = bridge.post("/api/Notify", {"event": "boot.progress", "payload": "x"})
    assert status == 503 and "full" in answer["error"]
    assert os.path.getsize(bridge.events) == 1024 * 1024 - 10


# Issue 19 item 10: the helper spawns the bridge with RLIMIT_FSIZE; past it a write fails (the
# bridge ignores SIGXFSZ) and the guest gets a 503 instead of a dead bridge.
def test_a_write_past_rlimit_fsize_is_503_and_the_bridge_lives_on(make_bridge, provider):
    b = make_bridge(provider.address, file_size_limit=3000)
    assert b.post("/api/Notify", {"event": "boot.progress", "payload": "x" * 2000})[0] == 200
    status, answer = b.post("/api/Notify", {"event": "boot.progress", "payload": "y" * 2000})
    assert status == 503, answer
    assert b.proc.poll() is None
    assert b.post("/api/Info", b"")[0] == 200


# Found by fuzzing: libsoup 3.2 warns on "Content-Length: -5" before any handler runs; the
# bridge refuses the request, and a guest cannot fill the journal with the warnings.
def test_a_negative_content_length_is_400_and_its_warnings_are_rate_limited(bridge):
    request = b"POST /api/Notify HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}"
    for _ in range(40):
        assert _status_of(bridge.raw(request)) == 400
    bridge.post("/api/Info", b"")
    # libsoup warns once per such request: fewer lines than requests is the limiter at work.
    warnings = bridge.stderr.count("WARNING")
    assert 0 < warnings < 40, bridge.stderr[-2000:]


# ---- Info ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/Info", "/api/Info?json"])
def test_info_answers_name_and_version(bridge, path):
    status, answer = bridge.post(path, b"")
    assert status == 200 and answer["name"] == "lium-cvm" and answer["version"]


# ---- hostile HTTP -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/Nope", "/", "/api/GetSealingKey/x", "/api/Info?xml",
                                  "/api/../api/Info?json&x"])
def test_unknown_route_is_404_with_a_json_error(bridge, path):
    status, answer = bridge.post(path, {})
    assert status == 404 and "unknown route" in answer["error"]


def test_other_methods_are_405(bridge):
    conn = bridge.connection()
    conn.request("GET", "/api/Info")
    resp = conn.getresponse()
    assert resp.status == 405 and resp.getheader("Allow") == "POST"
    assert "POST" in json.loads(resp.read())["error"]


@pytest.mark.parametrize("body", [b"{", b"not json", b"[1,2]", b"\xff\xfe", b"null", b"",
                                  b'"a string"', b"1"])
def test_a_body_that_is_not_a_json_object_is_400(bridge, provider, body):
    status, answer = bridge.post("/api/GetSealingKey", body)
    assert status == 400 and "JSON" in answer["error"]


@pytest.mark.parametrize("path", ["/api/GetSealingKey", "/api/Notify"])
def test_a_deeply_nested_body_is_400_and_the_bridge_lives_on(bridge, path):
    # Under the body cap, but json-glib would recurse once per '[' and overflow the stack.
    body = b"[" * 120000
    status, answer = bridge.post(path, body)
    assert status == 400 and "nested deeper" in answer["error"]
    assert bridge.proc.poll() is None
    assert bridge.post("/api/Info", b"")[0] == 200


# json-glib skips C comments and reads single-quoted strings: a '"' inside one once hid every
# bracket after it from the nesting count, and the bridge died of a stack overflow (SIGSEGV).
@pytest.mark.parametrize("prefix", [b'/*"*/', b"'\"'", b'//"\n', b'{"a": /*"*/'])
def test_nesting_hidden_behind_a_comment_or_single_quote_is_400(bridge, prefix):
    status, answer = bridge.post("/api/Notify", prefix + b"[" * 120000)
    assert status == 400 and "not strict JSON" in answer["error"]
    assert bridge.proc.poll() is None
    assert bridge.post("/api/Info", b"")[0] == 200


def test_a_body_nested_a_few_levels_is_judged_by_its_content(bridge):
    status, answer = bridge.post("/api/Notify", b'{"event": [[[["boot.progress"]]]]}')
    assert status == 400 and "must be strings" in answer["error"]


def test_a_huge_body_is_refused_before_it_is_read(bridge):
    head = (b"POST /api/GetSealingKey HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 1000000000\r\n\r\n")
    raw = bridge.raw(head)
    assert _status_of(raw) == 413
    assert b"at most" in raw


def _peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_huge_body_sent_anyway_is_never_buffered(bridge):
    if b"libasan.so" in HOSTAPI.read_bytes():
        pytest.skip("under AddressSanitizer the peak RSS measures its quarantine of freed "
                    "reads, not the bridge")
    before = _peak_rss_kib(bridge.proc.pid)
    size = 256 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=15) as s:
        s.sendall(b"POST /api/Notify HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"x" * (1024 * 1024)
        try:
            for _ in range(size // len(chunk)):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = _read_all(s)
    assert raw == b"" or _status_of(raw) == 413
    assert _peak_rss_kib(bridge.proc.pid) - before < 32 * 1024


def test_a_body_just_over_the_cap_is_refused(bridge):
    status, answer = bridge.post("/api/Notify", b"x" * (128 * 1024 + 1))
    assert status == 413


def test_a_chunked_body_is_refused(bridge):
    raw = bridge.raw(b"POST /api/Notify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"2\r\n{}\r\n0\r\n\r\n")
    assert _status_of(raw) == 411


def test_garbage_instead_of_http_gets_an_error_or_a_close(bridge):
    raw = bridge.raw(b"\x00\x01\x02 garbage \r\n\r\n")
    assert raw == b"" or _status_of(raw) == 400


def test_a_slow_drip_request_is_cut_off_at_the_request_timeout(make_bridge, provider):
    b = make_bridge(provider.address, extra=["--request-timeout=2"])
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        closed_after = None
        for ch in b"POST /api/Info HTTP/1.1\r\nHost: x\r\n" * 10:
            try:
                s.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
            time.sleep(0.05)
            if s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) if _readable(s) else False:
                pass
            if _eof(s):
                closed_after = time.monotonic() - start
                break
    assert closed_after is not None and 1.5 < closed_after < 5
    assert b.post("/api/Info", b"")[0] == 200


def _readable(s):
    import select
    return bool(select.select([s], [], [], 0)[0])


def _eof(s):
    if not _readable(s):
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def test_an_idle_connection_is_closed_at_the_request_timeout(make_bridge, provider):
    b = make_bridge(provider.address, extra=["--request-timeout=1"])
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        start = time.monotonic()
        assert _read_all(s) == b""
        assert time.monotonic() - start < 4


def test_connections_beyond_the_limit_are_refused(make_bridge, provider):
    b = make_bridge(provider.address, extra=["--max-connections=2"])
    held = [socket.create_connection(("127.0.0.1", b.port)) for _ in range(2)]
    for s in held:  # a request under way holds its slot
        s.sendall(b"POST /api/Info HTTP/1.1\r\n")
    time.sleep(0.3)
    raw = b.raw(INFO_REQUEST)
    assert _status_of(raw) == 403 and b"too many connections" in raw
    held[0].close()
    deadline = time.monotonic() + 5
    while _status_of(b.raw(INFO_REQUEST)) != 200:
        assert time.monotonic() < deadline, "a freed connection slot was never reused"
        time.sleep(0.1)
    held[1].close()


def test_every_connection_serves_one_request_and_is_closed(bridge):
    raw = bridge.raw(INFO_REQUEST + INFO_REQUEST)
    assert raw.count(b"HTTP/1.1 200") == 1 and b"Connection: close" in raw


def test_many_sequential_connections_never_exhaust_the_slots(make_bridge, provider):
    b = make_bridge(provider.address, extra=["--max-connections=2"])
    for _ in range(20):
        assert _status_of(b.raw(INFO_REQUEST)) == 200
    fds = len(os.listdir(f"/proc/{b.proc.pid}/fd"))
    assert fds < 12


# ---- who may connect ----------------------------------------------------------------------

def test_a_connection_from_another_uid_is_refused(make_bridge, provider):
    b = make_bridge(provider.address, peer_uid=os.getuid() + 1)
    raw = b.raw(INFO_REQUEST)
    assert _status_of(raw) == 403 and b"connection refused" in raw
    deadline = time.monotonic() + 5
    while "connection refused" not in b.stderr:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert f"not to the VM's uid {os.getuid() + 1}" in b.stderr


def test_a_refused_connection_never_reaches_a_route(make_bridge, provider):
    b = make_bridge(provider.address, peer_uid=os.getuid() + 1)
    body = json.dumps({"event": "instance.info", "payload": "planted"}).encode()
    raw = b.raw(b"POST /api/Notify HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body))
    assert _status_of(raw) == 403
    assert list(b.shared.iterdir()) == []


def _post_info_as(uid, port):
    """Forks a child that drops to uid and POSTs /api/Info; returns what it read."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"POST /api/Info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
                os.write(w, _read_all(s))
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another uid")
def test_only_the_configured_uid_is_served(make_bridge, provider):
    b = make_bridge(provider.address, peer_uid=NOBODY)
    assert b"200 OK" in _post_info_as(NOBODY, b.port)
    assert _status_of(b.raw(INFO_REQUEST)) == 403
    assert _status_of(_post_info_as(NOBODY - 1, b.port)) == 403


@pytest.mark.skipif(not WRAPPER, reason="runs only when the suite runs under seccomp-exec")
def test_the_bridge_runs_under_its_seccomp_profile(bridge):
    assert bridge.post("/api/GetSealingKey", {"quote": "00"})[0] == 200  # it runs: exec done
    status = Path(f"/proc/{bridge.proc.pid}/status").read_text()
    assert status.startswith("Name:\tlium-cvm-hostap")
    assert "\nSeccomp:\t2\n" in status and "\nNoNewPrivs:\t1\n" in status


# ---- start-up -----------------------------------------------------------------------------

def _start_fails(argv, pass_fds=()):
    r = subprocess.run([*WRAPPER, str(HOSTAPI), *argv], pass_fds=pass_fds, capture_output=True,
                       text=True, timeout=10, env={**os.environ, **_sanitizer_env()})
    return r.returncode, r.stderr


def test_start_refuses_missing_options():
    rc, err = _start_fails([])
    assert rc == 2 and "required" in err


def test_start_refuses_a_socket_that_is_not_listening(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        e = os.open(tmp_path / "ev", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        rc, err = _start_fails([f"--listen-fd={s.fileno()}", "--key-provider=127.0.0.1:1",
                                "--peer-uid=0", f"--shared-fd={d}", f"--events-fd={e}"],
                               pass_fds=(s.fileno(), d, e))
    assert rc == 2 and "not a listening socket" in err


def test_start_refuses_a_host_name_for_the_provider(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        e = os.open(tmp_path / "ev", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        rc, err = _start_fails([f"--listen-fd={s.fileno()}", "--key-provider=localhost:3443",
                                "--peer-uid=0", f"--shared-fd={d}", f"--events-fd={e}"],
                               pass_fds=(s.fileno(), d, e))
    assert rc == 2 and "numeric IP address" in err


def test_start_refuses_an_event_file_not_open_for_appending(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        e = os.open(tmp_path / "ev", os.O_WRONLY | os.O_CREAT)
        rc, err = _start_fails([f"--listen-fd={s.fileno()}", "--key-provider=127.0.0.1:1",
                                "--peer-uid=0", f"--shared-fd={d}", f"--events-fd={e}"],
                               pass_fds=(s.fileno(), d, e))
    assert rc == 2 and "appending" in err


def test_start_refuses_a_socket_bound_beyond_loopback(tmp_path):
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        e = os.open(tmp_path / "ev", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        rc, err = _start_fails([f"--listen-fd={s.fileno()}", "--key-provider=127.0.0.1:1",
                                "--peer-uid=0", f"--shared-fd={d}", f"--events-fd={e}"],
                               pass_fds=(s.fileno(), d, e))
    assert rc == 2 and "loopback" in err
