"""End to end: an Ethernet segment between real QEMU guests (TCG) on two
simulated hosts, with a NAT uplink (docs/ethernet.md).

One lab, booted once for the module: segment `lan` with a libslirp uplink
at its home ha and a port forward (ha:18080 -> g1:8080); guests g1 and bad
on ha, g2 on hb, one NIC each on `lan`. Built-in images ask for DHCP on a
NAT segment's NICs. Commands are typed on the guests' serial consoles and
their console logs are read (as tests/e2e/test_can.py does); host-side
clients and servers run in ha's node's network namespace, where the uplink
runs. Checked:
  - every guest gets its address from the uplink's DHCP (10.0.2.15 on),
    g2 through the member on the other host;
  - g1 pings g2 across hosts, g2 pings the gateway 10.0.2.2;
  - NAT: g2 (on hb) reaches a TCP server on ha's loopback at 10.0.2.2;
  - the port forward reaches httpd in g1 from ha's loopback;
  - `plexus link set/show/reset` delay g2's frames, seen in g1's ping RTT;
  - `plexus capture` writes one pcap with g1's requests (entering on ha)
    and g2's replies (entering on hb) in time order;
  - a guest sending frames over the segment's MTU is cut off alone and
    counted, the others carry on, and it comes back;
  - hb's node killed with SIGKILL and started again (its QEMU kept)
    reconnects g2's NIC: g1 pings g2 again.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/e2e/test_eth.py
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
import plexus_test  # noqa: E402
from plexus_test import (GuestShell, guest_log, qemu_lab_marks, LOCAL_ROOT, PLEXUS, alive, lab_context,  # noqa: E402
                         node_netns, reap_restarted, restart_node, run, status, wait_until)

BOOT_TIMEOUT = 180  # three TCG guests on 2 cores shared with other work
LAB = "ethe2e"
FWD_PORT = 18080
GATEWAY = "10.0.2.2"

pytestmark = qemu_lab_marks()

TOPOLOGY = f"""\
name: {LAB}
defaults: {{image: builtin:tiny, memory: 192M, cpus: 1, accelerator: tcg, restart: on-failure}}
hosts:
  ha: {{cpus: 8, memory: 4G}}
  hb: {{cpus: 8, memory: 4G}}
nets:
  lan:
    type: eth_segment
    nat: {{forwards: [{{proto: tcp, listen: {FWD_PORT}, guest: g1, port: 8080}}]}}
placement:
  pin: {{g1: ha, g2: hb, bad: ha, lan: ha}}
nodes:
  g1: {{nics: [lan]}}
  g2: {{nics: [lan]}}
  bad: {{nics: [lan]}}
"""
GUESTS = ["g1", "g2", "bad"]  # in topology order: console c<index>.sock
HOST = {"g1": "ha", "g2": "hb", "bad": "ha"}


def lab_dir(host):
    return plexus_test.lab_dir(LAB, host)


def log(guest):
    return guest_log(LAB, HOST[guest], guest)


def node_log(host):
    try:
        return (LOCAL_ROOT / LAB / f"node-{host}.log").read_text(errors="replace")
    except OSError:
        return ""


def guest_pid(guest):
    return plexus_test.guest_pid(LAB, HOST[guest], guest)


def lab_qemus():
    return plexus_test.lab_qemus(LAB)


def shell(guest):
    return GuestShell(LAB, HOST[guest], guest, GUESTS.index(guest))


def type_line(guest, line):
    shell(guest).type(line)


def run_in(guest, command, timeout=60):
    """Run a shell command in the guest: (exit status, what it printed)."""
    return shell(guest).run(command, timeout)


def try_in(guest, command, timeout):
    return shell(guest).try_run(command, timeout)


def ping(src, dst, count=3, size=None):
    """`ping` from guest src: (exit status, avg RTT in ms or None, output)."""
    s = f" -s {size}" if size else ""
    st, out = run_in(src, f"ping -c {count} -W 2{s} {dst}", timeout=30 + 3 * count)
    m = re.search(r"min/avg/max = [\d.]+/([\d.]+)/", out)
    return st, float(m.group(1)) if m else None, out


def port_row(port):
    r = run("--json", "link", "show", port, "--lab", LAB, check=True)
    for node in json.loads(r.stdout):
        for p in node["ports"]:
            if p["port"] == port:
                return p
    raise AssertionError(f"no port {port} in `plexus link show`: {r.stdout}")


def in_ha(script, *args, timeout=30):
    """Run a Python script in ha's node's network namespace (where the
    uplink runs and its forwards listen)."""
    ns = node_netns(lab_context(LAB)[1]["ha"])
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


class Lab:
    def __init__(self):
        self.restarted = []  # nodes started by restart_node: reaped after down
        self.addr = {}
        self.mac = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    f = tmp_path_factory.mktemp("eth") / f"{LAB}.yaml"
    f.write_text(TOPOLOGY)
    run("down", LAB, timeout=120)
    run("up", f, "--local", check=True, timeout=120)
    lab = Lab()
    try:
        for g in GUESTS:
            wait_until(f"{g} to boot", lambda g=g: f"PLEXUS-GUEST-READY name={g}" in log(g),
                       timeout=BOOT_TIMEOUT, interval=0.5)
        # The first typed line can come before the console's shell: retry.
        for g in GUESTS:
            wait_until(f"{g}'s shell", lambda g=g: try_in(g, "true", 10), timeout=60, interval=0)
            st, out = run_in(g, "cat /sys/class/net/eth0/address")
            lab.mac[g] = re.findall(r"^([0-9a-f:]{17})$", out, re.M)[-1]
        yield lab
    finally:
        run("down", LAB, timeout=120)
        leaks = reap_restarted(lab.restarted)
        for pid in lab_qemus():
            os.kill(pid, signal.SIGKILL)
            leaks.append(f"QEMU pid {pid}")
        assert not leaks, f"left running after plexus down: {leaks}"


def guest_addr(guest):
    st, out = run_in(guest, "ip -4 addr show eth0")
    m = re.search(r"inet (10\.0\.2\.\d+)/24", out)
    return m.group(1) if st == 0 and m else None


@pytest.fixture(scope="module")
def addrs(lab):
    """Every guest's DHCP address (udhcpc goes on in the background if the
    first tries at boot failed)."""
    for g in GUESTS:
        lab.addr[g] = wait_until(f"{g} to get a DHCP address", lambda g=g: guest_addr(g),
                                 timeout=45, interval=1)
    return lab.addr


def test_every_guest_gets_a_dhcp_address(lab, addrs):
    assert len(set(addrs.values())) == len(GUESTS), addrs
    for g, a in addrs.items():
        assert 15 <= int(a.rsplit(".", 1)[1]) < 15 + 16, f"{g}: {a} is not from the uplink's pool"
        st, out = run_in(g, "ip route show default")
        assert f"default via {GATEWAY}" in out, f"{g} has no default route via the gateway: {out}"
    # udhcpc logged the lease it got from the uplink.
    for g in GUESTS:
        st, out = run_in(g, "cat /run/udhcpc-eth0.log")
        assert addrs[g] in out, out


def test_ping_across_hosts_and_the_gateway(lab, addrs):
    st, _, out = ping("g1", addrs["g2"])
    assert st == 0, out
    st, _, out = ping("g2", GATEWAY)
    assert st == 0, out
    st, _, out = ping("g2", addrs["g1"])
    assert st == 0, out


SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4)
s.settimeout(60)
print("port", s.getsockname()[1], flush=True)
c, peer = s.accept()
c.settimeout(30)
data = b""
while b"\n" not in data:
    d = c.recv(4096)
    if not d:
        break
    data += d
c.sendall(sys.argv[1].encode() + b"\n")
c.close()
print("got", data.decode(errors="replace").strip(), flush=True)
"""


def test_nat_reaches_a_tcp_server_on_the_home_host(lab, addrs):
    """g2 runs on hb: its connection crosses to the uplink on ha, which
    connects to ha's loopback."""
    token = f"{os.getpid()}{time.monotonic_ns() % 100000}"
    ns = node_netns(lab_context(LAB)[1]["ha"])
    srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, f"pong-{token}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        assert line.startswith("port "), line + srv.stderr.read()
        port = int(line.split()[1])
        st, out = run_in("g2", f"echo hi-{token} | nc {GATEWAY} {port}", timeout=40)
        assert f"pong-{token}" in out, out
        got, err = srv.communicate(timeout=20)
        assert f"got hi-{token}" in got, got + err
        assert srv.returncode == 0, err
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


CLIENT = r"""
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"GET /index.html HTTP/1.0\r\nHost: g1\r\n\r\n")
data = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    data += d
sys.stdout.write(data.decode(errors="replace"))
"""


def test_port_forward_reaches_a_guest_server(lab, addrs):
    token = f"page-{os.getpid()}-{time.monotonic_ns() % 100000}"
    st, out = run_in("g1", f"mkdir -p /tmp/www && echo {token} > /tmp/www/index.html && "
                           "httpd -p 8080 -h /tmp/www")
    assert st == 0, out

    def fetch():
        r = in_ha(CLIENT, FWD_PORT)
        return r.stdout if r.returncode == 0 and token in r.stdout else None

    got = wait_until("ha:18080 to serve g1's page", fetch, timeout=30, interval=1)
    assert got.startswith("HTTP/1.") and " 200 " in got.split("\n", 1)[0], got
    assert token in got.split("\n\n", 1)[1], got  # (text mode: \r\n read as \n)


def test_link_delay_shows_in_ping_rtt(lab, addrs):
    st, base, out = ping("g1", addrs["g2"], count=5)
    assert st == 0 and base is not None, out
    run("link", "set", "g2:eth0", "--delay", "50ms", "--lab", LAB, check=True)
    try:
        row = port_row("g2:eth0")
        assert row["egress"]["delay_ns"] == 50_000_000 and row["live"], row
        assert row["ingress"]["delay_ns"] == 0, row
        st, slow, out = ping("g1", addrs["g2"], count=5)
        assert st == 0 and slow is not None, out
        assert slow >= 50 and slow >= base + 40, f"baseline {base} ms, delayed {slow} ms"
    finally:
        run("link", "reset", "g2:eth0", "--lab", LAB, check=True)
    row = port_row("g2:eth0")
    assert row["egress"]["delay_ns"] == 0 and not row["live"], row
    st, after, out = ping("g1", addrs["g2"], count=5)
    assert st == 0 and after is not None, out
    assert after < 50 and after < slow - 30, f"baseline {base}, delayed {slow}, after reset {after}"
    # And no more than the delay: a delayed frame to another host used to
    # wait for the node's next wake-up as well (10-20 ms more here).
    assert slow - 50 <= max(base, after) + 8, f"baseline {base}, delayed {slow}, after {after}"
    print(f"\nping g1 -> g2: {base} ms, with 50 ms delay {slow} ms, after reset {after} ms")


def read_pcap(path):
    """(ts_ns, src MAC, dst MAC, ICMP type, ICMP seq) of every IPv4 ICMP
    frame of a nanosecond pcap (LINKTYPE_ETHERNET)."""
    data = Path(path).read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert magic == 0xA1B23C4D, f"not a nanosecond pcap: {magic:#x}"
    assert linktype == 1
    out, off = [], 24
    while off < len(data):
        sec, nsec, incl, _ = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        mac = lambda b: ":".join(f"{x:02x}" for x in b)  # noqa: E731
        if struct.unpack_from("!H", frame, 12)[0] != 0x0800 or frame[23] != 1:
            continue
        icmp = 14 + (frame[14] & 15) * 4
        out.append((sec * 1_000_000_000 + nsec, mac(frame[6:12]), mac(frame[0:6]), frame[icmp],
                    struct.unpack_from("!H", frame, icmp + 6)[0]))
    return out


def test_capture_merges_both_hosts(lab, addrs, tmp_path):
    pcap = tmp_path / "lan.pcap"
    n = 4
    before = {h: node_log(h).count("capture started") for h in ("ha", "hb")}
    cap = subprocess.Popen([str(PLEXUS), "capture", "lan", "-f", "icmp", "-w", str(pcap),
                            "-c", str(2 * n), "--lab", LAB], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_until("the capture to start on both nodes",
                   lambda: cap.poll() is None and
                   all(node_log(h).count("capture started") > before[h] for h in before),
                   timeout=20, interval=0.1)
        st, _, out = ping("g1", addrs["g2"], count=n)
        assert st == 0, out
        _, err = cap.communicate(timeout=20)
        assert cap.returncode == 0, err
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    recs = read_pcap(pcap)
    g1, g2 = lab.mac["g1"], lab.mac["g2"]
    reqs = [r for r in recs if r[3] == 8]
    reps = [r for r in recs if r[3] == 0]
    assert len(recs) == 2 * n and len(reqs) == n and len(reps) == n, recs
    # Requests entered the segment at g1's port on ha, replies at g2's on hb.
    assert all(r[1] == g1 and r[2] == g2 for r in reqs), (g1, g2, reqs)
    assert all(r[1] == g2 and r[2] == g1 for r in reps), (g1, g2, reps)
    ts = [r[0] for r in recs]
    assert ts == sorted(ts), "records out of time order"
    for q in reqs:
        p = next(r for r in reps if r[4] == q[4])
        assert p[0] > q[0], f"reply to seq {q[4]} before its request"
    tshark = shutil.which("tshark")
    if tshark:
        t = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-e", "eth.src", "-e",
                            "icmp.type", "-e", "icmp.seq"], capture_output=True, text=True,
                           timeout=60)
        rows = [r.split("\t") for r in t.stdout.strip().split("\n") if r]
        assert [(r[0], int(r[1]), int(r[2])) for r in rows] == \
            [(r[1], r[3], r[4]) for r in recs], t.stdout + t.stderr


def test_oversized_frames_cut_off_one_guest(lab, addrs):
    before = port_row("bad:eth0")
    st, out = run_in("bad", "ip link set eth0 mtu 4000")
    assert st == 0, out
    try:
        # 3028-byte IP packets: frames over the segment's 1500 MTU.
        st, _, out = ping("bad", GATEWAY, count=2, size=3000)
        assert st != 0, f"oversized pings went through: {out}"
        row = wait_until("bad:eth0 cut off and counted",
                         lambda: (r := port_row("bad:eth0"))["oversize"] > before["oversize"] and
                         r["cutoffs"] > before["cutoffs"] and r, timeout=10, interval=0.2)
        assert row["oversize"] >= 1 and row["cutoffs"] >= 1, row
        # bad keeps sending them (cut off again each time it is let back
        # in) while the others carry on.
        st, out = run_in("bad", "ping -s 3000 -i 0.3 -W 1 10.0.2.2 >/dev/null 2>&1 & echo BG=$!")
        bg = re.findall(r"^BG=(\d+)", out, re.M)
        assert st == 0 and bg, out
        try:
            st, _, out = ping("g1", addrs["g2"], count=5)
            assert st == 0 and "0% packet loss" in out, out
            st, _, out = ping("g2", addrs["g1"])
            assert st == 0, out
        finally:
            run_in("bad", f"kill {bg[-1]}")
        after = port_row("bad:eth0")
        assert after["cutoffs"] > row["cutoffs"] and after["oversize"] > row["oversize"], after
        assert port_row("g1:eth0")["cutoffs"] == 0 and port_row("g2:eth0")["cutoffs"] == 0
    finally:
        run_in("bad", "ip link set eth0 mtu 1500")
    # Its port comes back after the hold; normal frames go through again.
    wait_until("bad to reach the gateway again", lambda: ping("bad", GATEWAY, count=1)[0] == 0,
               timeout=30, interval=0.5)


def test_node_restart_keeps_connectivity(lab, addrs):
    pid = guest_pid("g2")
    assert pid and alive(pid)
    restart_node(LAB, "hb", lab.restarted)
    assert alive(pid), "g2's QEMU died with its node"

    def adopted():
        g2 = next(g for g in status(LAB)["guests"] if g["name"] == "g2")
        return g2["state"] == "running" and f"QEMU pid {pid} adopted" in g2["detail"] and g2

    wait_until("g2 running with its original QEMU", adopted, timeout=30, interval=0.2)
    assert guest_pid("g2") == pid
    # The new node connects to the stream socket QEMU still listens on.
    wait_until("g1 to ping g2 again", lambda: ping("g1", addrs["g2"], count=1)[0] == 0,
               timeout=30, interval=0.5)
    st, _, out = ping("g1", addrs["g2"])
    assert st == 0, out
    st, _, out = ping("g2", GATEWAY)
    assert st == 0, out
    assert port_row("g2:eth0")["state"] == "up"
