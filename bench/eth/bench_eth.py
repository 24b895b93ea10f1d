#!/usr/bin/python3
"""bench/eth: Ethernet frames across a plexus segment spanning two simulated
hosts, next to vde_switch and a bare relay.

  bench_eth.py [--build DIR] [--quick] [--rounds R] [--json-out FILE]

Starts one lab with `plexus up --local --dry-run` (a coordinator and two
plexus-node daemons, hosts ha and hb, in their own network namespaces; no
QEMU): segment lan (eth_segment, mtu 9000, home ha), guest tx on ha,
guest rx on hb and guest rxl on ha, one NIC each. bench_eth_drive
(bench/eth/bench_eth_drive.c) plays the QEMUs: like `-netdev
stream,server=on` it listens on the NICs' sockets (LABDIR/n<G>-<I>.sock),
the nodes connect, and frames go both ways in QEMU's stream framing (4-byte
big-endian length, the frame, no FCS), one write per frame as QEMU does. rx
first sends a frame so the bridge learns its MAC; every frame carries a
sequence number and its CLOCK_MONOTONIC send time.

Each round (3 by default, --quick: 1 with fewer frames) measures, plexus
and its peers back to back:

  flood        64-byte frames: frames/s; 1514 and 9000 bytes: Gbit/s (frame
               bytes, no FCS or framing). tx writes as fast as its socket
               takes frames (a full socket is the back-pressure); received /
               sent and the loss, where it was lost (node counters)
  batched      64-byte frames, tx writes 32 per write: what the nodes carry
               when the guest edge is not the limit (QEMU never does this)
  same host    the floods and the latency from tx to guest rxl, also on ha:
               the bridge and its ports without the data plane
  latency      64-byte frames, one every 1 ms: one-way p50/p99/max; "added"
               is over a bare socket pair (the guest edge alone)

  peers        vde: vde_switch (vde2) with two vde_plug processes that the
               driver talks to over pipes (vde_plug's stream framing: 2-byte
               big-endian length, then the frame); vde_switch cuts frames
               to 1518 bytes (1504 bytes of payload), so it has no 9000-byte
               figure (the driver counts a cut frame as lost).
               raw: one relay thread between two socket pairs that reads
               framed records and writes the whole ones on (the least any
               relay costs). direct: one socket pair (the guest edge alone).

and after all rounds the nodes' peak RSS (VmHWM) and their counters (plexus
link show). Throughput is the median over rounds with its range, ratios
the median of per-round ratios; latency percentiles are over the samples of
all rounds.

Targets: >= 400 000 frames/s at 64 B; >= 3 Gbit/s at 1514 B; >= 1.5x
vde_switch's throughput (64 B and 1514 B); added p99 <= 50 us per hop (a hop
= guest to guest across the segment, here two nodes). Prints absolute
figures, ratios and met/MISSED; asserts nothing (a benchmark, not a test).
`plexus down` always.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchlib  # noqa: E402
from benchlib import LOCAL_ROOT  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAB = "ethbench"
TARGET_FPS_64 = 400_000
TARGET_GBPS_1514 = 3.0
TARGET_VS_VDE = 1.5
TARGET_ADDED_P99_US = 50.0
VDE_MAX_FRAME = 1518  # vde_switch cuts longer frames to 1518 bytes (1504 of payload)
BATCH = 32

TOPOLOGY = f"""name: {LAB}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
nets:
  lan: {{type: eth_segment, mtu: 9000}}
nodes:
  tx: {{nics: [{{segment: lan, mac: "52:54:00:e7:00:01"}}]}}
  rx: {{nics: [{{segment: lan, mac: "52:54:00:e7:00:02"}}]}}
  rxl: {{nics: [{{segment: lan, mac: "52:54:00:e7:00:03"}}]}}
placement:
  pin: {{tx: ha, rx: hb, rxl: ha, lan: ha}}
"""


def nic_sock(host, guest_index, nic):
    """QEMU's stream socket of NIC `nic` of guest `guest_index` (its place in
    nodes:) on `host` (node/qemu_cmd.h PX_NODE_NIC_STREAM)."""
    return str(LOCAL_ROOT / LAB / "nodes" / host / LAB / f"n{guest_index}-{nic}.sock")


PX_PAIR = ["--listen", nic_sock("ha", 0, 0), nic_sock("hb", 1, 0)]
# Same host: tx to rxl, both on ha; the frames never leave ha (no data plane).
# The driver sends from rx's MAC on rxl's port too: the bridge learns it
# there (a MAC move), and back behind hb at the next plexus run's warm-up.
PX_LOCAL_PAIR = ["--listen", nic_sock("ha", 0, 0), nic_sock("ha", 2, 0)]


class Bench:
    def __init__(self, build):
        self.plexus = str(build / "coordinator" / "cli" / "plexus")
        self.driver = str(build / "bench" / "eth" / "bench_eth_drive")
        if not os.access(self.driver, os.X_OK):
            raise SystemExit(f"bench/eth: {self.driver} is missing (build with -Dbench=true)")
        self.vde_switch = shutil.which("vde_switch")
        self.vde_plug = shutil.which("vde_plug")

    def cli(self, *args, check=False, timeout=120):
        p = subprocess.run([self.plexus, *map(str, args)], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"plexus {' '.join(map(str, args))} -> {p.returncode}\n"
                               f"{p.stdout}{p.stderr}")
        return p

    def drive(self, *args):
        """One driver run; a failed run comes back with "error" (and no
        figures) so that the other rows still get measured."""
        try:
            p = subprocess.run([self.driver, *map(str, args)], capture_output=True, text=True,
                               timeout=900)
        except subprocess.TimeoutExpired:
            return {"error": "the driver ran for 900 s"}
        lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
        r = json.loads(lines[-1]) if lines else {}
        if not lines:
            r["error"] = f"exit {p.returncode}: {p.stderr.strip()[-300:]}"
        if p.stderr.strip():
            r["stderr"] = p.stderr.strip()[-2000:]
        return r

    def link_show(self):
        """plexus link show lan: one object per node, or None."""
        if not os.access(self.plexus, os.X_OK):
            return None
        try:
            p = self.cli("--json", "link", "show", "lan", "--lab", LAB, timeout=30)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None
        try:
            st = json.loads(p.stdout)
        except ValueError:
            return None
        return st if isinstance(st, list) else st.get("nodes", [st])

    def context(self):
        return benchlib.node_pids(LAB)

    proc_status = staticmethod(benchlib.proc_status)
    cpu_s = staticmethod(benchlib.cpu_s)


def counters(nodes):
    """Flatten `link show` into {"NODE.KEY": n, "NODE.PORT.KEY": n} (numbers only)."""
    out = {}
    for n in nodes or []:
        name = n.get("node", "?")
        for k, v in n.items():
            if isinstance(v, int) and not isinstance(v, bool):
                out[f"{name}.{k}"] = v
        for p in n.get("ports", []):
            for k, v in p.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    out[f"{name}.{p.get('port', '?')}.{k}"] = v
    return out


def delta(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def fmt_n(x):
    return f"{x:,.0f}".replace(",", " ")


def pct(v, p):
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] / 1000.0 if v else float("nan")


def median(v):
    v = sorted(v)
    if not v:
        return float("nan")
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("PX_BUILD_DIR", str(ROOT / "build")))
    ap.add_argument("--quick", action="store_true", help="one round, a fifth of the frames")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    ap.add_argument("--json-out", help="write every driver result to this file")
    a = ap.parse_args()
    b = Bench(Path(a.build).resolve())
    rounds = a.rounds or (1 if a.quick else 3)
    q = 5 if a.quick else 1
    n = {64: 500_000 // q, 1514: 200_000 // q, 9000: 50_000 // q}
    nlat = (1000 if a.quick else 6000) // rounds  # latency samples per round, 1 per ms

    res = {"rounds": rounds, "quick": a.quick, "frames": n, "runs": {}, "lat": {},
           "px_error": None, "vde_error": None}
    runs = res["runs"]
    vde = None
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / f"{LAB}.yaml"
        f.write_text(TOPOLOGY)
        vde_dir = Path(tmp) / "vde"
        nodes = {}
        try:
            if b.vde_switch and b.vde_plug:
                # Foreground, its console on a pipe we hold open; ends with it.
                vde = subprocess.Popen([b.vde_switch, "-sock", str(vde_dir)],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                for _ in range(100):
                    if (vde_dir / "ctl").exists() or vde.poll() is not None:
                        break
                    time.sleep(0.05)
                if not (vde_dir / "ctl").exists():
                    res["vde_error"] = "vde_switch did not start"
            else:
                res["vde_error"] = "vde_switch or vde_plug is not installed (Debian: vde2)"
            if not os.access(b.plexus, os.X_OK):
                res["px_error"] = f"{b.plexus} is missing"
            else:
                b.cli("down", LAB, timeout=60)
                try:
                    b.cli("up", f, "--local", "--dry-run", check=True)
                    nodes = b.context()
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                    res["px_error"] = str(e).strip()[-1500:]
            if res["px_error"]:
                print(f"bench/eth: plexus rows skipped: {res['px_error']}", file=sys.stderr)
            res["rss_start_kb"] = {k: b.proc_status(p, "VmRSS") for k, p in nodes.items()}
            res["node_counters"] = {}
            c_start = counters(b.link_show()) if nodes else {}
            vpid = vde.pid if vde else None

            def run(key, *args, kind):
                if kind in ("px", "pxl") and res["px_error"] or kind == "vde" and res["vde_error"]:
                    return
                dump = Path(tmp) / "lat.txt"
                lat = "lat" in args
                if kind in ("px", "pxl"):
                    args = (*(PX_PAIR if kind == "px" else PX_LOCAL_PAIR), *args)
                    c0 = {k: b.cpu_s(p) for k, p in nodes.items()}
                    before = counters(b.link_show()) if not lat else None
                elif kind == "vde":
                    args = ("--vde", vde_dir, "--vde-plug", b.vde_plug, *args)
                    v0 = b.cpu_s(vpid)
                else:
                    args = (f"--{kind}", *args)
                r = b.drive(*args, *(["--dump", dump] if lat else []))
                if kind in ("px", "pxl"):
                    r["node_cpu_s"] = {k: round(b.cpu_s(p) - c0[k], 3) for k, p in nodes.items()}
                    if before is not None:
                        r["node_counters"] = delta(counters(b.link_show()), before)
                elif kind == "vde":
                    r["switch_cpu_s"] = round(b.cpu_s(vpid) - v0, 3)
                if lat and dump.exists() and "error" not in r:
                    res["lat"].setdefault(key, []).extend(
                        int(x.split()[1]) for x in dump.read_text().splitlines())
                    dump.unlink()
                runs.setdefault(key, []).append(r)
                print(f"  {key}: {short(r)}", file=sys.stderr, flush=True)

            for rnd in range(rounds):
                print(f"bench/eth: round {rnd + 1}/{rounds}", file=sys.stderr, flush=True)
                for size in (64, 1514, 9000):
                    t = ("--mode", "tput", "-n", n[size], "--size", size)
                    run(f"px_{size}", *t, kind="px")
                    if size <= VDE_MAX_FRAME:
                        run(f"vde_{size}", *t, kind="vde")
                    run(f"raw_{size}", *t, kind="relay")
                t = ("--mode", "tput", "-n", n[64] * 2, "--size", 64, "--batch", BATCH)
                run("px_64_batch", *t, kind="px")
                run("vde_64_batch", *t, kind="vde")
                run("raw_64_batch", *t, kind="relay")
                run("direct_64", "--mode", "tput", "-n", n[64], "--size", 64, kind="direct")
                for size in (64, 1514, 9000):
                    run(f"pxl_{size}", "--mode", "tput", "-n", n[size], "--size", size,
                        kind="pxl")
                time.sleep(0.3)  # an idle segment from here on
                t = ("--mode", "lat", "-n", nlat, "--size", 64)
                run("px_lat", *t, kind="px")
                run("pxl_lat", *t, kind="pxl")
                run("vde_lat", *t, kind="vde")
                run("raw_lat", *t, kind="relay")
                run("direct_lat", *t, kind="direct")
            res["rss_peak_kb"] = {k: b.proc_status(p, "VmHWM") for k, p in nodes.items()}
            if nodes:
                res["node_counters"] = delta(counters(b.link_show()), c_start)
        finally:
            if vde:
                vde.kill()
                vde.wait()
            if os.access(b.plexus, os.X_OK):
                b.cli("down", LAB, timeout=120)
    for v in res["lat"].values():
        v.sort()
    sys.stderr.flush()
    ok = report(res)
    if a.json_out:
        out = dict(res, lat={k: len(v) for k, v in res["lat"].items()})
        Path(a.json_out).write_text(json.dumps(out, indent=1) + "\n")
    sys.exit(0 if ok else 1)


def short(r):
    if "error" in r and "received" not in r:
        return f"ERROR {r['error']}"
    if r.get("mode") == "lat":
        s = f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, lost {r['lost']}"
    else:
        s = (f"{fmt_n(r['fps'])} frames/s, {r['gbps']:.2f} Gbit/s, received "
             f"{r['received']}/{r['sent']}, out of order {r['out_of_order']}")
    return s + (f" ERROR {r['error']}" if "error" in r else "")


def report(res):
    """Print the tables; False if a plexus or peer run failed outright."""
    runs, lat = res["runs"], res["lat"]
    ok = True
    print(f"Ethernet segment: guest tx on host ha -> guest rx on host hb, segment lan (mtu 9000, "
          f"home ha), plexus-node dry-run; {res['rounds']} round(s)"
          f"{' [--quick]' if res['quick'] else ''}")
    print("vde = vde_switch + two vde_plug processes (pipes); raw = one relay thread between two "
          "socket pairs; direct = one socket pair (the guest edge alone)")
    for k in ("px_error", "vde_error"):
        if res[k]:
            ok = False
            print(f"NOT MEASURED ({'plexus' if k == 'px_error' else 'vde'}): {res[k]}")
    print()

    def vals(key, field):
        return [r[field] for r in runs.get(key, []) if field in r and "error" not in r]

    def ratio(a, b, field):
        ra = {i: r[field] for i, r in enumerate(runs.get(a, [])) if "error" not in r}
        rb = {i: r[field] for i, r in enumerate(runs.get(b, [])) if "error" not in r}
        return median([ra[i] / rb[i] for i in ra if i in rb and rb[i]])

    def cell(v, fmt):
        return fmt(median(v)) if v else "n/a"

    def xr(x, w=6):
        return f"{x:>{w}.2f}x" if x == x else f"{'n/a':>{w + 1}}"

    print(f"{'flood, one write per frame':<28} {'plexus':>11} {'range':>19} {'vde':>11} "
          f"{'raw':>11} {'px/vde':>7} {'px/raw':>7} {'px recv/sent':>14}")
    rows = ((64, "fps", "frames/s", lambda x: fmt_n(x)),
            (1514, "gbps", "Gbit/s", lambda x: f"{x:.3f}"),
            (9000, "gbps", "Gbit/s", lambda x: f"{x:.3f}"))
    for size, field, unit, fmt in rows:
        pk, vk, rk = f"px_{size}", f"vde_{size}", f"raw_{size}"
        px = vals(pk, field)
        rng = f"{fmt(min(px))}-{fmt(max(px))}" if px else ""
        recv = sum(r.get("received", 0) for r in runs.get(pk, []))
        sent = sum(r.get("sent", 0) for r in runs.get(pk, []))
        vcell = cell(vals(vk, field), fmt) if size <= VDE_MAX_FRAME else "n/a*"
        print(f"{f'{size} B, {unit}':<28} {cell(px, fmt):>11} {rng:>19} {vcell:>11} "
              f"{cell(vals(rk, field), fmt):>11} {xr(ratio(pk, vk, field))} "
              f"{xr(ratio(pk, rk, field))} {f'{recv}/{sent}' if sent else 'n/a':>14}")
        for k in (pk, vk, rk):
            for r in runs.get(k, []):
                if "error" in r:
                    ok = False
                    print(f"{'':<28} {k}: error: {r['error']}")
    print("* vde_switch cuts frames to 1518 bytes (1504 bytes of payload): no 9000-byte figure")
    print()
    print("plexus, same host (tx -> ha -> rxl, both guests on ha: the bridge and its ports "
          "without the data plane):")
    for size, field, unit, fmt in rows:
        k, rk = f"pxl_{size}", f"raw_{size}"
        v = vals(k, field)
        rr = [r for r in runs.get(k, []) if "sent" in r]
        recv, sent = sum(r["received"] for r in rr), sum(r["sent"] for r in rr)
        print(f"  {f'{size} B, {unit}':<26} {cell(v, fmt):>11}"
              f"{f'  (range {fmt(min(v))}-{fmt(max(v))})' if v else ''}"
              f"{f', received {recv}/{sent}' if sent else ''}"
              f"{f', {ratio(k, rk, field):.2f}x raw' if v else ''}")
        for r in runs.get(k, []):
            if "error" in r:
                ok = False
                print(f"  {k}: error: {r['error']}")
    print()
    print("loss (frames sent by tx that never reached rx; px-host: to rxl), all rounds:")
    for size in (64, 1514, 9000):
        for kind, label in (("px", "plexus"), ("pxl", "px-host"), ("vde", "vde"), ("raw", "raw")):
            rr = [r for r in runs.get(f"{kind}_{size}", []) if "sent" in r]
            if not rr:
                continue
            sent = sum(r["sent"] for r in rr)
            lost = sum(r["lost"] for r in rr)
            ooo = sum(r["out_of_order"] for r in rr)
            cut = sum(r.get("wrong_len", 0) for r in rr)
            extra = f", {cut} arrived with a wrong length (counted lost)" if cut else ""
            if lost:
                extra += (f" in {sum(r['gaps'] for r in rr)} runs (longest "
                         f"{max(r['max_gap'] for r in rr)}); rx's socket held up to "
                         f"{max(r['rx_backlog_max'] for r in rr)} frames")
            print(f"  {size:>5} B {label:<7} {lost:>9} of {sent:<9} {100.0 * lost / sent:6.2f}%"
                  f"{f', {ooo} out of order' if ooo else ''}{extra}")

    def sum_counters(keys):
        nc = {}
        for key in keys:
            for r in runs.get(key, []):
                for k, v in r.get("node_counters", {}).items():
                    nc[k] = nc.get(k, 0) + v
        return nc

    for label, keys in (("cross-host floods", [f"px_{z}" for z in (64, 1514, 9000)]),
                        ("same-host floods", [f"pxl_{z}" for z in (64, 1514, 9000)]),
                        ("batched sender", ["px_64_batch"])):
        nc = sum_counters(keys)
        if not nc:
            continue
        sent = sum(r.get("sent", 0) for k in keys for r in runs.get(k, []))
        recv = sum(r.get("received", 0) for k in keys for r in runs.get(k, []))
        drops = {k: v for k, v in nc.items() if re.search(r"(drop|lost|bad|cutoffs)", k)}
        line = (f"  plexus, {label}: the driver sent {sent}, received {recv}; node counters "
                f"(plexus link show): ha took {nc.get('ha.tx:eth0.rx', 0)} from tx")
        if "px_" in keys[0]:
            gap = nc.get("ha.remote_unicast", 0) - nc.get("hb.from_remote", 0)
            line += (f", sent {nc.get('ha.remote_unicast', 0)} to hb; hb received "
                     f"{nc.get('hb.from_remote', 0)} and wrote {nc.get('hb.rx:eth0.tx', 0)} to rx"
                     f" => {gap} lost between the nodes" +
                     (" (no node counter counts them)" if gap > 0 else ""))
        else:
            line += f", wrote {nc.get('ha.rxl:eth0.tx', 0)} to rxl"
        print(line)
        dl = ", ".join(f"{k} {v}" for k, v in sorted(drops.items()))
        print(f"    drop counters: {dl or 'none'}")
    print()

    print(f"sender writes {BATCH} frames at once (64 B; the nodes' capacity when the guest edge "
          f"is not the limit — QEMU writes one frame per call):")
    for label, key in (("plexus", "px_64_batch"), ("vde", "vde_64_batch"),
                       ("raw", "raw_64_batch")):
        v = vals(key, "fps")
        rr = [r for r in runs.get(key, []) if "sent" in r]
        lost = sum(r["lost"] for r in rr)
        sent = sum(r["sent"] for r in rr)
        print(f"  {label:<8} {cell(v, fmt_n):>11} frames/s"
              f"{f'  (range {fmt_n(min(v))}-{fmt_n(max(v))})' if v else ''}"
              f"{f', lost {lost} of {sent}' if sent else ''}")
    v = vals("direct_64", "fps")
    print(f"the guest edge alone (one socket pair, one write per frame, 64 B): "
          f"{cell(v, fmt_n)} frames/s — the most any path can show in the flood rows")
    print()

    print(f"{'one-way latency, 64 B, 1 frame/ms':<34} {'n':>5} {'p50 us':>8} {'p99 us':>8} "
          f"{'max us':>8} {'added p50':>10} {'added p99':>10}")
    base = lat.get("direct_lat", [])
    for label, key in (("plexus (tx -> ha -> hb -> rx)", "px_lat"),
                       ("plexus same host (tx -> ha -> rxl)", "pxl_lat"), ("vde", "vde_lat"),
                       ("raw relay", "raw_lat"), ("direct socket pair", "direct_lat")):
        v = lat.get(key)
        if not v:
            print(f"{label:<34} {'n/a':>5}")
            continue
        print(f"{label:<34} {len(v):>5} {pct(v, 0.5):>8.1f} {pct(v, 0.99):>8.1f} "
              f"{pct(v, 1.0):>8.1f} {pct(v, 0.5) - pct(base, 0.5):>10.1f} "
              f"{pct(v, 0.99) - pct(base, 0.99):>10.1f}")
    lost = sum(r.get("lost", 0) for r in runs.get("px_lat", []))
    if lost:
        print(f"  plexus lost {lost} paced frames")
    print()

    rss, start = res.get("rss_peak_kb", {}), res.get("rss_start_kb", {})
    for k in sorted(rss):
        print(f"node {k}: peak RSS (VmHWM) {rss[k] / 1024:.1f} MiB "
              f"(after `up` {start.get(k, 0) / 1024:.1f} MiB)")

    def us_per_frame(key):
        """CPU per frame sent (every frame was handled by some of the
        processes, however far it got)."""
        rr = [r for r in runs.get(key, []) if r.get("sent")]
        frames = sum(r["sent"] for r in rr)
        if not frames:
            return None
        parts = {"driver": sum(r["cpu_user_s"] + r["cpu_sys_s"] for r in rr)}
        if any("relay_cpu_s" in r and r["relay_cpu_s"] for r in rr):
            parts["driver"] -= sum(r["relay_cpu_s"] for r in rr)
            parts["relay"] = sum(r["relay_cpu_s"] for r in rr)
        if any(r.get("plug_cpu_s") for r in rr):
            parts["vde_plugs"] = sum(r["plug_cpu_s"] for r in rr)
            parts["vde_switch"] = sum(r.get("switch_cpu_s", 0) for r in rr)
        for r in rr:
            for k, c in r.get("node_cpu_s", {}).items():
                parts[k] = parts.get(k, 0) + c
        return {k: 1e6 * v / frames for k, v in parts.items()}

    print("CPU per frame sent, floods:")
    for label, key in (("plexus, 64 B", "px_64"), ("plexus same host, 64 B", "pxl_64"),
                       ("vde, 64 B", "vde_64"), ("raw, 64 B", "raw_64"),
                       ("plexus, 1514 B", "px_1514"), ("plexus same host, 1514 B", "pxl_1514"),
                       ("plexus, 64 B, batched sender", "px_64_batch")):
        c = us_per_frame(key)
        if c:
            print(f"  {label:<30} {sum(c.values()):6.2f} us (" +
                  ", ".join(f"{k} {v:.2f}" for k, v in c.items()) + ")")
    print()

    print("targets:")

    def verdict(text, good):
        print(f"  {text}: {'n/a' if good is None else 'met' if good else 'MISSED'}")

    def lost_pct(key):
        rr = [r for r in runs.get(key, []) if r.get("sent")]
        sent = sum(r["sent"] for r in rr)
        return f", {100.0 * sum(r['lost'] for r in rr) / sent:.1f}% lost" if sent else ""

    px64 = vals("px_64", "fps")
    verdict(f">= {fmt_n(TARGET_FPS_64)} frames/s at 64 B (median {cell(px64, fmt_n)} "
            f"received{lost_pct('px_64')})",
            median(px64) >= TARGET_FPS_64 if px64 else None)
    px1514 = vals("px_1514", "gbps")
    verdict(f">= {TARGET_GBPS_1514} Gbit/s at 1514 B (median "
            f"{cell(px1514, lambda x: f'{x:.2f}')} received{lost_pct('px_1514')})",
            median(px1514) >= TARGET_GBPS_1514 if px1514 else None)
    for size, field in ((64, "fps"), (1514, "gbps")):
        rt = ratio(f"px_{size}", f"vde_{size}", field)
        verdict(f">= {TARGET_VS_VDE}x vde_switch at {size} B ({xr(rt, 0).strip()})",
                None if rt != rt else rt >= TARGET_VS_VDE)
    pl = lat.get("px_lat")
    if pl and base:
        added = pct(pl, 0.99) - pct(base, 0.99)
        verdict(f"added p99 <= {TARGET_ADDED_P99_US:.0f} us per hop ({added:.1f} us guest to "
                f"guest across two nodes, {added / 2:.1f} us per node)",
                added <= TARGET_ADDED_P99_US)
    else:
        verdict(f"added p99 <= {TARGET_ADDED_P99_US:.0f} us per hop", None)
    return ok


if __name__ == "__main__":
    main()
