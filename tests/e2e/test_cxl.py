"""End to end: CXL memory whose data follows the guest across hosts.

Three simulated hosts: the switch `fabric` and its pool live on hc; guest g1
runs on ha with LD 0 of the pool bound at start (its node copies the LD
from hc before g1 starts), guest g2 on hb with nothing bound. Both boot the
built-in image (TCG).

  1. g1 makes a CXL region over its LD (pxcxl: sysfs writes alone), fills
     it with a pattern through /dev/mem (pxpoke) and powers off; its node
     writes the LD back to hc (g1 reads "stopping" until that is done). A
     running guest's vPPB cannot be unbound.
  2. The FM unbinds the LD from g1, gives it 512M instead of 256M (Set LD
     Allocations; LD 1's memory goes to it) and binds it to g1 again at
     once - ha's node may still be writing back its 256M copy: g1 waits
     for that, then starts on a 512M copy and reads its pattern in a 512M
     region. g1 and g2 power off; the FM moves the LD to g2 (plexus cxl:
     the spec's Unbind/Bind vPPB): g2 starts again, on a copy of the LD
     made from hc, makes the region and reads g1's pattern.
  3. hc's node is killed and started again. g2 writes a second pattern
     past the first 256M and powers off (the write-back goes to the
     restarted node); the LD goes back to g1, which starts on a fresh copy
     and reads both patterns: the pool's data survived its node's restart.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/e2e/test_cxl.py
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
from plexus_test import (GuestShell, qemu_lab_marks, reap_restarted, restart_node, run,  # noqa
                         status, wait_until)

LAB = "cxle2e"
MIB = 1 << 20
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
  pool0: {{type: cxl_pool, switch: fabric, capacity: 512M, ld_size: 256M}}
placement:
  pin: {{g1: ha, g2: hb, fabric: hc}}
nodes:
  g1:
    restart: "no"
    cxl: [{{switch: fabric, port: 0, pool: pool0, lds: 1}}]
  g2:
    restart: "no"
    cxl: [{{switch: fabric, port: 1}}]
"""


def state(guest):
    return next(g for g in status(LAB)["guests"] if g["name"] == guest)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    f = tmp_path_factory.mktemp("cxl") / f"{LAB}.yaml"
    f.write_text(TOPOLOGY)
    run("down", LAB, timeout=120)
    run("up", f, "--local", check=True, timeout=180)
    started = []
    shells = {"g1": GuestShell(LAB, "ha", "g1", 0), "g2": GuestShell(LAB, "hb", "g2", 1)}
    try:
        for s in shells.values():
            s.wait_ready()
        yield shells, started
    finally:
        run("down", LAB, timeout=120)
        reap_restarted(started)
        leaks = []
        for pid in plexus_test.lab_qemus(LAB):
            os.kill(pid, signal.SIGKILL)
            leaks.append(f"QEMU pid {pid}")
        assert not leaks, f"left running after plexus down: {leaks}"


def region(shell, size=256 * MIB):
    out = shell.ok("pxcxl region", timeout=60)
    m = re.search(r"^region (\S+) hpa (0x[0-9a-f]+) size (\d+)$", out, re.M)
    assert m, f"pxcxl region said {out!r}"
    assert int(m.group(3)) == size
    return m.group(2)


def power_off(shell, guest):
    """Power the guest off and wait until its node has written its LDs
    back (state stopped; "stopping" until then)."""
    shell.type("poweroff -f")
    wait_until(f"{guest} stopped, its LDs written back",
               lambda: state(guest)["state"] == "stopped", timeout=90, interval=0.2)


def move_ld(src, dst, grow=False):
    run("cxl", "unbind", "fabric", src, "0", "--lab", LAB, check=True)
    if grow:  # LD 1's 256M to LD 0: the pool's capacity is 512M
        run("cxl", "alloc", "fabric", "pool0", "1", "0M", "--lab", LAB, check=True)
        run("cxl", "alloc", "fabric", "pool0", "0", "512M", "--lab", LAB, check=True)
    p = run("cxl", "bind", "fabric", dst, "0", "pool0", "0", "--lab", LAB, check=True)
    assert "next starts" in p.stdout, p.stdout


def test_ld_data_follows_the_guest_and_survives_the_pool_node(lab):
    shells, started = lab
    g1, g2 = shells["g1"], shells["g2"]
    # 1. g1 writes its LD through a CXL region.
    hpa = region(g1)
    g1.ok(f"pxpoke fill {hpa} 1M addr:0x5a5a")
    g1.ok(f"pxpoke verify {hpa} 1M addr:0x5a5a")
    ports = json.loads(run("--json", "cxl", "ports", "fabric", "--lab", LAB, check=True).stdout)
    assert {"vcs": 0, "guest": "g1", "vppb": 0, "bound": True, "port": 2, "pool": "pool0",
            "ld": 0} in ports["vppbs"], ports
    p = run("cxl", "unbind", "fabric", "g1", "0", "--lab", LAB)
    assert p.returncode == 1 and "Busy" in p.stderr and "stop it first" in p.stderr, p.stderr
    power_off(g1, "g1")
    # 2. The LD grows to 512M and comes back to g1 on the same host, then
    # the FM moves it to g2 (on hb), which starts again with it.
    move_ld("g1", "g1", grow=True)
    g1.wait_ready(boots=2, timeout=180)
    hpa = region(g1, 512 * MIB)
    g1.ok(f"pxpoke verify {hpa} 1M addr:0x5a5a")
    power_off(g1, "g1")
    power_off(g2, "g2")
    move_ld("g1", "g2")
    g2.wait_ready(boots=2, timeout=180)
    hpa2 = region(g2, 512 * MIB)
    g2.ok(f"pxpoke verify {hpa2} 1M addr:0x5a5a")
    # 3. The pool's node restarts; what g2 writes next (past the LD's
    # first 256M) reaches it.
    restart_node(LAB, "hc", started)
    g2.ok(f"pxpoke fill {int(hpa2, 16) + 300 * MIB:#x} 1M addr:0x7777")
    power_off(g2, "g2")
    move_ld("g2", "g1")
    g1.wait_ready(boots=3, timeout=180)
    hpa3 = region(g1, 512 * MIB)
    g1.ok(f"pxpoke verify {hpa3} 1M addr:0x5a5a")
    g1.ok(f"pxpoke verify {int(hpa3, 16) + 300 * MIB:#x} 1M addr:0x7777")
