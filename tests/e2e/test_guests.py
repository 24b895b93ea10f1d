"""End to end: real QEMU guests (TCG) on simulated hosts, through the CLI.

Needs the built-in image (scripts/guest-image.sh builds it into
BUILD/guest/tiny) and qemu-system-x86_64. Each guest's /init prints
"PLEXUS-GUEST-READY name=NAME" on its serial console once it is up.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/e2e
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import BUILD, NODE, PLEXUS, ROOT, alive, run, status, wait_until  # noqa: E402

IMAGE = Path(os.environ.get("PLEXUS_IMAGE_DIR", BUILD / "guest")) / "tiny"
BOOT_TIMEOUT = 90  # TCG on 2 cores with other guests booting at the same time

pytestmark = pytest.mark.skipif(
    not (IMAGE / "vmlinuz").exists() or not shutil.which("qemu-system-x86_64"),
    reason=f"needs qemu-system-x86_64 and the built-in image in {IMAGE} (scripts/guest-image.sh)")







def console(lab, guest):
    p = run("logs", guest, "--lab", lab)
    return p.stdout if p.returncode == 0 else ""


def booted(lab, guest, times=1):
    return console(lab, guest).count(f"PLEXUS-GUEST-READY name={guest}") >= times


def qemu_pids(tag):
    """QEMU processes whose command line mentions `tag`."""
    out = subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True).stdout
    return [int(l.split()[0]) for l in out.splitlines() if tag in l]


def guest_pid(lab, guest):
    ctx_root = Path("/run/plexus/local") if os.geteuid() == 0 else None
    for pidfile in (ctx_root / lab).glob(f"nodes/*/{lab}/{guest}.pid"):
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
    return None


LAB = """\
name: {name}
defaults:
  image: builtin:tiny
  memory: 192M
  cpus: 1
  restart: on-failure
placement:
  anti_affinity: [[alpha, beta]]
nodes:
  alpha: {{}}
  beta: {{}}
{extra}
"""


@pytest.fixture
def lab(request):
    name = "e2e" + re.sub(r"[^a-z0-9]", "", request.node.name.lower())[-12:]
    yield name
    run("down", name, timeout=120)


def up(tmp_path, name, extra=""):
    f = tmp_path / f"{name}.yaml"
    f.write_text(LAB.format(name=name, extra=extra))
    return run("up", f, "--local", "--hosts", "2", "--timeout", "60")


@pytest.mark.skipif(os.geteuid() != 0, reason="local mode pid files are under /run as root")
def test_two_guests_on_two_hosts_boot_restart_and_leave_nothing(tmp_path, lab):
    p = up(tmp_path, lab)
    assert p.returncode == 0, p.stderr
    st = status(lab)
    hosts = {g["name"]: g["host"] for g in st["guests"]}
    assert hosts["alpha"] != hosts["beta"]  # anti-affinity: two simulated hosts
    assert all(g["state"] == "running" for g in st["guests"])
    for g in ("alpha", "beta"):
        wait_until(f"{g} boot marker", lambda g=g: booted(lab, g), BOOT_TIMEOUT)

    # kill -9 one QEMU: on-failure brings it back, the other is untouched.
    victim = guest_pid(lab, "alpha")
    other = guest_pid(lab, "beta")
    assert victim and other
    os.kill(victim, signal.SIGKILL)
    wait_until("alpha restarted by its node",
               lambda: (pid := guest_pid(lab, "alpha")) and pid != victim and pid, 30)
    wait_until("alpha booted again", lambda: booted(lab, "alpha", times=2), BOOT_TIMEOUT)
    st = status(lab)
    alpha = next(g for g in st["guests"] if g["name"] == "alpha")
    assert alpha["state"] == "running"
    assert guest_pid(lab, "beta") == other

    ctx = (Path("/run/plexus/local") / lab / "context").read_text()
    tag = re.search(r"^tag (\S+)", ctx, re.M).group(1)
    ldir = Path("/run/plexus/local") / lab
    assert qemu_pids(str(ldir))
    run("down", lab, check=True)
    # Nothing left: no QEMU, no sockets (the directory is gone), no namespace.
    assert not qemu_pids(str(ldir))
    assert not ldir.exists()
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag not in ns


def test_bad_kernel_fails_alone(tmp_path, lab):
    extra = "  broken: {image: {kernel: /nonexistent/vmlinuz}}"
    p = up(tmp_path, lab, extra)
    # The lab does not reach "running" with a failed guest, but the others run.
    def settled():
        st = status(lab)
        states = {g["name"]: g["state"] for g in st["guests"]}
        return st if states.get("broken") == "failed" and states.get("alpha") == "running" \
            and states.get("beta") == "running" else None

    st = wait_until("broken failed, alpha and beta running", settled, 60)
    broken = next(g for g in st["guests"] if g["name"] == "broken")
    assert "/nonexistent/vmlinuz" in broken["detail"]
    assert "not readable" in broken["detail"]
    for g in ("alpha", "beta"):
        wait_until(f"{g} boot marker", lambda g=g: booted(lab, g), BOOT_TIMEOUT)
    # `plexus up` showed the failure in its table and said so in its exit status.
    assert p.returncode == 1
    assert re.search(r"^broken\s+\S+\s+\S+\s+failed\s+guest broken: kernel", p.stdout, re.M), \
        p.stdout
