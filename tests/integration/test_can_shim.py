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
    (`pxcan recv` output on the serial console), a malformed one does not;
  - CAN FD with the built-in guest's ctucan_pci (both cores on the bus, can0
    and can1 up at 500 kbit/s, 2 Mbit/s data): a 64-byte FD frame with BRS the
    guest sends arrives at the server with FDF|BRS and all 64 bytes (and at
    the guest's other core); FD frames with and without BRS and a classic
    frame the server injects are printed by the guest's `pxcan recv -x`.
The guest parts skip, saying why, when the image is missing (build it with
scripts/guest-image.sh) or, for CAN FD, when it lacks the ctucanfd modules.
About 35 s under TCG on 2 cores.

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
BRS, ESI, FDF = 0x01, 0x02, 0x04

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


def need_image():
    if not (IMAGE / "vmlinuz").exists() or not (IMAGE / "initrd.img").exists():
        print(f"SKIP guest part: no image in {IMAGE} (run scripts/guest-image.sh)")
        pytest.skip(f"no guest image in {IMAGE} (run scripts/guest-image.sh)")


def boot_guest(tmp_path, sockdir, can, device, env=None):
    """The built-in guest with DEVICE on cb0 and plexus.can=CAN, QEMU's
    can-host-socketcan on the shim; returns (node, qemu, type_line, text)
    once the ready marker is on the console."""
    node = Node(sockdir / "pxcan0.sock")
    q = start_qemu(tmp_path, [
        "-m", "256", "-no-reboot", "-serial", "stdio",
        "-kernel", str(IMAGE / "vmlinuz"), "-initrd", str(IMAGE / "initrd.img"),
        "-append", f"console=ttyS0 quiet panic=-1 plexus.name=canshim plexus.can={can}",
        "-device", device, *host_obj()],
        env or shim_env(sockdir), stdin=subprocess.PIPE, name="guest")

    def type_line(line):
        q.stdin.write(line.encode() + b"\n")
        q.stdin.flush()

    def text():
        return q.out_path.read_text(errors="replace").replace("\r", "")

    try:
        wait_until("QEMU to connect", lambda: node.conn is not None, 15)
        wait_until("the guest's ready marker",
                   lambda: q.poll() is not None or "PLEXUS-GUEST-READY name=canshim"
                   in text(), 50)
        assert q.poll() is None, q.err_path.read_text()
        assert ": pxcan up" not in text(), text()[-2000:]
    except BaseException:
        stop(q)
        raise
    return node, q, type_line, text


def test_guest_frames_both_ways(tmp_path, sockdir):
    need_image()
    node, q, type_line, _ = boot_guest(tmp_path, sockdir, "can0:500000",
                                       "kvaser_pci,canbus=cb0")
    console = q.out_path
    try:
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


def ctucanfd_in_image():
    """Whether the image's boot list has the out-of-tree ctucanfd_pci
    (scripts/guest-image.sh builds it; manifest.txt says what went in)."""
    manifest = IMAGE / "manifest.txt"
    if not manifest.exists():
        return False, f"{manifest} missing"
    for line in manifest.read_text().splitlines():
        if line.startswith("modules-loaded-at-boot:"):
            if "ctucanfd_pci" in line.split():
                return True, ""
    why = next((ln for ln in manifest.read_text().splitlines() if ln.startswith("ctucanfd:")),
               "no ctucanfd line (an image from before the CAN FD modules)")
    return False, f"the image in {IMAGE} has no ctucanfd_pci module ({why})"


def test_guest_can_fd_ctucan(tmp_path, sockdir):
    need_image()
    ok, why = ctucanfd_in_image()
    if not ok:
        print(f"SKIP CAN FD guest part: {why} (rebuild with scripts/guest-image.sh)")
        pytest.skip(why)
    env = shim_env(sockdir)
    env.pop("PLEXUS_CAN_MTU", None)  # default 72: QEMU turns CAN FD on
    node, q, type_line, text = boot_guest(
        tmp_path, sockdir, "can0:500000:2000000,can1:500000:2000000",
        "ctucan_pci,canbus0=cb0,canbus1=cb0", env)
    try:
        # The interfaces and their drivers, as the guest names them: the two
        # cores of the one ctucan_pci, core 0 first.
        type_line('for i in /sys/class/net/can*; do echo "IFACE ${i##*/} '
                  '$(basename $(readlink $i/device/driver)) $(cat $i/mtu)"; done; echo IFACES-$((6*7))')
        # Markers the shell computes: the echo of the typed line never matches.
        wait_until("the interface list", lambda: "IFACES-42" in text(), 15)
        ifaces = re.findall(r"^IFACE (can\d+) (\S+) (\d+)$", text(), re.M)
        assert ifaces == [("can0", "ctucanfd_pci", "72"), ("can1", "ctucanfd_pci", "72")], \
            text()[-2000:]
        type_line("pxcan show can0")
        show = wait_until("pxcan show can0", lambda: re.search(r"^can0: UP .*$", text(), re.M), 15)
        assert " fd" in show.group(0) and "dbitrate 2000000" in show.group(0), show.group(0)
        assert "bitrate 500000" in show.group(0), show.group(0)

        # Guest -> node: 64 bytes with BRS. QEMU's bus also hands it to can1.
        payload = bytes(range(64))
        type_line("pxcan recv can1 -x -n 1 -t 20000 >/tmp/r1 & sleep 1; "
                  f"pxcan send can0 123##1{payload.hex().upper()}; echo SEND=$?; "
                  "wait; cat /tmp/r1; echo CAN1-$((6*7))")
        wait_until("an FD frame from the guest", lambda: len(node.got) >= 1, 20)
        assert unframe(node.got[0]) == (0x123, FDF | BRS, payload)
        assert node.got[0][4] == 64
        wait_until("can1's copy", lambda: "CAN1-42" in text(), 25)
        assert "SEND=0" in text(), text()[-2000:]
        hexes = " ".join(f"{b:02X}" for b in payload)
        assert f"  can1  RX B -  123  [64]  {hexes}" in text(), text()[-3000:]

        # Node -> guest: FD with BRS, FD without, classic; inject until the
        # guest's pxcan recv has three frames.
        type_line("pxcan recv can0 -x -n 3 -t 20000; echo RECV-DONE=$?")
        fd48 = bytes((i * 7) & 0xFF for i in range(48))
        deadline = time.monotonic() + 25
        while not re.search(r"^RECV-DONE=\d", text(), re.M):
            assert time.monotonic() < deadline, text()[-3000:]
            node.send(frame(0x1ABCDEF0 | EFF, fd48, flags=FDF | BRS))
            node.send(frame(0x456, bytes(range(1, 13)), flags=FDF))
            node.send(frame(0x321, b"\x11\x22\x33"))
            time.sleep(0.3)
        out = text()
        assert "RECV-DONE=0" in out, out[-3000:]
        assert "  can0  RX B -  1ABCDEF0  [48]  " + " ".join(f"{b:02X}" for b in fd48) in out, \
            out[-3000:]
        assert "  can0  RX - -  456  [12]  01 02 03 04 05 06 07 08 09 0A 0B 0C" in out, out[-3000:]
        assert "  can0  RX - -  321   [3]  11 22 33" in out, out[-3000:]
        # The guest sent nothing else onto the bus.
        assert len(node.got) == 1, [unframe(m) for m in node.got]
    finally:
        stop(q)
