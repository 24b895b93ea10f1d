#!/usr/bin/python3
"""bench/boot: time from `plexus up` to every guest's ready marker, for 1, 2
and 4 guests on 2 simulated hosts, next to bare QEMU booting the same image
with the same arguments in the same run; and the nodes' peak RSS.

  bench_boot.py [--build DIR] [--sizes 1,2,4]

Target (issue: guests): plexus <= 1.2x bare QEMU. Prints ratios; asserts
nothing (a benchmark, not a test).
"""
import argparse
import os
import re
import select
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = b"PLEXUS-GUEST-READY"


def bare_qemu(image, n):
    """n QEMUs at once, as plexus would start them; seconds until all are ready."""
    t0 = time.monotonic()
    procs = []
    for i in range(n):
        argv = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-nographic",
                "-no-reboot", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "1",
                "-m", "192M", "-serial", "stdio", "-kernel", str(image / "vmlinuz"),
                "-initrd", str(image / "initrd.img"), "-append",
                f"console=ttyS0 panic=-1 plexus.name=bare{i}"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    pending = set(range(n))
    bufs = [b""] * n
    while pending and time.monotonic() - t0 < 180:
        r, _, _ = select.select([procs[i].stdout for i in pending], [], [], 0.5)
        for f in r:
            i = next(k for k in pending if procs[k].stdout is f)
            chunk = os.read(f.fileno(), 65536)
            bufs[i] += chunk
            if MARKER in bufs[i]:
                pending.discard(i)
    dt = time.monotonic() - t0
    for p in procs:
        p.kill()
        p.wait()
    return dt if not pending else float("nan")


def plexus_up(plexus, env, n, tmp):
    name = f"bench{n}"
    nodes = "\n".join(f"  g{i}: {{}}" for i in range(n))
    f = Path(tmp) / f"{name}.yaml"
    f.write_text(f"name: {name}\ndefaults: {{image: 'builtin:tiny', memory: 192M, cpus: 1}}\n"
                 f"nodes:\n{nodes}\n")
    subprocess.run([plexus, "down", name], capture_output=True, env=env)
    t0 = time.monotonic()
    p = subprocess.run([plexus, "up", str(f), "--local", "--hosts", "2"], capture_output=True,
                       env=env, text=True)
    if p.returncode != 0:
        raise SystemExit(f"plexus up failed:\n{p.stderr}")
    for i in range(n):
        while time.monotonic() - t0 < 180:
            out = subprocess.run([plexus, "logs", f"g{i}", "--lab", name], capture_output=True,
                                 env=env).stdout
            if MARKER in out:
                break
            time.sleep(0.05)
    dt = time.monotonic() - t0
    ctx = Path("/run/plexus/local") / name / "context"
    rss = []
    for pid in re.findall(r"^node \S+ (\d+)$", ctx.read_text(), re.M):
        try:
            m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
            rss.append(int(m.group(1)))
        except (OSError, AttributeError):
            pass
    subprocess.run([plexus, "down", name], capture_output=True, env=env)
    return dt, max(rss) if rss else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--sizes", default="1,2,4")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    plexus = str(build / "coordinator" / "cli" / "plexus")
    image = Path(os.environ.get("PLEXUS_IMAGE_DIR", build / "guest")) / "tiny"
    env = dict(os.environ, PLEXUS_IMAGE_DIR=str(image.parent))
    print("boot: plexus up (2 simulated hosts) to every guest's ready marker vs bare QEMU, TCG")
    print(f"{'guests':>6} {'plexus s':>9} {'bare s':>8} {'ratio':>7}  {'node peak RSS':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, a.sizes.split(",")):
            bare = bare_qemu(image, n)
            px, rss = plexus_up(plexus, env, n, tmp)
            ratio = px / bare if bare == bare and bare > 0 else float("nan")
            verdict = "met" if ratio <= 1.2 else "MISSED"
            print(f"{n:>6} {px:>9.2f} {bare:>8.2f} {ratio:>6.2f}x  {rss/1024:>10.1f} MiB"
                  f"   target <= 1.2x: {verdict}")


if __name__ == "__main__":
    main()
