#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Image download benchmark (bench/README.md, "Image download"): a 1 GiB dstack-layout archive
served from the loopback server of tests/image/imgserver.py, `lium-cvm download` (download +
sha256 + extraction + image verification, streamed) against curl alone and against the same
work done in sequence (curl -o; sha256sum; tar -xzf). Peak memory from /usr/bin/time -v.
Needs no root. Exit 0 with --strict only when every target is met."""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "image"))
import imgserver  # noqa: E402

NAME = "dstack-bench-0.5.11"


def build_archive(workdir, size):
    """An image whose rootfs is incompressible (squashfs in real images), tar + gzip -1."""
    archive = os.path.join(workdir, "%s-%d.tar.gz" % (NAME, size))
    if os.path.exists(archive):
        return archive
    src = os.path.join(workdir, "src")
    shutil.rmtree(src, ignore_errors=True)
    files = imgserver.image_files(NAME, rootfs_size=0)
    os.makedirs(os.path.join(src, NAME))
    for fname, data in files.items():
        with open(os.path.join(src, NAME, fname), "wb") as f:
            f.write(data)
    with open(os.path.join(src, NAME, "rootfs.img.verity"), "wb") as f:
        rnd = imgserver._random_bytes(7)
        left = size
        while left > 0:
            n = min(left, 64 << 20)
            f.write(rnd(n))
            left -= n
    tmp = archive + ".tmp"
    subprocess.run("tar -C %s -cf - %s | gzip -1 > %s" % (src, NAME, tmp), shell=True, check=True)
    os.rename(tmp, archive)
    shutil.rmtree(src)
    return archive


def timed(cmd):
    """Wall time and peak RSS (KiB) of a command run under /usr/bin/time -v."""
    start = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    if r.returncode != 0:
        raise SystemExit("%s failed: %s" % (cmd[0], r.stderr[-2000:]))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return wall, rss


def run_lium(frontend, conf, store_images):
    """Wall time to the last archive byte (the "downloaded" event of --json), wall time of the
    whole command (download + sha256 + extraction + verification, streamed), peak RSS."""
    shutil.rmtree(store_images, ignore_errors=True)
    subprocess.run(["sync"], check=True)
    start = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-v", frontend, "--config", conf, "--json",
                          "download", NAME], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    downloaded = None
    for line in p.stdout:
        if json.loads(line)["event"] == "downloaded":
            downloaded = time.monotonic() - start
    stderr = p.stderr.read()
    wall = time.monotonic() - start
    if p.wait() != 0 or downloaded is None:
        raise SystemExit("lium-cvm download failed: %s" % stderr[-2000:])
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    return wall, downloaded, rss


def run_sequence(url, out_dir):
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    subprocess.run(["sync"], check=True)
    archive = os.path.join(out_dir, "a.tar.gz")
    t1, r1 = timed(["curl", "-s", "-o", archive, url])
    t2, r2 = timed(["sha256sum", archive])
    t3, r3 = timed(["tar", "-C", out_dir, "-xzf", archive])
    return t1 + t2 + t3, max(r1, r2, r3), t1


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=1 << 30, help="rootfs bytes (default 1 GiB)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default="/var/tmp/lcvm-image-bench")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()
    build = os.environ.get("LCVM_BUILD_ROOT", os.path.join(HERE, "..", "build"))
    frontend = os.environ.get("LCVM_FRONTEND", os.path.join(build, "frontend", "lium-cvm"))
    if shutil.which("curl") is None or not os.path.exists("/usr/bin/time"):
        print("needs curl and /usr/bin/time (apt install curl time)")
        return 77

    os.makedirs(args.workdir, exist_ok=True)
    archive = build_archive(args.workdir, args.size)
    archive_size = os.path.getsize(archive)
    server = imgserver.Server()
    server.add("/%s.tar.gz" % NAME, file=archive)
    url = "%s/%s.tar.gz" % (server.base, NAME)
    run_dir = tempfile.mkdtemp(dir=args.workdir)
    state = os.path.join(run_dir, "state")
    os.makedirs(state)
    conf = os.path.join(run_dir, "lium-cvm.conf")
    with open(conf, "w") as f:
        f.write("[paths]\nstate_dir=%s\n[images]\nurl=%s/%%s.tar.gz\nretries=0\n"
                % (state, server.base))
    # Warm the page cache so every contender reads the archive from memory.
    subprocess.run(["cat", archive], stdout=subprocess.DEVNULL, check=True)

    lium, lium_dl, lium_rss, seq, seq_rss, curl = [], [], [], [], [], []
    for _ in range(args.runs):
        t, t_dl, rss = run_lium(frontend, conf, os.path.join(state, "images"))
        lium.append(t)
        lium_dl.append(t_dl)
        lium_rss.append(rss)
        t, rss, t_curl = run_sequence(url, os.path.join(run_dir, "seq"))
        seq.append(t)
        seq_rss.append(rss)
        curl.append(t_curl)
    shutil.rmtree(run_dir)
    server.stop()

    m_lium, m_dl, m_seq, m_curl = (statistics.median(x) for x in (lium, lium_dl, seq, curl))
    mib = archive_size / (1 << 20)
    res = {
        "archive_bytes": archive_size,
        "runs": args.runs,
        "lium_cvm_transfer_s": round(m_dl, 3),
        "lium_cvm_transfer_MiB_per_s": round(mib / m_dl, 1),
        "lium_cvm_end_to_end_s": round(m_lium, 3),
        "curl_o_s": round(m_curl, 3),
        "curl_o_MiB_per_s": round(mib / m_curl, 1),
        "throughput_vs_curl": round(m_curl / m_dl, 3),
        "sequence_s": round(m_seq, 3),
        "loadavg_at_end": open("/proc/loadavg").read().split()[0],
        "end_to_end_vs_sequence": round(m_lium / m_seq, 3),
        "lium_cvm_peak_rss_MiB": round(max(lium_rss) / 1024, 1),
        "sequence_peak_rss_MiB": round(max(seq_rss) / 1024, 1),
    }
    targets = {
        "throughput_vs_curl >= 0.9": res["throughput_vs_curl"] >= 0.9,
        "end_to_end_vs_sequence <= 0.7": res["end_to_end_vs_sequence"] <= 0.7,
        "lium_cvm_peak_rss_MiB < 32": res["lium_cvm_peak_rss_MiB"] < 32,
    }
    res["targets"] = targets
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            if k != "targets":
                print("%-28s %s" % (k, v))
        for k, ok in targets.items():
            print("target %-34s %s" % (k, "met" if ok else "MISSED"))
    return 1 if args.strict and not all(targets.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
