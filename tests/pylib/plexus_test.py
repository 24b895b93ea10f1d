"""Helpers shared by the integration and e2e tests: where the built
binaries are, running the plexus CLI, waiting for a condition, and
restarting a local-mode node in place."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PX_BUILD_DIR", ROOT / "build")).resolve()
PLEXUS = BUILD / "coordinator" / "cli" / "plexus"
NODE = BUILD / "node" / "plexus-node"
LOCAL_ROOT = Path("/run/plexus/local")  # local mode's state, as root
IMAGE = Path(os.environ.get("PLEXUS_IMAGE_DIR", BUILD / "guest")) / "tiny"


def qemu_lab_marks():
    """pytest marks for a test module that boots guests in a local lab:
    skip (saying why) without QEMU, the built-in image or root."""
    import pytest
    import shutil
    return [
        pytest.mark.skipif(not (IMAGE / "vmlinuz").exists() or
                           not shutil.which("qemu-system-x86_64"),
                           reason=f"needs qemu-system-x86_64 and the built-in image in {IMAGE}"),
        pytest.mark.skipif(os.geteuid() != 0, reason="local mode with namespaces needs root"),
    ]


def run(*args, check=False, timeout=120, env=None):
    """Run the plexus CLI; with check, fail showing its output."""
    p = subprocess.run([str(PLEXUS), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"plexus {' '.join(map(str, args))} -> {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def up_dry_run(tmp_path, name, text):
    """`plexus up --local --dry-run` of topology text: daemons and fabric,
    no QEMU (the test plays it)."""
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    run("up", f, "--local", "--dry-run", check=True)


def lab_for_test(request, prefix):
    """A lab named after the running test, torn down afterwards (use in a
    fixture: `yield from lab_for_test(request, "cb")`)."""
    name = prefix + "".join(c for c in request.node.name.lower() if c.isalnum())[-14:]
    yield name
    run("down", name, timeout=60)


def lab_dir(lab, host):
    """A local-mode lab's runtime directory on one simulated host."""
    return LOCAL_ROOT / lab / "nodes" / host / lab


def guest_log(lab, host, guest):
    """A guest's serial console log so far ("" before it exists)."""
    try:
        return (lab_dir(lab, host) / f"{guest}.log").read_text(errors="replace").replace("\r", "")
    except OSError:
        return ""


def guest_pid(lab, host, guest):
    """The pid in a guest's QEMU pid file, or None."""
    try:
        return int((lab_dir(lab, host) / f"{guest}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def lab_qemus(lab):
    """Live QEMU processes of a local lab (their command lines name its directory)."""
    out = subprocess.run(["pgrep", "-f", f"qemu-system.*{LOCAL_ROOT / lab}/"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split() if alive(int(p))]


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


def lab_context(lab):
    """Local mode's context file of a lab: its text and {host: node pid}."""
    text = (LOCAL_ROOT / lab / "context").read_text()
    return text, {m.group(1): int(m.group(2)) for m in re.finditer(r"^node (\S+) (\d+)$", text, re.M)}


def set_context_pid(lab, host, old, new):
    """Local mode's context names each node's pid: `plexus down` stops those.
    Written as local mode writes it (whole file, 0600, renamed into place)."""
    text, _ = lab_context(lab)
    text, n = re.subn(rf"^node {host} {old}$", f"node {host} {new}", text, flags=re.M)
    assert n == 1
    write_context(lab, text)


def write_context(lab, text):
    """Replace a local-mode lab's context as local mode writes it."""
    path = LOCAL_ROOT / lab / "context"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def coordinator_launch(lab):
    """A local-mode lab's coordinator: its pid and the argv it was started
    with (read from /proc)."""
    text, _ = lab_context(lab)
    pid = int(re.search(r"^coordinator_pid (\d+)$", text, re.M).group(1))
    argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    return pid, argv


def restart_coordinator(lab):
    """SIGKILL a local-mode lab's coordinator and start it again exactly as
    it was started (it reloads its journal), with its log appended to; the
    lab's context names the new pid so that `plexus down` stops it. Returns
    the new Popen (the caller waits for it after `plexus down`)."""
    old, argv = coordinator_launch(lab)
    text, _ = lab_context(lab)
    os.kill(old, signal.SIGKILL)
    wait_until("the coordinator to die", lambda: not alive(old), timeout=10, interval=0.01)
    with open(LOCAL_ROOT / lab / "coordinator.log", "ab") as log:
        new = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    text, n = re.subn(rf"^coordinator_pid {old}$", f"coordinator_pid {new.pid}", text, flags=re.M)
    assert n == 1
    write_context(lab, text)
    return new


class NodeLaunch:
    """How a running plexus-node was started, read from /proc before it is
    killed: enough to start it again the same way (local mode has no
    command for it)."""

    def __init__(self, pid):
        self.argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                     if a]
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        self.env = dict(e.decode().split("=", 1) for e in env if b"=" in e)
        self.cwd = os.readlink(f"/proc/{pid}/cwd")
        self.netns = node_netns(pid)
        self.log = self.argv[self.argv.index("--log-file") + 1]

    def start(self):
        """As local mode does (px_spawn_daemon): its own session, stdin
        /dev/null, stdout and stderr appended to its log file, in the same
        network namespace."""
        with open(self.log, "ab") as out:
            return subprocess.Popen(["ip", "netns", "exec", self.netns, *self.argv], env=self.env,
                                    cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, start_new_session=True)


def node_netns(pid):
    """The named network namespace a local-mode node runs in."""
    ns = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                        text=True, check=True).stdout.split()
    assert len(ns) == 1, f"node {pid} is in no named network namespace: {ns}"
    return ns[0]


def restart_node(lab, host, started, also_kill=None):
    """SIGKILL a local-mode lab's node on host (and the process also_kill),
    then start the node again as local mode did, and record its new pid in
    the lab's context so that `plexus down` stops it (and never signals a
    reused pid). The new Popen is appended to started (the caller reaps it
    after `plexus down`) and returned."""
    old = lab_context(lab)[1][host]
    launch = NodeLaunch(old)
    os.kill(old, signal.SIGKILL)
    if also_kill:
        os.kill(also_kill, signal.SIGKILL)
        wait_until(f"pid {also_kill} to die", lambda: not alive(also_kill), timeout=10,
                   interval=0.01)
    wait_until(f"{host}'s node to die", lambda: not alive(old), timeout=10, interval=0.01)
    new = launch.start()
    started.append(new)
    set_context_pid(lab, host, old, new.pid)
    return new


def reap_restarted(started):
    """After `plexus down`: wait for the nodes restart_node started (down
    stopped them through the context file); kill any left. Returns what had
    to be killed."""
    leaks = []
    for p in started:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            leaks.append(f"node pid {p.pid}")
    return leaks


class IvshmemPeer:
    """A client of QEMU's ivshmem-server protocol (QEMU-7.2-FACTS: one
    little-endian int64 per message, fds in SCM_RIGHTS), as a host program
    or QEMU sees a region's socket: the greeting (version, own ID, the
    memory, other peers' eventfds, then own), later join and leave notices."""

    def __init__(self, path, vectors, timeout=10):
        import mmap
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.vectors = vectors
        self.fds = {}  # peer: [eventfd per vector]
        self.gone = []  # peers announced as left
        self.mem = None
        assert self.recv() == (0, None), "no version 0 first"
        self.id, fd = self.recv()
        assert fd is None
        v, shm = self.recv()
        assert v == -1 and shm is not None, (v, shm)
        self.mem = mmap.mmap(shm, os.fstat(shm).st_size)
        os.close(shm)
        # other peers' eventfds, then own: the greeting ends with own vectors
        while len(self.fds.get(self.id, [])) < vectors:
            self._take(*self.recv())

    def recv(self):
        import socket
        import struct
        msg, fds, _, _ = socket.recv_fds(self.sock, 8, 4)
        assert len(msg) == 8, f"short message {msg!r}"
        for extra in fds[1:]:
            os.close(extra)
        return struct.unpack("<q", msg)[0], (fds[0] if fds else None)

    def _take(self, peer, fd):
        if fd is None:  # a leave notice
            for f in self.fds.pop(peer, []):
                os.close(f)
            self.gone.append(peer)
        else:
            self.fds.setdefault(peer, []).append(fd)

    def notices(self):
        """Read the join and leave notices that arrived (without waiting)."""
        import select
        while select.select([self.sock], [], [], 0)[0]:
            self._take(*self.recv())
        return self

    def peers(self):
        return sorted(p for p in self.notices().fds if p != self.id)

    def ring(self, peer, vector):
        import struct
        os.write(self.fds[peer][vector], struct.pack("<Q", 1))

    def wait(self, vector, timeout):
        """True once own `vector` was rung (its counter is then cleared)."""
        import select
        fd = self.fds[self.id][vector]
        if not select.select([fd], [], [], timeout)[0]:
            return False
        os.read(fd, 8)
        return True

    def close(self):
        for fds in self.fds.values():
            for fd in fds:
                os.close(fd)
        self.fds = {}
        if self.mem is not None:
            self.mem.close()
            self.mem = None
        self.sock.close()


class GuestShell:
    """The shell on a local-mode guest's serial console (its socket
    LABDIR/c<INDEX>.sock, as `plexus console` uses it): a command typed
    there and its exit status, read back from the console log."""

    def __init__(self, lab, host, guest, index):
        self.lab, self.host, self.guest, self.index = lab, host, guest, index

    def log(self):
        return guest_log(self.lab, self.host, self.guest)

    def type(self, line):
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(lab_dir(self.lab, self.host) / f"c{self.index}.sock"))
        try:
            s.sendall(line.encode() + b"\r")
            time.sleep(0.2)  # let QEMU take the line before the socket closes
        finally:
            s.close()

    class Pending:
        """A command typed on the console whose marker is awaited later."""

        def __init__(self, shell, command):
            self.shell, self.command = shell, command
            self.tag = f"PXS{time.monotonic_ns() % 10000000}"
            self.start = len(shell.log())
            shell.type(f"{command}; echo {self.tag}=$?")

        def result(self, timeout=30):
            """(exit status, what the command printed after the typed line)."""
            pat = re.compile(rf"^{self.tag}=(\d+)", re.M)
            out = wait_until(f"{self.shell.guest} to answer {self.command!r} on its console",
                             lambda: (t := self.shell.log()[self.start:]) and pat.search(t) and t,
                             timeout=timeout, interval=0.1)
            m = pat.search(out)
            return int(m.group(1)), out[:m.start()]

    def start(self, command):
        """Type command now; .result() waits for it."""
        return GuestShell.Pending(self, command)

    def run(self, command, timeout=30):
        """(exit status, what the command printed)."""
        return self.start(command).result(timeout)

    def try_run(self, command, timeout):
        """run, but a guest that does not answer in time gives None."""
        try:
            return self.run(command, timeout)
        except AssertionError:
            return None

    def ok(self, command, timeout=30):
        st, out = self.run(command, timeout)
        assert st == 0, f"{self.guest}: {command} -> {st}\n{out}"
        return out

    def wait_ready(self, boots=1, timeout=120):
        """Until the guest has booted `boots` times (counting in its console
        log) and its shell answers."""
        mark = f"PLEXUS-GUEST-READY name={self.guest}"
        wait_until(f"{self.guest} to boot", lambda: self.log().count(mark) >= boots,
                   timeout=timeout, interval=0.5)

        # The first typed line can come before the console's shell: retry.
        wait_until(f"{self.guest}'s shell", lambda: self.try_run("true", 10), timeout=60,
                   interval=0)
