"""The daemon as a process: SIGTERM stops at a packet boundary, SIGKILL loses nothing.

Each test runs `qpv onboard --config` twice on one spool, writing a paced capture
file, stops the first run mid-frame, and checks the capture of both runs together:
every packet of the frame is there, and no intact packet was sent twice (SIGKILL
may resend the one packet whose `sent` record it prevented, no more).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from firmware_py.link.framing import Deframer
from firmware_py.link.packets import CorruptPacketError, parse_packet

pytestmark = pytest.mark.slow

CONFIG = """
station = "N0CALL"
spool = "spool"
[link]
url = "file:capture.kiss"
baud = 19200
packet_size = 64
[source]
kind = "synthetic"
width = 256
height = 192
gray = true
[frames]
interval = 3600.0
max_bytes = 3000
[queue]
policy = "fifo"
"""


def start(work: Path, log_name: str) -> subprocess.Popen:
    log = (work / log_name).open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "firmware_py", "onboard", "--config", str(work / "onboard.toml")],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def events(log: Path, name: str) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [e for e in lines if e["event"] == name]


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def frame_zero_packets(capture: bytes) -> tuple[Counter, int, int]:
    """(count of each intact packet of frame 0, its packet count, corrupt frames seen)."""
    counts, total, corrupt = Counter(), 0, 0
    for data in Deframer("kiss").feed(capture):
        try:
            packet = parse_packet(data)
        except CorruptPacketError:
            corrupt += 1
            continue
        if packet.header.frame_id == 0:
            counts[data] += 1
            if packet.header.descriptor is not None:
                total = packet.header.descriptor.packet_count
    return counts, total, corrupt


def interrupted_run(tmp_path: Path, sig: int) -> tuple[Path, int]:
    (tmp_path / "onboard.toml").write_text(CONFIG)
    capture = tmp_path / "capture.kiss"
    first = start(tmp_path, "first.log")
    try:
        wait_until(lambda: events(tmp_path / "first.log", "frame_encoded"), "the first frame to be encoded")
        wire = events(tmp_path / "first.log", "frame_encoded")[0]["wire_bytes"]
        wait_until(lambda: capture.exists() and capture.stat().st_size > wire // 3, "a third of the frame on the wire")
        first.send_signal(sig)
        status = first.wait(20)
    finally:
        if first.poll() is None:
            first.kill()
    assert capture.stat().st_size < wire, "the first run was stopped mid-frame"
    second = start(tmp_path, "second.log")
    try:
        wait_until(lambda: events(tmp_path / "second.log", "frame_sent"), "the resumed frame to be sent")
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
    finally:
        if second.poll() is None:
            second.kill()
    return capture, status


def test_sigterm_finishes_the_packet_on_the_wire_and_a_restart_resends_nothing(tmp_path):
    capture, status = interrupted_run(tmp_path, signal.SIGTERM)
    assert status == 0
    assert events(tmp_path / "first.log", "stopped")[0]["pending"] >= 1
    counts, total, corrupt = frame_zero_packets(capture.read_bytes())
    assert total > 10
    assert len(counts) == total, "every packet of the frame arrived"
    assert set(counts.values()) == {1}, "no packet was sent twice"
    assert corrupt == 0, "the stop fell between packets, never inside one"


def test_sigkill_mid_frame_loses_nothing_and_resends_at_most_the_packet_in_flight(tmp_path):
    capture, status = interrupted_run(tmp_path, signal.SIGKILL)
    assert status == -signal.SIGKILL
    counts, total, corrupt = frame_zero_packets(capture.read_bytes())
    assert total > 10
    assert len(counts) == total, "every packet of the frame arrived"
    assert sum(counts.values()) - total <= 1
    assert corrupt <= 1, "at most the packet cut by the kill is damaged"
