"""The fault-injection layer, and the link's acceptance tests under faults: at 10% packet
loss and at a 1e-4 bit error rate the ground uses every intact packet, accepts no
damaged one, and loses at most 1.5 dB of PSNR against the loss-free decode."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_py import datasets, imageio, metrics
from firmware_py.link import framing, packets
from firmware_py.link.faults import FaultConfig, FaultInjector
from ground.assembler import GroundDecoder

MAX_PSNR_DROP_DB = 1.5


def items(count: int = 2000, size: int = 50) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for _ in range(count)]


def test_same_seed_same_faults_other_seed_other_faults():
    config = FaultConfig(drop=0.1, duplicate=0.1, reorder=0.1, bit_error_rate=1e-3, truncate=0.05, garbage=0.1, seed=3)
    first, _ = FaultInjector(config).packets(items(200))
    again, _ = FaultInjector(config).packets(items(200))
    other, _ = FaultInjector(FaultConfig(**{**config.__dict__, "seed": 4})).packets(items(200))
    assert first == again and first != other
    data = b"".join(items(100))
    assert FaultInjector(config).stream(data) == FaultInjector(config).stream(data)


def test_rates_are_what_they_say():
    sent = items()
    out, report = FaultInjector(FaultConfig(drop=0.1, duplicate=0.2, seed=1)).packets(sent)
    assert len(report.dropped) == pytest.approx(200, rel=0.2)
    assert len(out) - (len(sent) - len(report.dropped)) == pytest.approx(0.2 * 1800, rel=0.15)
    ber = 1e-3
    flipped = FaultInjector(FaultConfig(bit_error_rate=ber, seed=2)).flip_bits(b"".join(sent))
    errors = np.unpackbits(np.bitwise_xor(np.frombuffer(flipped, np.uint8), np.frombuffer(b"".join(sent), np.uint8))).sum()
    assert errors == pytest.approx(ber * 8 * 50 * 2000, rel=0.1)


def test_exact_drop_loses_exactly_that_share():
    out, report = FaultInjector(FaultConfig(drop=0.1, exact_drop=True, seed=5)).packets(items(25))
    assert len(report.dropped) == 3 and len(out) == 22


def test_report_knows_which_items_arrived_intact():
    sent = items(500)
    config = FaultConfig(drop=0.1, duplicate=0.1, reorder=0.3, bit_error_rate=2e-3, truncate=0.1, garbage=0.2, seed=9)
    out, report = FaultInjector(config).packets(sent)
    assert [d.data for d in report.deliveries] == out
    for delivery in report.deliveries:
        if delivery.intact:
            assert delivery.data == sent[delivery.origin]
        elif delivery.origin is not None:
            assert delivery.data != sent[delivery.origin]
    assert report.damaged > 0 and 0 < len(report.intact_origins) < 500
    assert not set(report.dropped) & {d.origin for d in report.deliveries}
    order = [d.origin for d in report.deliveries if d.origin is not None]
    assert order != sorted(order)


def test_stream_faults_cut_insert_and_truncate():
    data = b"".join(items(100))
    assert FaultInjector(FaultConfig(seed=1)).stream(data) == data
    assert len(FaultInjector(FaultConfig(drop=1.0, seed=1)).stream(data)) < len(data)
    assert len(FaultInjector(FaultConfig(garbage=1.0, seed=1)).stream(data)) > len(data)
    assert len(FaultInjector(FaultConfig(truncate=1.0, seed=1)).stream(data)) < len(data)


def test_rates_outside_0_1_are_refused():
    with pytest.raises(ValueError, match="drop"):
        FaultConfig(drop=1.5)
    with pytest.raises(ValueError, match="bit_error_rate"):
        FaultConfig(bit_error_rate=float("nan"))


def decode_on_ground(directory, stream: bytes) -> tuple[np.ndarray, dict, GroundDecoder]:
    directory.mkdir()
    ground = GroundDecoder(directory)
    ground.feed(stream)
    ground.close()
    record = json.loads((directory / "QPV1-7.json").read_text())
    return imageio.load_image(directory / "QPV1-7.png"), record, ground


@pytest.fixture(scope="module")
def aerial() -> np.ndarray:
    """Aerial 2.1.01 (512x512 RGB, test set): textured, and at 0.2 bpp at the coarsest
    qualities, where a lost chroma packet once cost 2.6 dB."""
    return imageio.load_image(datasets.image_set("aerials")[0])


# (image, packet size, faults): 10% loss at the default 256-byte packets; 1e-4 BER at
# 128-byte packets, near the goodput-optimal size for that BER (docs/FORMAT.md: 256-byte
# packets lose 19% of packets at 1e-4 and are reported there, not asserted).
SEEDS = (1, 2, 3)
CASES = [
    ("lena2", 256, dict(drop=0.1, exact_drop=True)),
    ("kodim23", 256, dict(drop=0.1, exact_drop=True)),
    ("aerial", 256, dict(drop=0.1, exact_drop=True)),
    ("lena2", 128, dict(bit_error_rate=1e-4)),
    ("kodim23", 128, dict(bit_error_rate=1e-4)),
    ("aerial", 128, dict(bit_error_rate=1e-4)),
]


@pytest.mark.parametrize("image_name, packet_size, faults", CASES)
def test_ground_under_faults(request, tmp_path, image_name, packet_size, faults):
    image = request.getfixturevalue(image_name)
    budget = int(0.2 * image.shape[0] * image.shape[1] / 8)
    sent = packets.encode_frame_packets(image, source="QPV1", frame_id=7, packet_size=packet_size, max_wire_bytes=budget)
    wire = [framing.frame(p, "kiss") for p in sent]
    clean, clean_record, _ = decode_on_ground(tmp_path / "clean", b"".join(wire))
    assert clean_record["bytes"] <= budget
    lost = 0
    for seed in SEEDS:
        damaged_items, report = FaultInjector(FaultConfig(seed=seed, **faults)).packets(wire)
        intact = sorted(report.intact_origins)
        lost += len(sent) - len(intact)
        out, record, ground = decode_on_ground(tmp_path / f"faulty{seed}", b"".join(damaged_items))
        # Every intact packet is used ...
        assert ground.stats.packets == record["packets"]["received"] == len(intact)
        # ... and nothing else: the picture is exactly the one the intact packets alone give.
        reference, _, _ = decode_on_ground(tmp_path / f"intact{seed}", b"".join(wire[i] for i in intact))
        assert np.array_equal(out, reference)
        drop = metrics.psnr(image, clean) - metrics.psnr(image, out)
        print(f"{image_name} {packet_size}B {faults} seed {seed}: {len(sent) - len(intact)}/{len(sent)} packets lost, "
              f"PSNR {metrics.psnr(image, clean):.2f} -> {metrics.psnr(image, out):.2f} dB (drop {drop:.2f})")
        assert drop <= MAX_PSNR_DROP_DB
    # The seeds together must really have lost about a tenth of the packets.
    assert lost >= 0.08 * len(SEEDS) * len(sent)
