"""End to end: `qpv onboard` and `qpv ground` as two processes over a paced pty link.

The daemon watches an inbox, the ground decoder writes previews; a PtyWire joins
them (each end a /dev/pts device, opened like a UART). The previews must be
exactly what a direct decode of the same frame at the same byte budget gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_py import datasets, imageio, metrics
from firmware_py.link.framing import frame
from firmware_py.link.packets import encode_frame_packets
from firmware_py.link.transport import bytes_per_second
from firmware_py.onboard.demo import STATION, stream_images
from ground.assembler import GroundDecoder

pytestmark = pytest.mark.slow

BAUD = 115200
INTERVAL = 1.0
BUDGET = int(bytes_per_second(BAUD) * INTERVAL * 0.9)  # the daemon's default utilization


def direct_decode(image, frame_id: int, out_dir):
    """The same frame through packets and the ground decoder, without any link."""
    packets = encode_frame_packets(image, source=STATION, frame_id=frame_id, max_wire_bytes=BUDGET)
    out_dir.mkdir()
    decoder = GroundDecoder(out_dir)
    decoder.feed(b"".join(frame(p, "kiss") for p in packets))
    decoder.close()
    return imageio.load_image(out_dir / f"{STATION}-{frame_id}.png", gray=image.ndim == 2)


def test_daemon_and_ground_decoder_over_a_paced_pty_link(tmp_path, monkeypatch):
    paths = [datasets.data_dir().resolve() / "waterloo" / "lena2.png", datasets.data_dir().resolve() / "kodak" / "kodim23.png"]
    # A relative work folder, as `make demo` passes one.
    monkeypatch.chdir(tmp_path)
    run = stream_images(paths, Path("run"), baud=BAUD, interval=INTERVAL, timeout=90)

    assert [f.origin for f in run.frames] == ["lena2.png", "kodim23.png"]
    assert run.wire_bytes == sum(f.wire_bytes for f in run.frames), "the wire carried exactly the packets"
    # Pacing: the bytes cannot have crossed faster than the line rate allows.
    assert run.seconds >= run.wire_bytes / bytes_per_second(BAUD)
    for path, received in zip(paths, run.frames):
        original = imageio.load_image(path)
        sidecar = json.loads(received.sidecar.read_text())
        assert sidecar["complete"] and sidecar["packets"]["lost"] == 0 and sidecar["packets"]["corrupt"] == 0
        assert received.wire_bytes <= BUDGET
        preview = imageio.load_image(received.png, gray=original.ndim == 2)
        direct = direct_decode(original, received.frame_id, tmp_path / f"direct-{received.frame_id}")
        over_link, without_link = metrics.psnr(original, preview), metrics.psnr(original, direct)
        assert over_link == pytest.approx(without_link, abs=0.01), (path.name, over_link, without_link)
        assert over_link > 25.0
