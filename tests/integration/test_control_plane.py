"""Integration: the control plane with real processes.

A coordinator and several plexus-node daemons started by
`plexus up --local --dry-run` (each node in its own network namespace when run
as root), driven through the plexus CLI exactly as a user would. Nodes apply
their plans but start no QEMU (guests stay "planned"): tests/e2e has guests.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/integration
"""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

import sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import (NODE, ROOT, alive, restart_coordinator, run, status,  # noqa: E402
                         wait_until)

LOCAL_ROOT = Path("/run/plexus/local") if os.geteuid() == 0 else None


def context(lab):
    root = LOCAL_ROOT or Path(os.environ.get("XDG_RUNTIME_DIR", f"/tmp/plexus-{os.geteuid()}")) / "plexus" / "local"
    text = (root / lab / "context").read_text()
    ctx = {"nodes": {}, "dir": root / lab}
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if parts[0] == "node":
            ctx["nodes"][parts[1]] = int(parts[2])
        else:
            ctx[parts[0]] = parts[1]
    return ctx


LAB_TEMPLATE = """\
name: {name}
defaults:
  image: builtin:tiny
  memory: 128M
  cpus: 1
nets:
  bus: {{type: can_bus, bitrate: 500k}}
  lan: {{type: eth_segment}}
nodes:
{nodes}
"""


def write_lab(tmp_path, name, n_guests=6):
    nodes = "\n".join(
        f"  g{i}: {{can: [bus]}}" if i % 2 else f"  g{i}: {{nics: [{{segment: lan}}]}}"
        for i in range(n_guests))
    path = tmp_path / f"{name}.yaml"
    path.write_text(LAB_TEMPLATE.format(name=name, nodes=nodes))
    return path


@pytest.fixture
def lab(tmp_path, request):
    """A lab name unique to the test, torn down afterwards whatever happened."""
    name = re.sub(r"[^a-z0-9]", "", request.node.name.lower())[-20:]
    yield name
    run("down", name, timeout=60)


def test_up_status_down_three_nodes(tmp_path, lab):
    f = write_lab(tmp_path, lab)
    p = run("up", f, "--local", "--dry-run", "--hosts", "3", check=True)
    assert f"lab {lab} is up" in p.stdout
    assert "nodes registered: 3/3" in p.stderr  # progress went to stderr
    st = status(lab)
    assert [l["state"] for l in st["labs"]] == ["running"]
    assert len(st["guests"]) == 6
    assert all(g["state"] == "planned" for g in st["guests"])
    assert sorted(n["name"] for n in st["nodes"]) == ["host1", "host2", "host3"]
    assert all(n["state"] == "up" for n in st["nodes"])
    ctx = context(lab)
    pids = [int(ctx["coordinator_pid"]), *ctx["nodes"].values()]
    assert all(alive(p) for p in pids)
    if ctx["netns"] == "1":
        ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for i in (1, 2, 3):
            assert f"px-{ctx['tag']}-{i}" in ns
        # Each node sits in its own namespace with its own address.
        eps = sorted(n["endpoint"] for n in st["nodes"])
        assert len({e.split(":")[1] for e in eps}) == 3

    run("down", lab, check=True)
    assert not any(alive(p) for p in pids)
    assert not ctx["dir"].exists()
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ctx["tag"] not in ns
    links = subprocess.run(["ip", "link", "show"], capture_output=True, text=True).stdout
    assert f"pxb-{ctx['tag']}" not in links


def test_killed_node_is_lost_and_guests_rescheduled(tmp_path, lab):
    f = write_lab(tmp_path, lab)
    run("up", f, "--local", "--dry-run", "--hosts", "3", check=True)
    ctx = context(lab)
    before = status(lab)
    victim = before["guests"][0]["host"]  # a node that runs guests
    on_victim = {g["name"] for g in before["guests"] if g["host"] == victim}
    assert on_victim
    t0 = time.monotonic()
    os.kill(ctx["nodes"][victim], signal.SIGKILL)

    def lost():
        st = status(lab)
        return st if any(n["name"] == victim and n["state"] == "lost" for n in st["nodes"]) else None

    wait_until(f"{victim} reported lost", lost, timeout=6)
    assert time.monotonic() - t0 <= 6.0

    def rescheduled():
        st = status(lab)
        l = st["labs"][0]
        if l["state"] == "running" and l["epoch"] >= 2:
            return st
        return None

    st = wait_until("lab running again on the other nodes", rescheduled, timeout=10)
    hosts = {g["name"]: g["host"] for g in st["guests"]}
    assert victim not in hosts.values()
    assert set(hosts) == {g["name"] for g in before["guests"]}
    assert f"{victim} lost" in st["labs"][0]["message"]


def test_killed_node_stops_lab_under_stop_policy(tmp_path, lab):
    f = write_lab(tmp_path, lab, n_guests=4)
    run("up", f, "--local", "--dry-run", "--hosts", "2", "--policy", "stop", check=True)
    ctx = context(lab)
    victim = status(lab)["guests"][0]["host"]
    os.kill(ctx["nodes"][victim], signal.SIGKILL)
    st = wait_until("lab failed after node loss",
                    lambda: (s := status(lab)) and s["labs"][0]["state"] == "failed" and s,
                    timeout=6)
    assert "policy stop" in st["labs"][0]["message"]
    assert st["labs"][0]["policy"] == "stop"


def test_coordinator_restart_keeps_labs_and_nodes(tmp_path, lab):
    f = write_lab(tmp_path, lab)
    run("up", f, "--local", "--dry-run", "--hosts", "2", check=True)
    ctx = context(lab)
    before = status(lab)
    node_pids = dict(ctx["nodes"])
    newc = restart_coordinator(lab)

    def reattached():
        p = run("--json", "status", lab)
        if p.returncode != 0:
            return None
        st = json.loads(p.stdout)
        ok = (st["labs"] and st["labs"][0]["state"] == "running"
              and all(n["state"] == "up" for n in st["nodes"]) and len(st["nodes"]) == 2
              and all(g["state"] == "planned" for g in st["guests"]))
        return st if ok else None

    st = wait_until("nodes re-attached to the restarted coordinator", reattached, timeout=10)
    # Same plan, same epoch: nothing was re-placed or restarted.
    assert st["labs"][0]["epoch"] == before["labs"][0]["epoch"]
    assert {g["name"]: g["host"] for g in st["guests"]} == \
        {g["name"]: g["host"] for g in before["guests"]}
    assert all(alive(p) for p in node_pids.values())
    run("down", lab, check=True)
    newc.wait(timeout=10)


def test_unauthorised_node_is_refused(tmp_path, lab):
    f = write_lab(tmp_path, lab, n_guests=2)
    run("up", f, "--local", "--dry-run", "--hosts", "1", check=True)
    ctx = context(lab)
    keys = tmp_path / "keys"
    env = dict(os.environ, PLEXUS_KEYS=str(keys))
    run("keys", "create", "intruder", check=True, env=env)
    log = tmp_path / "intruder.log"
    node = subprocess.Popen([str(NODE), "--name", "intruder", "--coordinator", ctx["endpoint"],
                             "--coordinator-key", ctx["coordinator_key"],
                             "--key", str(keys / "intruder.key"),
                             "--data-listen", "tcp://127.0.0.1:*",
                             "--runtime-dir", str(tmp_path / "rt"), "--log-file", str(log)],
                            stdin=subprocess.DEVNULL)
    try:
        wait_until("the intruder's handshake refused",
                   lambda: log.exists() and "refused this node's key" in log.read_text(),
                   timeout=10)
        names = [n["name"] for n in json.loads(run("--json", "nodes", check=True).stdout)["nodes"]]
        assert names == ["host1"]
        assert "intruder" not in (ctx["dir"] / "coordinator.log").read_text()
    finally:
        node.terminate()
        node.wait(timeout=10)


def test_up_rejects_a_bad_file_with_its_location(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes:\n  a: {cpu: 2}\n")
    p = run("up", bad, "--local", "--dry-run")
    assert p.returncode == 1
    assert re.search(rf"{re.escape(str(bad))}:3:\d+: .*cpu", p.stderr), p.stderr
    assert not (LOCAL_ROOT and (LOCAL_ROOT / "x").exists())


BAD = sorted((ROOT / "tests" / "topology" / "bad").glob("*.yaml"))


def test_there_are_enough_malformed_files():
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_validate_points_at_the_error(path):
    first = path.read_text().splitlines()[0]
    m = re.match(r"# expect: (\d+):(\d+) (.*)", first)
    assert m, f"{path.name}: first line must be '# expect: LINE:COL text'"
    line, col, text = m.groups()
    p = run("validate", path)
    assert p.returncode == 1, p.stdout
    assert f"{path}:{line}:{col}:" in p.stderr, p.stderr
    assert text in p.stderr, p.stderr


def test_reschedule_within_the_files_hosts(tmp_path, lab):
    """A file with a hosts: section: after a loss, placement uses the hosts
    that are left; a pin to the lost host makes the lab fail, and says why."""
    f = tmp_path / f"{lab}.yaml"
    f.write_text(f"""\
name: {lab}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
  hc: {{cpus: 8, memory: 4G}}
nets:
  bus: {{type: can_bus, bitrate: 500k}}
nodes:
  a: {{can: [bus]}}
  b: {{can: [bus]}}
""")
    run("up", f, "--local", "--dry-run", check=True)
    ctx = context(lab)
    assert sorted(ctx["nodes"]) == ["ha", "hb", "hc"]
    victim = status(lab)["guests"][0]["host"]
    os.kill(ctx["nodes"][victim], signal.SIGKILL)
    st = wait_until("rescheduled onto the file's other hosts",
                    lambda: (s := status(lab)) and s["labs"][0]["epoch"] >= 2
                    and s["labs"][0]["state"] == "running" and s, timeout=10)
    assert all(g["host"] in {"ha", "hb", "hc"} - {victim} for g in st["guests"])


def test_data_plane_links_between_nodes(tmp_path, lab):
    """Every node reaches every other over its authenticated data plane (the
    keys come from the plans), and a killed node's links go down."""
    f = write_lab(tmp_path, lab)
    run("up", f, "--local", "--dry-run", "--hosts", "3", check=True)

    def links(want_up):
        nodes = json.loads(run("--json", "nodes", check=True).stdout)["nodes"]
        up = {n["name"]: (n["links_up"], n["links_total"]) for n in nodes if n["state"] == "up"}
        return up if all(v == want_up for v in up.values()) and up else None

    st = wait_until("all links up", lambda: links((2, 2)), timeout=10)
    assert len(st) == 3
    nodes = json.loads(run("--json", "nodes", check=True).stdout)["nodes"]
    assert all(0 < n["rtt_us"] < 1_000_000 for n in nodes)
    ctx = context(lab)
    os.kill(ctx["nodes"]["host3"], signal.SIGKILL)
    st = wait_until("links to host3 down", lambda: links((1, 2)), timeout=10)
    assert sorted(st) == ["host1", "host2"]


def _keyfile(path):
    pub = sec = None
    for line in Path(path).read_text().splitlines():
        k, v = line.split(" ", 1)
        if k == "public":
            pub = v.strip()
        elif k == "secret":
            sec = v.strip()
    return pub, sec


def test_hostile_authenticated_peer_cannot_hurt_the_coordinator(tmp_path, lab):
    """A peer with an accepted key that sends garbage, truncated or oversized
    messages, unknown types and requests before HELLO gets errors; the
    coordinator, its nodes and its labs carry on."""
    zmq = pytest.importorskip("zmq")
    f = write_lab(tmp_path, lab, n_guests=2)
    run("up", f, "--local", "--dry-run", "--hosts", "1", check=True)
    ctx = context(lab)
    pub, sec = _keyfile(ctx["dir"] / "keys" / "cli.key")
    zc = zmq.Context()
    s = zc.socket(zmq.DEALER)
    s.curve_publickey, s.curve_secretkey = pub.encode(), sec.encode()
    s.curve_serverkey = ctx["coordinator_key"].encode()
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 3000)
    s.connect(ctx["endpoint"])
    hostile = [
        b"\xff" * 64,                                   # not msgpack
        b"\x96\x01",                                    # truncated envelope
        b"\xdd\xff\xff\xff\xff",                        # array32 claiming 4 billion elements
        b"\x96\x01\x63\x00\x00\x00\x80",                # unknown type 99
        b"\x96\x01\x09\x00\x00\x01\x81\xa2op\xa2up",    # REQUEST before HELLO
        b"\x96\x02\x01\x00\x00\x00\x80",                # protocol version 2
        b"\x00" * 100000,                               # big junk
    ]
    replies = 0
    for msg in hostile:
        s.send(msg)
        try:
            s.recv()
            replies += 1
        except zmq.Again:
            pass
    assert replies >= 5  # each problem answered with an ERROR, not silence
    s.close()
    zc.term()
    # Still serving, nothing lost.
    st = status(lab)
    assert st["labs"][0]["state"] == "running"
    assert [n["state"] for n in st["nodes"]] == ["up"]
    assert alive(int(ctx["coordinator_pid"]))
