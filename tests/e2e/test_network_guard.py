# SPDX-License-Identifier: MIT
"""The guest network guard (helper/helper-nft.c) installed for real by tests/probe/
lcvm-nft-guard-run inside a private network namespace this module creates, with peers in two
more namespaces it creates: "inet" behind the uplink veth (the host's default route goes there;
it holds 203.0.113.10, 2001:db8:ffff::10 and a metadata-like 169.254.169.254) and "ctr" on a
Docker-like bridge subnet 172.18.0.0/16. Only addresses inside these namespaces are used.

Each address is tried from a guarded QEMU uid (refused or allowed) and from an unguarded uid
(always reaches it), so a refusal is the guard's and not a broken network.
"""

import ctypes
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

BUILD_ROOT = Path(os.environ.get("LCVM_BUILD_ROOT", Path(__file__).resolve().parents[2] / "build"))
GUARD_RUN = Path(os.environ.get("LCVM_NFT_GUARD_RUN", BUILD_ROOT / "tests/probe/lcvm-nft-guard-run"))
PYTHON = "/usr/bin/python3"
CLONE_NEWNET = 0x40000000

Q1, Q2, OTHER = 61900, 61901, 61950  # two VMs' QEMU uids and one no guard covers
P1, P2 = 40001, 40002                # their host-API ports
PORT = 8080                          # every listener of the test
ALLOWED_EXTRA = "172.18.0.3"         # [network] guest_allow of VM one

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, nftables)"),
    pytest.mark.skipif(not GUARD_RUN.exists(), reason=f"{GUARD_RUN} not built"),
]

LISTENER = """
import socket, sys, threading
def serve(family, addr, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, port)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(b"hi"); c.close()
ports = [int(p) for p in sys.argv[1:]]
for p in ports[1:]:
    threading.Thread(target=serve, args=(socket.AF_INET, "127.0.0.1", p), daemon=True).start()
print("ready", flush=True)
serve(socket.AF_INET6, "::", ports[0])
"""

CLIENT = """
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if kind == "tcp":
        with socket.create_connection((host, port), 3) as c:
            print("ok" if c.recv(2) == b"hi" else "no greeting")
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.sendto(b"x", (host, port) if family == socket.AF_INET else (host, port, 0, 0))
        print("ok")
except OSError as e:
    print(type(e).__name__, e.errno)
"""


def sh(*argv, ns=None):
    if ns is not None:
        argv = ("nsenter", f"--net=/proc/{ns.pid}/ns/net", "--") + argv
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, (argv, r.stderr)
    return r.stdout


def ip(*args, ns=None):
    return sh("ip", *args, ns=ns)


def new_namespace():
    """A sleeping process in a network namespace of its own (its lo up)."""
    p = subprocess.Popen(["unshare", "-n", "--", "sleep", "infinity"])
    mine = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + 10
    while os.readlink(f"/proc/{p.pid}/ns/net") == mine:
        assert time.monotonic() < deadline, "unshare -n did not give a namespace"
        time.sleep(0.01)
    ip("link", "set", "lo", "up", ns=p)
    return p


def listen(ns=None, *extra_ports):
    argv = [PYTHON, "-c", LISTENER, str(PORT), *map(str, extra_ports)]
    if ns is not None:
        argv = ["nsenter", f"--net=/proc/{ns.pid}/ns/net", "--"] + argv
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def attempt(uid, kind, host, port=PORT):
    """'ok', or the error the uid's connect/sendto got."""
    r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                        PYTHON, "-c", CLIENT, kind, host, str(port)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def guard(*args):
    return subprocess.run([str(GUARD_RUN), *map(str, args)], capture_output=True, text=True)


def lium_table():
    return subprocess.run(["nft", "list", "table", "inet", "lium_cvm"], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def net():
    """This process in a new network namespace (the "host"), wired to "inet" and "ctr"."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        pytest.skip(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
    ip("link", "set", "lo", "up")
    inet, ctr = new_namespace(), new_namespace()
    procs = [inet, ctr]
    try:
        # The uplink: host up0 10.200.0.1/30 — inet up1 10.200.0.2/30, default route through it.
        ip("link", "add", "up0", "type", "veth", "peer", "name", "up1")
        ip("link", "set", "up1", "netns", str(inet.pid))
        ip("addr", "add", "10.200.0.1/30", "dev", "up0")
        ip("-6", "addr", "add", "2001:db8:200::1/64", "dev", "up0", "nodad")
        ip("link", "set", "up0", "up")
        ip("addr", "add", "10.200.0.2/30", "dev", "up1", ns=inet)
        ip("-6", "addr", "add", "2001:db8:200::2/64", "dev", "up1", "nodad", ns=inet)
        ip("link", "set", "up1", "up", ns=inet)
        for address in ("203.0.113.10/32", "169.254.169.254/32"):
            ip("addr", "add", address, "dev", "lo", ns=inet)
        ip("-6", "addr", "add", "2001:db8:ffff::10/128", "dev", "lo", ns=inet)
        ip("route", "add", "default", "via", "10.200.0.1", ns=inet)
        ip("-6", "route", "add", "default", "via", "2001:db8:200::1", ns=inet)
        ip("route", "add", "default", "via", "10.200.0.2", "dev", "up0")
        ip("-6", "route", "add", "default", "via", "2001:db8:200::2", "dev", "up0")
        # A container bridge: host br0 172.18.0.1/16 — ctr eth0 172.18.0.2 and .3.
        ip("link", "add", "br0", "type", "veth", "peer", "name", "eth0")
        ip("link", "set", "eth0", "netns", str(ctr.pid))
        ip("addr", "add", "172.18.0.1/16", "dev", "br0")
        ip("link", "set", "br0", "up")
        for address in ("172.18.0.2/16", "172.18.0.3/16"):
            ip("addr", "add", address, "dev", "eth0", ns=ctr)
        ip("addr", "add", "198.51.100.7/32", "dev", "lo", ns=ctr)
        ip("link", "set", "eth0", "up", ns=ctr)
        ip("route", "add", "default", "via", "172.18.0.1", ns=ctr)
        # A second local address of the host, as a public one would be.
        ip("addr", "add", "192.0.2.1/32", "dev", "lo")
        procs += [listen(None, P1, P2), listen(inet), listen(ctr)]
        yield {"inet": inet, "ctr": ctr}
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def guarded(net):
    host = guard("host")
    assert host.returncode == 0 and "uplinks=up0\n" in host.stdout, host
    assert "10.200.0.0/30" in host.stdout and "172.18.0.0/16" in host.stdout, host
    r = guard("add", "one", Q1, P1, f"{ALLOWED_EXTRA}/32")
    assert r.returncode == 0, r.stderr
    r = guard("add", "two", Q2, P2)
    assert r.returncode == 0, r.stderr
    # Installed after the guard: a route out of the bridge to an address outside every
    # special range. The guard does not know it and must still refuse it (not an uplink).
    ip("route", "add", "198.51.100.0/24", "via", "172.18.0.2", "dev", "br0")
    yield
    guard("remove", "one")
    guard("remove", "two")


REFUSED_TCP = [
    ("127.0.0.1", PORT, "another service on loopback"),
    ("127.0.0.1", P2, "another VM's host-API port"),
    ("192.0.2.1", PORT, "a non-loopback address of the host"),
    ("10.200.0.1", PORT, "the host's uplink address"),
    ("10.200.0.2", PORT, "a neighbour on the uplink's connected subnet"),
    ("172.18.0.2", PORT, "a container on a bridge subnet"),
    ("169.254.169.254", PORT, "a metadata service routed out of the uplink"),
    ("198.51.100.7", PORT, "a subnet routed out of the bridge, added after the guard"),
    ("::1", PORT, "IPv6 loopback"),
    ("2001:db8:200::1", PORT, "the host's own IPv6 address"),
    ("2001:db8:200::2", PORT, "an IPv6 neighbour on the connected subnet"),
]

REFUSED_UDP = [
    ("255.255.255.255", 5353, "limited broadcast"),
    ("172.18.255.255", 5353, "the bridge subnet's broadcast"),
    ("224.0.0.251", 5353, "IPv4 multicast (mDNS)"),
    ("ff0e::fb", 5353, "IPv6 multicast"),
]


@pytest.mark.parametrize("host,port,what", REFUSED_TCP, ids=[w for _, _, w in REFUSED_TCP])
def test_the_qemu_uid_is_refused_what_is_not_the_internet(guarded, host, port, what):
    assert attempt(Q1, "tcp", host, port) != "ok", what
    assert attempt(OTHER, "tcp", host, port) == "ok", f"{what}: unreachable even unguarded"


@pytest.mark.parametrize("host,port,what", REFUSED_UDP, ids=[w for _, _, w in REFUSED_UDP])
def test_broadcast_and_multicast_are_refused(guarded, host, port, what):
    assert attempt(Q1, "udp", host, port) != "ok", what
    assert attempt(OTHER, "udp", host, port) == "ok", f"{what}: unsendable even unguarded"


def test_own_host_api_port_and_routed_destinations_are_allowed(guarded):
    assert attempt(Q1, "tcp", "127.0.0.1", P1) == "ok"
    assert attempt(Q2, "tcp", "127.0.0.1", P2) == "ok"
    assert attempt(Q2, "tcp", "127.0.0.1", P1) != "ok"
    assert attempt(Q1, "tcp", "203.0.113.10") == "ok"
    assert attempt(Q1, "tcp", "2001:db8:ffff::10") == "ok"
    assert attempt(Q1, "udp", "203.0.113.10", 9) == "ok"


def test_guest_allow_is_the_only_exception(guarded):
    assert attempt(Q1, "tcp", ALLOWED_EXTRA) == "ok"
    assert attempt(Q2, "tcp", ALLOWED_EXTRA) != "ok"  # VM two has no such exception
    assert attempt(Q1, "tcp", "172.18.0.2") != "ok"


def test_replies_on_connections_to_a_forwarded_port_pass(guarded, net):
    """A neighbour on the connected subnet (refused as a destination) may still connect to a
    port the QEMU uid listens on, as to a forwarded SSH port: the replies are let out."""
    server = subprocess.Popen(
        ["setpriv", f"--reuid={Q1}", f"--regid={Q1}", "--clear-groups", "--", PYTHON, "-c",
         "import socket; s = socket.socket(); s.bind(('0.0.0.0', 2222)); s.listen(1);"
         "print('ready', flush=True); c, _ = s.accept(); c.sendall(b'hi'); c.close()"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        out = sh(PYTHON, "-c", "import socket; c = socket.create_connection(('10.200.0.1', "
                 "2222), 5); print(c.recv(2).decode())", ns=net["inet"])
        assert out.strip() == "hi"
    finally:
        server.kill()
        server.wait()


def test_problems_name_a_vm_without_its_chain(guarded):
    assert guard("problems", "one", "two").stdout.strip() == "none"
    assert "VM three has no guard chain" in guard("problems", "one", "three").stdout


def test_removing_the_last_chain_removes_the_table(guarded):
    assert guard("remove", "one").returncode == 0
    assert attempt(Q1, "tcp", "172.18.0.2") == "ok"  # unguarded now: the refusal was the guard's
    assert lium_table().returncode == 0, "VM two's chain went with VM one's"
    assert attempt(Q2, "tcp", "172.18.0.2") != "ok"
    assert guard("remove", "two").returncode == 0
    assert lium_table().returncode != 0, lium_table().stdout
    assert guard("remove", "two").returncode == 0  # idempotent, and no table is left behind
    assert lium_table().returncode != 0


def test_check_names_the_host_resolvers_guests_cannot_use(net, tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# a comment\nsearch example\nnameserver 127.0.0.53\n"
                    "nameserver 172.18.0.2\nnameserver 203.0.113.10\nnameserver  10.200.0.2 \n"
                    "nameserver 172.18.0.3\nnameserver fe80::1\nnameserver not-an-address\n")
    r = guard("resolvers", conf, "172.18.0.3/32")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split(",") == ["127.0.0.53", "172.18.0.2", "10.200.0.2", "fe80::1"]


def test_the_capability_probe_commits_nothing(net):
    assert guard("usable").returncode == 0
    assert lium_table().returncode != 0
