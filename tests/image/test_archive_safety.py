# SPDX-License-Identifier: MIT
"""Archives that try to write outside the image store, or are not an image, are refused as a
whole: the command fails, nothing is created outside, and no partial image or download stays."""

import os
import tarfile

import pytest

import imgserver

NAME = "dstack-0.5.11"


def good_entries():
    return imgserver.image_entries(NAME, imgserver.image_files(NAME))


def link(path, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(path)
    info.type = kind
    info.linkname = target
    return (info, None)


def special(path, kind):
    info = tarfile.TarInfo(path)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return (info, None)


ESCAPES = {
    "dotdot_inside_path": ([imgserver.file_entry(NAME + "/../evil", b"x")], "contains '..'"),
    "dotdot_at_start": ([imgserver.file_entry("../evil", b"x")], "contains '..'"),
    "absolute_path": ([imgserver.file_entry("/tmp/lcvm-evil", b"x")], "absolute path"),
    "symlink_up_and_out": ([link(NAME + "/l", "../../../etc")], "symlink pointing outside"),
    "symlink_absolute": ([link(NAME + "/l", "/etc/passwd")], "symlink pointing outside"),
    # Found by fuzzing: each target reads as inside, but "sub/up -> .." makes the second climb.
    "symlink_through_a_planted_up_link": (
        [link(NAME + "/sub/up", ".."),
         link(NAME + "/passwd", "sub/up/sub/up/sub/up/../../etc/passwd")],
        "symlink pointing outside",
    ),
    "symlink_then_write_through_it": (
        [link(NAME + "/l", "."), imgserver.file_entry(NAME + "/l/x", b"x")],
        "passes through a symlink",
    ),
    "hardlink_outside": ([link(NAME + "/h", "../evil", tarfile.LNKTYPE)], "hardlink to something"),
    "hardlink_absolute": (
        [link(NAME + "/h", "/etc/passwd", tarfile.LNKTYPE)], "hardlink to something"),
    "hardlink_to_unknown_file": (
        [link(NAME + "/h", NAME + "/nothing", tarfile.LNKTYPE)], "hardlink to something other"),
    "character_device": ([special(NAME + "/null", tarfile.CHRTYPE)], "character device"),
    "block_device": ([special(NAME + "/sda", tarfile.BLKTYPE)], "block device"),
    "fifo": ([special(NAME + "/fifo", tarfile.FIFOTYPE)], "FIFO"),
    "duplicate_file": ([imgserver.file_entry(NAME + "/bzImage", b"again")], "appears twice"),
}


LAYOUTS = {
    "two_top_directories": [imgserver.dir_entry("dstack-other/")],
    "file_at_top_level": [imgserver.file_entry("README", b"x")],
    "top_directory_not_dstack": [imgserver.file_entry("images/bzImage", b"x")],
}


def assert_clean(store, tmp_path):
    assert not (store.images / NAME).exists()
    assert store.leftovers() == []
    assert not os.path.exists("/tmp/lcvm-evil")
    assert not (store.state / "evil").exists() and not (store.images / "evil").exists()


@pytest.mark.parametrize("kind", sorted(ESCAPES))
def test_escaping_entry_is_refused(store, server, tmp_path, kind):
    extra, message = ESCAPES[kind]
    server.add("/%s.tar.gz" % NAME, imgserver.tar_gz(good_entries() + extra))
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "refusing the archive" in r.stderr and message in r.stderr, r.stderr
    assert_clean(store, tmp_path)


@pytest.mark.parametrize("kind", sorted(LAYOUTS))
def test_wrong_layout_is_refused(store, server, tmp_path, kind):
    server.add("/%s.tar.gz" % NAME, imgserver.tar_gz(good_entries() + LAYOUTS[kind]))
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "top-level" in r.stderr, r.stderr
    assert_clean(store, tmp_path)


def test_links_that_stay_inside_are_extracted(store, server):
    extra = [
        link(NAME + "/bzImage.link", "bzImage"),
        link(NAME + "/bzImage.hard", NAME + "/bzImage", tarfile.LNKTYPE),
        imgserver.dir_entry(NAME + "/sub/"),
        link(NAME + "/sub/down", "deeper/file"),
    ]
    server.add("/%s.tar.gz" % NAME, imgserver.tar_gz(good_entries() + extra))
    r = store.run("download", NAME)
    assert r.returncode == 0, r.stderr
    image = store.images / NAME
    assert os.readlink(image / "bzImage.link") == "bzImage"
    assert os.stat(image / "bzImage.hard").st_ino == os.stat(image / "bzImage").st_ino
    assert os.readlink(image / "sub" / "down") == "deeper/file"


def test_metadata_naming_a_file_outside_is_refused(store, server):
    files = imgserver.image_files(NAME)
    files["metadata.json"] = files["metadata.json"].replace(b'"ovmf.fd"', b'"../../etc/passwd"')
    server.add("/%s.tar.gz" % NAME, imgserver.tar_gz(imgserver.image_entries(NAME, files)))
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "../../etc/passwd" in r.stderr
    assert not (store.images / NAME).exists()


def test_metadata_naming_a_symlink_is_refused(store, server):
    files = imgserver.image_files(NAME)
    files["metadata.json"] = files["metadata.json"].replace(b'"bzImage"', b'"kernel-link"')
    entries = imgserver.image_entries(NAME, files) + [link(NAME + "/kernel-link", "bzImage")]
    server.add("/%s.tar.gz" % NAME, imgserver.tar_gz(entries))
    r = store.run("download", NAME)
    assert r.returncode == 1
    assert "kernel-link" in r.stderr
    assert not (store.images / NAME).exists()
