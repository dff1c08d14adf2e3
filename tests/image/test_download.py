# SPDX-License-Identifier: MIT
"""`lium-cvm download`: fetching, resuming, verifying and installing an image, and what is
left behind when something goes wrong."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import time

import pytest

import imgserver

NAME = "dstack-nvidia-0.5.11"


def publish(server, name=NAME, **kw):
    data = imgserver.image_archive(name, **kw)
    return server.add("/%s.tar.gz" % name, data), data


def test_clean_download_installs_a_verified_image(store, server):
    res, data = publish(server)
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert "downloaded and verified" in r.stdout
    image = store.images / NAME
    files = imgserver.image_files(NAME)
    for fname, content in files.items():
        assert (image / fname).read_bytes() == content
    assert store.leftovers() == []
    assert res.requests == 1


def test_store_modes_are_group_shared(store, server):
    publish(server)
    assert store.run("download", NAME).returncode == 0
    image = store.images / NAME
    assert stat.S_IMODE(os.stat(image).st_mode) == 0o2775
    assert stat.S_IMODE(os.stat(store.images).st_mode) == 0o2775
    for f in image.iterdir():
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o644


def test_default_name_comes_from_config(store, server):
    publish(server, name="dstack-0.5.8")
    store.config(default_image="dstack-0.5.8")
    r = store.run("download")
    assert r.returncode == 0, r.stderr
    assert (store.images / "dstack-0.5.8" / "metadata.json").exists()


def test_present_and_verified_image_is_not_downloaded_again(store, server):
    res, _ = publish(server)
    assert store.run("download", NAME).returncode == 0
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert "already present" in r.stdout
    assert res.requests == 1


def test_damaged_image_is_downloaded_again(store, server):
    res, _ = publish(server)
    assert store.run("download", NAME).returncode == 0
    (store.images / NAME / "bzImage").write_bytes(b"tampered")
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert "downloading it again" in r.stderr
    assert res.requests == 2
    assert (store.images / NAME / "bzImage").read_bytes() == imgserver.image_files(NAME)["bzImage"]
    assert store.leftovers() == []


def test_interrupted_download_resumes_in_the_next_run(store, server):
    res, data = publish(server, rootfs_size=2 * 1024 * 1024)
    res.cut_after = len(data) // 2
    res.cut_times = 1
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "run the same command again to resume" in r.stderr
    assert not (store.images / NAME).exists()
    assert store.leftovers() == [".%s.tar.partial" % NAME, ".%s.tar.partial.meta" % NAME]
    first = res.bytes_sent

    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    refetched = res.bytes_sent - first
    assert refetched < len(data)
    assert refetched == len(data) - len(data) // 2
    assert res.ranges == [0, len(data) // 2]
    assert store.leftovers() == []


def test_cut_transfer_is_retried_and_resumed_within_one_run(store, server):
    res, data = publish(server, rootfs_size=1024 * 1024)
    res.cut_after = len(data) // 3
    res.cut_times = 2
    store.config(retries=3)
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert res.requests == 3
    assert res.bytes_sent == len(data)


def test_changed_file_on_the_server_restarts_the_resume(store, server):
    res, data = publish(server, rootfs_size=1024 * 1024)
    res.cut_after = len(data) // 2
    res.cut_times = 1
    assert store.run("download", NAME).returncode == 1
    # The release was rebuilt: another file under the same URL, another ETag.
    res2, data2 = publish(server, rootfs_size=1024 * 1024 + 7)
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert res2.ranges == [len(data) // 2]
    assert res2.bytes_sent == len(data2)
    assert os.path.getsize(store.images / NAME / "rootfs.img.verity") == 1024 * 1024 + 7


def test_server_without_range_support_is_downloaded_whole(store, server):
    res, data = publish(server, rootfs_size=1024 * 1024)
    res.cut_after = len(data) // 2
    res.cut_times = 1
    assert store.run("download", NAME).returncode == 1
    res.ignore_range = True
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert (store.images / NAME / "rootfs.img.verity").stat().st_size == 1024 * 1024


def test_sha256_mismatch_deletes_everything(store, server):
    publish(server)
    r = store.run("download", NAME, "--sha256", "00" * 32)
    assert r.returncode == 1
    assert "expected " + "00" * 32 in r.stderr
    assert "deleted" in r.stderr
    assert not (store.images / NAME).exists()
    assert store.leftovers() == []


def test_matching_sha256_is_accepted(store, server):
    _, data = publish(server)
    r = store.run("download", NAME, "--sha256", hashlib.sha256(data).hexdigest().upper())
    assert r.returncode == 0, r.stderr


def test_sha256_file_beside_the_url_is_used(store, server):
    _, data = publish(server)
    server.add("/%s.tar.gz.sha256" % NAME, ("11" * 32 + "  x.tar.gz\n").encode())
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "expected " + "11" * 32 in r.stderr
    server.add("/%s.tar.gz.sha256" % NAME, hashlib.sha256(data).hexdigest().encode())
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr


def test_configured_sha256_applies_to_the_default_image(store, server):
    publish(server)
    store.config(default_image=NAME, sha256="22" * 32)
    r = store.run("download")
    assert r.returncode == 1
    assert "expected " + "22" * 32 in r.stderr


def test_url_option_overrides_the_pattern(store, server):
    _, data = publish(server)
    server.add("/elsewhere/a.tgz", data)
    store.config(url="http://127.0.0.1:1/nothing/%s")
    r = store.run("download", NAME, "--url", server.base + "/elsewhere/a.tgz")
    assert r.returncode == 0, r.stderr


def test_redirects_are_followed(store, server):
    _, data = publish(server)
    server.add("/final.tgz", data)
    store.config(url=server.base + "/redirect/%s")
    original = imgserver.Handler.do_GET

    def do_get(self):
        if self.path.startswith("/redirect/") and not self.path.endswith(".sha256"):
            self.send_response(302)
            self.send_header("Location", "/final.tgz")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        original(self)

    imgserver.Handler.do_GET = do_get
    try:
        r = store.run("download", NAME)
    finally:
        imgserver.Handler.do_GET = original
    assert r.returncode == 0, r.stderr


def test_archive_of_another_image_is_refused(store, server):
    server.add("/%s.tar.gz" % NAME, imgserver.image_archive("dstack-0.5.9"))
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "holds image dstack-0.5.9" in r.stderr
    assert os.listdir(store.images) == [".%s.lock" % NAME]


def test_http_404_fails_cleanly(store, server):
    r = store.run("download", "dstack-9.9.9")
    assert r.returncode == 1
    assert "HTTP 404" in r.stderr
    assert store.leftovers() == []


def test_http_500_is_retried_then_fails_cleanly(store, server):
    res, _ = publish(server)
    res.status = 500
    store.config(retries=1)
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "HTTP 500" in r.stderr
    assert res.requests == 2
    assert not (store.images / NAME).exists()


def test_not_an_archive_fails_cleanly(store, server):
    server.add("/%s.tar.gz" % NAME, b"<html>rate limited</html>\n" * 100)
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "not a readable image archive" in r.stderr
    assert store.leftovers() == []


def test_archive_without_image_files_fails_cleanly(store, server):
    files = imgserver.image_files(NAME)
    del files["bzImage"]
    server.add("/%s.tar.gz" % NAME, imgserver.tar_gz(imgserver.image_entries(NAME, files)))
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "bzImage" in r.stderr
    assert not (store.images / NAME).exists()
    assert store.leftovers() == []


def test_slow_server_hits_the_low_speed_timeout(store, server):
    res, data = publish(server)
    res.stall_after = 64 * 1024
    store.config(low_speed_limit=10000, low_speed_time=1)
    start = time.monotonic()
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert time.monotonic() - start < 15
    assert "too slow" in r.stderr.lower() or "timed out" in r.stderr.lower()
    assert not (store.images / NAME).exists()


def test_json_progress_is_one_object_per_line(store, server):
    res, data = publish(server, rootfs_size=2 * 1024 * 1024)
    res.rate = 4 * 1024 * 1024
    store.known_good({NAME: ([digest_of(rootfs_size=2 * 1024 * 1024)], None)})
    r = store.run("--json", "download", NAME)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert "progress" in kinds
    assert kinds[-2:] == ["downloaded", "done"]
    assert events[-2]["received"] == events[-2]["total"] == len(data)
    assert events[-1]["name"] == NAME and events[-1]["downloaded"] is True
    assert events[-1]["state"] == "verified"


def test_json_error_is_one_line(store, server):
    r = store.run("--json", "download", "dstack-9.9.9")
    assert r.returncode == 1
    event = json.loads(r.stdout.strip().splitlines()[-1])
    assert event["event"] == "error" and "404" in event["error"]


def test_concurrent_downloads_of_one_image_download_it_once(store, server):
    res, data = publish(server, rootfs_size=2 * 1024 * 1024)
    res.rate = 2 * 1024 * 1024
    procs = [
        subprocess.Popen(store.command("download", NAME), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    stderr = "".join(o[1] for o in outs)
    stdout = "".join(o[0] for o in outs)
    assert "waiting for it to finish" in stderr
    assert "already present" in stdout and "downloaded and verified" in stdout
    assert res.requests == 1
    assert store.leftovers() == []


def test_invalid_names_are_refused_before_any_request(store, server):
    for name in ("../x", "a/b", ".hidden", "x" * 65):
        r = store.run("download", name)
        assert r.returncode == 2, name
    assert not store.images.exists()


def test_unwritable_store_fails_with_advice(store, server, tmp_path):
    """Run as an unprivileged user (nobody) against a store it may not write."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to run the frontend as nobody")
    publish(server)
    store.images.mkdir(mode=0o755)
    for p in [tmp_path] + list(tmp_path.parents)[:2]:
        os.chmod(p, os.stat(p).st_mode | 0o755)
    os.chmod(store.conf, 0o644)
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + store.command(
            "download", NAME),
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert "Permission denied" in r.stderr
    assert "group lium-cvm" in r.stderr
    assert os.listdir(store.images) == []


def test_disk_full_fails_cleanly(store, server, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs in a private mount namespace")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    publish(server, rootfs_size=4 * 1024 * 1024)
    script = (
        'mount -t tmpfs -o size=3m tmpfs "$1" && "$2" --config "$3" download %s; '
        'echo "rc=$?"; ls -A "$1/images"' % NAME
    )
    r = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
         str(store.state), store.command()[0], str(store.conf)],
        capture_output=True, text=True, timeout=120,
    )
    assert "rc=1" in r.stdout, r.stdout + r.stderr
    assert "No space left on device" in r.stderr
    remaining = r.stdout.split("rc=1", 1)[1].split()
    assert remaining == [".%s.lock" % NAME], remaining


# ---- the known-good list (data/known-good.conf) ----

def digest_of(name=NAME, **kw):
    return imgserver.image_files(name, **kw)["digest.txt"].decode().strip()


def test_listed_image_with_the_accepted_digest_installs_quietly(store, server):
    publish(server)
    store.known_good({NAME: ([digest_of()], None)})
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr


def test_listed_image_with_another_digest_is_refused_and_deleted(store, server):
    publish(server)
    store.known_good({NAME: (["ab" * 32], None)})
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "validators will reject it" in r.stderr
    assert "ab" * 32 in r.stderr
    assert not (store.images / NAME).exists()
    assert store.leftovers() == []


def test_json_warning_is_an_event_of_its_own(store, server):
    publish(server)
    r = store.run("--json", "download", NAME)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    [warning] = [e for e in events if e["event"] == "warning"]
    assert "validators will reject" in warning["warning"]
    assert events[-1]["event"] == "warning" and events[-2]["event"] == "done"


def test_unlisted_image_installs_with_a_warning(store, server):
    publish(server)
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    assert "warning: OS image %s has digest %s" % (NAME, digest_of()) in r.stderr
    assert "validators will reject" in r.stderr
    assert (store.images / NAME / "metadata.json").exists()


def test_unlisted_image_is_refused_when_enforced(store, server):
    publish(server)
    store.attestation = {"enforce": "true"}
    store.config()
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "validators will reject it" in r.stderr
    assert not (store.images / NAME).exists()


def test_archive_sha256_of_the_known_good_list_is_checked(store, server):
    _, data = publish(server)
    store.known_good({NAME: ([digest_of()], "cd" * 32)})
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "expected %s" % ("cd" * 32) in r.stderr
    assert not (store.images / NAME).exists()
    store.known_good({NAME: ([digest_of()], hashlib.sha256(data).hexdigest())})
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr


def test_archive_sha256_of_the_list_is_not_applied_to_another_url(store, server):
    publish(server)
    store.known_good({NAME: ([digest_of()], "cd" * 32)})
    r = store.run("download", NAME, "--url", server.base + "/%s.tar.gz" % NAME)
    assert r.returncode == 0, r.stderr
