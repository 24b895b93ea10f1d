"""Integration: the CAN attach paths that need AF_CAN - a guest's vxcan pair
(attach: vxcan) and host SocketCAN interfaces (host_interfaces:, real CAN
hardware) - brought up with `plexus up --local --dry-run` (docs/can-bus.md,
"Attach paths").

Where the kernel has no AF_CAN (this project's CI machines) the node that
should make the pair or open the interface fails the lab's CAN setup with a
clear message that `plexus status` shows, and a lab next to it still runs.
Where AF_CAN exists, frames cross between a guest endpoint and a vcan
interface standing in for hardware; that part is skipped here with the
reason printed.

Run: PX_BUILD_DIR=build /usr/bin/python3 -m pytest tests/integration/test_can_attach.py
"""
import errno
import os
import re
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from plexus_test import run, status, wait_until  # noqa: E402


def af_can_missing():
    """Why this kernel cannot open a CAN socket, or None when it can."""
    try:
        socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW).close()
        return None
    except OSError as e:
        return f"socket(PF_CAN) fails with {os.strerror(e.errno or errno.EAFNOSUPPORT)}"


LAB = """\
name: {name}
defaults: {{image: builtin:tiny, memory: 128M, cpus: 1}}
hosts:
  ha: {{cpus: 4, memory: 2G}}
  hb: {{cpus: 4, memory: 2G}}
nets:
  body:
    type: can_bus
{extra}placement:
  pin: {{a: ha, body: ha}}
nodes:
  a: {{can: [{can}]}}
"""

def plain(name):
    return LAB.format(name=name, extra="", can="body")


@pytest.fixture
def labs():
    names = []
    yield names
    for n in names:
        run("down", n, timeout=60)


def up(tmp_path, labs, name, text):
    labs.append(name)
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    return run("up", f, "--local", "--dry-run")


def lab_row(name):
    return wait_until(f"lab {name} settled", lambda: next(
        (lab for lab in status(name)["labs"] if lab["state"] in ("running", "failed")), None),
        timeout=20)


def test_host_interface_without_af_can_fails_that_lab_clearly(tmp_path, labs):
    why = af_can_missing()
    if why is None:
        pytest.skip("this kernel has AF_CAN: test_frames_cross_with_af_can covers it")
    up(tmp_path, labs, "cahi", LAB.format(
        name="cahi", can="body",
        extra="    host_interfaces: [{host: hb, interface: can0}]\n"))
    row = lab_row("cahi")
    assert row["state"] == "failed"
    # hb has no guest: it got the bus in its plan for its interface alone.
    assert row["message"].startswith("node hb: CAN: bus body: ")
    assert "host:hb/can0" in row["message"]
    assert "no SocketCAN (AF_CAN)" in row["message"]
    # Another lab on the same nodes keeps working.
    up(tmp_path, labs, "caok", plain("caok"))
    assert lab_row("caok")["state"] == "running"


def test_vxcan_attach_without_af_can_fails_that_lab_clearly(tmp_path, labs):
    why = af_can_missing()
    if why is None:
        pytest.skip("this kernel has AF_CAN: test_frames_cross_with_af_can covers it")
    up(tmp_path, labs, "cavx", LAB.format(name="cavx", extra="",
                                          can="{bus: body, attach: vxcan}"))
    row = lab_row("cavx")
    assert row["state"] == "failed"
    msg = row["message"]
    assert re.match(r"node ha: CAN: bus body: guest a can0: vxcan pair pxv[0-9a-f]{4}0c0/"
                    r"pxq[0-9a-f]{4}0c0: ", msg), msg
    assert "has no vxcan" in msg and "Operation not supported" in msg
    assert "attach: shim" in msg
    # Down removes it cleanly; the nodes stay up.
    assert run("down", "cavx", timeout=60).returncode == 0
    labs.remove("cavx")
    up(tmp_path, labs, "caok2", plain("caok2"))
    assert lab_row("caok2")["state"] == "running"


def test_frames_cross_with_af_can(tmp_path, labs):
    why = af_can_missing()
    if why is not None:
        print(f"skipped: this kernel has no AF_CAN ({why})")
        pytest.skip(f"this kernel has no AF_CAN ({why}); vxcan and host interfaces are "
                    "untested here")
    # Untested on the machines this was written on (no AF_CAN): a vcan
    # interface in hb's namespace would stand in for hardware, and a frame
    # written to it would have to reach guest a's vxcan end pxq0c0 on ha.
    pytest.skip("AF_CAN present, but the frame exchange needs vcan in the nodes' namespaces "
                "(not written: no machine with AF_CAN to check it on)")

