"""Integration: the Fabric Manager of a lab's CXL switches, through the CLI.

`plexus up --local --dry-run` starts a coordinator and two nodes, no QEMU.
`plexus cxl` sends the CXL specification's FM API requests (CCI messages)
to the coordinator, which holds the switches' state:
  - the topology's start bindings (`pool:`/`lds:`) are there;
  - Identify Switch Device, Get Virtual CXL Switch Info, Bind and Unbind
    vPPB, Get LD Info, Get and Set LD Allocations answer as the spec says,
    refusals with the spec's return code and plexus's reason;
  - a binding change reaches every node's plan (the nodes' CXL service
    opens the pool at the switch's home);
  - a bound LD's file at the pool's node takes the LD's allocation;
  - the FM state (bindings, allocations) survives a coordinator restart.
Guests and LD data are in tests/e2e/test_cxl.py.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/integration/test_cxl_fm.py
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import (coordinator_launch, lab_dir, restart_coordinator, run,  # noqa: E402
                         up_dry_run, wait_until)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="local mode with namespaces needs root")

LAB = "cxlfm"
TOPO = f"""\
name: {LAB}
defaults: {{image: builtin:tiny, memory: 256M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
nets:
  fabric: {{type: cxl_switch, ports: 3}}
  pool0: {{type: cxl_pool, switch: fabric, capacity: 1G, ld_size: 256M}}
  pool1: {{type: cxl_pool, switch: fabric, capacity: 512M, ld_size: 512M}}
placement:
  pin: {{g1: ha, g2: hb, fabric: hb}}
nodes:
  g1: {{cxl: [{{switch: fabric, pool: pool0, lds: 2}}]}}
  g2: {{cxl: [fabric]}}
"""


RESTARTED = []  # coordinators a test started again: reaped after `plexus down`


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    up_dry_run(tmp_path_factory.mktemp("cxl"), LAB, TOPO)
    yield LAB
    run("down", LAB, timeout=60)
    for p in RESTARTED:
        p.wait(timeout=10)


def cxl(*args, check=True):
    return run("cxl", *args, "--lab", LAB, check=check)


def jcxl(*args):
    return json.loads(run("--json", "cxl", *args, "--lab", LAB, check=True).stdout)


def bound(ports):
    return {(p["guest"], p["vppb"]): (p["pool"], p["ld"]) for p in ports["vppbs"] if p["bound"]}


def test_switches_and_start_bindings(lab):
    (sw,) = jcxl("switches")
    assert sw["name"] == "fabric" and sw["ports"] == 3 and sw["vppbs"] == 4
    # Identify Switch Device: 3 upstream ports + 2 pools, 12 vPPBs, 2 bound
    assert (sw["phys_ports"], sw["vcs"], sw["total_vppbs"], sw["bound_vppbs"]) == (5, 3, 12, 2)
    assert [(p["name"], p["port"], p["lds"]) for p in sw["pools"]] == [("pool0", 3, 4),
                                                                      ("pool1", 4, 1)]
    assert [(g["vcs"], g["guest"]) for g in sw["guests"]] == [(0, "g1"), (1, "g2")]
    ports = jcxl("ports", "fabric")
    assert bound(ports) == {("g1", 0): ("pool0", 0), ("g1", 1): ("pool0", 1)}
    # Get Physical Port State: 3 upstream ports, 2 pools (MLDs) after them
    assert [(p["port"], p["state"], p["what"]) for p in ports["physical"]] == [
        (0, "upstream", "guest g1"), (1, "upstream", "guest g2"), (2, "upstream", "-"),
        (3, "downstream", "pool pool0"), (4, "downstream", "pool pool1")]
    assert [p["device"] for p in ports["physical"]][3:] == ["type3-mld"] * 2
    assert [p["lds"] for p in ports["physical"]][3:] == [4, 1]
    text = cxl("switches").stdout
    assert "fabric" in text and "pool0 (3: 4 x 256M)" in text


def test_bind_unbind_and_refusals(lab):
    p = cxl("bind", "fabric", "g2", "2", "pool0", "3")
    assert "takes effect when the guest next starts" in p.stdout
    p = cxl("bind", "fabric", "1", "3", "pool1", "0")  # by VCS number
    assert bound(jcxl("ports", "fabric")) == {
        ("g1", 0): ("pool0", 0), ("g1", 1): ("pool0", 1), ("g2", 2): ("pool0", 3),
        ("g2", 3): ("pool1", 0)}
    # refusals: the spec's Invalid Input with plexus's reason
    p = cxl("bind", "fabric", "g2", "2", "pool0", "2", check=False)
    assert p.returncode == 1 and "Invalid Input" in p.stderr and "already bound" in p.stderr
    p = cxl("bind", "fabric", "g2", "0", "pool0", "9", check=False)
    assert p.returncode == 1 and "Invalid Input" in p.stderr, p.stderr
    p = cxl("unbind", "fabric", "g2", "1", check=False)
    assert p.returncode == 1 and "not bound" in p.stderr, p.stderr
    p = cxl("bind", "fabric", "nosuch", "0", "pool0", "2", check=False)
    assert p.returncode == 1 and "neither a guest" in p.stderr
    p = cxl("ports", "nosuch", check=False)
    assert p.returncode == 1 and "no CXL switch nosuch" in p.stderr
    # dry run: the guests never ran, so unbinding is allowed
    cxl("unbind", "fabric", "g2", "3")
    cxl("unbind", "fabric", "g2", "2")
    assert ("g2", 2) not in bound(jcxl("ports", "fabric"))


def test_ld_info_and_allocations(lab):
    info = jcxl("lds", "fabric", "pool0")
    assert info["memory"] == 1 << 30 and info["ld_count"] == 4
    assert [x["bytes"] for x in info["lds"]] == [256 << 20] * 4
    # the pool is full: growing an LD is over capacity
    p = cxl("alloc", "fabric", "pool0", "2", "512M", check=False)
    assert p.returncode == 1 and "Set LD Allocations" in p.stderr, p.stderr
    # a bound LD cannot change (its own size again is fine)
    p = cxl("alloc", "fabric", "pool0", "0", "512M", check=False)
    assert p.returncode == 1 and "bound" in p.stderr, p.stderr
    assert jcxl("alloc", "fabric", "pool0", "0", "256M") == {
        "op": "alloc", "switch": "fabric", "pool": "pool0", "ld": 0, "allocated": 256 << 20}
    # LD 3's memory to LD 2: all or nothing within the capacity
    cxl("alloc", "fabric", "pool0", "3", "0M")
    cxl("alloc", "fabric", "pool0", "2", "512M")
    assert [x["bytes"] for x in jcxl("lds", "fabric", "pool0")["lds"]] == [
        256 << 20, 256 << 20, 512 << 20, 0]
    p = cxl("bind", "fabric", "g2", "0", "pool0", "3", check=False)
    assert p.returncode == 1 and "no memory" in p.stderr, p.stderr
    p = cxl("alloc", "fabric", "pool0", "2", "100M", check=False)
    assert p.returncode == 2 and "multiple of 256M" in p.stderr


def test_the_pool_lives_at_the_switch_home(lab):
    # the switch is pinned to hb: its node opened the pools' files there
    d = lab_dir(LAB, "hb") / "cxl"
    wait_until("pool files on hb", lambda: (d / "pool0").is_dir() and (d / "pool1").is_dir(),
               timeout=10)
    assert not (lab_dir(LAB, "ha") / "cxl" / "pool0").exists()


def ld_file_size(ld):
    f = lab_dir(LAB, "hb") / "cxl" / "pool0" / f"ld{ld}.mem"
    return f.stat().st_size if f.exists() else None


def test_a_bound_ld_gets_its_allocation(lab):
    # LD 2 was given 512M (above); bound, the pool's node (hb) sizes its
    # file to match, and the plan's binding says 512M to the guest's node.
    assert ld_file_size(2) == 256 << 20
    cxl("bind", "fabric", "g2", "1", "pool0", "2")
    wait_until("LD 2's file at 512M", lambda: ld_file_size(2) == 512 << 20, timeout=10)
    cxl("unbind", "fabric", "g2", "1")
    cxl("alloc", "fabric", "pool0", "2", "256M")
    cxl("bind", "fabric", "g2", "1", "pool0", "2")
    wait_until("LD 2's file at 256M", lambda: ld_file_size(2) == 256 << 20, timeout=10)
    cxl("unbind", "fabric", "g2", "1")
    cxl("alloc", "fabric", "pool0", "2", "512M")


def test_fm_state_survives_a_coordinator_restart(lab):
    cxl("bind", "fabric", "g2", "1", "pool0", "2")
    ports, lds = bound(jcxl("ports", "fabric")), jcxl("lds", "fabric", "pool0")["lds"]
    assert ports[("g2", 1)] == ("pool0", 2)
    epoch = json.loads(run("--json", "status", LAB, check=True).stdout)["labs"][0]["epoch"]
    RESTARTED.append(restart_coordinator(LAB))

    def serving():
        p = run("--json", "cxl", "ports", "fabric", "--lab", LAB)
        return p.returncode == 0 and json.loads(p.stdout)

    # The restarted coordinator reloaded its journal: the bindings and the
    # allocations the FM API made, not the topology's start bindings.
    assert bound(wait_until("the restarted coordinator", serving, timeout=10)) == ports
    assert jcxl("lds", "fabric", "pool0")["lds"] == lds
    assert [x["bytes"] for x in lds] == [256 << 20, 256 << 20, 512 << 20, 0]
    st = json.loads(run("--json", "status", LAB, check=True).stdout)
    assert st["labs"][0]["epoch"] == epoch
    # and it goes on from there
    cxl("unbind", "fabric", "g2", "1")
    assert ("g2", 1) not in bound(jcxl("ports", "fabric"))


def test_a_journal_whose_cxl_state_does_not_fit_is_refused(lab, tmp_path):
    """A coordinator started on a journal whose CXL bindings do not fit the
    lab's topology stops with an error naming the journal, the lab, the
    switch and the entry; it does not serve a half-restored switch."""
    _, argv = coordinator_launch(LAB)
    state = Path(argv[argv.index("--state-dir") + 1])
    journal = json.loads((state / "coordinator.json").read_text())
    (entry,) = [x for x in journal["labs"] if x["name"] == LAB]
    entry["cxl"][0]["bindings"].append([7, 0, 0, 1])  # VCS 7: the switch has 3
    bad = tmp_path / "state"
    bad.mkdir(mode=0o700)
    (bad / "coordinator.json").write_text(json.dumps(journal))
    argv[argv.index("--state-dir") + 1] = str(bad)
    argv[argv.index("--listen") + 1] = "tcp://127.0.0.1:*"
    if "--log-file" in argv:
        i = argv.index("--log-file")
        del argv[i:i + 2]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    err = p.stdout + p.stderr
    assert str(bad / "coordinator.json") in err and f"lab {LAB}" in err, err
    assert "CXL switch fabric" in err and "VCS 7" in err and ": :" not in err, err
