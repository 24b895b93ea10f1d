"""Integration: `plexus graph`, the plan drawn as Graphviz dot or Mermaid.

Runs the built plexus binary on the shipped configs and on files written
here, and checks the output against `plexus --json plan` for the same file:
one cluster/subgraph per host holding exactly the guests placed there and the
nets homed there, one edge per attachment, crossing nets marked. Graphviz
itself parses the dot output when `dot` is installed (apt package graphviz).

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/integration/test_graph.py
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PX_BUILD_DIR", ROOT / "build")).resolve()
PLEXUS = BUILD / "coordinator" / "cli" / "plexus"
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
DOT = shutil.which("dot")


def run(*args, check=False, timeout=60):
    p = subprocess.run([str(PLEXUS), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"plexus {' '.join(map(str, args))} -> {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def plan(path, *args):
    return json.loads(run("--json", "plan", path, *args, check=True).stdout)


def cut_nets(pl):
    return {n["name"]: n["span"] for n in pl["nets"] if n["span"] > 1}


# ---- dot, read back without Graphviz ----

DOT_CLUSTER = re.compile(r'^\s*subgraph "cluster_((?:[^"\\]|\\.)*)" \{$')
DOT_NODE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" \[(.*)\];$')
DOT_EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" -- "((?:[^"\\]|\\.)*)"( \[.*\])?;$')


def read_dot(text):
    """Clusters (host -> node ids), node attributes and edges of our dot."""
    clusters, attrs, edges, current = {}, {}, [], None
    for line in text.splitlines():
        if m := DOT_CLUSTER.match(line):
            current = m.group(1)
            clusters[current] = []
        elif line.strip() == "}":
            current = None
        elif m := DOT_EDGE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3) or ""))
        elif m := DOT_NODE.match(line):
            assert current is not None, f"node outside any host cluster: {line}"
            clusters[current].append(m.group(1))
            attrs[m.group(1)] = m.group(2)
    return clusters, attrs, edges


def dot_check(text):
    """Graphviz parses text without a word of complaint; returns its -Tjson
    view as {cluster name: [node names]}. Skips (with the reason printed)
    when Graphviz is not installed."""
    if DOT is None:
        print("SKIP Graphviz check: 'dot' not found (apt-get install graphviz)")
        pytest.skip("'dot' not found: apt-get install graphviz")
    p = subprocess.run([DOT, "-Tjson"], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", f"dot rejected the graph:\n{p.stderr}\n{text}"
    objs = json.loads(p.stdout)["objects"]
    return {o["name"]: sorted(objs[i]["name"] for i in o.get("nodes", []))
            for o in objs if o["name"].startswith("cluster_")}


def check_dot_against_plan(text, pl, attachments):
    clusters, attrs, edges = read_dot(text)
    assert sorted(clusters) == sorted(h["name"] for h in pl["hosts"])
    homes = {h["name"]: [] for h in pl["hosts"]}
    for n in pl["nets"]:
        homes[n["home"]].append(n["name"])
    for h in pl["hosts"]:
        placed = [n for n in clusters[h["name"]] if not n.startswith("empty ")]
        assert sorted(placed) == sorted(h["guests"] + homes[h["name"]]), h["name"]
        for g in h["guests"]:
            assert 'shape="box"' in attrs[g]
    cuts = cut_nets(pl)
    for n in pl["nets"]:
        if n["name"] in cuts:
            assert f"crosses {cuts[n['name']]} hosts" in attrs[n["name"]]
            assert "bold" in attrs[n["name"]] and "#d00000" in attrs[n["name"]]
        else:
            assert "crosses" not in attrs[n["name"]] and "bold" not in attrs[n["name"]]
    assert sorted((a, b) for a, b, _ in edges) == sorted(attachments)
    host_of = {g: h["name"] for h in pl["hosts"] for g in h["guests"]}
    home_of = {n["name"]: n["home"] for n in pl["nets"]}
    for g, n, style in edges:
        assert ("dashed" in style) == (host_of[g] != home_of[n]), (g, n, style)
    return clusters


# ---- Mermaid, read back line by line ----

ID = r"[A-Za-z0-9_]+"
MM_SUBGRAPH = re.compile(rf'^    subgraph ({ID}) \["([^"]*)"\]$')
MM_NODE = re.compile(rf'^        ({ID})(\["|\(\["|\{{\{{"|\[\("|\(\(")([^"]*)("\]|"\]\)|"\}}\}}|"\)\]|"\)\))$')
MM_EDGE = re.compile(rf"^    ({ID}) --- ({ID})$")
MM_CLASSDEF = re.compile(rf"^    classDef ({ID}) (\S+)$")
MM_CLASS = re.compile(rf"^    class ({ID}) ({ID})$")
MM_LINKSTYLE = re.compile(r"^    linkStyle ([0-9,]+) (\S.*)$")


def read_mermaid(text):
    """Parse our Mermaid subset strictly: every line must be one we write."""
    lines = [l for l in text.splitlines() if not l.startswith("%%")]
    assert lines[0] == "flowchart LR"
    subgraphs, labels, node_sub, edges = {}, {}, {}, []
    classdefs, classes, linkstyles, current = {}, {}, [], None
    for line in lines[1:]:
        if m := MM_SUBGRAPH.match(line):
            current = m.group(1)
            subgraphs[current] = (m.group(2), [])
        elif line == "    end":
            current = None
        elif m := MM_NODE.match(line):
            assert current is not None, f"node outside a subgraph: {line}"
            labels[m.group(1)] = m.group(3)
            node_sub[m.group(1)] = current
            subgraphs[current][1].append(m.group(1))
        elif m := MM_EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        elif m := MM_CLASSDEF.match(line):
            classdefs[m.group(1)] = m.group(2)
        elif m := MM_CLASS.match(line):
            classes.setdefault(m.group(1), []).append(m.group(2))
        elif m := MM_LINKSTYLE.match(line):
            linkstyles += [int(x) for x in m.group(1).split(",")]
        else:
            raise AssertionError(f"unexpected Mermaid line: {line!r}")
    ids = list(subgraphs) + list(labels)
    assert len(ids) == len(set(ids)), "Mermaid ids are not unique"
    assert all(a in labels and b in labels for a, b in edges), "edge to an undeclared node"
    for node, cls in classes.items():
        assert node in labels and all(c in classdefs for c in cls), (node, cls)
    assert all(0 <= i < len(edges) for i in linkstyles)
    return dict(subgraphs=subgraphs, labels=labels, node_sub=node_sub, edges=edges,
                classdefs=classdefs, classes=classes, linkstyles=linkstyles)


def check_mermaid_against_plan(text, pl, attachments):
    mm = read_mermaid(text)
    name = {i: l.split("<br/>")[0] for i, l in mm["labels"].items()}
    titles = {t: sid for sid, (t, _) in mm["subgraphs"].items()}
    assert sorted(titles) == sorted(h["name"] for h in pl["hosts"])
    cuts = cut_nets(pl)
    for hi, h in enumerate(pl["hosts"]):
        sid = titles[h["name"]]
        members = [name[i] for i in mm["subgraphs"][sid][1] if not re.fullmatch(r"e\d+", i)]
        homed = [n["name"] for n in pl["nets"] if n["home"] == h["name"]]
        assert sorted(members) == sorted(h["guests"] + homed), h["name"]
        assert f"host{hi}" in mm["classdefs"]
        for i in mm["subgraphs"][sid][1]:
            if not re.fullmatch(r"e\d+", i):
                assert f"host{hi}" in mm["classes"][i], i
    assert mm["classdefs"]["cut"].startswith("stroke:#d")
    for i, label in mm["labels"].items():
        if name[i] in cuts:
            assert f"crosses {cuts[name[i]]} hosts" in label and "cut" in mm["classes"][i]
        else:
            assert "crosses" not in label and "cut" not in mm["classes"].get(i, [])
    assert sorted((name[a], name[b]) for a, b in mm["edges"]) == sorted(attachments)
    host_of = {g: h["name"] for h in pl["hosts"] for g in h["guests"]}
    home_of = {n["name"]: n["home"] for n in pl["nets"]}
    crossing = [k for k, (a, b) in enumerate(mm["edges"])
                if host_of[name[a]] != home_of[name[b]]]
    assert sorted(mm["linkstyles"]) == crossing
    return mm


QUICKSTART_ATTACH = [("gw", "lan"), ("gw", "body"), ("gw", "shm0"), ("ecu1", "body"),
                     ("ecu1", "shm0"), ("ecu2", "body"), ("ecu2", "fabric"), ("client", "lan")]


def test_dot_quickstart():
    pl = plan(QUICKSTART)
    assert cut_nets(pl) == {"body": 2}  # the anti-affinity of ecu1/ecu2 splits it
    p = run("graph", QUICKSTART, check=True)
    assert p.stderr == ""
    assert p.stdout.splitlines()[1] == 'graph "quickstart" {'
    assert p.stdout == run("graph", QUICKSTART, "--format", "dot", check=True).stdout
    clusters = check_dot_against_plan(p.stdout, pl, QUICKSTART_ATTACH)
    assert len(clusters) == 2
    # Graphviz agrees on which node is in which cluster.
    assert dot_check(p.stdout) == {f"cluster_{h}": sorted(n) for h, n in clusters.items()}


def test_mermaid_quickstart():
    pl = plan(QUICKSTART)
    p = run("graph", QUICKSTART, "--format=mermaid", check=True)
    mm = check_mermaid_against_plan(p.stdout, pl, QUICKSTART_ATTACH)
    assert sorted(mm["subgraphs"]) == ["h0_host_a", "h1_host_b"]
    assert {"g0_gw", "n0_body", "n1_lan", "n2_shm0"} <= set(mm["labels"])
    assert mm["labels"]["n0_body"] == "body<br/>can_bus<br/>crosses 2 hosts"
    assert sorted(mm["classdefs"]) == ["cut", "host0", "host1"]


ODD = """\
name: odd.names-1
defaults: {image: builtin:tiny, memory: 128M, cpus: 1}
hosts:
  rack-1.a: {cpus: 8, memory: 4G}
  rack-1_a: {cpus: 8, memory: 4G}
  spare.host-9: {cpus: 8, memory: 4G}
nets:
  can-0.body: {type: can_bus, bitrate: 500k}
  eth-0.lan: {type: eth_segment}
  shm.x-1: {type: ivshmem, size: 1M}
  cxl-sw.0: {type: cxl_switch, ports: 4}
nodes:
  ecu-1.front: {can: [can-0.body], nics: [eth-0.lan]}
  ecu-1_front: {can: [can-0.body], ivshmem: [shm.x-1]}
  ecu.1-front: {ivshmem: [shm.x-1], cxl: [cxl-sw.0]}
  "9-lives.x": {nics: [eth-0.lan, eth-0.lan], cxl: [cxl-sw.0]}
placement:
  pin: {ecu-1.front: rack-1.a, ecu-1_front: rack-1_a, ecu.1-front: rack-1_a, 9-lives.x: rack-1.a}
"""
ODD_ATTACH = [("ecu-1.front", "eth-0.lan"), ("ecu-1.front", "can-0.body"),
              ("ecu-1_front", "can-0.body"), ("ecu-1_front", "shm.x-1"),
              ("ecu.1-front", "shm.x-1"), ("ecu.1-front", "cxl-sw.0"),
              ("9-lives.x", "eth-0.lan"), ("9-lives.x", "eth-0.lan"), ("9-lives.x", "cxl-sw.0")]


@pytest.fixture
def odd(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text(ODD)
    run("validate", path, check=True)
    return path


def test_odd_names_mermaid(odd):
    pl = plan(odd)
    assert cut_nets(pl) == {"can-0.body": 2, "cxl-sw.0": 2}
    p = run("graph", odd, "--format", "mermaid", check=True)
    mm = check_mermaid_against_plan(p.stdout, pl, ODD_ATTACH)
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", i) for i in list(mm["subgraphs"]) + list(mm["labels"]))
    # Names that sanitise alike still get distinct ids; the labels keep them.
    assert sorted(mm["subgraphs"]) == ["h0_rack_1_a", "h1_rack_1_a", "h2_spare_host_9"]
    assert {mm["labels"][i] for i in ("g0_ecu_1_front", "g1_ecu_1_front", "g2_ecu_1_front")} == \
        {"ecu-1.front", "ecu-1_front", "ecu.1-front"}
    assert mm["labels"]["g3_9_lives_x"] == "9-lives.x"
    # The host with nothing on it is still drawn.
    assert [i for i in mm["subgraphs"]["h2_spare_host_9"][1]] == ["e2"]


def test_odd_names_dot(odd):
    pl = plan(odd)
    p = run("graph", odd, check=True)
    clusters = check_dot_against_plan(p.stdout, pl, ODD_ATTACH)
    assert clusters["spare.host-9"] == ["empty spare.host-9"]
    assert 'graph "odd.names-1" {' in p.stdout
    assert dot_check(p.stdout) == {f"cluster_{h}": sorted(n) for h, n in clusters.items()}


def test_escaping_reaches_graphviz(tmp_path):
    """Names cannot hold quotes today, but a lab name with every character
    the loader allows must still come out as one quoted dot identifier."""
    pl_file = tmp_path / "q.yaml"
    pl_file.write_text("name: a.b-c_9\nnodes:\n  x.y: {image: builtin:tiny}\n")
    p = run("graph", pl_file, "--hosts", "1", check=True)
    assert 'graph "a.b-c_9" {' in p.stdout and 'subgraph "cluster_host1" {' in p.stdout
    dot_check(p.stdout)


def test_simulated_hosts():
    f = ROOT / "configs" / "can-ecus.yaml"
    pl = plan(f, "--hosts", "3")
    assert [h["name"] for h in pl["hosts"]] == ["host1", "host2", "host3"]
    dot = run("graph", f, "--hosts", "3", check=True).stdout
    assert len(read_dot(dot)[0]) == 3
    mm = read_mermaid(run("graph", f, "--hosts", "3", "--format", "mermaid", check=True).stdout)
    assert len(mm["subgraphs"]) == 3


@pytest.mark.parametrize("args, message", [
    (["--format", "bogus"], "unknown format 'bogus'"),
    (["--format"], ""),
    (["--hosts", "0"], "--hosts takes a number"),
    (["--hosts", "3x"], "--hosts takes a number"),
    (["--bogus"], "bad option"),
    ([], "expected exactly one topology FILE"),
    ([QUICKSTART], "expected exactly one topology FILE"),
])
def test_bad_usage_exits_2(args, message):
    extra = [QUICKSTART] if args else []
    p = run("graph", *extra, *args)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    assert message in p.stderr and "try 'plexus graph --help'" in p.stderr


def test_bad_file_exits_1_with_location(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\nnodes:\n  a:\n    image: builtin:tiny\n    can: [nosuch]\n")
    p = run("graph", f)
    assert p.returncode == 1 and p.stdout == ""
    assert re.match(rf"{re.escape(str(f))}:5:\d+: ", p.stderr), p.stderr
    p = run("graph", tmp_path / "missing.yaml", "--format", "mermaid")
    assert p.returncode == 1 and p.stdout == "" and "missing.yaml" in p.stderr


def test_unplaceable_exits_1(tmp_path):
    """Valid file, no plan: a guest bigger than any simulated host (the
    loader cannot know without a hosts: section; 1T outgrows this machine)."""
    f = tmp_path / "big.yaml"
    f.write_text("name: big\nnodes:\n  a: {image: builtin:tiny, memory: 1T}\n")
    run("validate", f, check=True)
    p = run("graph", f)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("plexus: graph: ") and "fits on no host" in p.stderr
    assert "hint:" in p.stderr


def test_help():
    p = run("graph", "--help", check=True)
    for part in ("usage: plexus graph FILE [--format dot|mermaid] [--hosts N]", "options:",
                 "--format dot", "--format mermaid", "--hosts N", "exit status:", "examples:"):
        assert part in p.stdout, part
    assert "graph" in run("--help", check=True).stdout
