# SPDX-License-Identifier: MIT
"""Fixtures of the image store tests: a loopback HTTP server (imgserver.py) and a private
state directory with its own lium-cvm.conf, so the frontend never touches the host's store.

  server   a started imgserver.Server; server.add("/NAME.tar.gz", data) publishes an archive
  store    a Store: store.config(**images_keys) rewrites the config, store.run(*args) runs
           `lium-cvm ARGS` with it, store.images is state_dir/images
"""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgserver  # noqa: E402

FRONTEND = os.environ.get("LCVM_FRONTEND") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "frontend", "lium-cvm"
)


class Store:
    def __init__(self, tmp_path, server):
        self.tmp = tmp_path
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.images = self.state / "images"
        self.conf = tmp_path / "lium-cvm.conf"
        self.server = server
        self.known_good_path = tmp_path / "known-good.conf"
        self.known_good()
        self.attestation = {}
        self.config()

    def config(self, **images):
        keys = {
            "url": self.server.base + "/%s.tar.gz",
            "retries": "0",
            "connect_timeout": "5",
            "low_speed_limit": "1",
            "low_speed_time": "30",
        }
        keys.update({k: str(v) for k, v in images.items()})
        text = "[paths]\nstate_dir=%s\n[images]\n" % self.state
        text += "".join("%s=%s\n" % kv for kv in keys.items())
        text += "[attestation]\nknown_good=%s\n" % self.known_good_path
        text += "".join("%s=%s\n" % kv for kv in self.attestation.items())
        self.conf.write_text(text)

    def known_good(self, images=None):
        """The known-good list: {name: (digests, tarball_sha256 or None)}. By default it lists
        no image the tests publish, so a download is judged only where a test asks for it."""
        images = images or {"some-other-image": (["00" * 32], None)}
        text = "[qemu]\nversions=9.2.1;\n"
        for name, (digests, tarball) in images.items():
            text += "[image %s]\ndigests=%s\n" % (name, "".join(d + ";" for d in digests))
            if tarball:
                text += "tarball_sha256=%s\n" % tarball
        self.known_good_path.write_text(text)

    def command(self, *args):
        return [FRONTEND, "--config", str(self.conf)] + list(args)

    def run(self, *args, timeout=120, **kw):
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, **kw
        )

    def leftovers(self):
        """Everything in the store except images, lock files and verification stamps."""
        if not self.images.exists():
            return []
        return sorted(
            n for n in os.listdir(self.images)
            if n.startswith(".") and not n.endswith(".lock") and not n.endswith(".verified")
        )


@pytest.fixture
def server():
    s = imgserver.Server()
    yield s
    s.stop()


@pytest.fixture
def store(tmp_path, server):
    return Store(tmp_path, server)
