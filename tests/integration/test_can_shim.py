"""Integration: libpxcanshim.so inside a real QEMU 7.2 (docs/can-shim.md).

QEMU's `can-host-socketcan` needs AF_CAN, which this host's kernel lacks. With
the shim preloaded it talks to a SOCK_SEQPACKET socket instead; here a small
Python server plays the node. Checked:
  - without the shim QEMU fails ("Address family not supported"), with it QEMU
    starts and connects to DIR/pxcan0.sock; a wrong if= fails at start with
    "No such device";
  - malformed messages from the node are dropped and counted, QEMU keeps
    answering QMP; when the node goes away QEMU keeps running and does not
    spin on the dead socket;
  - with the built-in guest (kvaser_pci on the bus, can0 up at 500 kbit/s):
    frames the guest sends (`pxcan send`) arrive at the server with the right
    id, flags, length and data; frames the server injects reach the guest
    (`pxcan recv` output on the serial console), a malformed one does not.
The guest part skips, saying why, when the image is missing (build it with
scripts/guest-image.sh). About 20 s under TCG on 2 cores.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/integration/test_can_shim.py
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import BUILD, ROOT, wait_until  # noqa: E402

SHIM = BUILD / "devices" / "can" / "libpxcanshim.so"
QEMU = shutil.which("qemu-system-x86_64")
IMAGE = Path(os.environ.get("PLEXUS_IMAGE_DIR", BUILD / "guest")) / "tiny"
if not (IMAGE / "vmlinuz").exists() and (ROOT / "build" / "guest" / "tiny" / "vmlinuz").exists():
    IMAGE = ROOT / "build" / "guest" / "tiny"

EFF, RTR, ERR = 0x80000000, 0x40000000, 0x20000000
FDF = 0x04

pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found")


def frame(can_id, data=b"", flags=0, length=None):
    """A 72-byte plexus wire frame (devices/can/frame.h), host byte order."""
    n = len(data) if length is None else length
    return struct.pack("=IBBxx64s", can_id, n, flags, data.ljust(64, b"\0"))


def unframe(msg):
    assert len(msg) == 72, f"wire message of {len(msg)} bytes"
    can_id, n, flags, res0, res1 = struct.unpack_from("=IBBBB", msg)
    assert (res0, res1) == (0, 0)
    assert msg[8 + n:] == b"\0" * (64 - n), "bytes past len are zero"
    return can_id, flags, msg[8:8 + n]


class Node:
    """The node's end: listens on DIR/IF.sock, records every message."""

    def __init__(self, path):
        self.path = str(path)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(self.path)
        self.lsock.listen(4)
        self.conn = None
        self.got = []
        self.eof = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            c, _ = self.lsock.accept()
        except OSError:
            return
        self.conn = c
        while True:
            try:
                m = c.recv(256)
            except OSError:
                break
            if not m:
                break
            self.got.append(m)
        self.eof = True

    def send(self, msg):
        self.conn.send(msg)

    def close(self):
        for s in (self.conn, self.lsock):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def shim_env(sockdir):
    env = dict(os.environ, PLEXUS_CAN_SOCKET_DIR=str(sockdir))
    preload = [str(SHIM)]
    # A sanitizer build's shim needs its runtime loaded first.
    ldd = subprocess.run(["ldd", str(SHIM)], capture_output=True, text=True).stdout
    for lib in ("libasan", "libubsan"):
        if m := re.search(rf"{lib}\S* => (\S+)", ldd):
            preload.insert(0, m.group(1))
            env["ASAN_OPTIONS"] = "detect_leaks=0"
    env["LD_PRELOAD"] = ":".join(preload)
    return env


def start_qemu(tmp_path, extra, env, stdin=subprocess.DEVNULL, name="qemu"):
    err = open(tmp_path / f"{name}.err", "w")
    out = open(tmp_path / f"{name}.out", "w")
    p = subprocess.Popen([QEMU, "-nodefaults", "-nographic", "-accel", "tcg",
                          "-object", "can-bus,id=cb0", *extra],
                         stdin=stdin, stdout=out, stderr=err, env=env)
    p.err_path, p.out_path = tmp_path / f"{name}.err", tmp_path / f"{name}.out"
    return p


def stop(p):
    """SIGTERM: QEMU exits normally, so the shim prints its counters."""
    if p.poll() is None:
        p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)


def qmp(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    wait_until("QMP socket", lambda: s.connect_ex(str(path)) == 0, 10)
    f = s.makefile("rw")
    assert "QMP" in json.loads(f.readline())

    def cmd(name):
        f.write(json.dumps({"execute": name}) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                return r
    assert "return" in cmd("qmp_capabilities")
    return s, cmd


@pytest.fixture
def sockdir(tmp_path):
    # sun_path is 108 bytes: keep the socket path short.
    d = Path("/tmp") / f"pxcs-{os.getpid()}-{time.monotonic_ns() % 100000}"
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def host_obj(ifname="pxcan0"):
    return ["-object", f"can-host-socketcan,id=h0,if={ifname},canbus=cb0"]


def test_without_shim_qemu_fails(tmp_path, sockdir):
    p = subprocess.run([QEMU, "-S", "-nodefaults", "-nographic", "-accel", "tcg",
                        "-object", "can-bus,id=cb0", *host_obj()],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "Address family not supported" in p.stderr, p.stderr


def test_unknown_interface_fails_at_start(tmp_path, sockdir):
    Node(sockdir / "pxcan0.sock")
    p = subprocess.run([QEMU, "-S", "-nodefaults", "-nographic", "-accel", "tcg",
                        "-object", "can-bus,id=cb0", *host_obj("pxcan9")],
                       capture_output=True, text=True, timeout=30, env=shim_env(sockdir))
    assert p.returncode != 0
    assert "pxcan9 not available: No such device" in p.stderr, p.stderr


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_connect_malformed_and_node_gone(tmp_path, sockdir):
    node = Node(sockdir / "pxcan0.sock")
    q = start_qemu(tmp_path, ["-S", "-qmp", f"unix:{tmp_path}/qmp,server=on,wait=off",
                              *host_obj()], shim_env(sockdir))
    try:
        wait_until("QEMU to connect to pxcan0.sock", lambda: node.conn is not None, 15)
        s, cmd = qmp(tmp_path / "qmp")
        assert cmd("query-status")["return"]["status"] == "prelaunch"
        node.send(b"\x01" * 10)                                  # wrong size
        node.send(frame(0x123, b"\0" * 8, length=9))              # len 9, classic
        node.send(frame(0x123, b"\0" * 13, flags=FDF))            # no such FD length
        node.send(frame(0x123, b"\xaa"))                          # fine
        wait_until("the drop warning", lambda: "dropped a 10-byte message"
                   in q.err_path.read_text(), 10)
        assert cmd("query-status")["return"]["status"] == "prelaunch"

        node.close()
        wait_until("QEMU to notice the node is gone",
                   lambda: "node socket" in q.err_path.read_text()
                   and "closed" in q.err_path.read_text(), 10)
        t0 = cpu_seconds(q.pid)
        time.sleep(1.0)
        assert cpu_seconds(q.pid) - t0 < 0.5, "QEMU spins on the dead socket"
        assert cmd("query-status")["return"]["status"] == "prelaunch"
        s.close()
    finally:
        stop(q)
    err = q.err_path.read_text()
    # The counters are printed at exit: 3 bad messages, 1 good one.
    assert re.search(r"pxcan0: 1 frames in, 0 out; dropped 3 from the node "
                     r"\(size 1, len 2,", err), err


def test_guest_frames_both_ways(tmp_path, sockdir):
    if not (IMAGE / "vmlinuz").exists() or not (IMAGE / "initrd.img").exists():
        print(f"SKIP guest part: no image in {IMAGE} (run scripts/guest-image.sh)")
        pytest.skip(f"no guest image in {IMAGE} (run scripts/guest-image.sh)")
    node = Node(sockdir / "pxcan0.sock")
    q = start_qemu(tmp_path, [
        "-m", "256", "-no-reboot", "-serial", "stdio",
        "-kernel", str(IMAGE / "vmlinuz"), "-initrd", str(IMAGE / "initrd.img"),
        "-append", "console=ttyS0 quiet panic=-1 plexus.name=canshim plexus.can=can0:500000",
        "-device", "kvaser_pci,canbus=cb0", *host_obj()],
        shim_env(sockdir), stdin=subprocess.PIPE, name="guest")
    console = q.out_path

    def type_line(line):
        q.stdin.write(line.encode() + b"\n")
        q.stdin.flush()

    try:
        wait_until("QEMU to connect", lambda: node.conn is not None, 15)
        wait_until("the guest's ready marker",
                   lambda: q.poll() is not None or "PLEXUS-GUEST-READY name=canshim"
                   in console.read_text(errors="replace"), 50)
        assert q.poll() is None, q.err_path.read_text()
        assert "can0: pxcan up" not in console.read_text(errors="replace")

        # Guest -> node.
        type_line("pxcan send can0 123#DEADBEEF 1ABCDEF0#R2 7FF#")
        wait_until("3 frames from the guest", lambda: len(node.got) >= 3, 15)
        got = [unframe(m) for m in node.got[:3]]
        assert got[0] == (0x123, 0, b"\xde\xad\xbe\xef")
        can_id, flags, data = unframe(node.got[1])
        assert can_id == 0x1ABCDEF0 | EFF | RTR and flags == 0
        assert node.got[1][4] == 2 and data == b"\0\0"  # remote request: length, no data
        assert got[2] == (0x7FF, 0, b"")

        # Node -> guest: inject until the guest's pxcan recv has both frames.
        type_line("pxcan recv can0 -n 2 -t 20000; echo RECV-DONE=$?")
        deadline = time.monotonic() + 25
        while "RECV-DONE=" not in console.read_text(errors="replace").replace(
                "echo RECV-DONE=", ""):
            assert time.monotonic() < deadline, console.read_text(errors="replace")[-2000:]
            node.send(frame(0x155, b"\x00" * 9, length=9))      # malformed: never arrives
            node.send(frame(0x321, b"\x11\x22\x33"))
            node.send(frame(0x1234567 | EFF, b"\x01\x02\x03\x04\x05\x06\x07\x08"))
            time.sleep(0.3)
        text = console.read_text(errors="replace").replace("\r", "")
        assert "RECV-DONE=0" in text, text[-2000:]
        assert "  can0  321   [3]  11 22 33" in text, text[-2000:]
        assert "  can0  01234567   [8]  01 02 03 04 05 06 07 08" in text, text[-2000:]
        assert "  can0  155" not in text
    finally:
        stop(q)
    err = q.err_path.read_text()
    assert "pxcan0: dropped a 72-byte message from the node: data length out of range" in err, err
