# SPDX-License-Identifier: MIT
"""A loopback HTTP server for the image download tests and benchmarks, and builders for dstack
image archives with the real layout (dstack.md §2.1).

The server serves named resources from memory or from a file, with Range (bytes=N-) and
If-Range (ETag) support, and per-resource misbehaviour: a forced status (404/500), a body cut
after N bytes, a bandwidth limit, a stall after N bytes, ignoring Range. It counts requests
and body bytes sent per path so tests can assert what a resume re-fetched.
"""

import hashlib
import http.server
import io
import json
import os
import random
import socket
import tarfile
import threading
import time


class Resource:
    def __init__(self, data=None, path=None, etag=None):
        self.data = data
        self.path = path
        self.etag = etag or '"%s"' % hashlib.sha256(data or path.encode()).hexdigest()[:16]
        self.status = None  # force this status (e.g. 404, 500)
        self.cut_after = None  # close the connection after this many body bytes…
        self.cut_times = 0  # …for this many requests (then serve normally)
        self.rate = None  # bytes per second
        self.stall_after = None  # stop sending (but keep the connection) after N body bytes
        self.ignore_range = False
        self.requests = 0
        self.bytes_sent = 0
        self.ranges = []  # the Range start every request asked for (0: none)

    @property
    def size(self):
        return len(self.data) if self.data is not None else os.path.getsize(self.path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        res = self.server.resources.get(self.path)
        if res is None:
            return self._plain(404, b"not found\n")
        res.requests += 1
        if res.status is not None:
            return self._plain(res.status, b"forced error\n")
        res.ranges.append(self._requested_start())
        start = self._range_start(res)
        if start >= res.size and start > 0:
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % res.size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start > 0 else 200)
        if start > 0:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, res.size - 1, res.size))
        self.send_header("Content-Length", str(res.size - start))
        self.send_header("ETag", res.etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        self._send_body(res, start)

    def _requested_start(self):
        header = self.headers.get("Range", "")
        if not header.startswith("bytes=") or not header.endswith("-"):
            return 0
        return int(header[len("bytes="):-1])

    def _range_start(self, res):
        if res.ignore_range:
            return 0
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range != res.etag:
            return 0
        return self._requested_start()

    def _plain(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _limit(self, res, start):
        """How many bytes to send before cutting or stalling, or None."""
        if res.cut_after is not None and res.cut_times > 0:
            res.cut_times -= 1
            return ("cut", max(0, res.cut_after - start))
        if res.stall_after is not None:
            return ("stall", max(0, res.stall_after - start))
        return None

    def _send_body(self, res, start):
        limit = self._limit(res, start)
        end = res.size
        if limit is not None:
            end = min(end, start + limit[1])
        if res.path is not None and res.rate is None and limit is None:
            return self._sendfile(res, start)
        chunk = 64 * 1024 if res.rate is None else max(1024, res.rate // 20)
        pos = start
        src = open(res.path, "rb") if res.path else None
        try:
            while pos < end:
                n = min(chunk, end - pos)
                if src:
                    src.seek(pos)
                    buf = src.read(n)
                else:
                    buf = res.data[pos:pos + n]
                self.wfile.write(buf)
                res.bytes_sent += len(buf)
                pos += len(buf)
                if res.rate:
                    time.sleep(len(buf) / res.rate)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            if src:
                src.close()
        if limit is not None and limit[0] == "stall":
            time.sleep(30)
        if limit is not None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _sendfile(self, res, start):
        self.wfile.flush()
        with open(res.path, "rb") as f:
            pos = start
            try:
                while pos < res.size:
                    n = os.sendfile(self.connection.fileno(), f.fileno(), pos, res.size - pos)
                    if n == 0:
                        break
                    pos += n
                    res.bytes_sent += n
            except (BrokenPipeError, ConnectionResetError):
                return


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.resources = {}
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def add(self, path, data=None, file=None):
        res = Resource(data=data, path=file)
        self.resources[path] = res
        return res

    def stop(self):
        self.shutdown()
        self.server_close()


# ---- archives ----


def image_files(name, rootfs_size=256 * 1024, seed=1):
    """The files of a 0.5.x image directory: name → bytes, plus metadata/sha256sum/digest."""
    rnd = _random_bytes(seed)
    files = {
        "ovmf.fd": rnd(64 * 1024),
        "bzImage": rnd(128 * 1024),
        "initramfs.cpio.gz": rnd(96 * 1024),
        "rootfs.img.verity": rnd(rootfs_size),
    }
    version = name.rsplit("-", 1)[-1]
    metadata = {
        "bios": "ovmf.fd",
        "kernel": "bzImage",
        "cmdline": "console=ttyS0 init=/init dstack.rootfs_hash=%s dstack.rootfs_size=%d"
        % ("ab" * 32, rootfs_size),
        "initrd": "initramfs.cpio.gz",
        "rootfs": "rootfs.img.verity",
        "version": version,
        "git_revision": "0123456789abcdef",
        "shared_ro": True,
        "is_dev": False,
    }
    files["metadata.json"] = json.dumps(metadata).encode()
    sums = "".join(
        "%s  %s\n" % (hashlib.sha256(files[f]).hexdigest(), f)
        for f in ("ovmf.fd", "bzImage", "initramfs.cpio.gz", "metadata.json")
    ).encode()
    files["sha256sum.txt"] = sums
    files["digest.txt"] = (hashlib.sha256(sums).hexdigest() + "\n").encode()
    return files


def _random_bytes(seed):
    """Incompressible but reproducible bytes, like the squashfs and firmware of a real image."""
    return random.Random(seed).randbytes


def tar_gz(entries):
    """entries: list of (tarfile.TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def dir_entry(path):
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return (info, None)


def file_entry(path, data, mode=0o644):
    info = tarfile.TarInfo(path)
    info.mode = mode
    info.mtime = 1700000000
    return (info, data)


def image_entries(name, files):
    entries = [dir_entry(name + "/")]
    for fname, data in files.items():
        entries.append(file_entry("%s/%s" % (name, fname), data))
    return entries


def image_archive(name, **kw):
    return tar_gz(image_entries(name, image_files(name, **kw)))
