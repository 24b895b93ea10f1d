#!/usr/bin/python3
"""bench/ivshmem: ivshmem doorbells and shared contents across two simulated
hosts, next to a bare eventfd, a socket pair and raw ZeroMQ.

  bench_ivshmem.py [--build DIR] [--quick] [--rounds R] [--json-out FILE]
                   [--guests]

Starts one lab with `plexus up --local --dry-run` (a coordinator and two
plexus-node daemons, hosts ha and hb, in their own network namespaces; no
QEMU): regions small (64 KiB) and big (4 MiB), 1 vector, home ha, each with
`hosts: [ha, hb]`, so both nodes serve their sockets to host programs
although no guest uses them (one guest, idle, exists because a lab needs
one; it has no devices). --guests instead attaches a guest on each host to
both regions (for a build where `hosts:` does not work); dry-run starts no
QEMU, so they never join. The sockets come from `plexus ivshmem peers
REGION --json`. Two sizes because a node scans the whole region for
changes at every cross-host doorbell (docs/ivshmem.md: about 0.1 ms per
MiB).

bench_ivshmem_drive (bench/ivshmem/bench_ivshmem_drive.c) joins the region
twice as a host program (devices/ivshmem/client.h): a sender and a
receiver thread. Each round it measures, one after another:

  doorbell     one ring every 1 ms: one-way latency from the ring to the
               receiver's wake-up, both on ha (one node: the receiver's
               eventfd written directly), ha -> hb and hb -> ha (across the
               data plane); in small, and ha -> hb in big
  + contents   the sender changes 4 KiB (in small), then 1 MiB (in big) at
               the start of the region, then rings; the receiver checks the
               first and last changed byte the moment it wakes (release
               consistency; a round that fails is `stale`); one node and
               ha -> hb

  peers        eventfd: two threads, one writes an eventfd the other polls
               (the least a doorbell costs; one buffer, no copy).
               socket: the sender writes the changed bytes into a UNIX
               stream socket pair, the receiver reads them into its buffer
               (the least moving them between two processes costs).
               zmq: the same bytes (1 for a doorbell) as one message over
               libzmq PUSH/PULL on tcp://127.0.0.1, no CURVE, no namespaces
               (the least one message between two nodes costs).

Latency percentiles are over the samples of all rounds (3 by default,
--quick: 1 with fewer samples); ratios are plexus over the row's peer at the
same percentile: eventfd (doorbell) or socket (contents) for one node, raw
ZeroMQ for two hosts. Afterwards: the nodes' counters (rings and diff bytes per node,
from `peers --json`), their peak RSS (VmHWM) and CPU per doorbell.

Target (issue: ivshmem regions across hosts): cross-host doorbell p99 <=
100 us. Prints absolute figures, ratios and met/MISSED; asserts nothing (a
benchmark, not a test); exits 1 only when a row could not be measured.
`plexus down` always.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchlib  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAB = "shmbench"
REGIONS = {"small": "64K", "big": "4M"}
TARGET_P99_US = 100.0


def topology(guests):
    regs = ", ".join(REGIONS)
    if guests:
        nodes = f"  ga: {{ivshmem: [{regs}]}}\n  gb: {{ivshmem: [{regs}]}}\n"
        pins, hosts = "ga: ha, gb: hb", ""
    else:
        nodes = "  idle: {}\n"
        pins, hosts = "idle: ha", ", hosts: [ha, hb]"
    nets = "".join(f"  {r}: {{type: ivshmem, size: {size}, vectors: 1{hosts}}}\n"
                   for r, size in REGIONS.items())
    return (f"name: {LAB}\n"
            "defaults: {image: builtin:tiny, memory: 128M, cpus: 1}\n"
            "hosts:\n  ha: {cpus: 8, memory: 4G}\n  hb: {cpus: 8, memory: 4G}\n"
            f"nets:\n{nets}"
            f"placement:\n  pin: {{{pins}, {', '.join(f'{r}: ha' for r in REGIONS)}}}\n"
            f"nodes:\n{nodes}")


# (key, the driver's path: (region, sender's host, receiver's host) or a
# peer's flag, its other arguments)
def plan(quick):
    nb = 500 if quick else 2000
    n4 = 300 if quick else 1000
    n1m = 30 if quick else 100
    bell = ["-n", nb, "--period-us", 1000]
    k4 = ["-n", n4, "--period-us", 2000, "--bytes", 4096]
    m1 = ["-n", n1m, "--period-us", 20000, "--bytes", 1 << 20]
    return [
        ("px_bell_local", ("small", "ha", "ha"), bell),
        ("px_bell_cross", ("small", "ha", "hb"), bell),
        ("px_bell_cross_rev", ("small", "hb", "ha"), bell),
        ("px_bell_cross_big", ("big", "ha", "hb"), bell),
        ("efd_bell", "--eventfd", bell),
        ("zmq_bell", "--zmq", bell),
        ("px_4k_local", ("small", "ha", "ha"), k4),
        ("px_4k_cross", ("small", "ha", "hb"), k4),
        ("sock_4k", "--socket", k4),
        ("efd_4k", "--eventfd", k4),
        ("zmq_4k", "--zmq", k4),
        ("px_1m_local", ("big", "ha", "ha"), m1),
        ("px_1m_cross", ("big", "ha", "hb"), m1),
        ("sock_1m", "--socket", m1),
        ("efd_1m", "--eventfd", m1),
        ("zmq_1m", "--zmq", m1),
    ]


class Bench:
    def __init__(self, build):
        self.plexus = str(build / "coordinator" / "cli" / "plexus")
        self.driver = str(build / "bench" / "ivshmem" / "bench_ivshmem_drive")
        for f in (self.plexus, self.driver):
            if not os.access(f, os.X_OK):
                raise SystemExit(f"bench/ivshmem: {f} is missing (build with -Dbench=true)")

    def cli(self, *args, check=False, timeout=120):
        p = subprocess.run([self.plexus, *map(str, args)], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise SystemExit(f"plexus {' '.join(map(str, args))} -> {p.returncode}\n"
                             f"{p.stdout}{p.stderr}")
        return p

    def peers(self, region):
        p = self.cli("--json", "ivshmem", "peers", region, "--lab", LAB, timeout=30)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def counters(self):
        """{region: [per-node entries of peers --json]}"""
        return {r: (self.peers(r) or {}).get("nodes") for r in REGIONS}

    def sockets(self, region, timeout=30):
        """{host: the region's socket there}, once both nodes serve it."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.peers(region)
            socks = {n["node"]: n["socket"] for n in (last or {}).get("nodes", [])
                     if n.get("socket") and Path(n["socket"]).is_socket()}
            if {"ha", "hb"} <= set(socks):
                return socks
            time.sleep(0.1)
        raise SystemExit(f"bench/ivshmem: the sockets of {region} on ha and hb never appeared; "
                         f"last `plexus ivshmem peers`: {last}")

    def drive(self, *args):
        p = subprocess.run([self.driver, *map(str, args)], capture_output=True, text=True,
                           timeout=600)
        lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
        if not lines:
            return {"error": f"exit {p.returncode}: {p.stdout}{p.stderr}".strip()}
        r = json.loads(lines[-1])
        if p.stderr.strip():
            r["stderr"] = p.stderr.strip()
        return r


def pct(v, p):
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] / 1000.0 if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("PX_BUILD_DIR", str(ROOT / "build")))
    ap.add_argument("--quick", action="store_true", help="one round, fewer samples")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    ap.add_argument("--json-out", help="write every driver result to this file")
    ap.add_argument("--guests", action="store_true",
                    help="attach a guest per host instead of `hosts: [ha, hb]`")
    a = ap.parse_args()
    b = Bench(Path(a.build).resolve())
    rounds = a.rounds or (1 if a.quick else 3)
    res = {"rounds": rounds, "quick": a.quick, "runs": {}, "lat": {}, "guests": a.guests}
    b.cli("down", LAB, timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / f"{LAB}.yaml"
        f.write_text(topology(a.guests))
        try:
            b.cli("up", f, "--local", "--dry-run", check=True)
            nodes = benchlib.node_pids(LAB)
            res["rss_start_kb"] = {n: benchlib.proc_status(p, "VmRSS") for n, p in nodes.items()}
            socks = {r: b.sockets(r) for r in REGIONS}
            res["sockets"] = socks
            res["counters_start"] = b.counters()
            dump = Path(tmp) / "lat.txt"
            for rnd in range(rounds):
                print(f"bench/ivshmem: round {rnd + 1}/{rounds}", file=sys.stderr, flush=True)
                for key, path, args in plan(a.quick):
                    where = (["--ivshmem", socks[path[0]][path[1]], socks[path[0]][path[2]],
                              "--vectors", 1]
                             if isinstance(path, tuple) else [path])
                    dump.unlink(missing_ok=True)
                    c0 = {n: benchlib.cpu_s(p) for n, p in nodes.items()}
                    r = b.drive(*where, *args, "--dump", dump)
                    if isinstance(path, tuple):
                        r["node_cpu_s"] = {n: round(benchlib.cpu_s(p) - c0[n], 3)
                                           for n, p in nodes.items()}
                    if dump.exists():
                        res["lat"].setdefault(key, []).extend(
                            int(x.split()[1]) for x in dump.read_text().splitlines())
                    res["runs"].setdefault(key, []).append(r)
                    print(f"  {key}: {short(r)}", file=sys.stderr, flush=True)
            res["counters_end"] = b.counters()
            res["rss_peak_kb"] = {n: benchlib.proc_status(p, "VmHWM") for n, p in nodes.items()}
        finally:
            b.cli("down", LAB, timeout=120)
    for v in res["lat"].values():
        v.sort()
    ok = report(res)
    if a.json_out:
        out = dict(res, lat={k: len(v) for k, v in res["lat"].items()})
        Path(a.json_out).write_text(json.dumps(out, indent=1) + "\n")
    sys.exit(0 if ok else 1)


def short(r):
    if "p50_us" not in r:
        return f"ERROR {r.get('error')}"
    s = (f"p50 {r['p50_us']:.1f} us, p99 {r['p99_us']:.1f} us, lost {r['lost']}, "
         f"stale {r['stale']}")
    return s + (f" ERROR {r['error']}" if "error" in r else "")


# per section: title, then rows of (label, key, the peer its ratios are
# against, whether the cross-host target applies)
ROWS = [
    ("doorbell one-way latency, 1 ring/ms", [
        ("plexus, one node (ha -> ha)", "px_bell_local", "efd_bell", False),
        ("plexus, two hosts (ha -> hb)", "px_bell_cross", "zmq_bell", True),
        ("plexus, two hosts (hb -> ha)", "px_bell_cross_rev", "zmq_bell", True),
        ("plexus, two hosts, 4 MiB region", "px_bell_cross_big", "zmq_bell", True),
        ("eventfd, two threads (peer)", "efd_bell", None, False),
        ("raw ZeroMQ, 1-byte message (peer)", "zmq_bell", None, False),
    ]),
    ("4 KiB changed, then a ring", [
        ("plexus, one node (64 KiB region)", "px_4k_local", "sock_4k", False),
        ("plexus, two hosts (64 KiB region)", "px_4k_cross", "zmq_4k", False),
        ("socket pair, 4 KiB copied (peer)", "sock_4k", None, False),
        ("raw ZeroMQ, 4 KiB message (peer)", "zmq_4k", None, False),
        ("eventfd, no copy", "efd_4k", None, False),
    ]),
    ("1 MiB changed, then a ring", [
        ("plexus, one node (4 MiB region)", "px_1m_local", "sock_1m", False),
        ("plexus, two hosts (4 MiB region)", "px_1m_cross", "zmq_1m", False),
        ("socket pair, 1 MiB copied (peer)", "sock_1m", None, False),
        ("raw ZeroMQ, 1 MiB message (peer)", "zmq_1m", None, False),
        ("eventfd, no copy", "efd_1m", None, False),
    ]),
]
PEER_NAMES = {"efd_bell": "eventfd", "zmq_bell": "zmq", "sock_4k": "socket", "zmq_4k": "zmq",
              "sock_1m": "socket", "zmq_1m": "zmq"}


def report(res):
    """Print the tables; False if a row could not be measured."""
    runs, lat = res["runs"], res["lat"]
    ok = True
    print(f"ivshmem regions small (64 KiB) and big (4 MiB), home ha: sender and receiver are "
          f"host programs "
          f"(devices/ivshmem/client.h) on the region's sockets, plexus-node dry-run; "
          f"{res['rounds']} round(s){' [--quick]' if res['quick'] else ''}"
          f"{'; guests attached instead of hosts:' if res['guests'] else ''}")
    print("latency: from just before the ring to the receiver's wake-up, CLOCK_MONOTONIC in one "
          "process; ratios: plexus / the row's peer at the same percentile (one node: eventfd or "
          "socket pair; two hosts: raw ZeroMQ)")
    for title, rows in ROWS:
        print()
        print(f"{title:<36} {'n':>6} {'p50 us':>9} {'p99 us':>9} {'max us':>9} {'peer':>8} "
              f"{'p50/peer':>9} {'p99/peer':>9} {'lost':>5} {'stale':>5}  target")
        for label, key, peer, target in rows:
            pv = lat.get(peer, []) if peer else []
            v = lat.get(key, [])
            rr = runs.get(key, [])
            lost = sum(r.get("lost", 0) for r in rr)
            stale = sum(r.get("stale", 0) for r in rr)
            verdict = ""
            if target:
                verdict = (f"p99 <= {TARGET_P99_US:.0f} us: "
                           f"{'met' if v and pct(v, 0.99) <= TARGET_P99_US else 'MISSED'}")
            if not v:
                print(f"{label:<36} {'n/a':>6}{'':>65}  {verdict}")
            else:
                rp50 = pct(v, 0.5) / pct(pv, 0.5) if pv else float("nan")
                rp99 = pct(v, 0.99) / pct(pv, 0.99) if pv else float("nan")
                print(f"{label:<36} {len(v):>6} {pct(v, 0.5):>9.1f} {pct(v, 0.99):>9.1f} "
                      f"{pct(v, 1.0):>9.1f} {PEER_NAMES.get(peer, ''):>8} {xr(rp50)} {xr(rp99)} "
                      f"{lost:>5} {stale:>5}  {verdict}")
            for r in rr:
                if "error" in r:
                    ok = False
                    print(f"{'':<4}{key}: error: {r['error']}")
    stale = sum(r.get("stale", 0) for k, rr in runs.items() if k.startswith("px") for r in rr)
    print()
    print(f"release consistency: {stale} plexus round(s) where the receiver woke before the "
          f"changed bytes were there" + (" (VIOLATED)" if stale else " (held)"))
    for reg in REGIONS:
        c0 = {n["node"]: n for n in (res.get("counters_start") or {}).get(reg) or []}
        c1 = {n["node"]: n for n in (res.get("counters_end") or {}).get(reg) or []}
        for n in sorted(c1):
            d = {k: c1[n].get(k, 0) - c0.get(n, {}).get(k, 0)
                 for k in ("rings_out", "rings_in", "diff_bytes_out", "diff_bytes_in")}
            print(f"{reg} on {n}: rings out {d['rings_out']}, in {d['rings_in']}; diff bytes out "
                  f"{d['diff_bytes_out']}, in {d['diff_bytes_in']} (plexus ivshmem peers --json)")
    rss, start = res.get("rss_peak_kb", {}), res.get("rss_start_kb", {})
    for n in sorted(rss):
        print(f"node {n}: peak RSS (VmHWM) {rss[n] / 1024:.1f} MiB "
              f"(after `up` {start.get(n, 0) / 1024:.1f} MiB)")
    for key in ("px_bell_cross", "px_1m_cross"):
        rr = [r for r in runs.get(key, []) if "node_cpu_s" in r and "rounds" in r]
        n = sum(r["rounds"] + r.get("warmup", 0) for r in rr)
        if n:
            per = {}
            for r in rr:
                for node, c in r["node_cpu_s"].items():
                    per[node] = per.get(node, 0) + c
            print(f"node CPU per round, {key}: " +
                  ", ".join(f"{node} {1e6 * c / n:.0f} us" for node, c in sorted(per.items())))
    return ok


def xr(x, w=8):
    return f"{x:>{w}.2f}x" if x == x else f"{'':>{w + 1}}"


if __name__ == "__main__":
    main()
