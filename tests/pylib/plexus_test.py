"""Helpers shared by the integration and e2e tests: where the built
binaries are, running the plexus CLI, and waiting for a condition."""
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PX_BUILD_DIR", ROOT / "build")).resolve()
PLEXUS = BUILD / "coordinator" / "cli" / "plexus"
NODE = BUILD / "node" / "plexus-node"


def run(*args, check=False, timeout=120, env=None):
    """Run the plexus CLI; with check, fail showing its output."""
    p = subprocess.run([str(PLEXUS), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"plexus {' '.join(map(str, args))} -> {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def status(lab):
    return json.loads(run("--json", "status", lab, check=True).stdout)


def wait_until(what, cond, timeout, interval=0.05):
    """Poll cond() until it returns a true value; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def alive(pid):
    """True if pid runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


class CanStats:
    """`plexus --json can stats BUS`: the home's counters, every node's
    entry, and the controllers' counters by guest name."""

    def __init__(self, lab, bus):
        p = run("--json", "can", "stats", bus, "--lab", lab, check=True)
        self.nodes = json.loads(p.stdout)
        self.home = next(n["home"] for n in self.nodes if "home" in n)
        self.members = [n["member"] for n in self.nodes if "member" in n]
        self.eps = {e["guest"]: e for m in self.members for e in m["endpoints"]}
