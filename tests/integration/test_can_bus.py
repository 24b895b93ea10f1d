"""Integration: CAN buses across simulated hosts, without QEMU.

`plexus up --local --dry-run` starts a coordinator and plexus-node daemons in
network namespaces; the nodes create every guest controller's endpoint
socket (LABDIR/can/g<G>c<I>.sock) but start no QEMU. This test plays QEMU
with libpxcanshim.so: it connects to those sockets and sends and receives
72-byte frames (docs/can-shim.md), so the bus service itself - endpoints,
home, members, data plane - is exercised exactly as guests use it:
  - every member sees every frame in the same order, none lost;
  - a malformed frame cuts off that endpoint alone, which can reconnect;
  - FD frames carry on an FD bus and are refused (counted) on a classic one;
  - timed mode carries the physical maximum for the frames sent and never
    more, and the lowest identifier wins arbitration.
Real guests are in tests/e2e/test_can.py.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/integration/test_can_bus.py
"""
import re
import shutil
import socket
import subprocess
import struct
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import sys
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import LOCAL_ROOT, PLEXUS, lab_for_test, up_dry_run, CanStats, run, wait_until  # noqa: E402

FDF, BRS = 0x04, 0x01


def frame(can_id, data=b"", flags=0):
    return struct.pack("=IBBxx64s", can_id, len(data), flags, data.ljust(64, b"\0"))


def unframe(msg):
    can_id, n, flags = struct.unpack_from("=IBB", msg)
    return can_id, flags, bytes(msg[8:8 + n])


class Endpoint:
    """One guest controller, as QEMU's can-host-socketcan sees it."""

    def __init__(self, lab, host, guest_index, ctrl=0):
        self.path = LOCAL_ROOT / lab / "nodes" / host / lab / "can" / f"g{guest_index}c{ctrl}.sock"
        self.got = []
        self.closed = False
        self.connect()

    def connect(self):
        wait_until(f"endpoint {self.path}", self.path.exists, timeout=10)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(str(self.path))
        self.closed = False
        self.thread = threading.Thread(target=self._rx, daemon=True)
        self.thread.start()

    def _rx(self):
        while True:
            try:
                m = self.sock.recv(128)
            except OSError:
                break
            if not m:
                break
            self.got.append((time.monotonic(), unframe(m)))
        self.closed = True

    def send(self, msg):
        self.sock.send(msg)

    def frames(self):
        return [f for _, f in self.got]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


up = up_dry_run


@pytest.fixture
def lab(request):
    yield from lab_for_test(request, "cb")


THREE_HOSTS = """\
name: {name}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
  hc: {{cpus: 8, memory: 4G}}
nets:
  body: {{type: can_bus, bitrate: 500k}}
  fdbus: {{type: can_bus, fd: true, bitrate: 500k, data_bitrate: 2M}}
placement:
  pin: {{a: ha, b: hb, c: hc, d: hb, body: hc, fdbus: ha}}
nodes:
  a: {{can: [body, fdbus]}}
  b: {{can: [body, fdbus]}}
  c: {{can: [body]}}
  d: {{can: [body]}}
"""


def test_one_order_for_every_member_across_three_hosts(tmp_path, lab):
    up(tmp_path, lab, THREE_HOSTS.format(name=lab))
    eps = {g: Endpoint(lab, h, i) for i, (g, h) in enumerate(
        [("a", "ha"), ("b", "hb"), ("c", "hc"), ("d", "hb")])}
    n = 3000
    ids = {"a": 0x100, "b": 0x200, "c": 0x300}

    def sender(g):
        for k in range(n):
            eps[g].send(frame(ids[g], struct.pack(">I", k)))

    threads = [threading.Thread(target=sender, args=(g,)) for g in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # d hears everyone; a sender hears the two others (its own frame comes
    # back to QEMU's controller as TX-complete, not as a received frame).
    wait_until("d to hear every frame", lambda: len(eps["d"].got) >= 3 * n, timeout=30)
    for g in ids:
        wait_until(f"{g} to hear the others", lambda g=g: len(eps[g].got) >= 2 * n, timeout=30)
    time.sleep(0.2)
    full = eps["d"].frames()
    assert len(full) == 3 * n
    for g, cid in ids.items():
        mine = [f for f in full if f[0] == cid]
        assert [struct.unpack(">I", f[2])[0] for f in mine] == list(range(n)), \
            f"{g}'s frames out of its own order"
        others = [f for f in full if f[0] != cid]
        assert eps[g].frames() == others, f"{g} saw a different order than d"
    # Nothing lost anywhere, and the counters say so.
    st = CanStats(lab, "body")
    assert st.home["frames"] == 3 * n
    assert st.home["drops"] == 0
    members = st.members
    assert len(members) == 3
    assert all(m["lost"] == 0 and m["stale"] == 0 for m in members)
    assert sum(m["delivered"] for m in members) == 3 * 3 * n
    for e in eps.values():
        e.close()


def test_malformed_frame_cuts_off_that_endpoint_alone(tmp_path, lab):
    up(tmp_path, lab, THREE_HOSTS.format(name=lab))
    a, b, c = Endpoint(lab, "ha", 0), Endpoint(lab, "hb", 1), Endpoint(lab, "hc", 2)
    b.send(b"\x01" * 10)  # not a frame
    wait_until("the node to cut b off", lambda: b.closed, timeout=10)
    a.send(frame(0x123, b"\xde\xad"))
    wait_until("c to receive a's frame", lambda: c.got, timeout=10)
    assert c.frames() == [(0x123, 0, b"\xde\xad")]
    # b's controller reconnects (a restarted QEMU) and works again.
    b.connect()
    time.sleep(0.2)
    a.send(frame(0x124, b"\x01"))
    wait_until("b to receive after reconnecting", lambda: b.got, timeout=10)
    assert b.frames() == [(0x124, 0, b"\x01")]
    by_guest = CanStats(lab, "body").eps
    assert by_guest["b"]["malformed"] == 1
    assert by_guest["a"]["malformed"] == 0
    for e in (a, b, c):
        e.close()


def test_fd_frames_carry_on_an_fd_bus_only(tmp_path, lab):
    up(tmp_path, lab, THREE_HOSTS.format(name=lab))
    a_fd, b_fd = Endpoint(lab, "ha", 0, 1), Endpoint(lab, "hb", 1, 1)
    a, b = Endpoint(lab, "ha", 0), Endpoint(lab, "hb", 1)
    data = bytes(range(64))
    a_fd.send(frame(0x80000000 | 0x1abcdef, data, FDF | BRS))
    wait_until("b to receive the FD frame", lambda: b_fd.got, timeout=10)
    assert b_fd.frames() == [(0x80000000 | 0x1abcdef, FDF | BRS, data)]
    # The same frame on the classic bus goes nowhere, and is counted.
    a.send(frame(0x321, data[:12], FDF))
    a.send(frame(0x322, b"\x05"))
    wait_until("b to receive the classic frame", lambda: b.got, timeout=10)
    assert b.frames() == [(0x322, 0, b"\x05")]
    assert CanStats(lab, "body").eps["a"]["refused"] == 1
    for e in (a_fd, b_fd, a, b):
        e.close()


TIMED = """\
name: {name}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
  hc: {{cpus: 8, memory: 4G}}
nets:
  slow: {{type: can_bus, bitrate: 125k, mode: timed}}
placement:
  pin: {{a: ha, b: hb, c: hc, d: hb, slow: ha}}
nodes:
  a: {{can: [slow]}}
  b: {{can: [slow]}}
  c: {{can: [slow]}}
  d: {{can: [slow]}}
"""


def test_timed_mode_carries_the_physical_maximum_and_lowest_id_wins(tmp_path, lab):
    up(tmp_path, lab, TIMED.format(name=lab))
    eps = {g: Endpoint(lab, h, i) for i, (g, h) in enumerate(
        [("a", "ha"), ("b", "hb"), ("c", "hc"), ("d", "hb")])}
    ids = {"a": 0x300, "b": 0x100, "c": 0x200}
    stop = threading.Event()

    def sender(g):
        s = eps[g].sock
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                s.send(frame(ids[g], b"\x55" * 8))
            except socket.timeout:
                pass  # the bus pushes back: the node stopped reading

    threads = [threading.Thread(target=sender, args=(g,)) for g in ids]
    for t in threads:
        t.start()
    wait_until("traffic at d", lambda: len(eps["d"].got) > 100, timeout=10)
    before = CanStats(lab, "slow").home
    t0 = time.monotonic()
    time.sleep(3.0)
    after = CanStats(lab, "slow").home
    t1 = time.monotonic()
    stop.set()
    for t in threads:
        t.join()
    frames = after["frames"] - before["frames"]
    wire_s = (after["wire_ns"] - before["wire_ns"]) / 1e9
    # Saturated: the frames emitted fill the wall-clock window exactly (the
    # window is measured around the two stats calls, so it is slightly wider).
    ratio = wire_s / (t1 - t0)
    assert 0.98 <= ratio <= 1.0 + 0.01, f"bus busy {ratio:.3f} of the time ({frames} frames)"
    # Every frame has the same length here: the rate is 1 / that length.
    per_frame = wire_s / frames
    assert 100 / 125e3 <= per_frame <= 135 / 125e3  # 8 data bytes, standard id, stuffing
    # Never more than the wire can carry, at any point: the bus timestamps
    # are not visible to QEMU endpoints, so count at d in 1 s windows.
    times = [t for t, f in eps["d"].got if t0 <= t <= t1]
    for w0 in (t0, t0 + 1.0):
        k = sum(1 for t in times if w0 <= t < w0 + 1.0)
        assert k <= 1.0 / per_frame * 1.02 + 2, f"{k} frames in one second at d"
    # Arbitration: b's 0x100 wins whenever it waits, so it dominates.
    by_id = Counter(f[0] for _, f in eps["d"].got)
    assert by_id[0x100] > 10 * max(by_id[0x200], by_id[0x300], 1) or \
        by_id[0x200] + by_id[0x300] == 0, by_id
    for e in eps.values():
        e.close()


TOOLS = """\
name: {name}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
nets:
  body: {{type: can_bus, bitrate: 500k}}
  chassis:
    type: can_bus
  powertrain:
    type: can_bus
    gateways:
      - to: chassis
        filter: "100:700"
        modify: ["SET:I:200.0.0000000000000000"]
placement:
  pin: {{a: ha, b: hb, c: hb, p: ha, body: ha, chassis: hb, powertrain: ha}}
nodes:
  a: {{can: [body]}}
  b: {{can: [chassis]}}
  c: {{can: [body]}}
  p: {{can: [powertrain]}}
"""


def test_tools_faults_gateways_and_recording(tmp_path, lab):
    up(tmp_path, lab, TOOLS.format(name=lab))
    a, c = Endpoint(lab, "ha", 0), Endpoint(lab, "hb", 2)
    b, p = Endpoint(lab, "hb", 1), Endpoint(lab, "ha", 3)

    # A host tool on the bus: dump sees guests' frames, send reaches guests.
    dump = subprocess.Popen([str(PLEXUS), "can", "dump", "body", "-n", "2", "-t", "20000",
                             "--lab", lab], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.0)  # the dump joins the bus at its home
    a.send(frame(0x7A1, b"\x01\x02"))
    run("can", "send", "body", "321#CAFE", "--lab", lab, check=True)
    out, err = dump.communicate(timeout=30)
    assert dump.returncode == 0, err
    lines = out.split("\n")
    assert re.match(r"^\(\d+\.\d{6}\) body 7A1#0102$", lines[0]), out
    assert re.match(r"^\(\d+\.\d{6}\) body 321#CAFE$", lines[1]), out
    wait_until("c to get both", lambda: len(c.got) == 2, timeout=10)
    assert c.frames() == [(0x7A1, 0, b"\x01\x02"), (0x321, 0, b"\xca\xfe")]
    assert a.frames() == [(0x321, 0, b"\xca\xfe")]

    # Gateway powertrain -> chassis: 0x1xx passes, rewritten to 0x200.
    p.send(frame(0x123, b"\xaa"))
    p.send(frame(0x456, b"\xbb"))
    p.send(frame(0x1FF, b"\xcc"))
    wait_until("b to get the gatewayed frames", lambda: len(b.got) >= 2, timeout=10)
    time.sleep(0.3)
    assert b.frames() == [(0x200, 0, b"\xaa"), (0x200, 0, b"\xcc")]
    gw = CanStats(lab, "powertrain").home["gateways"]
    assert gw == [{"to": "chassis", "forwarded": 2, "filtered": 1, "hop_limited": 0,
                   "invalid": 0}]

    # Faults at run time: c partitioned hears nothing and its frames go nowhere.
    run("can", "fault", "body", "--guest", "c", "--partition", "--lab", lab, check=True)
    a.send(frame(0x10, b"\x01"))
    c.send(frame(0x11, b"\x02"))
    a.send(frame(0x12, b"\x03"))
    time.sleep(0.5)
    assert len(c.got) == 2 and a.frames()[-1] == (0x321, 0, b"\xca\xfe")
    run("can", "fault", "body", "--heal", "--lab", lab, check=True)
    a.send(frame(0x13, b"\x04"))
    wait_until("c healed", lambda: len(c.got) == 3, timeout=10)
    assert c.frames()[-1] == (0x13, 0, b"\x04")
    # Bus-off: c's controller is told (the kernel's error frame), then hears nothing.
    run("can", "fault", "body", "--guest", "c", "--state", "bus-off", "--lab", lab, check=True)
    wait_until("c told it is bus-off", lambda: len(c.got) == 4, timeout=10)
    err_id, _, err_data = c.frames()[-1]
    assert err_id == 0x20000000 | 0x40 and len(err_data) == 8
    a.send(frame(0x14, b"\x05"))
    time.sleep(0.5)
    assert len(c.got) == 4
    # Drop everything on the bus: a's frame is refused, counted.
    run("can", "fault", "body", "--clear", "--lab", lab, check=True)
    run("can", "fault", "body", "--drop", "100%", "--lab", lab, check=True)
    a.send(frame(0x15, b"\x06"))
    time.sleep(0.5)
    st = CanStats(lab, "body")
    assert st.eps["a"]["refused"] >= 1 and st.home["fault"]["counters"]["dropped"] >= 1, st.nodes
    assert all(m["lost"] == 0 for m in st.members)
    bad = run("can", "fault", "body", "--drop", "lots", "--lab", lab)
    assert bad.returncode != 0 and '"lots"' in bad.stderr and "ppm" in bad.stderr
    run("can", "fault", "body", "--clear", "--lab", lab, check=True)

    # Recording at the home: candump log and pcap (LINKTYPE_CAN_SOCKETCAN).
    rec = run("can", "record", "body", "on", "--lab", lab, check=True).stdout
    a.send(frame(0x80000000 | 0x1ABCDEF0, b"\x11\x22"))
    a.send(frame(0x7FF, b""))
    wait_until("c to get the recorded frames", lambda: c.frames()[-1][0] == 0x7FF, timeout=10)
    run("can", "record", "body", "off", "--lab", lab, check=True)
    home_dir = LOCAL_ROOT / lab / "nodes" / "ha" / lab / "can"
    log_lines = (home_dir / "body.log").read_text().split("\n")
    assert re.match(r"^\(\d+\.\d{6}\) body 1ABCDEF0#1122$", log_lines[0]), log_lines
    assert re.match(r"^\(\d+\.\d{6}\) body 7FF#$", log_lines[1]), log_lines
    assert "body.pcap" in rec
    tshark = shutil.which("tshark")
    if tshark:
        t = subprocess.run([tshark, "-r", str(home_dir / "body.pcap"), "-T", "fields", "-e",
                            "can.id", "-e", "can.flags.xtd", "-e", "data.data"],
                           capture_output=True, text=True, timeout=60)
        rows = [r.split("\t") for r in t.stdout.strip().split("\n")]
        got = [(int(r[0], 0), r[1] in ("1", "True"), r[2] if len(r) > 2 else "") for r in rows]
        assert got == [(0x1ABCDEF0, True, "1122"), (0x7FF, False, "")], t.stdout + t.stderr
    for e in (a, b, c, p):
        e.close()


TOPO_FAULTS = """\
name: {name}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
nets:
  body: {{type: can_bus, bitrate: 500k}}
  lossy: {{type: can_bus, bitrate: 500k, impair: {{loss: 100%}}}}
placement:
  pin: {{a: ha, b: hb, body: ha, lossy: hb}}
nodes:
  a: {{can: [body, lossy]}}
  b: {{can: [body, lossy]}}
faults:
  - name: b-off
    type: can_bus_off
    guest: b
    net: body
    at: 1s
    duration: 1s
"""


def test_topology_faults(tmp_path, lab):
    """The topology's impairment and a scheduled fault act on their own."""
    up(tmp_path, lab, TOPO_FAULTS.format(name=lab))
    a, b = Endpoint(lab, "ha", 0), Endpoint(lab, "hb", 1)
    a_lossy, b_lossy = Endpoint(lab, "ha", 0, 1), Endpoint(lab, "hb", 1, 1)
    # loss: 100% on `lossy`: nothing goes through, every frame is counted.
    for k in range(5):
        a_lossy.send(frame(0x100 + k, b"\x01"))
    time.sleep(0.5)
    assert b_lossy.got == []
    home = CanStats(lab, "lossy").home
    assert home["frames"] == 0 and home["fault"]["counters"]["dropped"] == 5, home
    # b-off: b's controller is told it is bus-off about 1 s after the lab
    # came up, and that it restarted about 1 s later; in between it hears
    # nothing of the bus.
    wait_until("b bus-off", lambda: any(f[0] == 0x20000040 for f in b.frames()), timeout=10)
    a.send(frame(0x200, b"\x02"))
    time.sleep(0.2)
    assert all(f[0] & 0x20000000 for f in b.frames()), b.frames()
    wait_until("b restarted", lambda: any(f[0] == 0x20000100 for f in b.frames()), timeout=10)
    a.send(frame(0x201, b"\x03"))
    wait_until("b hears the bus again", lambda: b.frames()[-1] == (0x201, 0, b"\x03"), timeout=10)
    for e in (a, b, a_lossy, b_lossy):
        e.close()
