"""The packet format: CRC-32C, header and descriptor, slice coding, frame encoding and
rate control on wire bytes, and parse_packet against damaged and hostile input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec_helpers import crop
from firmware_py.codec import ColourMode, RateControlError, packet_tables, slices
from firmware_py.codec.blocking import block_grid
from firmware_py.link import framing, packets
from firmware_py.link.crc32c import crc32c, crc32c_reference
from ground.evaluate import wire_breakdown
from firmware_py.link.packets import CorruptPacketError, FrameDescriptor, PacketHeader, build_packet, parse_packet


@pytest.mark.parametrize(
    "data, expected",
    [  # RFC 3720 (iSCSI) appendix B.4 and the common check value
        (b"123456789", 0xE3069283),
        (b"", 0x00000000),
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_known_vectors(data, expected):
    assert crc32c(data) == expected
    assert crc32c_reference(data) == expected


@given(st.binary(max_size=600))
def test_crc32c_kernel_matches_bitwise_reference(data):
    assert crc32c(data) == crc32c_reference(data)


@given(st.text(alphabet=packets.SOURCE_ALPHABET, min_size=1, max_size=6))
def test_source_ids_round_trip(source):
    assert packets.decode_source(packets.encode_source(source)) == source


@pytest.mark.parametrize("bad", ["", "TOOLONG7", "A/B", "DL 1", "ÄBC"])
def test_bad_source_ids_are_refused(bad):
    with pytest.raises(ValueError, match="source id"):
        packets.encode_source(bad)


def test_source_ids_fold_to_upper_case_and_fit_32_bits():
    assert packets.decode_source(packets.encode_source("qpv1")) == "QPV1"
    assert packets.encode_source("______") < 1 << 32


def test_whitening_is_the_ccsds_randomizer():
    assert bytes(packets.WHITENING[:8]) == bytes.fromhex("ff480ec09a0d70bc")
    assert bytes(packets.WHITENING[255:263]) == bytes(packets.WHITENING[:8])  # period 255
    assert packets.whiten(packets.whiten(b"any payload")) == b"any payload"


descriptors = st.builds(
    FrameDescriptor,
    width=st.integers(1, 4096),
    height=st.integers(1, 4096),
    colour=st.sampled_from(list(ColourMode)),
    profile_id=st.integers(0, 255),
    quality_code=st.integers(0, 255),
    packet_count=st.integers(1, 65535),
    fingerprint=st.binary(min_size=4, max_size=4),
)


@given(
    source=st.text(alphabet=packets.SOURCE_ALPHABET, min_size=1, max_size=6),
    frame_id=st.integers(0, 65535),
    descriptor=st.none() | descriptors,
    final=st.booleans(),
    payload=st.binary(min_size=1, max_size=200).filter(lambda p: p[-1] != 0),
)
def test_header_round_trips(source, frame_id, descriptor, final, payload):
    header = PacketHeader(source, frame_id, 0, 0, descriptor, final)
    data = build_packet(header, payload)
    assert len(data) == packets.HEADER_SIZE + (packets.DESCRIPTOR_SIZE if descriptor else 0) + len(payload) + 4
    packet = parse_packet(data)
    assert packet.header == header
    assert packet.payload == payload


@pytest.fixture(scope="module")
def lena_packets(lena2):
    """lena2 at 0.2 bpp of wire bytes in 256-byte packets."""
    return packets.encode_frame_packets(lena2, source="QPV1", frame_id=7, max_wire_bytes=int(0.2 * lena2.size / 8))


def test_frame_packets_are_complete_and_cover_every_block_once(lena2, lena_packets):
    parsed = [parse_packet(p) for p in lena_packets]
    assert all(len(p) <= packets.DEFAULT_PACKET_SIZE for p in lena_packets)
    descriptor = parsed[0].header.descriptor
    assert descriptor is not None and descriptor.packet_count == len(parsed)
    assert [p.header.final for p in parsed] == [False] * (len(parsed) - 1) + [True]
    carriers = [i for i, p in enumerate(parsed) if p.header.descriptor]
    assert carriers == [i for i in range(len(parsed)) if packets.carries_descriptor(i) or i == len(parsed) - 1]
    assert all(p.header.descriptor in (None, descriptor) for p in parsed)
    covered = np.concatenate([packets.decode_slice(p, descriptor).blocks for p in parsed])
    assert np.array_equal(np.sort(covered), np.arange(64 * 64))


def test_rate_control_picks_the_finest_quality_that_fits(lena2, lena_packets):
    budget = int(0.2 * lena2.size / 8)
    assert packets.wire_bytes(lena_packets, "kiss") <= budget
    code = parse_packet(lena_packets[0]).header.descriptor.quality_code
    finer = packets.encode_frame_packets(lena2, source="QPV1", frame_id=7, quality=packet_tables.quality_of_code(code - 1))
    assert packets.wire_bytes(finer, "kiss") > budget


@pytest.mark.parametrize("name", framing.FRAMINGS)
def test_budget_holds_for_every_framing_and_packet_size(lena2, name):
    image = crop(lena2, 200, 232)
    for size in (64, 256, 4096):
        budget = 2500
        sent = packets.encode_frame_packets(image, source="A", frame_id=1, packet_size=size, max_wire_bytes=budget, framing=name)
        assert all(len(p) <= size for p in sent)
        assert packets.wire_bytes(sent, name) <= budget


def test_impossible_budget_and_bad_arguments_are_clear_errors(lena2):
    with pytest.raises(RateControlError, match="coarsest"):
        packets.encode_frame_packets(lena2, source="A", frame_id=1, max_wire_bytes=300)
    with pytest.raises(ValueError, match="packet size"):
        packets.encode_frame_packets(lena2, source="A", frame_id=1, packet_size=63)
    with pytest.raises(ValueError, match="frame id"):
        packets.encode_frame_packets(lena2, source="A", frame_id=1 << 16)
    with pytest.raises(ValueError, match="not both"):
        packets.encode_frame_packets(lena2, source="A", frame_id=1, quality=1.0, max_wire_bytes=5000)


def test_header_crc_and_framing_overhead_is_below_8_percent(lena2, kodim23):
    """The issue's target, measured on real frames with real KISS escaping at 256-byte packets.

    Overhead = header, CRC-32C, FEND/command/FEND and escapes, as a share of the wire
    bytes (descriptor copies are reported separately, in docs/FORMAT.md).
    """
    for image in (lena2, kodim23):
        budget = int(0.2 * image.shape[0] * image.shape[1] / 8)
        sent = packets.encode_frame_packets(image, source="QPV1", frame_id=7, max_wire_bytes=budget)
        parts = wire_breakdown(sent, "kiss")
        assert parts.payload + parts.descriptor + parts.header + parts.crc + parts.framing + parts.escapes == parts.wire
        assert parts.overhead < 0.08


def test_slice_kernels_match_the_references_including_escapes():
    tables = packet_tables.slice_tables("seed", 128, "luma")
    rng = np.random.default_rng(5)
    n = 300
    classes = rng.integers(0, 2, n).astype(np.int64)
    symbols = np.zeros((n, 8), dtype=np.int64)
    symbols[:, :] = rng.integers(-6, 7, (n, 8))
    symbols[::7, 0] = rng.choice([-16383, 16383, 900, -2000], size=len(symbols[::7]))  # escaped
    symbols[classes == 0, 1:] = 0
    bounds = np.array([0, 1, 50, 51, 200, n])
    fast = slices.pack_slices(classes, symbols, bounds, tables)
    for r, payload in enumerate(fast):
        part = slice(bounds[r], bounds[r + 1])
        assert payload == slices.pack_slice_reference(classes[part], symbols[part], tables)
        for unpack in (slices.unpack_slice, slices.unpack_slice_reference):
            got_classes, got_symbols = unpack(payload, 10_000, tables)
            assert np.array_equal(got_classes, classes[part])
            assert np.array_equal(got_symbols, symbols[part])
    costs = slices.block_costs(classes, symbols, tables)
    assert [slices.slice_bytes(int(costs[bounds[r] : bounds[r + 1]].sum())) for r in range(len(fast))] == [len(p) for p in fast]


@given(payload=st.binary(min_size=1, max_size=120), limit=st.integers(0, 300))
def test_unpack_slice_takes_any_bytes(payload, limit):
    tables = packet_tables.slice_tables("seed", 150, "chroma")
    outcomes = []
    for unpack in (slices.unpack_slice, slices.unpack_slice_reference):
        try:
            classes, symbols = unpack(payload, limit, tables)
            assert 1 <= len(classes) <= limit
            outcomes.append((classes.tolist(), symbols.tolist()))
        except packets.CorruptStreamError:
            outcomes.append("corrupt")
    assert outcomes[0] == outcomes[1]


def reseal(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", crc32c(body))


def test_every_single_bit_error_is_caught(lena_packets):
    data = lena_packets[0]
    for bit in range(8 * len(data)):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CorruptPacketError):
            parse_packet(bytes(damaged))
    for length in range(len(data)):
        with pytest.raises(CorruptPacketError):
            parse_packet(data[:length])


@pytest.mark.parametrize(
    "offset, value, message",
    [
        (0, 0x52, "magic"),
        (1, 0x21, "version"),
        (1, 0x15, "flags"),
        (2, packets.SOURCE_BASE, "source"),  # digits (0, 1): an empty first character
        (10, 0xC0, "plane"),
        (11, 0x00, "size"),  # width low byte ...
        (15, 0x07, "colour"),
    ],
)
def test_hostile_fields_with_a_valid_crc_are_refused(lena_packets, offset, value, message):
    data = bytearray(lena_packets[0])
    data[offset] = value
    if offset == 2:
        data[2:6] = value.to_bytes(4, "little")
    if offset == 11:
        data[12] = 0  # ... and high byte: width 0
    with pytest.raises(CorruptPacketError, match=message):
        parse_packet(reseal(bytes(data)))


def test_coverage_outside_the_frame_and_missing_stop_bit_are_refused(lena_packets):
    data = bytearray(lena_packets[0])
    data[8:11] = (4096).to_bytes(3, "little")  # block 4096 of a 64x64-block plane
    with pytest.raises(CorruptPacketError, match="outside the frame"):
        parse_packet(reseal(bytes(data)))
    data = bytearray(lena_packets[0])
    payload_length = len(data) - packets.HEADER_SIZE - packets.DESCRIPTOR_SIZE - packets.CRC_SIZE
    data[-5] = packets.WHITENING[payload_length - 1]  # last payload byte 0 once unwhitened
    with pytest.raises(CorruptPacketError, match="stop bit"):
        parse_packet(reseal(bytes(data)))


@given(st.binary(max_size=400))
def test_parse_packet_takes_any_bytes(data):
    try:
        parse_packet(data)
    except CorruptPacketError:
        pass


@given(data=st.data())
def test_resealed_mutations_never_escape_the_documented_errors(lena_packets, data):
    """The CRC aside, the parser and the slice decoder themselves must catch damage."""
    original = lena_packets[data.draw(st.integers(0, len(lena_packets) - 1))]
    body = bytearray(original[:-4])
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(packets.HEADER_SIZE, len(body)))
    mutated = reseal(bytes(body[:cut]) + b"\0\0\0\0")
    descriptor = parse_packet(lena_packets[0]).header.descriptor
    try:
        packet = parse_packet(mutated)
        decoded = packets.decode_slice(packet, packet.header.descriptor or descriptor)
    except CorruptPacketError:
        return
    except packets.ModelError:
        return  # a mutated descriptor naming other models
    blocks = decoded.blocks
    rows, cols = block_grid(*(packet.header.descriptor or descriptor).plane_shapes()[decoded.plane])
    assert blocks.size >= 1 and blocks.min() >= 0 and blocks.max() < rows * cols
