"""End to end: an ivshmem region shared by real QEMU guests (TCG) on two
simulated hosts (docs/ivshmem.md).

One lab, booted once for the module: region shm0 (1 MiB, 4 vectors, home
pinned to ha); guests a (ha), b (hb), c (ha), each with an
ivshmem-doorbell device on it. Guests run `pxivshmem` and `pxpoke` (the
built-in image's tools, tests/guest/tools/) typed on their serial consoles;
the test reads their console logs. No guest has a driver: a receiver
enables MSI-X with its vectors masked and polls the PBA, where a doorbell
leaves its vector's pending bit set (for the rest of the boot: every check
uses a vector of its own). QEMU drops a doorbell while MSI-X is off, so a
receiver is armed before anyone rings it. Checked:
  - peer IDs are global and in topology order (a=0, b=1, c=2), the same in
    `plexus ivshmem peers` and in each guest's IVPosition register;
  - release consistency across hosts, both ways: 64 KiB written in one guest
    before it rings a guest on the other host are all there when the
    receiver's vector turns pending (the receiver is already polling, and
    reads the region the moment it sees the bit);
  - two guests on two hosts writing different words of one page both keep
    both words (twin/diff merges, no page-sized overwrite);
  - `plexus ivshmem ring` from the host reaches a guest by name and by ID,
    and names an unknown peer;
  - a host program (a minimal ivshmem-server client written here, on hb's
    socket) gets the lowest free ID, is listed, and its writes reach a guest
    on ha with its doorbell;
  - a guest killed with SIGKILL (restart: no) leaves the peer list, and the
    others still exchange doorbells with new data.

Vectors, per guest: a 0 (from b), 1 (from the host program), 2 (same page),
3 (after the kill); b 0 (from a), 1 (host ring), 2 (same page), 3 (after
the kill); c 0 (host ring by ID).

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/e2e/test_ivshmem.py
"""
import json
import os
import re
import signal
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
import plexus_test  # noqa: E402
from plexus_test import GuestShell, alive, guest_log, qemu_lab_marks, run, wait_until  # noqa: E402

BOOT_TIMEOUT = 120  # three TCG guests on 2 cores
LAB = "shme2e"
REGION = "shm0"
SIZE = 1 << 20
VECTORS = 4
WAIT_MS = 15000  # a guest's pxivshmem wait: the doorbell crosses hosts

pytestmark = qemu_lab_marks()

TOPOLOGY = f"""\
name: {LAB}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1, accelerator: tcg}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
nets:
  {REGION}: {{type: ivshmem, size: 1M, vectors: {VECTORS}}}
placement:
  pin: {{a: ha, b: hb, c: ha, {REGION}: ha}}
nodes:
  a: {{ivshmem: [{REGION}]}}
  b: {{ivshmem: [{REGION}]}}
  c: {{ivshmem: [{REGION}]}}
"""
GUESTS = ["a", "b", "c"]  # in topology order: console c<index>.sock, peer ID = index
HOST = {"a": "ha", "b": "hb", "c": "ha"}


def log(guest):
    return guest_log(LAB, HOST[guest], guest)


def shell(guest):
    return GuestShell(LAB, HOST[guest], guest, GUESTS.index(guest))


def type_line(guest, line):
    shell(guest).type(line)


def Cmd(guest, command):
    """A command typed now; .result(timeout) is (exit status, output)."""
    return shell(guest).start(command)


def run_in(guest, command, timeout=30):
    return shell(guest).run(command, timeout)


def ok_in(guest, command, timeout=30):
    return shell(guest).ok(command, timeout)


def try_in(guest, command, timeout):
    return shell(guest).try_run(command, timeout)


def peers():
    return json.loads(run("--json", "ivshmem", "peers", REGION, "--lab", LAB, check=True).stdout)


def peer_names():
    return {p["name"]: p["id"] for p in peers()["peers"]}


class Lab:
    def __init__(self):
        self.info = {}  # guest: {"id", "size", "bdf"}

    def mem(self, guest):
        """pxpoke's -f argument for the guest's region (BAR2)."""
        return f"/sys/bus/pci/devices/{self.info[guest]['bdf']}/resource2"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    f = tmp_path_factory.mktemp("ivshmem") / f"{LAB}.yaml"
    f.write_text(TOPOLOGY)
    run("down", LAB, timeout=120)
    run("up", f, "--local", check=True, timeout=120)
    lab = Lab()
    try:
        for g in GUESTS:
            wait_until(f"{g} to boot", lambda g=g: f"PLEXUS-GUEST-READY name={g}" in log(g),
                       timeout=BOOT_TIMEOUT, interval=0.5)
        # The first typed line can come before the console's shell: retry.
        for g in GUESTS:
            wait_until(f"{g}'s shell", lambda g=g: try_in(g, "true", 10), timeout=60, interval=0)
            out = ok_in(g, "pxivshmem info")
            m = re.search(r"^id (\d+) size (\d+) bdf (\S+)$", out, re.M)
            assert m, f"{g}: pxivshmem info said {out!r}"
            lab.info[g] = {"id": int(m.group(1)), "size": int(m.group(2)), "bdf": m.group(3)}
        yield lab
    finally:
        run("down", LAB, timeout=120)
        leaks = []
        for pid in plexus_test.lab_qemus(LAB):
            os.kill(pid, signal.SIGKILL)
            leaks.append(f"QEMU pid {pid}")
        assert not leaks, f"left running after plexus down: {leaks}"


def test_peer_ids_are_global_and_in_topology_order(lab):
    p = peers()
    assert p["region"] == REGION and p["size"] == SIZE and p["vectors"] == VECTORS, p
    assert p["home"] == "ha", p
    got = {x["name"]: (x["id"], x["node"]) for x in p["peers"]}
    assert got == {"a": (0, "ha"), "b": (1, "hb"), "c": (2, "ha")}, p["peers"]
    for x in p["peers"]:
        pid = plexus_test.guest_pid(LAB, HOST[x["name"]], x["name"])
        assert x["pid"] == pid, f"{x}: the QEMU pid file says {pid}"
    nodes = {n["node"]: n for n in p["nodes"]}
    assert set(nodes) == {"ha", "hb"}, p["nodes"]
    for n in nodes.values():
        assert os.path.isabs(n["socket"]) and Path(n["socket"]).is_socket(), n
    # Each guest's device says the same (IVPosition) and has the region's size.
    for g in GUESTS:
        assert lab.info[g]["id"] == GUESTS.index(g), (g, lab.info[g])
        assert lab.info[g]["size"] == SIZE, (g, lab.info[g])
    text = run("ivshmem", "peers", REGION, "--lab", LAB, check=True).stdout
    for g in GUESTS:
        assert re.search(rf"^{GUESTS.index(g)}\s+{g}\s+{HOST[g]}\s", text, re.M), text


def exchange(lab, src, dst, vector, addr, length, seed):
    """src fills [addr, addr + length) of the region with a pattern and rings
    dst at vector; dst, already polling, reads the range the moment its
    vector turns pending: every byte must be there (release consistency).
    Returns dst's output."""
    ok_in(dst, "pxivshmem arm")
    mem = lab.mem(dst)
    waiter = Cmd(dst, f"pxivshmem wait {vector} {WAIT_MS} && "
                      f"pxpoke -f {mem} verify {addr} {length} addr:{seed}")
    ok_in(src, f"pxpoke -f {lab.mem(src)} fill {addr} {length} addr:{seed} && "
               f"pxivshmem ring {lab.info[dst]['id']} {vector}")
    st, out = waiter.result(timeout=WAIT_MS / 1000 + 30)
    assert st == 0, f"{dst}: after {src} rang vector {vector}:\n{out}"
    assert f"vector {vector} pending" in out and f"verify: {length} bytes ok" in out, out
    return out


def test_contents_arrive_before_the_doorbell_a_to_b(lab):
    before = {n["node"]: n for n in peers()["nodes"]}
    exchange(lab, "a", "b", 0, 0, 64 << 10, "0x1111")
    after = {n["node"]: n for n in peers()["nodes"]}
    assert after["ha"]["rings_out"] > before["ha"]["rings_out"], after
    assert after["hb"]["rings_in"] > before["hb"]["rings_in"], after
    assert after["ha"]["diff_bytes_out"] > before["ha"]["diff_bytes_out"], after
    assert after["hb"]["diff_bytes_in"] > before["hb"]["diff_bytes_in"], after


def test_contents_arrive_before_the_doorbell_b_to_a(lab):
    exchange(lab, "b", "a", 0, 0x20000, 64 << 10, "0x2222")
    # and a still has what it wrote itself
    assert "verify: 65536 bytes ok" in ok_in("a", f"pxpoke -f {lab.mem('a')} verify 0 64K "
                                                  "addr:0x1111")


def test_two_hosts_writing_one_page_keep_both_words(lab):
    wa, wb = 0xa1a2a3a4a5a6a7a8, 0xb1b2b3b4b5b6b7b8
    ok_in("a", f"pxpoke -f {lab.mem('a')} write 0x10000 64 {wa:#x}")
    ok_in("b", f"pxpoke -f {lab.mem('b')} write 0x10008 64 {wb:#x}")
    ok_in("a", "pxivshmem ring 1 2")
    ok_in("b", "pxivshmem ring 0 2")
    for g in ("a", "b"):
        out = ok_in(g, f"pxivshmem wait 2 {WAIT_MS} && pxpoke -f {lab.mem(g)} read 0x10000 64 && "
                       f"pxpoke -f {lab.mem(g)} read 0x10008 64", timeout=WAIT_MS / 1000 + 30)
        words = re.findall(r"^0x([0-9a-f]{16})$", out, re.M)
        assert words == [f"{wa:016x}", f"{wb:016x}"], f"{g}:\n{out}"


def test_host_rings_a_guest_by_name_and_by_id(lab):
    for g in ("b", "c"):
        ok_in(g, "pxivshmem arm")
    out = ok_in("b", "pxivshmem pending")
    assert not re.search(r"^pending .*\b1\b", out, re.M), f"b's vector 1 is pending already:\n{out}"
    run("ivshmem", "ring", REGION, "b", 1, "--lab", LAB, check=True)
    out = ok_in("b", f"pxivshmem wait 1 {WAIT_MS}", timeout=WAIT_MS / 1000 + 30)
    assert "vector 1 pending" in out
    run("ivshmem", "ring", REGION, 2, "--lab", LAB, check=True)  # c, vector 0
    out = ok_in("c", f"pxivshmem wait 0 {WAIT_MS}", timeout=WAIT_MS / 1000 + 30)
    assert "vector 0 pending" in out
    p = run("ivshmem", "ring", REGION, "nosuch", "--lab", LAB)
    assert p.returncode == 1 and "nosuch" in p.stderr + p.stdout, (p.returncode, p.stdout, p.stderr)


def test_host_program_on_hb_reaches_a_guest_on_ha(lab):
    hb = next(n for n in peers()["nodes"] if n["node"] == "hb")
    ok_in("a", "pxivshmem arm")
    h = plexus_test.IvshmemPeer(hb["socket"], VECTORS)
    try:
        assert h.id == 3, f"a host program got ID {h.id}; the lowest free above the guests is 3"
        assert sorted(h.fds) == [0, 1, 2, 3], sorted(h.fds)
        assert all(len(v) == VECTORS for v in h.fds.values())
        me = wait_until("the host program in the peer list",
                        lambda: [x for x in peers()["peers"] if x["id"] == 3], timeout=10)
        assert me[0]["node"] == "hb" and me[0]["pid"] == os.getpid(), me
        # hb's copy has a's word of the one-page test; then it writes for a
        assert struct.unpack_from("<Q", h.mem, 0x10000)[0] == 0xa1a2a3a4a5a6a7a8
        base, n, seed = 0x50000, 32 << 10, 0x5555
        for off in range(base, base + n, 8):
            struct.pack_into("<Q", h.mem, off, off ^ seed)
        waiter = Cmd("a", f"pxivshmem wait 1 {WAIT_MS} && "
                          f"pxpoke -f {lab.mem('a')} verify {base:#x} {n} addr:{seed:#x}")
        h.ring(0, 1)
        st, out = waiter.result(timeout=WAIT_MS / 1000 + 30)
        assert st == 0 and f"verify: {n} bytes ok" in out, out
    finally:
        h.close()
    wait_until("the host program to leave the peer list",
               lambda: all(x["id"] != 3 for x in peers()["peers"]), timeout=10)


def test_killed_guest_leaves_and_the_others_go_on(lab):
    pid = plexus_test.guest_pid(LAB, "ha", "c")
    assert pid and alive(pid)
    os.kill(pid, signal.SIGKILL)
    wait_until("c's QEMU to die", lambda: not alive(pid), timeout=10)
    wait_until("c to leave the peer list", lambda: "c" not in peer_names(), timeout=20)
    assert peer_names() == {"a": 0, "b": 1}
    p = run("ivshmem", "ring", REGION, 2, "--lab", LAB)
    assert p.returncode == 1, f"ringing the departed peer 2: {p.returncode} {p.stdout} {p.stderr}"
    exchange(lab, "a", "b", 3, 0x30000, 64 << 10, "0x3333")
    exchange(lab, "b", "a", 3, 0x40000, 64 << 10, "0x4444")
