"""End to end: a node killed with SIGKILL and started again takes over the
QEMU guests that outlived it (docs/guests.md "Node restarts").

One lab, two tiny TCG guests pinned to two simulated hosts (`--local`, one
network namespace per node). Once both have booted, hb's plexus-node is
killed with SIGKILL; its guest's QEMU must keep running. The node is then
started again exactly as local mode started it: the same argv, environment
and working directory, in the same network namespace, in a session of its
own, logging to the same file (restart_node in tests/pylib/plexus_test.py;
local mode has no command for it, so it reads /proc/PID/{cmdline,environ,
cwd} and `ip netns identify PID` before the kill, and records the new pid
in the lab's context file so that `plexus down` stops the new process and never
signals a reused pid). Checked:
  - the coordinator sends hb its plan again and hb reports the guest
    running with the SAME QEMU pid (the status detail names it), no second
    QEMU is started for it, and its serial console still answers;
  - the lab is not re-placed (same epoch, same hosts) and the guest on ha
    is untouched;
  - the data-plane links between the nodes come back (hb binds the port it
    had);
  - killed again together with its guest's QEMU, the node starts that
    guest afresh over the stale pid file and sockets, and it boots;
  - a graceful stop of the restarted node (SIGTERM) still stops the guest
    it adopted: the node exits only after that QEMU is gone.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/e2e/test_node_restart.py
"""
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
import plexus_test  # noqa: E402
from plexus_test import (guest_log, qemu_lab_marks, alive, lab_context, reap_restarted,  # noqa: E402
                         restart_node, run, status, wait_until)

BOOT_TIMEOUT = 120  # TCG on 2 cores shared with other work
LAB = "restarte2e"

pytestmark = qemu_lab_marks()

TOPOLOGY = f"""\
name: {LAB}
defaults: {{image: builtin:tiny, memory: 192M, cpus: 1, accelerator: tcg, restart: on-failure}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
placement:
  pin: {{ga: ha, gb: hb}}
nodes:
  ga: {{}}
  gb: {{}}
"""
GUESTS = ["ga", "gb"]


def lab_dir(host):
    return plexus_test.lab_dir(LAB, host)


def log(guest, host):
    return guest_log(LAB, host, guest)


def guest_pid(guest, host):
    return plexus_test.guest_pid(LAB, host, guest)


def lab_qemus():
    return plexus_test.lab_qemus(LAB)


def qemus_of(guest, host):
    """Live QEMU processes whose command line names this guest's QMP socket."""
    qmp = f"unix:{lab_dir(host)}/q{GUESTS.index(guest)}.sock,"
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.decode(errors="replace").startswith(qmp) for a in args) and alive(int(d.name)):
            out.append(int(d.name))
    return out


def run_in(guest, host, command, timeout=60):
    """Type a shell command on the guest's serial console (its socket, as
    `plexus console` does) and return what it printed before its marker."""
    tag = f"PXR{time.monotonic_ns() % 1000000}"
    start = len(log(guest, host))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(lab_dir(host) / f"c{GUESTS.index(guest)}.sock"))
    s.sendall(f"{command}; echo {tag}=$?\r".encode())
    try:
        out = wait_until(f"{guest} to answer {command!r} on its console",
                         lambda: (t := log(guest, host)[start:]) and
                         re.search(rf"^{tag}=0", t, re.M) and t, timeout=timeout, interval=0.2)
    finally:
        s.close()
    return out


def guest_row(st, name):
    return next(g for g in st["guests"] if g["name"] == name)


def links_up(st):
    nodes = {n["name"]: n for n in st["nodes"] if n["name"] in ("ha", "hb")}
    return len(nodes) == 2 and all(n["state"] == "up" and n["links_total"] == 1 and
                                   n["links_up"] == 1 for n in nodes.values())


@pytest.fixture
def lab(tmp_path):
    f = tmp_path / f"{LAB}.yaml"
    f.write_text(TOPOLOGY)
    run("down", LAB, timeout=120)
    run("up", f, "--local", check=True, timeout=120)
    restarted = []
    try:
        yield restarted
    finally:
        run("down", LAB, timeout=120)
        leaks = reap_restarted(restarted)  # stopped by `plexus down` through the context file
        # A QEMU nobody supervises any more (no pid file names it) would
        # outlive `plexus down` and keep the lab's namespace alive.
        for pid in lab_qemus():
            os.kill(pid, signal.SIGKILL)
            leaks.append(f"QEMU pid {pid}")
        assert not leaks, f"left running after plexus down: {leaks}"


def restart_hb(lab, also_kill=None):
    """SIGKILL hb's node (and the process also_kill), then start the node
    again as local mode did. Returns the new node's Popen."""
    return restart_node(LAB, "hb", lab, also_kill=also_kill)


def hb_endpoint(st):
    return next(n["endpoint"] for n in st["nodes"] if n["name"] == "hb")


def test_killed_node_restarts_and_adopts_its_running_guest(lab):
    for g, h in (("ga", "ha"), ("gb", "hb")):
        wait_until(f"{g} to boot", lambda g=g, h=h: f"PLEXUS-GUEST-READY name={g}" in log(g, h),
                   timeout=BOOT_TIMEOUT, interval=0.5)
    st = status(LAB)
    assert {g["name"]: g["host"] for g in st["guests"]} == {"ga": "ha", "gb": "hb"}
    assert all(g["state"] == "running" for g in st["guests"]), st["guests"]
    epoch, endpoint = st["labs"][0]["epoch"], hb_endpoint(st)
    wait_until("data-plane links up", lambda: links_up(status(LAB)), timeout=20)
    pid_a, pid_b = guest_pid("ga", "ha"), guest_pid("gb", "hb")
    assert pid_a and pid_b and qemus_of("gb", "hb") == [pid_b]
    node_a = lab_context(LAB)[1]["ha"]

    def running_with(pid, adopted):
        st = status(LAB)
        gb = guest_row(st, "gb")
        return st if gb["state"] == "running" and guest_pid("gb", "hb") == pid and \
            (f"QEMU pid {pid} adopted" in gb["detail"]) == adopted else None

    # SIGKILL: the node runs no cleanup; its guest's QEMU must not notice.
    # Once started again, it gets its plan again and adopts that QEMU.
    t0 = time.monotonic()
    new = restart_hb(lab)
    assert alive(pid_b), "gb's QEMU died with its node"
    st = wait_until("gb running with its original QEMU pid", lambda: running_with(pid_b, True),
                    timeout=30, interval=0.1)
    took = time.monotonic() - t0
    assert guest_row(st, "gb")["host"] == "hb"
    assert new.poll() is None
    assert qemus_of("gb", "hb") == [pid_b]
    # Nothing was re-placed: hb was back before the coordinator gave it up.
    assert st["labs"][0]["epoch"] == epoch, st["labs"][0]
    assert st["labs"][0]["state"] == "running", st["labs"][0]
    # The other host and its guest were left alone.
    ga = guest_row(st, "ga")
    assert ga["state"] == "running" and "adopted" not in ga["detail"], ga
    assert alive(node_a) and lab_context(LAB)[1]["ha"] == node_a
    assert guest_pid("ga", "ha") == pid_a and qemus_of("ga", "ha") == [pid_a]
    # The guest is alive inside, not just its process: its console answers.
    assert "adopted-42" in run_in("gb", "hb", "echo adopted-$((6*7))")
    assert "untouched-42" in run_in("ga", "ha", "echo untouched-$((6*7))")
    # hb took its old data-plane port: ha's link to it comes back by itself.
    assert hb_endpoint(st) == endpoint
    wait_until("data-plane links up again", lambda: links_up(status(LAB)), timeout=20)
    print(f"\nnode restart to adopted guest: {took:.2f} s")

    # A guest whose QEMU died with the node is started afresh, over the
    # stale pid file and sockets.
    restart_hb(lab, also_kill=pid_b)
    st = wait_until("gb started again", lambda: (p := guest_pid("gb", "hb")) != pid_b and
                    running_with(p, False), timeout=30, interval=0.1)
    pid_b2 = guest_pid("gb", "hb")
    assert qemus_of("gb", "hb") == [pid_b2]
    wait_until("gb to boot again", lambda: log("gb", "hb").count("PLEXUS-GUEST-READY name=gb") == 2,
               timeout=BOOT_TIMEOUT, interval=0.5)
    assert st["labs"][0]["epoch"] == epoch, st["labs"][0]
    assert guest_pid("ga", "ha") == pid_a and alive(pid_a)

    # Adopted once more, then a graceful stop of the node (SIGTERM) stops
    # the QEMU it adopted: the node exits only once that QEMU has exited.
    new = restart_hb(lab)
    wait_until("gb adopted again", lambda: running_with(pid_b2, True), timeout=30, interval=0.1)
    new.send_signal(signal.SIGTERM)
    assert new.wait(timeout=30) == 0
    assert not alive(pid_b2), "the restarted node stopped without stopping its adopted guest"
    assert alive(pid_a)
