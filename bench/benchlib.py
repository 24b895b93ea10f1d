"""What the Python benchmarks (bench/can, bench/eth) share: the node
processes of a local lab and what /proc says about them."""
import os
import re
from pathlib import Path

LOCAL_ROOT = Path("/run/plexus/local") if os.geteuid() == 0 else Path(
    os.environ.get("XDG_RUNTIME_DIR", f"/tmp/plexus-{os.geteuid()}")) / "plexus" / "local"


def node_pids(lab):
    """{host: plexus-node pid} from a local lab's context file."""
    text = (LOCAL_ROOT / lab / "context").read_text()
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^node (\S+) (\d+)$", text, re.M)}


def proc_status(pid, key):
    """A kB figure of /proc/PID/status (VmRSS, VmHWM); 0 once it is gone."""
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def cpu_s(pid):
    """User + system CPU seconds of a process so far; 0 once it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
