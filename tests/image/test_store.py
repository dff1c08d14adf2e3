# SPDX-License-Identifier: MIT
"""`lium-cvm images`: listing, on-demand verification and removal of installed images."""

import json
import os

import imgserver

NAME = "dstack-nvidia-0.5.11"


def install(store, server, name=NAME):
    server.add("/%s.tar.gz" % name, imgserver.image_archive(name))
    r = store.run("download", name)
    assert r.returncode == 0, r.stderr


def listing(store):
    r = store.run("--json", "images")
    assert r.returncode == 0, r.stderr
    return {i["name"]: i for i in json.loads(r.stdout)}


def test_empty_store_lists_nothing(store):
    r = store.run("images")
    assert r.returncode == 0
    assert "no images" in r.stdout


def test_list_shows_version_digest_size_and_state(store, server):
    install(store, server)
    install(store, server, "dstack-0.5.8")
    images = listing(store)
    assert sorted(images) == ["dstack-0.5.8", NAME]
    files = imgserver.image_files(NAME)
    img = images[NAME]
    assert img["version"] == "0.5.11"
    assert img["digest"] == files["digest.txt"].decode().strip()
    assert img["size"] == sum(len(v) for v in files.values())
    assert img["state"] == "verified"
    text = store.run("images", "list").stdout
    assert NAME in text and "verified" in text and img["digest"] in text


def test_list_skips_work_files_and_broken_directories(store, server):
    install(store, server)
    (store.images / "dstack-broken").mkdir()
    (store.images / ".dstack-x.tar.partial").write_bytes(b"x")
    assert sorted(listing(store)) == [NAME]


def test_verify_detects_a_modified_file(store, server):
    install(store, server)
    r = store.run("images", "verify", NAME)
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout
    with open(store.images / NAME / "initramfs.cpio.gz", "r+b") as f:
        f.seek(100)
        f.write(b"\0")
    assert listing(store)[NAME]["state"] == "modified"
    r = store.run("images", "verify", NAME)
    assert r.returncode == 1
    assert "initramfs.cpio.gz does not match sha256sum.txt" in r.stderr


def test_verify_detects_a_forged_digest(store, server):
    install(store, server)
    (store.images / NAME / "digest.txt").write_text("ab" * 32 + "\n")
    r = store.run("images", "verify", NAME)
    assert r.returncode == 1
    assert "is not the sha256 of sha256sum.txt" in r.stderr


def test_verify_detects_a_missing_artefact(store, server):
    install(store, server)
    os.unlink(store.images / NAME / "rootfs.img.verity")
    r = store.run("images", "verify", NAME)
    assert r.returncode == 1
    assert "rootfs.img.verity" in r.stderr


def test_verify_unknown_image_fails(store):
    r = store.run("images", "verify", "dstack-1.2.3")
    assert r.returncode == 1
    assert "not in the image store" in r.stderr


def test_rm_removes_the_image(store, server):
    install(store, server)
    r = store.run("images", "rm", NAME, "--yes")
    assert r.returncode == 0, r.stderr
    assert not (store.images / NAME).exists()
    assert store.leftovers() == []
    assert not (store.images / (".%s.verified" % NAME)).exists()


def test_rm_without_yes_and_without_a_tty_refuses(store, server):
    install(store, server)
    r = store.run("images", "rm", NAME)
    assert r.returncode == 2
    assert "--yes" in r.stderr
    assert (store.images / NAME).exists()


def test_rm_refuses_while_a_vm_definition_uses_the_image(store, server):
    install(store, server)
    vm = store.state / "vms" / "vm1"
    vm.mkdir(parents=True)
    (vm / "vm-manifest.json").write_text(json.dumps({"name": "vm1", "image": NAME}))
    r = store.run("images", "rm", NAME, "--yes")
    assert r.returncode == 1
    assert "vm1" in r.stderr
    assert (store.images / NAME).exists()


def test_rm_unknown_image_fails(store):
    r = store.run("images", "rm", "dstack-1.2.3", "--yes")
    assert r.returncode == 1
    assert "not in the image store" in r.stderr


def test_rm_refuses_names_that_leave_the_store(store, server):
    install(store, server)
    r = store.run("images", "rm", "../images", "--yes")
    assert r.returncode == 1
    assert (store.images / NAME).exists()
