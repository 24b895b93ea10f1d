#!/usr/bin/python3
"""bench/can: CAN bus frames across two simulated hosts, next to raw ZeroMQ.

  bench_can.py [--build DIR] [--quick] [--rounds R] [--json-out FILE]

Starts one lab with `plexus up --local --dry-run` (a coordinator and two
plexus-node daemons, hosts ha and hb, in their own network namespaces; no
QEMU) and plays QEMU on the guests' CAN endpoint sockets with
bench_can_drive (bench/can/bench_can_drive.c), exactly as libpxcanshim.so
would: SOCK_SEQPACKET, one 72-byte frame per message.

  guests tx0..tx3 (ha): 8 controllers each on buses b0..b31, homes on ha
  guests rx0..rx3 (hb): the same 32 buses
  guests txh (ha), rxh (hb): bus rh, home pinned to hb (the receiver's side)

Every bus is `mode: ideal`. Each round (3 by default, --quick: 1 with fewer
frames) measures, plexus and its peer back to back:

  target       1 bus, 200 000 frames/s offered (paced): the rate that came
               through and the loss, home on the sender's host (b0) and on
               the receiver's (rh); every frame checked for loss and order
  1 bus        flood: as fast as the sender's socket takes frames (a full
               socket is the back-pressure), tx0 to rx0 on b0; then on rh
  32 buses     b0..b31 at once: aggregate frames/s and the mean per bus
  latency      one frame every 1 ms on idle b0 and rh: one-way latency
  raw ZeroMQ   the same driver code over PUSH/PULL on tcp://127.0.0.1, no
               CURVE, one 72-byte message per frame: 1 link, 32 links,
               latency; and 64 frames per message for 1 link
  unix         one SOCK_SEQPACKET socket pair, no node: what a single guest
               socket hop costs (plexus has two per frame)

and after all rounds the nodes' peak RSS (VmHWM). Throughput is the median
over rounds with its range, ratios the median of per-round ratios; latency
percentiles are over the samples of all rounds.

Targets (issue: CAN): >= 200 000 frames/s per bus with zero loss; idle p99
one-way latency <= 135 us. Prints absolute figures, plexus/raw ratios and
met/MISSED; asserts nothing (a benchmark, not a test). `plexus down` always.
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
from benchlib import LOCAL_ROOT  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAB = "canbench"
NBUS = 32
TARGET_FPS = 200_000
TARGET_P99_US = 135.0


PER_GUEST = 8  # controllers the node wires per guest (PX_CAN_EPS_PER_GUEST)
NG = NBUS // PER_GUEST


def topology(lab):
    """Guests in file order (their index names the socket): tx0..tx3 (0..3),
    rx0..rx3 (4..7), txh (8), rxh (9)."""
    buses = [f"b{i}" for i in range(NBUS)]
    nets = "\n".join(f"  {b}: {{type: can_bus, bitrate: 1M}}" for b in buses)
    pins = [f"{b}: ha" for b in buses] + ["rh: hb"]
    nodes = []
    for side, host in (("tx", "ha"), ("rx", "hb")):
        for g in range(NG):
            can = ", ".join(buses[g * PER_GUEST:(g + 1) * PER_GUEST])
            nodes.append(f"  {side}{g}: {{can: [{can}]}}")
            pins.append(f"{side}{g}: {host}")
    nodes += ["  txh: {can: [rh]}", "  rxh: {can: [rh]}"]
    pins += ["txh: ha", "rxh: hb"]
    return (f"name: {lab}\n"
            "defaults: {image: builtin:tiny, memory: 128M, cpus: 1}\n"
            "hosts:\n  ha: {cpus: 16, memory: 4G}\n  hb: {cpus: 16, memory: 4G}\n"
            f"nets:\n{nets}\n  rh: {{type: can_bus, bitrate: 1M}}\n"
            f"placement:\n  pin: {{{', '.join(pins)}}}\n"
            "nodes:\n" + "\n".join(nodes) + "\n")


def ep(host, guest_index, ctrl):
    return str(LOCAL_ROOT / LAB / "nodes" / host / LAB / "can" / f"g{guest_index}c{ctrl}.sock")


def pair(bus):
    """--pair TX RX for bus b<i> (an int) or "rh"."""
    if bus == "rh":
        return ["--pair", ep("ha", 2 * NG, 0), ep("hb", 2 * NG + 1, 0)]
    g, c = divmod(bus, PER_GUEST)
    return ["--pair", ep("ha", g, c), ep("hb", NG + g, c)]


class Bench:
    def __init__(self, build):
        self.plexus = str(build / "coordinator" / "cli" / "plexus")
        self.driver = str(build / "bench" / "can" / "bench_can_drive")
        for f in (self.plexus, self.driver):
            if not os.access(f, os.X_OK):
                raise SystemExit(f"bench/can: {f} is missing (build with -Dbench=true)")

    def cli(self, *args, check=False, timeout=120):
        p = subprocess.run([self.plexus, *map(str, args)], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise SystemExit(f"plexus {' '.join(map(str, args))} -> {p.returncode}\n"
                             f"{p.stdout}{p.stderr}")
        return p

    def drive(self, *args):
        p = subprocess.run([self.driver, *map(str, args)], capture_output=True, text=True,
                           timeout=900)
        lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
        if not lines:
            raise SystemExit(f"bench_can_drive {' '.join(map(str, args))} -> {p.returncode}\n"
                             f"{p.stdout}{p.stderr}")
        r = json.loads(lines[-1])
        if "fps" not in r and "p50_us" not in r:
            raise SystemExit(f"bench_can_drive {' '.join(map(str, args))}: {r.get('error')}\n"
                             f"{p.stderr}")
        if p.stderr.strip():
            r["stderr"] = p.stderr.strip()
        return r

    def drops(self, buses):
        """Node counters (plexus can stats) summed over buses: the receiving
        member's sequence gaps and frames it could not hand to a guest socket.
        None when the CLI cannot say (a node did not answer, or no `can`)."""
        tot = {"member_lost": 0, "to_guest_dropped": 0, "home_drops": 0}
        for bus in buses:
            p = self.cli("--json", "can", "stats", bus, "--lab", LAB, timeout=30)
            if p.returncode != 0:
                return None
            st = json.loads(p.stdout)
            for n in st if isinstance(st, list) else st.get("nodes", [st]):
                tot["home_drops"] += n.get("home", {}).get("drops", 0)
                m = n.get("member", {})
                tot["member_lost"] += m.get("lost", 0)
                tot["to_guest_dropped"] += sum(e.get("tx_dropped", 0)
                                               for e in m.get("endpoints", []))
        return tot

    def context(self):
        return benchlib.node_pids(LAB)

    proc_status = staticmethod(benchlib.proc_status)
    cpu_s = staticmethod(benchlib.cpu_s)


def socket_capacity():
    """Frames a guest's endpoint socket holds when the guest does not read:
    the node sets a 4 MiB SO_SNDBUFFORCE on it (devices/can/endpoint.c)."""
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        try:
            a.setsockopt(socket.SOL_SOCKET, 32, 4 << 20)  # SO_SNDBUFFORCE (root)
        except OSError:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        a.setblocking(False)
        n = 0
        try:
            while n < 1 << 20:
                a.send(bytes(72))
                n += 1
        except BlockingIOError:
            pass
        return n
    finally:
        a.close()
        b.close()


def fmt_fps(x):
    return f"{x:,.0f}".replace(",", " ")


def pct(v, p):
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] / 1000.0 if v else float("nan")


def median(v):
    v = sorted(v)
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
    n1 = 100_000 if a.quick else 500_000    # frames per round, 1 bus
    n32 = 10_000 if a.quick else 50_000     # frames per bus per round, 32 buses
    nlat = (1000 if a.quick else 6000) // rounds  # latency samples per round, 1 per ms

    res = {"socket_capacity": socket_capacity(), "rounds": rounds, "runs": {}, "lat": {}}
    runs = res["runs"]
    b.cli("down", LAB, timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / f"{LAB}.yaml"
        f.write_text(topology(LAB))
        try:
            b.cli("up", f, "--local", "--dry-run", check=True)
            nodes = b.context()
            res["rss_start_kb"] = {n: b.proc_status(p, "VmRSS") for n, p in nodes.items()}

            def run(key, *args, raw=False, unix=False):
                dump = Path(tmp) / "lat.txt"
                lat = "lat" in args
                c0 = {n: b.cpu_s(p) for n, p in nodes.items()}
                r = b.drive(*(["--zmq"] if raw else ["--unix"] if unix else []), *args,
                            *(["--dump", dump] if lat else []))
                if not raw and not unix:
                    r["node_cpu_s"] = {n: round(b.cpu_s(p) - c0[n], 2) for n, p in nodes.items()}
                if lat:
                    res["lat"].setdefault(key, []).extend(
                        int(x.split()[1]) for x in dump.read_text().splitlines())
                runs.setdefault(key, []).append(r)
                print(f"  {key}: {short(r)}", file=sys.stderr, flush=True)

            allp = [x for i in range(NBUS) for x in pair(i)]
            for rnd in range(rounds):
                print(f"bench/can: round {rnd + 1}/{rounds}", file=sys.stderr, flush=True)
                run("px_1_paced", "--mode", "tput", "-n", n1, "--rate", TARGET_FPS, *pair(0))
                run("px_1_home_rx_paced", "--mode", "tput", "-n", n1, "--rate", TARGET_FPS,
                    *pair("rh"))
                run("px_1", "--mode", "tput", "-n", n1, *pair(0))
                run("raw_1", "--mode", "tput", "-n", n1, "--links", 1, raw=True)
                run("px_1_home_rx", "--mode", "tput", "-n", n1, *pair("rh"))
                run("px_32", "--mode", "tput", "-n", n32, *allp)
                run("raw_32", "--mode", "tput", "-n", n32, "--links", NBUS, raw=True)
                run("raw_1_batch64", "--mode", "tput", "-n", n1, "--links", 1, "--batch", 64,
                    raw=True)
                run("unix_1", "--mode", "tput", "-n", n1, "--links", 1, unix=True)
                time.sleep(0.3)  # idle buses from here on
                run("px_lat", "--mode", "lat", "-n", nlat, *pair(0))
                run("raw_lat", "--mode", "lat", "-n", nlat, "--links", 1, raw=True)
                run("px_lat_home_rx", "--mode", "lat", "-n", nlat, *pair("rh"))
                run("unix_lat", "--mode", "lat", "-n", nlat, "--links", 1, unix=True)
            res["rss_peak_kb"] = {n: b.proc_status(p, "VmHWM") for n, p in nodes.items()}
            res["node_counters"] = b.drops([f"b{i}" for i in range(NBUS)] + ["rh"])
        finally:
            b.cli("down", LAB, timeout=120)
    for v in res["lat"].values():
        v.sort()
    report(res, quick=a.quick)
    if a.json_out:
        out = dict(res, lat={k: len(v) for k, v in res["lat"].items()})
        Path(a.json_out).write_text(json.dumps(out, indent=1) + "\n")


def short(r):
    if r.get("mode") == "lat":
        s = f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, lost {r['lost']}"
    else:
        s = (f"{fmt_fps(r['fps'])} frames/s, lost {r['lost']}, out of order "
             f"{r['out_of_order']}, receiver backlog max {r.get('rx_backlog_max', 0)}")
    return s + (f" ERROR {r['error']}" if "error" in r else "")


def report(res, quick):
    runs, cap = res["runs"], res["socket_capacity"]
    print(f"CAN bus: ideal mode, classic 8-byte frames, sender guest on host ha, receiver on hb; "
          f"{res['rounds']} round(s){' [--quick]' if quick else ''}")
    print("raw = the same driver over libzmq PUSH/PULL on tcp://127.0.0.1, no CURVE, "
          "one message per frame")
    print()
    def lost_line(pk, indent):
        rr = runs[pk]
        if not sum(r["lost"] for r in rr):
            return
        worst = max(rr, key=lambda r: r.get("rx_backlog_max", 0))
        full = worst.get("rx_backlog_max", 0) >= 0.95 * cap
        print(f"{'':<{indent}} lost in {sum(r.get('gaps', 0) for r in rr)} runs of frames "
              f"(longest {max(r.get('max_gap', 0) for r in rr)}); the receiver's socket held up "
              f"to {worst.get('rx_backlog_max', 0)} of {cap} frames: " +
              ("full, so the receiving node dropped what it could not hand to the guest"
               if full else "never full, so they were lost in the fabric"))

    print(f"{'target: 1 bus, 200 000 f/s offered':<38} {'got f/s':>10} {'range':>17} "
          f"{'lost':>7}  target")
    for label, pk in (("home on the sender's host", "px_1_paced"),
                      ("home on the receiver's host", "px_1_home_rx_paced")):
        rr = runs[pk]
        fps = [r["fps"] for r in rr]
        lost = sum(r["lost"] + r["out_of_order"] for r in rr)
        errs = [r["error"] for r in rr if "error" in r]
        ok = min(fps) >= 0.98 * TARGET_FPS and lost == 0 and not errs
        rng = f"{fmt_fps(min(fps))}-{fmt_fps(max(fps))}"
        print(f"{label:<38} {fmt_fps(median(fps)):>10} {rng:>17} {lost:>7}  "
              f">= {fmt_fps(TARGET_FPS)} f/s, 0 lost, every round: {'met' if ok else 'MISSED'}")
        for e in errs:
            print(f"{'':<38} error: {e}")
        lost_line(pk, 38)
    print()
    print(f"{'flood (median [min-max])':<32} {'plexus f/s':>10} {'range':>17} "
          f"{'raw f/s':>10} {'px/raw':>7} {'lost':>8}")

    def tput_row(label, pk, rk, per_bus=False):
        field = "fps_per_link_avg" if per_bus else "fps"
        px = [r[field] for r in runs[pk]]
        raw = [r[field] for r in runs[rk]]
        ratios = [x / y for x, y in zip(px, raw) if y]
        lost = sum(r["lost"] + r["out_of_order"] for r in runs[pk])
        rng = f"{fmt_fps(min(px))}-{fmt_fps(max(px))}"
        print(f"{label:<32} {fmt_fps(median(px)):>10} {rng:>17} {fmt_fps(median(raw)):>10} "
              f"{median(ratios) if ratios else float('nan'):>6.3f}x {lost:>8}")
        for e in [r["error"] for r in runs[pk] if "error" in r]:
            print(f"{'':<32} error: {e}")
        if not per_bus:
            lost_line(pk, 32)

    tput_row("1 bus, home on sender's host", "px_1", "raw_1")
    tput_row("1 bus, home on receiver's host", "px_1_home_rx", "raw_1")
    tput_row("32 buses, aggregate", "px_32", "raw_32")
    tput_row("32 buses, per bus (mean)", "px_32", "raw_32", per_bus=True)
    rb = [r["fps"] for r in runs["raw_1_batch64"]]
    print(f"{'raw, 64 frames per message':<32} {'':>10} {'':>17} {fmt_fps(median(rb)):>10} "
          f"{median([x['fps'] / y for x, y in zip(runs['px_1'], rb)]):>6.3f}x  "
          "(plexus 1 bus / this)")
    ux = [r["fps"] for r in runs["unix_1"]]
    print(f"{'one guest socket hop, no node':<32} {'':>10} {'':>17} {fmt_fps(median(ux)):>10} "
          f"{median([x['fps'] / y for x, y in zip(runs['px_1'], ux)]):>6.3f}x  "
          "(plexus 1 bus / this; plexus has two such hops)")
    print()
    lat = res["lat"]
    print(f"{'one-way latency, idle, 1 frame/ms':<34} {'n':>5} {'p50 us':>8} {'p99 us':>8} "
          f"{'max us':>8} {'p50/raw':>8} {'p99/raw':>8}  target")
    raw = lat["raw_lat"]
    for label, key in (("plexus, home on sender's host", "px_lat"),
                       ("plexus, home on receiver's host", "px_lat_home_rx"), ("raw", "raw_lat"),
                       ("one guest socket hop, no node", "unix_lat")):
        v = lat[key]
        verdict = ""
        if key.startswith("px"):
            ok = pct(v, 0.99) <= TARGET_P99_US
            verdict = f"p99 <= {TARGET_P99_US:.0f} us: {'met' if ok else 'MISSED'}"
        print(f"{label:<34} {len(v):>5} {pct(v, 0.5):>8.1f} {pct(v, 0.99):>8.1f} "
              f"{pct(v, 1.0):>8.1f} {pct(v, 0.5) / pct(raw, 0.5):>7.2f}x "
              f"{pct(v, 0.99) / pct(raw, 0.99):>7.2f}x  {verdict}")
    lost = sum(r["lost"] for k in ("px_lat", "px_lat_home_rx") for r in runs[k])
    if lost:
        print(f"  plexus lost {lost} paced frames")
    print()
    nc = res.get("node_counters")
    if nc is not None:
        lost = sum(r["lost"] for k, rr in runs.items() if k.startswith("px") for r in rr)
        print(f"node counters, all buses and rounds (plexus can stats): {nc['to_guest_dropped']} "
              f"to guest dropped, {nc['member_lost']} lost at member nodes, {nc['home_drops']} "
              f"dropped at homes; the driver counted {lost} lost")
    rss, start = res["rss_peak_kb"], res["rss_start_kb"]
    for n in sorted(rss):
        print(f"node {n}: peak RSS (VmHWM) {rss[n] / 1024:.1f} MiB "
              f"(after `up` {start[n] / 1024:.1f} MiB)")

    def us_per_frame(key, nodes):
        rr = runs[key]
        frames = sum(r["received"] for r in rr)
        cpu = sum(r["cpu_user_s"] + r["cpu_sys_s"] for r in rr)
        parts = {"driver": cpu}
        if nodes:
            for r in rr:
                for n, c in r["node_cpu_s"].items():
                    parts[n] = parts.get(n, 0) + c
        return {k: 1e6 * v / frames for k, v in parts.items()} if frames else {}

    px, raw = us_per_frame("px_1", True), us_per_frame("raw_1", False)
    ux = us_per_frame("unix_1", False)
    print("CPU per frame, 1 bus: plexus " + f"{sum(px.values()):.1f} us (" +
          ", ".join(f"{k} {v:.1f}" for k, v in px.items()) +
          f"); raw {sum(raw.values()):.2f} us (driver incl. its ZeroMQ I/O threads); one guest "
          f"socket hop {sum(ux.values()):.1f} us")


if __name__ == "__main__":
    main()
