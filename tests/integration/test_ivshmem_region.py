"""Integration: an ivshmem region across three simulated hosts, without QEMU.

`plexus up --local --dry-run` starts a coordinator and plexus-node daemons in
network namespaces; the nodes serve the region's socket on every host in
its `hosts:` but start no QEMU. This test joins as peers through those
sockets with QEMU's own protocol (pylib IvshmemPeer), so the whole service
is exercised as guests use it:
  - global peer IDs: the guest's is reserved (topology order), host
    programs get the lowest free ones above it; joins reach every host;
  - release consistency: writes before a doorbell to another host are in
    the receiver's copy when its eventfd fires, also along a chain of three
    hosts through the home;
  - two hosts writing different bytes of one 8-byte word keep both;
  - `plexus ivshmem ring` and `peers`; a peer that leaves is announced as
    gone everywhere and the others go on;
  - `sync:` carries writes between hosts without any doorbell.
Guests are in tests/e2e/test_ivshmem.py.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/integration/test_ivshmem_region.py
"""
import json
import os
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import IvshmemPeer, lab_dir, run, up_dry_run, wait_until  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="local mode with namespaces needs root")

VECTORS = 4
TOPO = """\
name: {name}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
  hc: {{cpus: 8, memory: 4G}}
nets:
  shm0: {{type: ivshmem, size: 1M, vectors: {vectors}, hosts: [ha, hb, hc]}}
  polled: {{type: ivshmem, size: 64K, sync: 20ms, hosts: [ha, hb, hc]}}
placement:
  pin: {{g: ha, shm0: ha}}
nodes:
  g: {{ivshmem: [shm0]}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = "ivregion"
    up_dry_run(tmp_path_factory.mktemp("iv"), name, TOPO.format(name=name, vectors=VECTORS))
    yield name
    run("down", name, timeout=60)


def peers(lab):
    return json.loads(run("--json", "ivshmem", "peers", "shm0", "--lab", lab, check=True).stdout)


def join(lab, host, region=0, vectors=VECTORS):
    sock = lab_dir(lab, host) / f"s{region}.ivshmem"
    wait_until(f"the region's socket on {host}", sock.exists, timeout=20)
    # A member admits nobody before the home has sent it the region
    # (SYNC): the greeting waits for that.
    return IvshmemPeer(sock, vectors, timeout=20)


@pytest.fixture(scope="module")
def trio(lab):
    a, b, c = join(lab, "ha"), join(lab, "hb"), join(lab, "hc")
    yield a, b, c
    for p in (a, b, c):
        p.close()


def fill(p, off, n, seed):
    for o in range(off, off + n, 8):
        struct.pack_into("<Q", p.mem, o, o ^ seed)


def holds(p, off, n, seed):
    return all(struct.unpack_from("<Q", p.mem, o)[0] == o ^ seed for o in range(off, off + n, 8))


def test_ids_are_global_and_joins_reach_every_host(lab, trio):
    a, b, c = trio
    # ID 0 is the guest's (it runs no QEMU here): host programs take 1, 2, 3
    assert (a.id, b.id, c.id) == (1, 2, 3)
    for p in trio:
        wait_until(f"peer {p.id} to know the other two",
                   lambda p=p: p.peers() == sorted({1, 2, 3} - {p.id}), timeout=10)
        assert all(len(fds) == VECTORS for fds in p.fds.values())
    got = peers(lab)
    assert [(x["id"], x["node"], x["pid"]) for x in got["peers"]] == [
        (1, "ha", os.getpid()), (2, "hb", os.getpid()), (3, "hc", os.getpid())]
    assert got["home"] == "ha" and got["vectors"] == VECTORS and got["size"] == 1 << 20
    assert sorted(n["node"] for n in got["nodes"]) == ["ha", "hb", "hc"]
    assert all(n["synced"] for n in got["nodes"])


def test_writes_arrive_before_the_doorbell(lab, trio):
    a, b, c = trio
    # a member (hb) to the home (ha)
    fill(b, 0, 64 << 10, 0x1111)
    b.ring(a.id, 0)
    assert a.wait(0, 10), "no doorbell at a"
    assert holds(a, 0, 64 << 10, 0x1111)
    # the home to a member, 256 KiB: several DIFF messages before the ring
    fill(a, 0x40000, 256 << 10, 0x2222)
    a.ring(c.id, 0)
    assert c.wait(0, 10), "no doorbell at c"
    assert holds(c, 0x40000, 256 << 10, 0x2222)


def test_a_chain_through_three_hosts_keeps_causality(lab, trio):
    a, b, c = trio
    # b (hb) writes X and rings c (hc); c, having seen X, writes Y and
    # rings a (ha); a must hold X and Y. Then the same from the home: a
    # writes Z and rings b; b writes W and rings c, whose copy must hold Z
    # (sent by the home straight to hc) as well as W (relayed from hb).
    fill(b, 0x80000, 4096, 0x3333)
    b.ring(c.id, 1)
    assert c.wait(1, 10)
    assert holds(c, 0x80000, 4096, 0x3333)
    fill(c, 0x81000, 4096, 0x4444)
    c.ring(a.id, 1)
    assert a.wait(1, 10)
    assert holds(a, 0x80000, 4096, 0x3333) and holds(a, 0x81000, 4096, 0x4444)
    fill(a, 0x90000, 8192, 0x5555)
    a.ring(b.id, 1)
    assert b.wait(1, 10)
    fill(b, 0x92000, 4096, 0x6666)
    b.ring(c.id, 2)
    assert c.wait(2, 10)
    assert holds(c, 0x90000, 8192, 0x5555) and holds(c, 0x92000, 4096, 0x6666)


def test_two_hosts_writing_one_word_keep_both_bytes(lab, trio):
    a, b, c = trio
    w = 0xA0000
    b.mem[w] = 0x11      # byte 0 of the word, on hb
    c.mem[w + 1] = 0x22  # byte 1 of the same word, on hc, before any ring
    b.ring(c.id, 3)
    assert c.wait(3, 10)
    assert (c.mem[w], c.mem[w + 1]) == (0x11, 0x22)
    c.ring(b.id, 3)
    assert b.wait(3, 10)
    assert (b.mem[w], b.mem[w + 1]) == (0x11, 0x22)
    a.ring(b.id, 2)  # and a (the hub) has both too once it rings anyone
    assert b.wait(2, 10)
    assert (a.mem[w], a.mem[w + 1]) == (0x11, 0x22)


def test_cli_rings_and_a_leaving_peer_is_gone_everywhere(lab, trio):
    a, b, c = trio
    p = run("ivshmem", "ring", "shm0", str(b.id), "3", "--lab", lab, check=True)
    assert f"rang peer {b.id}" in p.stdout and "hb" in p.stdout, p.stdout
    assert b.wait(3, 10)
    p = run("ivshmem", "ring", "shm0", "7", "--lab", lab)
    assert p.returncode == 1 and "no peer '7'" in p.stderr, (p.stdout, p.stderr)
    p = run("ivshmem", "ring", "shm0", str(b.id), str(VECTORS), "--lab", lab)
    assert p.returncode == 1 and "out of range" in p.stderr, (p.stdout, p.stderr)
    d = join(lab, "hc")
    assert d.id == 4
    wait_until("a to see d join", lambda: 4 in a.peers(), timeout=10)
    d.close()
    for p in (a, b, c):
        wait_until(f"peer {p.id} to hear that 4 left", lambda p=p: 4 in p.notices().gone,
                   timeout=10)
    wait_until("peers to drop 4", lambda: [x["id"] for x in peers(lab)["peers"]] == [1, 2, 3],
               timeout=10)
    # the others go on
    fill(c, 0xB0000, 4096, 0x7777)
    c.ring(a.id, 3)
    assert a.wait(3, 10) and holds(a, 0xB0000, 4096, 0x7777)


def test_periodic_sync_carries_writes_without_doorbells(lab):
    # region 1, `polled`, has sync: 20ms and no guest: IDs from 0
    x, y = join(lab, "hb", 1, 1), join(lab, "hc", 1, 1)
    try:
        struct.pack_into("<Q", x.mem, 0x100, 0x1234567890ABCDEF)
        wait_until("hb's write on hc, no doorbell",
                   lambda: struct.unpack_from("<Q", y.mem, 0x100)[0] == 0x1234567890ABCDEF,
                   timeout=10)
        struct.pack_into("<Q", y.mem, 0x200, 0xFEDCBA0987654321)
        wait_until("hc's write on hb, no doorbell",
                   lambda: struct.unpack_from("<Q", x.mem, 0x200)[0] == 0xFEDCBA0987654321,
                   timeout=10)
    finally:
        x.close()
        y.close()
