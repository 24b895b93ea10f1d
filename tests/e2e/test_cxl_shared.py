"""End to end: a shared CXL LD, bound to guests on two hosts, kept in step.

Three simulated hosts: the switch `fabric` and its pools live on hc (the
pool's node: the hub); g1 runs on ha, g2 on hb, both booting the built-in
image (TCG). Two pools of the same switch:

  fast  sync: 200ms   its LD 0 starts bound to g1 (vPPB 0)
  slow  sync: 1h      its LD 0 starts bound to g2 (vPPB 0); never synced
                      periodically during the test, so only `plexus cxl
                      sync` moves its changes

  1. Both boot once with their own LD. They power off, and the FM binds
     fast LD 0 to g2's vPPB 1 and slow LD 0 to g1's vPPB 1 (`plexus cxl
     bind`): each bind starts its guest again, now with both LDs, each of
     them shared between ha and hb (two vPPBs each).
  2. fast, periodic: what g1 writes, g2 reads without anyone asking; and a
     byte each of one 8-byte word, written by g1 and g2, are both in both
     guests after the next period (byte-exact changes through hc).
  3. slow, on demand: what g2 writes is not in g1 after a whole round trip
     on fast has passed; after `plexus cxl sync fabric slow 0` it is, and a
     byte each of one word written by both guests is in both. The JSON
     answer names every node of the switch and what it sent.
  4. Refusals: an LD bound once, an LD the pool does not have.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/e2e/test_cxl_shared.py
"""
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
import plexus_test  # noqa: E402
from plexus_test import GuestShell, qemu_lab_marks, run, status, wait_until  # noqa: E402

LAB = "cxlshare"
MIB = 1 << 20
# Every byte non-zero, the same at any address: the two guests see an LD at
# different physical addresses (different vPPBs, different windows).
FAST = "0x5a5a1111a5a51111"
SLOW = "0x2222c0ffee2222ff"
pytestmark = qemu_lab_marks()

TOPOLOGY = f"""\
name: {LAB}
defaults: {{image: builtin:tiny, memory: 256M, cpus: 1, accelerator: tcg}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
  hc: {{cpus: 8, memory: 4G}}
nets:
  fabric: {{type: cxl_switch, ports: 2}}
  fast: {{type: cxl_pool, switch: fabric, capacity: 256M, sync: 200ms}}
  slow: {{type: cxl_pool, switch: fabric, capacity: 512M, sync: 1h}}
placement:
  pin: {{g1: ha, g2: hb, fabric: hc}}
nodes:
  g1:
    restart: "no"
    cxl: [{{switch: fabric, port: 0, pool: fast, lds: 1}}]
  g2:
    restart: "no"
    cxl: [{{switch: fabric, port: 1, pool: slow, lds: 1}}]
"""


def state(guest):
    return next(g for g in status(LAB)["guests"] if g["name"] == guest)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    f = tmp_path_factory.mktemp("cxlshare") / f"{LAB}.yaml"
    f.write_text(TOPOLOGY)
    run("down", LAB, timeout=120)
    run("up", f, "--local", check=True, timeout=180)
    shells = {"g1": GuestShell(LAB, "ha", "g1", 0), "g2": GuestShell(LAB, "hb", "g2", 1)}
    try:
        for s in shells.values():
            s.wait_ready()
        yield shells
    finally:
        run("down", LAB, timeout=120)
        leaks = []
        for pid in plexus_test.lab_qemus(LAB):
            os.kill(pid, signal.SIGKILL)
            leaks.append(f"QEMU pid {pid}")
        assert not leaks, f"left running after plexus down: {leaks}"


def power_off(shell, guest):
    shell.type("poweroff -f")
    wait_until(f"{guest} stopped", lambda: state(guest)["state"] == "stopped", timeout=90,
               interval=0.2)


def regions(shell):
    """{vPPB: region HPA} for every LD of the guest: bridge 64 + 4 * vPPB
    (one attachment), a region each."""
    out = shell.ok("pxcxl list", timeout=30)
    mems = re.findall(r"^memdev (\S+) pmem \d+ lsa \d+ bridge (\d+)", out, re.M)
    assert len(mems) == 2, f"pxcxl list said {out!r}"
    hpas = {}
    for mem, bridge in mems:
        r = shell.ok(f"pxcxl region {mem}", timeout=60)
        m = re.search(r"^region (\S+) hpa (0x[0-9a-f]+) size (\d+)$", r, re.M)
        assert m and int(m.group(3)) == 256 * MIB, f"pxcxl region {mem} said {r!r}"
        hpas[(int(bridge) - 64) // 4] = int(m.group(2), 16)
    return hpas


def has(shell, addr, length, pattern):
    res = shell.try_run(f"pxpoke verify {addr:#x} {length} {pattern}", 30)
    return res is not None and res[0] == 0


def word(shell, addr):
    return int(shell.ok(f"pxpoke read {addr:#x} 64", timeout=30).split()[-1], 16)


def test_shared_ld_between_hosts(lab):
    g1, g2 = lab["g1"], lab["g2"]
    # 1. Each LD becomes shared: bound to a vPPB of each guest.
    power_off(g1, "g1")
    power_off(g2, "g2")
    run("cxl", "bind", "fabric", "g1", "1", "slow", "0", "--lab", LAB, check=True)
    run("cxl", "bind", "fabric", "g2", "1", "fast", "0", "--lab", LAB, check=True)
    g1.wait_ready(boots=2, timeout=180)
    g2.wait_ready(boots=2, timeout=180)
    r1, r2 = regions(g1), regions(g2)
    fast1, slow1 = r1[0], r1[1]  # g1: fast on vPPB 0, slow on vPPB 1
    slow2, fast2 = r2[0], r2[1]  # g2: slow on vPPB 0, fast on vPPB 1

    # 2. fast: periodic. ha -> hc -> hb without a command.
    g1.ok(f"pxpoke fill {fast1:#x} 64K {FAST}")
    wait_until("g1's writes to the fast LD in g2", lambda: has(g2, fast2, "64K", FAST),
               timeout=30, interval=0.2)
    # One byte each of the same word, from both sides: both stay.
    w = MIB
    g1.ok(f"pxpoke write {fast1 + w:#x} 8 0xa1")
    g2.ok(f"pxpoke write {fast2 + w + 1:#x} 8 0xb2")
    want = 0xb2a1
    wait_until("both bytes of the fast word in g1", lambda: word(g1, fast1 + w) == want,
               timeout=30, interval=0.2)
    wait_until("both bytes of the fast word in g2", lambda: word(g2, fast2 + w) == want,
               timeout=30, interval=0.2)

    # 3. slow: on demand only.
    g2.ok(f"pxpoke fill {slow2:#x} 64K {SLOW}")
    g1.ok(f"pxpoke write {slow1 + w:#x} 8 0xc3")
    g2.ok(f"pxpoke write {slow2 + w + 1:#x} 8 0xd4")
    # A whole round trip on fast (g1 -> g2 -> g1) takes at least two of
    # its periods; slow's period has not come in that time.
    g1.ok(f"pxpoke write {fast1 + 2 * MIB:#x} 32 0x600d")
    wait_until("g1's fast write in g2", lambda: word(g2, fast2 + 2 * MIB) == 0x600d, timeout=30,
               interval=0.2)
    g2.ok(f"pxpoke write {fast2 + 2 * MIB + 4:#x} 32 0xbac4")
    wait_until("g2's answer in g1", lambda: word(g1, fast1 + 2 * MIB) == 0xbac4 << 32 | 0x600d,
               timeout=30, interval=0.2)
    assert not has(g1, slow1, "64K", SLOW), "slow's changes moved without a sync"
    assert word(g1, slow1 + w) == 0xc3

    p = run("--json", "cxl", "sync", "fabric", "slow", "0", "--lab", LAB, check=True)
    answers = {a["node"]: a for a in json.loads(p.stdout)}
    assert set(answers) == {"ha", "hb", "hc"}, answers
    assert answers["hc"]["role"] == "pool" and answers["ha"]["role"] == "copy", answers
    # Byte exact: hb's fill and its byte of the word, ha's byte, nothing
    # at hc (what it was sent is in its twin as well as its file).
    assert answers["hb"]["bytes"] == 64 * 1024 + 1 and answers["hb"]["to"] == 1, answers["hb"]
    assert answers["ha"]["bytes"] == 1 and answers["ha"]["to"] == 1, answers["ha"]
    assert answers["hc"]["bytes"] == 0, answers["hc"]
    assert all(a["stats"]["bad_msgs"] == 0 for a in answers.values()), answers
    wait_until("g2's slow writes in g1 after cxl sync", lambda: has(g1, slow1, "64K", SLOW),
               timeout=30, interval=0.2)
    wait_until("both bytes of the slow word in g1", lambda: word(g1, slow1 + w) == 0xd4c3,
               timeout=30, interval=0.2)
    wait_until("both bytes of the slow word in g2", lambda: word(g2, slow2 + w) == 0xd4c3,
               timeout=30, interval=0.2)
    p = run("cxl", "sync", "fabric", "slow", "0", "--lab", LAB, check=True)
    assert "node ha: slow LD 0: 0 bytes changed" in p.stdout, p.stdout

    # 4. Refusals.
    p = run("cxl", "sync", "fabric", "slow", "1", "--lab", LAB)
    assert p.returncode == 1 and "only a shared LD" in p.stderr, (p.returncode, p.stderr)
    p = run("cxl", "sync", "fabric", "fast", "1", "--lab", LAB)
    assert p.returncode == 2 and "not one of pool fast's LDs" in p.stderr, (p.returncode,
                                                                            p.stderr)
