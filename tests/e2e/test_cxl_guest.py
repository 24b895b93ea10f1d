"""End to end, without a lab: a CXL LD's data in a real guest (TCG) and on
the next guest, on another "host" (docs/cxl.md, "What a guest sees").

The QEMU line is the real builder's (node/qemu_cmd.c), printed by
tests/e2e/cxl_line for a topology with one CXL switch attachment; the test
plays the node: it makes the LD's backing files (256 MiB memory, a 4 KiB
label storage), runs QEMU, says `cont` over QMP and types on the serial
console. Checked:
  - the guest sees the LD as mem0 behind host bridge 64 + 4 * vPPB, with
    its 4 KiB label storage, and one 256 MiB window per vPPB;
  - `pxcxl region` makes a region over it by sysfs writes alone, at the
    start of that vPPB's window;
  - what the guest writes with pxpoke is in the host's memory file at the
    same offset (read by the test while the guest runs), and what the host
    writes there the guest reads;
  - after a poweroff the file keeps it; a copy of both files (another
    host) bound to another vPPB of a second guest gives a new region whose
    contents are the first guest's, word for word.

No root needed. Run: PX_BUILD_DIR=build-cq /usr/bin/python3 -m pytest tests/e2e/test_cxl_guest.py
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import BUILD, IMAGE, wait_until  # noqa: E402

CXL_LINE = BUILD / "tests" / "e2e" / "cxl_line"
MIB = 1 << 20
LD_SIZE = 256 * MIB
LSA_SIZE = 4096  # PX_QEMU_CXL_LSA_SIZE
BUS_BASE, BUS_STRIDE, VPPBS = 64, 4, 4  # qemu_cmd.h


def _image_has_pxcxl():
    try:
        tools = re.search(r"^tools: (.*)$", (IMAGE / "manifest.txt").read_text(), re.M)
        return bool(tools) and "pxcxl" in tools.group(1).split()
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="needs qemu-system-x86_64"),
    pytest.mark.skipif(not (IMAGE / "vmlinuz").exists(),
                       reason=f"needs the built-in image in {IMAGE} (scripts/guest-image.sh)"),
    pytest.mark.skipif((IMAGE / "vmlinuz").exists() and not _image_has_pxcxl(),
                       reason=f"the image in {IMAGE} has no pxcxl: rebuild it "
                              "(scripts/guest-image.sh)"),
    pytest.mark.skipif(not CXL_LINE.exists(), reason=f"needs {CXL_LINE} (ninja)"),
]

TOPOLOGY = """\
name: cxlg
defaults: {image: 'builtin:tiny', memory: 256M, accelerator: tcg}
nets:
  fabric: {type: cxl_switch}
  pool0: {type: cxl_pool, switch: fabric, capacity: 1G}
nodes:
  a: {cxl: [fabric]}
  b: {cxl: [fabric]}
"""


class Guest:
    """One QEMU from a cxl_line argv (paused with -S): QMP, then the serial
    console, driven like a terminal with markers the echo cannot fake."""

    def __init__(self, argv, rundir, name):
        self.rundir = Path(rundir)
        self.name = name
        self.out = open(self.rundir / f"{name}.qemu.out", "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                  stderr=subprocess.STDOUT)
        self.n = 0
        self.buf = b""
        # the sockets the builder named (q<N>.sock, c<N>.sock: N is the
        # guest's index in the topology)
        qmp = Path(re.match(r"unix:([^,]+),", argv[argv.index("-qmp") + 1]).group(1))
        con = Path(re.search(r"(?:^|,)path=([^,]+)", argv[argv.index("-chardev") + 1]).group(1))
        for s in (qmp, con):
            wait_until(f"{s} (QEMU: {self.qemu_output()})", lambda s=s: s.exists() or
                       self.p.poll() is not None, 15)
            assert self.p.poll() is None, f"QEMU exited: {self.qemu_output()}"
        self.con = socket.socket(socket.AF_UNIX)
        self.con.connect(str(con))
        self.qmp = socket.socket(socket.AF_UNIX)
        self.qmp.connect(str(qmp))
        self.qmpf = self.qmp.makefile("rwb")
        json.loads(self.qmpf.readline())  # greeting
        for cmd in ("qmp_capabilities", "cont"):
            self.qmpf.write(json.dumps({"execute": cmd}).encode() + b"\n")
            self.qmpf.flush()
            while True:
                r = json.loads(self.qmpf.readline())
                if "return" in r or "error" in r:
                    break
            assert "return" in r, f"QMP {cmd}: {r}"

    def qemu_output(self):
        self.out.flush()
        return (self.rundir / f"{self.name}.qemu.out").read_text(errors="replace")[-2000:]

    def expect(self, pattern, timeout):
        """Read the console until pattern (bytes regex) matches; return the
        match and drop what came before it."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"guest {self.name}: no {pattern!r} within {timeout}s; "
                                     f"console ends: {self.buf[-1500:]!r}")
            self.con.settimeout(left)
            try:
                data = self.con.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError(f"guest {self.name}: console closed; QEMU: "
                                     f"{self.qemu_output()}; console: {self.buf[-1500:]!r}")
            self.buf += data

    def sh(self, cmd, timeout=60, ok=True):
        """Run cmd in the guest's shell: (exit status, output)."""
        self.n += 1
        # \102 = B, \105 = E: the echoed command line never holds the markers
        self.con.sendall(f"printf '\\102EGIN{self.n}\\n'; {cmd}; printf '\\105ND{self.n} %d\\n' $?\n"
                         .encode())
        self.expect(rb"BEGIN%d\r?\n" % self.n, timeout)
        m = self.expect(rb"(?s)(.*?)END%d (\d+)\r?\n" % self.n, timeout)
        rc, out = int(m.group(2)), m.group(1).decode(errors="replace").replace("\r", "")
        if ok:
            assert rc == 0, f"guest {self.name}: `{cmd}` exited {rc}:\n{out}"
        return rc, out

    def boot(self):
        self.expect(rb"PLEXUS-GUEST-READY name=%s\r?\n" % self.name.encode(), 60)
        self.sh("stty -echo")

    def poweroff(self):
        self.con.sendall(b"poweroff\n")
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"guest {self.name} did not power off")

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for s in (getattr(self, "con", None), getattr(self, "qmp", None)):
            if s:
                s.close()
        self.out.close()


def line(rundir, topo, guest, lds):
    """cxl_line's argv for guest with lds [(attach, vppb, mem, lsa, size)]."""
    args = [str(CXL_LINE), "--rundir", str(rundir), "--image-dir", str(IMAGE.parent)]
    for a, k, mem, lsa, size in lds:
        args += ["--ld", f"{a}:{k}:{mem}:{lsa}:{size}"]
    p = subprocess.run(args + [str(topo), guest], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"cxl_line: {p.stderr}"
    argv = p.stdout.splitlines()
    assert "--" not in argv  # no environment for a CXL-only guest
    return argv


def word(f, off):
    f.seek(off)
    return struct.unpack("<Q", f.read(8))[0]


def parse_list(out):
    """pxcxl list: {kind: {name: {key: value}}}."""
    res = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 2 and len(f) % 2 == 0:
            res.setdefault(f[0], {})[f[1]] = dict(zip(f[2::2], f[3::2]))
    return res


@pytest.fixture
def hosts():
    """Two "hosts": a directory each (short paths: QMP and console sockets
    live there)."""
    d = Path(tempfile.mkdtemp(prefix="pxcxl", dir="/tmp"))
    (d / "h1").mkdir()
    (d / "h2").mkdir()
    (d / "lab.yaml").write_text(TOPOLOGY)
    guests = []
    yield d, guests
    for g in guests:
        g.close()
    shutil.rmtree(d)


SEED = 0x5EED0000C0FFEE00
OFF, LEN = 1 * MIB, 64 * 1024  # the pattern: 64 KiB at 1 MiB into the LD
TAIL = LD_SIZE - 8  # the LD's last word
TAIL_VALUE = 0x7A11_0000_0000_0001
HOST_OFF, HOST_VALUE = 2 * MIB, 0x0123_4567_89AB_CDEF  # written by the host


def region(g, vppb):
    """pxcxl list, then pxcxl region: the region's HPA, checked against the
    window of the LD's vPPB."""
    _, out = g.sh("pxcxl list")
    lst = parse_list(out)
    mem = lst["memdev"]["mem0"]
    assert mem["pmem"] == str(LD_SIZE) and mem["lsa"] == str(LSA_SIZE), out
    assert mem["bridge"] == str(BUS_BASE + BUS_STRIDE * vppb), out
    assert mem["region"] == "-", out
    windows = {w["bridges"]: w for w in lst["window"].values()}
    assert sorted(windows) == sorted(str(BUS_BASE + BUS_STRIDE * k) for k in range(VPPBS)), out
    assert all(w["size"] == str(LD_SIZE) for w in windows.values()), out
    _, out = g.sh("pxcxl region")
    m = re.search(r"^region (region\d+) hpa (0x[0-9a-f]+) size (\d+)$", out, re.M)
    assert m, out
    hpa = int(m.group(2), 16)
    assert int(m.group(3)) == LD_SIZE
    assert hpa == int(windows[mem["bridge"]]["hpa"], 16), (out, windows)
    # Asking again names the same region.
    _, again = g.sh("pxcxl region mem0")
    assert again.strip() == m.group(0), again
    _, out = g.sh("pxcxl list")
    r = parse_list(out)["region"][m.group(1)]
    assert (r["memdev"], r["commit"], r["driver"]) == ("mem0", "1", "cxl_region"), out
    return hpa


def test_ld_data_in_the_file_and_on_another_host(hosts):
    d, guests = hosts
    t0 = time.monotonic()
    h1, h2 = d / "h1", d / "h2"
    mem, lsa = h1 / "ld.mem", h1 / "ld.lsa"
    with open(mem, "wb") as f:
        f.truncate(LD_SIZE)
    with open(lsa, "wb") as f:
        f.truncate(LSA_SIZE)

    # Guest a: the LD on vPPB 2.
    a = Guest(line(h1, d / "lab.yaml", "a", [(0, 2, mem, lsa, LD_SIZE)]), h1, "a")
    guests.append(a)
    a.boot()
    hpa1 = region(a, 2)
    a.sh(f"pxpoke fill {hpa1 + OFF:#x} {LEN} addr:{SEED:#x}")
    a.sh(f"pxpoke write {hpa1 + TAIL:#x} 64 {TAIL_VALUE:#x}")
    _, out = a.sh(f"pxpoke verify {hpa1 + OFF:#x} {LEN} addr:{SEED:#x}")
    assert f"verify: {LEN} bytes ok" in out

    # The host's file holds the guest's words at the same offsets, now.
    with open(mem, "r+b") as f:
        for o in range(OFF, OFF + LEN, 8):
            assert word(f, o) == (hpa1 + o) ^ SEED, f"file offset {o:#x}"
        assert word(f, OFF - 8) == 0 and word(f, OFF + LEN) == 0
        assert word(f, TAIL) == TAIL_VALUE
        f.seek(HOST_OFF)
        f.write(struct.pack("<Q", HOST_VALUE))
        f.flush()
    _, out = a.sh(f"pxpoke read {hpa1 + HOST_OFF:#x} 64")
    assert out.strip() == f"{HOST_VALUE:#018x}", out

    a.poweroff()
    with open(mem, "rb") as f:
        assert word(f, OFF) == (hpa1 + OFF) ^ SEED and word(f, TAIL) == TAIL_VALUE

    # Another host: copies of both files, the originals gone; guest b binds
    # the LD on vPPB 0, so its region is somewhere else.
    subprocess.run(["cp", "--sparse=always", mem, lsa, h2], check=True)
    mem.unlink()
    lsa.unlink()
    b = Guest(line(h2, d / "lab.yaml", "b", [(0, 0, h2 / "ld.mem", h2 / "ld.lsa", LD_SIZE)]),
              h2, "b")
    guests.append(b)
    b.boot()
    hpa2 = region(b, 0)
    assert hpa2 != hpa1
    # Windows are 256 MiB aligned, so for an offset o inside the LD
    # (hpa2 + o) ^ (SEED ^ hpa1 ^ hpa2) == (hpa1 + o) ^ SEED: the same words.
    _, out = b.sh(f"pxpoke verify {hpa2 + OFF:#x} {LEN} addr:{SEED ^ hpa1 ^ hpa2:#x}")
    assert f"verify: {LEN} bytes ok" in out
    _, out = b.sh(f"pxpoke read {hpa2 + TAIL:#x} 64")
    assert out.strip() == f"{TAIL_VALUE:#018x}", out
    _, out = b.sh(f"pxpoke read {hpa2 + HOST_OFF:#x} 64")
    assert out.strip() == f"{HOST_VALUE:#018x}", out
    b.poweroff()
    print(f"two boots, regions at {hpa1:#x} and {hpa2:#x}: {time.monotonic() - t0:.1f} s")
