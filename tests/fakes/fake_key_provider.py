#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A fake SGX key provider speaking the real wire format (reference/dstack.md §4.5-4.6).

Each request arrives on its own TCP connection as a u32 big-endian length followed by JSON
{"quote":[n,...]} exactly as dstack's host (serde) writes it: compact, bytes as numbers 0..255.
The fake checks that framing, records the quote, and answers with a u32 big-endian length +
{"encrypted_key":[...],"provider_quote":[...]} derived deterministically from the quote
(answer_for), so a test can compute the expected answer itself.

Modes (what a broken or hostile provider does instead of answering):
  normal       answer
  hang         read the request, never answer (keep the connection open)
  close-early  read the request, close without a byte
  short        announce 100 bytes, send 10, close
  oversized    announce 8 MiB + 1 bytes (beyond the protocol's limit)
  zero         announce a 0-byte answer
  malformed    a well-framed answer that is not JSON
  wrong-shape  well-framed JSON whose arrays hold numbers outside 0..255

Use it in-process (FakeKeyProvider(mode).start(), .address, .received, .framing_errors) or
as a program: fake_key_provider.py [--mode MODE] [--listen 127.0.0.1:0] [--port-file FILE].
"""

import argparse
import hashlib
import json
import socket
import struct
import sys
import threading

MAX_FRAME = 8 * 1024 * 1024
MODES = ("normal", "hang", "close-early", "short", "oversized", "zero", "malformed",
         "wrong-shape")


def answer_for(quote):
    """The deterministic answer to a quote: (encrypted_key, provider_quote) as bytes."""
    encrypted_key = hashlib.sha256(b"encrypted_key:" + quote).digest()
    provider_quote = hashlib.sha256(b"provider_quote:" + quote).digest() * 2
    return encrypted_key, provider_quote


def frame(body):
    return struct.pack(">I", len(body)) + body


def _recv_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(min(65536, n - len(data)))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def parse_request(body):
    """The quote of a request body, or ValueError saying how the framing is wrong."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or list(doc) != ["quote"]:
        raise ValueError(f"request is not {{\"quote\": [...]}}: {body[:80]!r}")
    quote = doc["quote"]
    if not isinstance(quote, list) or not quote or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in quote):
        raise ValueError("quote is not a non-empty array of numbers 0..255")
    if json.dumps(doc, separators=(",", ":")).encode() != body:
        raise ValueError("request JSON is not in serde's compact form")
    return bytes(quote)


class FakeKeyProvider:
    def __init__(self, mode="normal", host="127.0.0.1", port=0):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
        self.mode = mode
        self.received = []
        self.framing_errors = []
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self._held = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def port(self):
        return self._sock.getsockname()[1]

    @property
    def address(self):
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def start(self):
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for conn in self._held:
            conn.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn):
        (length,) = struct.unpack(">I", _recv_exactly(conn, 4))
        if not 1 <= length <= MAX_FRAME:
            raise ValueError(f"request frame length {length} outside 1..{MAX_FRAME}")
        return parse_request(_recv_exactly(conn, length))

    def _serve(self, conn):
        try:
            quote = self._read_request(conn)
        except (ValueError, EOFError, OSError) as e:
            with self._lock:
                self.framing_errors.append(str(e))
            conn.close()
            return
        with self._lock:
            self.received.append(quote)
        self._answer(conn, quote)

    def _answer(self, conn, quote):
        mode = self.mode
        if mode == "hang":
            self._held.append(conn)
            return
        try:
            if mode == "normal":
                key, pq = answer_for(quote)
                body = json.dumps({"encrypted_key": list(key), "provider_quote": list(pq)},
                                  separators=(",", ":")).encode()
                conn.sendall(frame(body))
            elif mode == "short":
                conn.sendall(struct.pack(">I", 100) + b"{" * 10)
            elif mode == "oversized":
                conn.sendall(struct.pack(">I", MAX_FRAME + 1) + b"{" * 1024)
            elif mode == "zero":
                conn.sendall(struct.pack(">I", 0))
            elif mode == "malformed":
                conn.sendall(frame(b"this is not json"))
            elif mode == "wrong-shape":
                conn.sendall(frame(b'{"encrypted_key":[1,256],"provider_quote":[-1]}'))
        except OSError:
            pass
        conn.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", default="normal", choices=MODES)
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free port)")
    p.add_argument("--port-file", help="write the chosen port here once listening")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    fake = FakeKeyProvider(args.mode, host, int(port)).start()
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(f"{fake.port}\n")
    print(f"fake key provider ({args.mode}) listening on {fake.address}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
