"""The ground decoder: reassembly, progressive output, concealment, sidecars, and
robustness to reordering, duplicates, interleaving, garbage and unknown models."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec_helpers import crop
from firmware_py import imageio, metrics
from firmware_py.codec import decode, encode, packet_tables
from firmware_py.link import framing, packets
from firmware_py.link.packets import PacketHeader, build_packet, parse_packet
from ground import conceal
from ground.assembler import GroundDecoder
from ground.output import lost_regions


def framed(sent: list[bytes], name: str = "kiss") -> list[bytes]:
    return [framing.frame(p, name) for p in sent]


def sidecar(directory, stem: str) -> dict:
    return json.loads((directory / f"{stem}.json").read_text())


@pytest.fixture(scope="module")
def gray_frame(lena2):
    image = crop(lena2, 96, 120)
    return image, packets.encode_frame_packets(image, source="QPV1", frame_id=3, packet_size=64, quality=0.8)


@pytest.fixture(scope="module")
def colour_frame(kodim23):
    image = crop(kodim23, 75, 101)  # odd sizes: partial blocks, odd chroma planes
    return image, packets.encode_frame_packets(image, source="CAM-2", frame_id=65535, packet_size=96, quality=1.3)


def file_mode_decode(image: np.ndarray, sent: list[bytes]) -> np.ndarray:
    """What the whole-file codec decodes at the packets' quality: packet mode quantizes identically."""
    code = parse_packet(sent[0]).header.descriptor.quality_code
    return decode(encode(image, quality=packet_tables.quality_of_code(code), profile="seed"))


@pytest.mark.parametrize("frame_fixture, stem", [("gray_frame", "QPV1-3"), ("colour_frame", "CAM-2-65535")])
@pytest.mark.parametrize("name", framing.FRAMINGS)
def test_loss_free_frame_decodes_exactly_as_the_file_codec(request, tmp_path, frame_fixture, stem, name):
    image, sent = request.getfixturevalue(frame_fixture)
    ground = GroundDecoder(tmp_path, framing=name)
    ground.feed(b"".join(framed(sent, name)))
    ground.close()
    assert np.array_equal(imageio.load_image(tmp_path / f"{stem}.png", gray=image.ndim == 2), file_mode_decode(image, sent))
    record = sidecar(tmp_path, stem)
    assert record["packets"] == {
        "expected": len(sent), "received": len(sent), "lost": 0, "lost_indices": [], "duplicate": 0, "corrupt": 0,
    }
    assert record["complete"] and record["final_packet_seen"] and record["lost_regions"] == []
    assert record["bytes"] == sum(map(len, sent))
    assert record["bpp"] == pytest.approx(record["bytes"] * 8 / (image.shape[0] * image.shape[1]), abs=1e-5)
    assert ground.stats.packets == len(sent) and ground.stats.corrupt == 0


def test_reordered_duplicated_interleaved_frames_with_garbage(tmp_path, gray_frame, colour_frame):
    (gray, gray_sent), (colour, colour_sent) = gray_frame, colour_frame
    items = framed(gray_sent) + framed(colour_sent) + framed(gray_sent[:5])
    random.Random(4).shuffle(items)
    noise = random.Random(5)
    stream = b"".join(bytes(noise.randrange(256) for _ in range(noise.randrange(40))) + item for item in items)
    ground = GroundDecoder(tmp_path)
    for start in range(0, len(stream), 777):  # arbitrary read sizes
        ground.feed(stream[start : start + 777])
    ground.close()
    assert np.array_equal(imageio.load_image(tmp_path / "QPV1-3.png"), file_mode_decode(gray, gray_sent))
    assert np.array_equal(imageio.load_image(tmp_path / "CAM-2-65535.png"), file_mode_decode(colour, colour_sent))
    assert ground.stats.packets == len(gray_sent) + len(colour_sent)
    assert ground.stats.duplicate + ground.stats.late == 5


def test_preview_appears_with_the_first_packet_and_fills_in(tmp_path, gray_frame):
    image, sent = gray_frame
    now = [1000.0]
    ground = GroundDecoder(tmp_path, render_interval=10.0, clock=lambda: now[0])
    ground.feed(framing.frame(sent[0], "kiss"))
    first = imageio.load_image(tmp_path / "QPV1-3.png")
    assert sidecar(tmp_path, "QPV1-3")["packets"]["received"] == 1
    ground.feed(framing.frame(sent[1], "kiss"))  # within the render interval: not rewritten
    assert sidecar(tmp_path, "QPV1-3")["packets"]["received"] == 1
    ground.flush()
    assert sidecar(tmp_path, "QPV1-3")["packets"]["received"] == 2
    now[0] += 3.0
    ground.feed(b"".join(framed(sent[2:])))  # complete: written at once, and finished
    final = imageio.load_image(tmp_path / "QPV1-3.png")
    record = sidecar(tmp_path, "QPV1-3")
    assert record["complete"] and record["last_packet_utc"] > record["first_packet_utc"]
    assert metrics.psnr(image, final) > metrics.psnr(image, first)
    assert not ground.open


def test_packets_before_the_descriptor_wait_for_it(tmp_path, gray_frame):
    image, sent = gray_frame
    carriers = [p for p in sent if parse_packet(p).header.descriptor]
    others = [p for p in sent if not parse_packet(p).header.descriptor]
    ground = GroundDecoder(tmp_path)
    ground.feed(b"".join(framed(others)))
    assert not (tmp_path / "QPV1-3.png").exists()
    ground.feed(b"".join(framed(carriers)))
    assert np.array_equal(imageio.load_image(tmp_path / "QPV1-3.png"), file_mode_decode(image, sent))


def test_lost_packets_are_concealed_and_listed(tmp_path, gray_frame):
    image, sent = gray_frame
    kept = [p for i, p in enumerate(sent) if i % 5 != 2]
    ground = GroundDecoder(tmp_path)
    ground.feed(b"".join(framed(kept)))
    ground.close()
    record = sidecar(tmp_path, "QPV1-3")
    assert record["packets"]["lost"] == len(sent) - len(kept) and not record["complete"]
    assert record["packets"]["lost_indices"] == [i for i in range(len(sent)) if i % 5 == 2]
    lost_blocks = sum(r["width"] * r["height"] for r in record["lost_regions"])
    assert lost_blocks > 0 and record["concealed_fraction"] > 0
    out = imageio.load_image(tmp_path / "QPV1-3.png")
    assert metrics.psnr(image, out) > metrics.psnr(image, file_mode_decode(image, sent)) - 3.0


def test_a_packet_index_beyond_the_frame_is_dropped_as_corrupt(tmp_path, gray_frame):
    """Its CRC is intact, but no packet of the frame can have that index: it waits for
    the descriptor and is then refused, not decoded."""
    image, sent = gray_frame
    packet = parse_packet(sent[5])
    assert packet.header.descriptor is None
    stray = PacketHeader("QPV1", 3, len(sent), packet.header.start_block)
    ground = GroundDecoder(tmp_path)
    ground.feed(framing.frame(build_packet(stray, packet.payload), "kiss") + b"".join(framed(sent)))
    ground.close()
    assert ground.stats.corrupt == 1 and ground.stats.packets == len(sent)
    assert sidecar(tmp_path, "QPV1-3")["packets"]["lost_indices"] == []
    assert np.array_equal(imageio.load_image(tmp_path / "QPV1-3.png"), file_mode_decode(image, sent))


def test_frame_without_descriptor_gets_a_sidecar_only(tmp_path, gray_frame):
    _, sent = gray_frame
    ground = GroundDecoder(tmp_path)
    ground.feed(b"".join(framed([p for p in sent if not parse_packet(p).header.descriptor])))
    ground.close()
    assert not (tmp_path / "QPV1-3.png").exists()
    assert "descriptor" in sidecar(tmp_path, "QPV1-3")["error"]


def test_frame_from_other_models_is_not_decoded(tmp_path, gray_frame):
    _, sent = gray_frame
    packet = parse_packet(sent[0])
    alien = packet.header.descriptor.__class__(**{**packet.header.descriptor.__dict__, "fingerprint": b"\0\0\0\0"})
    header = PacketHeader("ALIEN", 1, packet.header.index, packet.header.start_block, alien)
    log = []
    ground = GroundDecoder(tmp_path, log=lambda event, **fields: log.append(event))
    ground.feed(framing.frame(build_packet(header, packet.payload), "kiss"))
    ground.close()
    assert not (tmp_path / "ALIEN-1.png").exists()
    assert "models" in sidecar(tmp_path, "ALIEN-1")["error"]
    assert ground.stats.undecodable == 1 and log == ["frame_undecodable"]


def test_open_frames_are_bounded_and_timed_out(tmp_path, gray_frame):
    _, sent = gray_frame
    now = [0.0]
    ground = GroundDecoder(tmp_path, max_open_frames=2, frame_timeout=5.0, clock=lambda: now[0])
    for frame_id in range(4):
        packet = parse_packet(sent[0])
        header = PacketHeader("QPV1", frame_id, 0, 0, packet.header.descriptor)
        ground.feed(framing.frame(build_packet(header, packet.payload), "kiss"))
    assert len(ground.open) == 2 and (tmp_path / "QPV1-0.json").exists()
    now[0] = 100.0
    ground.feed(b"")
    assert not ground.open and ground.stats.frames == 4


@settings(max_examples=60)
@given(st.binary(max_size=2000), st.sampled_from(framing.FRAMINGS))
def test_garbage_alone_writes_nothing_and_never_raises(tmp_path_factory, data, name):
    directory = tmp_path_factory.mktemp("ground")
    ground = GroundDecoder(directory, framing=name)
    ground.feed(data)
    ground.close()
    assert list(directory.iterdir()) == []
    assert ground.stats.packets == 0


@settings(max_examples=40)
@given(seed=st.integers(0, 10_000))
def test_mangled_real_streams_never_raise(tmp_path_factory, gray_frame, seed):
    _, sent = gray_frame
    rng = random.Random(seed)
    stream = bytearray(b"".join(framed(sent)))
    for _ in range(rng.randrange(1, 30)):
        stream[rng.randrange(len(stream))] = rng.randrange(256)
    ground = GroundDecoder(tmp_path_factory.mktemp("ground"))
    ground.feed(bytes(stream))
    ground.close()
    assert ground.stats.packets <= len(sent)


def test_concealment_restores_a_ramp_inside_the_plane():
    y, x = np.mgrid[0:64, 0:80]
    plane = 3.0 * y + 2.0 * x + 5.0
    known = np.ones((8, 10), dtype=bool)
    known[3, 4] = known[5, 6] = False
    damaged = plane.copy()
    damaged[24:32, 32:40] = damaged[40:48, 48:56] = 0.0
    out = conceal.conceal(damaged, known)
    assert np.allclose(out, plane)


def test_concealment_fills_clusters_and_empty_planes():
    plane = np.full((32, 32), 77.0)
    known = np.zeros((4, 4), dtype=bool)
    known[0, 0] = True
    out = conceal.conceal(np.where(np.kron(known, np.ones((8, 8))) > 0, plane, 0.0), known)
    assert np.allclose(out, 77.0)
    assert np.allclose(conceal.conceal(np.zeros((16, 16)), np.zeros((2, 2), dtype=bool)), conceal.NEUTRAL)


def test_lost_regions_merge_runs_and_scale_chroma():
    luma = np.zeros((3, 4), dtype=bool)
    luma[1, 1:3] = True
    chroma = np.zeros((2, 2), dtype=bool)
    chroma[1, 1] = True
    regions = lost_regions([luma, chroma, np.zeros((2, 2), dtype=bool)], width=30, height=20)
    assert regions == [
        {"plane": "Y", "x": 8, "y": 8, "width": 16, "height": 8},
        {"plane": "Cb", "x": 16, "y": 16, "width": 14, "height": 4},
    ]
