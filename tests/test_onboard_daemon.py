"""The onboard daemon in process: budget, spool resume, link loss and recovery, bad frames.

A fake clock drives capture and retry times; the links are real (capture files and
TCP on 127.0.0.1), paced fast so the tests stay short.
"""

from __future__ import annotations

import io
import json
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np

from firmware_py import imageio
from firmware_py.eventlog import EventLog
from firmware_py.link.framing import Deframer
from firmware_py.onboard.config import FrameConfig, LinkConfig, OnboardConfig, QueueConfig, SourceConfig
from firmware_py.onboard.daemon import Daemon, frame_budget
from firmware_py.onboard.sources import DirectorySource

FAST_BAUD = 2_000_000  # pacing still runs, at 200 kB/s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Events:
    """The daemon's structured log, kept in memory."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.log = EventLog(self.stream)

    def __call__(self, name: str | None = None) -> list[dict]:
        events = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [e for e in events if name is None or e["event"] == name]


def make_config(tmp_path: Path, *, url: str | None = None, **frames) -> OnboardConfig:
    return OnboardConfig(
        station="N0CALL",
        spool=tmp_path / "spool",
        link=LinkConfig(url=url or f"file:{tmp_path / 'capture.kiss'}", baud=FAST_BAUD, packet_size=128),
        source=SourceConfig(kind="synthetic", width=256, height=192, gray=True),
        frames=FrameConfig(interval=1.0, **({"max_bytes": 3000} | frames)),
        queue=QueueConfig(policy="fifo"),
    )


def make_daemon(config: OnboardConfig, clock: Clock, events: Events, **kwargs) -> Daemon:
    return Daemon(config, log=events.log, clock=clock, wall_clock=clock, sleep=lambda s: None, **kwargs)


def run_until(daemon: Daemon, condition, steps: int = 500) -> None:
    for _ in range(steps):
        if condition():
            return
        daemon.step()
    raise AssertionError("condition not reached")


def test_budget_is_link_bytes_per_interval_times_utilization(tmp_path):
    config = make_config(tmp_path, max_bytes=None)
    config = replace(config, link=replace(config.link, baud=9600), frames=FrameConfig(interval=10.0, utilization=0.9))
    assert frame_budget(config) == 8640
    assert frame_budget(replace(config, link=replace(config.link, pace_baud=4800))) == 4320
    assert frame_budget(replace(config, frames=FrameConfig(max_bytes=5000))) == 5000
    assert frame_budget(replace(config, frames=FrameConfig(quality=1.0))) is None


def test_a_frame_goes_out_whole_within_its_budget_and_leaves_the_spool(tmp_path):
    clock, events = Clock(), Events()
    daemon = make_daemon(make_config(tmp_path), clock, events)
    daemon.step()  # captures frame 0, encodes it, sends its first packet
    frame = daemon.spool.get(0)
    packets = daemon.spool.packets(frame)
    run_until(daemon, lambda: events("frame_sent"))
    capture = (tmp_path / "capture.kiss").read_bytes()
    assert capture == b"".join(packets)
    assert len(capture) <= 3000
    assert Deframer("kiss").feed(capture) != []
    encoded = events("frame_encoded")[0]
    assert (encoded["packets"], encoded["wire_bytes"]) == (len(packets), len(capture))
    assert daemon.spool.frames() == []


def test_a_restart_resumes_mid_frame_and_resends_nothing(tmp_path):
    clock, events = Clock(), Events()
    config = make_config(tmp_path)
    first = make_daemon(config, clock, events)
    first.step()
    packets = first.spool.packets(first.spool.get(0))
    assert len(packets) >= 4
    first.step()
    first.step()
    del first  # a crash: no shutdown, nothing flushed beyond what the spool already holds
    second = make_daemon(config, clock, events)
    run_until(second, lambda: events("frame_sent"))
    assert (tmp_path / "capture.kiss").read_bytes() == b"".join(packets)


def test_frames_captured_while_the_link_is_down_are_sent_when_it_returns(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound, not yet listening: connections are refused
    port = listener.getsockname()[1]
    clock, events = Clock(), Events()
    daemon = make_daemon(make_config(tmp_path, url=f"socket://127.0.0.1:{port}"), clock, events)
    try:
        daemon.step()
        assert events("link_down")[-1]["retry_in"] == 1.0
        for _ in range(3):
            clock.now += 1.0
            daemon.step()
        assert len(events("frame_captured")) == 4 and not events("frame_sent")
        # Attempts at t+0, t+1 and t+3 (t+2 is inside the backoff): the delay doubles.
        assert [e["retry_in"] for e in events("link_down")] == [1.0, 2.0, 4.0]
        listener.listen(1)
        clock.now += 4.0
        daemon.step()
        assert events("link_up")
        peer, _ = listener.accept()
        run_until(daemon, lambda: len(events("frame_sent")) == 4)
        peer.settimeout(5)
        received = b""
        expected = sum(e["wire_bytes"] for e in events("frame_sent"))
        while len(received) < expected:
            received += peer.recv(65536)
        assert len(Deframer("kiss").feed(received)) == sum(e["packets"] for e in events("frame_sent"))
        peer.close()
    finally:
        daemon.shutdown()
        listener.close()


def test_a_lost_connection_is_reopened_and_the_failed_packet_sent_again_whole(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    port = listener.getsockname()[1]
    clock, events = Clock(), Events()
    daemon = make_daemon(make_config(tmp_path, url=f"socket://127.0.0.1:{port}"), clock, events)
    try:
        daemon.step()
        first_peer, _ = listener.accept()
        first_peer.close()
        run_until(daemon, lambda: events("link_down"))
        clock.now += 1.0
        run_until(daemon, lambda: len(events("link_up")) == 2)
        second_peer, _ = listener.accept()
        run_until(daemon, lambda: events("frame_sent"))
        second_peer.settimeout(2)
        received = b""
        try:
            while True:
                chunk = second_peer.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pass
        frames = Deframer("kiss").feed(received)
        assert frames, "the second connection carried whole packets"
        assert received.startswith(b"\xc0"), "it starts at a packet boundary"
        second_peer.close()
    finally:
        daemon.shutdown()
        listener.close()


def test_unusable_frames_are_set_aside_and_the_next_one_is_sent(tmp_path, gray_crop):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "broken.png").write_bytes(b"not an image at all")
    imageio.save_image(inbox / "good.png", gray_crop)
    clock, events = Clock(), Events()
    config = make_config(tmp_path)
    daemon = make_daemon(config, clock, events, source=DirectorySource(inbox, settle_seconds=0))
    run_until(daemon, lambda: events("frame_sent"))
    rejected = events("frame_rejected")
    assert len(rejected) == 1 and "not a readable image" in rejected[0]["reason"]
    assert (Path(rejected[0]["kept"]) / "image.png").read_bytes() == b"not an image at all"
    assert events("frame_sent")[0]["frame_id"] == [
        e["frame_id"] for e in events("frame_captured") if e["origin"] == "good.png"
    ][0]


def test_a_budget_too_small_for_the_frame_rejects_it_without_stopping(tmp_path):
    clock, events = Clock(), Events()
    daemon = make_daemon(make_config(tmp_path, max_bytes=64), clock, events)
    daemon.step()
    assert events("frame_rejected") and "does not fit 64 wire bytes" in events("frame_rejected")[0]["reason"]
    assert daemon.spool.frames() == []


def test_shutdown_drains_and_logs_what_is_left(tmp_path):
    clock, events = Clock(), Events()
    daemon = make_daemon(make_config(tmp_path), clock, events)
    daemon.step()
    daemon.shutdown()
    assert events("stopped")[0]["pending"] == 1
    assert isinstance(np.load(next((tmp_path / "spool" / "frames").glob("*/image.npy"))), np.ndarray)
