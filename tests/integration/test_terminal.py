# SPDX-License-Identifier: MIT
"""Guest text never reaches an operator's terminal raw (issue 19 item 4): the real frontend's
`logs` with its stdout on a pseudo-terminal shows the guest's control sequences (OSC 52
clipboard write, title set, screen clear, C1 CSI) escaped, keeps newlines and tabs, and prints
the bytes unchanged with --raw or when stdout is not a terminal. `logs` reads the console file
itself, so no bus is needed; any user can run it."""

import os
import pty
import select
import subprocess
import tty

import pytest

FRONTEND = os.environ.get("LCVM_FRONTEND", "")
HOSTILE = (b"boot ok\tstep 1\r\n"
           b"\x1b]52;c;aGVsbG8=\x07"   # OSC 52: write the operator's clipboard
           b"\x1b]0;owned\x07"         # set the window title
           b"\x1b[2J\xc2\x9b2J"        # clear the screen (CSI and its C1 form)
           b"caf\xc3\xa9 \xff done\n")
ESCAPED = (b"boot ok\tstep 1\\x0d\n"
           b"\\x1b]52;c;aGVsbG8=\\x07"
           b"\\x1b]0;owned\\x07"
           b"\\x1b[2J\\u009b2J"
           b"caf\xc3\xa9 \\xff done\n")

pytestmark = pytest.mark.skipif(not os.access(FRONTEND, os.X_OK),
                                reason="LCVM_FRONTEND not set (run through meson)")


@pytest.fixture
def config(tmp_path):
    state = tmp_path / "state"
    (state / "instances" / "vm1").mkdir(parents=True)
    (state / "instances" / "vm1" / "serial.log").write_bytes(HOSTILE)
    path = tmp_path / "lium-cvm.conf"
    path.write_text(f"[paths]\nstate_dir={state}\nruntime_dir={tmp_path / 'run'}\n")
    return path


def on_pty(*args):
    """Runs the frontend with stdout on a pseudo-terminal (raw mode: no \\n → \\r\\n)."""
    leader, follower = pty.openpty()
    tty.setraw(follower)
    proc = subprocess.Popen([FRONTEND, *args], stdout=follower, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the follower side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    return out


def test_logs_on_a_terminal_escapes_the_guests_control_sequences(config):
    out = on_pty("logs", "vm1", "--config", str(config))
    assert out == ESCAPED
    assert b"\x1b" not in out and b"\x07" not in out and b"\xc2\x9b" not in out


def test_logs_raw_on_a_terminal_prints_the_bytes(config):
    assert on_pty("logs", "vm1", "--raw", "--config", str(config)) == HOSTILE


def test_logs_into_a_pipe_prints_the_bytes(config):
    r = subprocess.run([FRONTEND, "logs", "vm1", "--config", str(config)], capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout == HOSTILE, r
