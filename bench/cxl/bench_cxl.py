#!/usr/bin/python3
"""bench/cxl: CXL LD data across two simulated hosts - materialising an LD
(fetch) and writing it back, next to a plain copy of the same file.

  bench_cxl.py [--build DIR] [--quick] [--size SIZE] [--rounds R]
               [--dir DIR] [--no-lab] [--json-out FILE]

Hosts: as root, `plexus up --local --dry-run` starts a lab with two hosts,
ha and hb (a coordinator and two plexus-node daemons, each in its own
network namespace behind a veth pair; no QEMU, one idle guest because a lab
needs one). The nodes do not carry the LD data yet (their wiring of the
service is being written): bench_cxl_drive (bench_cxl_drive.c) runs the
service instead, one process per host inside that host's namespace
(`ip netns exec`), each with its own libuv loop, CurveZMQ transport and
px_cxlld, wired as plexus-node wires its data plane. Without root, or with
--no-lab, the two processes talk over 127.0.0.1.

Files live in a tmpfs directory (default /dev/shm, as QEMU memdev files
usually do): the pool's LD on ha, the guest's copy on hb. Each round:

  copy          read()/write() of the pool's LD file into a new file in
                128 KiB pieces (the peer: what materialising costs without a
                network), and copy_file_range (what cp(1) does)
  data plane    the same bytes over the same two channels without the
                service and without files: small PROBE requests, a 128 KiB
                PROBE answer each, as many in flight as the fetch's window
                (what the transport alone costs: CurveZMQ, batching, wire)
  fetch         px_cxlld_fetch of the LD: 1 GiB of pseudo-random data, every
                chunk travels
  wb_all        write-back after one byte changed in every 128 KiB chunk
  wb_10pct      write-back after one byte changed in every tenth chunk
  wb_none       write-back with nothing changed (reads and hashes it all)
  fetch_sparse  fetch of an LD that is all zero (no chunk travels as bytes)

Figures are medians over the rounds (3, --quick 1 and 256 MiB), as seconds
per GiB, and ratios against the read/write copy. Target (issue: LD data
across hosts): fetch and full write-back within 1.5x the copy. Prints
met/MISSED; asserts nothing (a benchmark, not a test); exits 1 only when a
row could not be measured. `plexus down` always.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchlib  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAB = "cxlbench"
TARGET = 1.5
GIB = 1 << 30

TOPO = f"""\
name: {LAB}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
placement:
  pin: {{idle: ha}}
nodes:
  idle: {{}}
"""


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


class Hosts:
    """Where the two sides run: a dry-run lab's namespaces, or 127.0.0.1."""

    def __init__(self, build, use_lab):
        self.plexus = str(build / "coordinator" / "cli" / "plexus")
        self.lab = use_lab and os.geteuid() == 0
        self.where = {}

    def cli(self, *args, check=False, timeout=120):
        p = subprocess.run([self.plexus, *map(str, args)], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise SystemExit(f"plexus {' '.join(map(str, args))} -> {p.returncode}\n"
                             f"{p.stdout}{p.stderr}")
        return p

    def __enter__(self):
        if not self.lab:
            self.where = {h: ([], "tcp://127.0.0.1:*") for h in ("ha", "hb")}
            return self
        self.cli("down", LAB, timeout=60)
        self.tmp = tempfile.TemporaryDirectory()
        f = Path(self.tmp.name) / f"{LAB}.yaml"
        f.write_text(TOPO)
        self.cli("up", f, "--local", "--dry-run", check=True)
        for host, pid in benchlib.node_pids(LAB).items():
            ns = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                                text=True, check=True).stdout.split()[0]
            addr = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"],
                                  capture_output=True, text=True, check=True).stdout.split()
            ip = addr[addr.index("inet") + 1].split("/")[0]
            self.where[host] = (["ip", "netns", "exec", ns], f"tcp://{ip}:*")
        return self

    def __exit__(self, *exc):
        if self.lab:
            self.cli("down", LAB, timeout=60)
            self.tmp.cleanup()


def line(p, what):
    s = p.stdout.readline()
    if not s:
        raise SystemExit(f"bench/cxl: the {what} side ended early: {p.stderr.read()}")
    return s.strip()


def drive(driver, hosts, base, size, rounds, window):
    pool_dir, guest_dir = base / "ha", base / "hb"
    common = ["--size", str(size)]
    pp, lp = hosts.where["ha"]
    pg, lg = hosts.where["hb"]
    pool = subprocess.Popen([*pp, driver, "--role", "pool", "--name", "ha", "--dir", pool_dir,
                             "--listen", lp, *common], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    guest = subprocess.Popen([*pg, driver, "--role", "guest", "--name", "hb", "--dir", guest_dir,
                              "--pool-dir", pool_dir, "--rounds", str(rounds), "--listen", lg,
                              "--window", str(window or 0),
                              *common], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=None, text=True)
    try:
        ready = {}
        for name, p in (("ha", pool), ("hb", guest)):
            r = line(p, name).split()
            if r[0] != "ready":
                raise SystemExit(f"bench/cxl: {name} said {r}")
            ready[name] = r[1:]
        for name, p, other in (("ha", pool, "hb"), ("hb", guest, "ha")):
            p.stdin.write(f"peer {other} {' '.join(ready[other][:3])}\n")
            p.stdin.flush()
        for name, p in (("ha", pool), ("hb", guest)):
            if line(p, name) != "allowed":
                raise SystemExit(f"bench/cxl: {name} did not admit its peer")
        for p in (pool, guest):
            p.stdin.write("go\n")
            p.stdin.flush()
        out = [x for x in guest.stdout.read().splitlines() if x.startswith("{")]
        guest.wait(timeout=60)
        if not out or guest.returncode != 0:
            raise SystemExit(f"bench/cxl: the guest side failed (exit {guest.returncode})")
        pool.stdin.write("quit\n")
        pool.stdin.close()
        err = pool.stderr.read()
        if pool.wait(timeout=60) != 0:
            raise SystemExit(f"bench/cxl: the pool side failed (exit {pool.returncode}): {err}")
        return json.loads(out[-1])
    finally:
        for p in (guest, pool):
            if p.poll() is None:
                try:
                    p.stdin.write("quit\n")
                    p.stdin.close()
                except (OSError, ValueError):
                    pass
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("PX_BUILD_DIR", str(ROOT / "build")))
    ap.add_argument("--quick", action="store_true", help="one round of 256 MiB")
    ap.add_argument("--size", help="LD size (default 1G, --quick 256M)")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    ap.add_argument("--dir", default="/dev/shm", help="where the files go (tmpfs)")
    ap.add_argument("--no-lab", action="store_true", help="both sides on 127.0.0.1, no lab")
    ap.add_argument("--window", type=int, help="chunks in flight (default: the service's)")
    ap.add_argument("--json-out", help="write the driver's result to this file")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    driver = str(build / "bench" / "cxl" / "bench_cxl_drive")
    if not os.access(driver, os.X_OK):
        raise SystemExit(f"bench/cxl: {driver} is missing (build with -Dbench=true)")
    size = parse_size(a.size or ("256M" if a.quick else "1G"))
    rounds = a.rounds or (1 if a.quick else 3)
    free = shutil.disk_usage(a.dir).free
    if free < 4 * size:
        raise SystemExit(f"bench/cxl: {a.dir} has {free >> 20} MiB free; needs {4 * size >> 20}")
    base = Path(tempfile.mkdtemp(prefix="plexus-bench-cxl-", dir=a.dir))
    try:
        with Hosts(build, not a.no_lab) as hosts:
            res = drive(driver, hosts, base, size, rounds, a.window)
            res["hosts"] = "dry-run lab, one network namespace per host" if hosts.lab \
                else "127.0.0.1"
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(res, indent=1) + "\n")

    med = {k: statistics.median(res[k]) for k in
           ("copy", "copy_cfr", "raw", "fetch", "wb_all", "wb_10pct", "wb_none", "fetch_sparse")}
    per = size / GIB
    copy = med["copy"]
    print(f"CXL LD data: {size >> 20} MiB LD, {rounds} round(s), medians; hosts: {res['hosts']}")
    cpu = {k: [statistics.median(c[i] for c in res["cpu"][k]) for i in (0, 1)] for k in med}
    print(f"{'':14} {'s/GiB':>8} {'GiB/s':>7} {'x copy':>7}   CPU s/GiB: {'hb':>5} {'ha':>5}")
    for k, label in (("copy", "copy (r/w)"), ("copy_cfr", "copy (cp)"),
                     ("raw", "data plane"), ("fetch", "fetch"),
                     ("wb_all", "wb all"), ("wb_10pct", "wb 10%"), ("wb_none", "wb none"),
                     ("fetch_sparse", "fetch sparse")):
        t = med[k] / per
        print(f"{label:14} {t:8.3f} {1 / t if t else 0:7.2f} {med[k] / copy:7.2f}"
              f"              {cpu[k][0] / per:5.2f} {cpu[k][1] / per:5.2f}")
    for k in ("fetch", "wb_all"):
        ratio = med[k] / copy
        print(f"target {k} <= {TARGET}x copy: {ratio:.2f}x {'met' if ratio <= TARGET else 'MISSED'}")
    print(f"counters (guest side): {res['stats']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
