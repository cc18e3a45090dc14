"""The packet format: CRC-32C, header and descriptor, slice coding, frame encoding and
rate control on wire bytes, and parse_packet against damaged and hostile input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec_helpers import crop
from firmware_py.codec import ColourMode, ModelError, RateControlError, packet_tables, slices
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
    assert bytes(packets.WHITENING[0, :8]) == bytes.fromhex("ff480ec09a0d70bc")
    assert bytes(packets.WHITENING[0, 255:263]) == bytes(packets.WHITENING[0, :8])  # period 255
    for variant in range(4):  # variant v starts at byte 64 v of the sequence
        assert bytes(packets.WHITENING[variant, :100]) == bytes(packets.WHITENING[0, 64 * variant : 64 * variant + 100])
        assert packets.whiten(packets.whiten(b"any payload", variant), variant) == b"any payload"


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
    index=st.integers(0, 65534),
    payload=st.binary(min_size=1, max_size=200).filter(lambda p: p[-1] != 0),
    framing_name=st.sampled_from(framing.FRAMINGS),
)
def test_header_round_trips(source, frame_id, descriptor, index, payload, framing_name):
    if descriptor is not None:
        index %= descriptor.packet_count
    header = PacketHeader(source, frame_id, index, 0, descriptor)
    data = build_packet(header, payload, framing_name)
    assert len(data) == packets.HEADER_SIZE + (packets.DESCRIPTOR_SIZE if descriptor else 0) + len(payload) + 4
    packet = parse_packet(data)
    assert packet.header == header
    assert packet.payload == payload
    assert data[0] == 0x52  # magic nibble 5, version 2


def test_the_sender_picks_the_whitening_variant_that_frames_shortest():
    rng = np.random.default_rng(3)
    payloads = [rng.integers(0, 256, 230, dtype=np.uint8).tobytes() + b"\x01" for _ in range(40)]
    chosen, first = 0, 0
    for payload in payloads:
        header = PacketHeader("QPV1", 1, 0, 0)
        variants = []
        for variant in range(4):
            body = bytearray(build_packet(header, payload))[:-4]
            body[9:12] = (variant << packets.WHITENING_SHIFT).to_bytes(3, "little")
            body[packets.HEADER_SIZE :] = packets.whiten(payload, variant)
            variants.append(len(framing.frame(reseal(bytes(body) + bytes(4)), "kiss")))
        best = build_packet(header, payload)
        assert parse_packet(best).payload == payload
        chosen += len(framing.frame(best, "kiss"))
        first += variants[0]
        assert len(framing.frame(best, "kiss")) == min(variants)
    assert chosen < first  # picking saves escapes


@pytest.fixture(scope="module")
def lena_packets(lena2):
    """lena2 at 0.2 bpp of wire bytes in 256-byte packets."""
    return packets.encode_frame_packets(lena2, source="QPV1", frame_id=7, max_wire_bytes=int(0.2 * lena2.size / 8))


def test_frame_packets_are_complete_and_cover_every_block_once(lena2, lena_packets):
    parsed = [parse_packet(p) for p in lena_packets]
    assert all(len(p) <= packets.DEFAULT_PACKET_SIZE for p in lena_packets)
    descriptor = parsed[0].header.descriptor
    assert descriptor is not None and descriptor.packet_count == len(parsed)
    assert [p.header.index for p in parsed] == list(range(len(parsed)))
    assert [p.header.final for p in parsed] == [False] * (len(parsed) - 1) + [True]
    carriers = [i for i, p in enumerate(parsed) if p.header.descriptor]
    assert carriers == [i for i in range(len(parsed)) if packets.carries_descriptor(i) or i == len(parsed) - 1]
    assert all(p.header.descriptor in (None, descriptor) for p in parsed)
    covered = np.concatenate([packets.decode_slice(p, descriptor).blocks for p in parsed])
    assert np.array_equal(np.sort(covered), np.arange(64 * 64))


def test_colour_packets_run_across_planes_and_spread_every_plane(kodim23):
    """Planes are interleaved phase by phase, so no packet holds more than one phase
    (1/16) of a chroma plane, and only the frame's last packet is partly filled."""
    sent = packets.encode_frame_packets(kodim23, source="QPV1", frame_id=7, max_wire_bytes=int(0.2 * kodim23.size / 24))
    parsed = [parse_packet(p) for p in sent]
    descriptor = parsed[0].header.descriptor
    decoded = [packets.decode_slice(p, descriptor) for p in parsed]
    assert sum(len(set(d.planes.tolist())) > 1 for d in decoded) >= 16
    assert all(len(p) >= packets.DEFAULT_PACKET_SIZE - 8 for p in sent[:-1])  # less than a block of room left
    for plane, count in enumerate(descriptor.plane_blocks()):
        shares = [np.count_nonzero(d.planes == plane) / count for d in decoded]
        assert max(shares) <= 1 / 16 and sum(share > 0 for share in shares) >= 16
        blocks = np.concatenate([d.blocks[d.planes == plane] for d in decoded])
        assert np.array_equal(np.sort(blocks), np.arange(count))


def test_frame_order_interleaves_planes_phase_by_phase():
    planes, blocks = slices.frame_order(((4, 4), (2, 2), (2, 2)))
    assert planes.tolist()[:3] == [0, 1, 2] and blocks.tolist()[:3] == [0, 0, 0]  # phase 0 of each plane
    # phases 1-3 exist only in Y (blocks 10, 2, 8); phase 4 is Y block 5, then Cb and Cr block 3 (1, 1)
    assert list(zip(planes.tolist(), blocks.tolist()))[3:9] == [(0, 10), (0, 2), (0, 8), (0, 5), (1, 3), (2, 3)]
    assert sorted(zip(planes.tolist(), blocks.tolist())) == [(0, b) for b in range(16)] + [(p, b) for p in (1, 2) for b in range(4)]


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


def test_packet_mode_names_the_profiles_it_can_send(lena2):
    assert packet_tables.packet_profiles() == ["seed"]
    with pytest.raises(ModelError, match="'klt' has no packet-mode statistics.*packet mode sends seed"):
        packets.encode_frame_packets(lena2, source="A", frame_id=1, profile="klt")


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
    tables = packet_tables.table_set("seed", 128)
    rng = np.random.default_rng(5)
    n = 300
    kinds = rng.integers(0, 2, n)
    classes = rng.integers(0, 2, n).astype(np.int64)
    symbols = np.zeros((n, 8), dtype=np.int64)
    symbols[:, :] = rng.integers(-6, 7, (n, 8))
    symbols[::7, 0] = rng.choice([-16383, 16383, 900, -2000], size=len(symbols[::7]))  # escaped
    symbols[classes == 0, 1:] = 0
    bounds = np.array([0, 1, 50, 51, 200, n])
    fast = slices.pack_slices(classes, symbols, kinds, bounds, tables)
    for r, payload in enumerate(fast):
        part = slice(bounds[r], bounds[r + 1])
        assert payload == slices.pack_slice_reference(classes[part], symbols[part], kinds[part], tables)
        for unpack in (slices.unpack_slice, slices.unpack_slice_reference):
            got_classes, got_symbols = unpack(payload, kinds[bounds[r] :], tables)
            assert np.array_equal(got_classes, classes[part])
            assert np.array_equal(got_symbols, symbols[part])
    costs = slices.block_costs(classes, symbols, kinds, tables)
    assert [slices.slice_bytes(int(costs[bounds[r] : bounds[r + 1]].sum())) for r in range(len(fast))] == [len(p) for p in fast]


@given(payload=st.binary(min_size=1, max_size=120), kinds=st.lists(st.integers(0, 1), max_size=300))
def test_unpack_slice_takes_any_bytes(payload, kinds):
    tables = packet_tables.table_set("seed", 150)
    limit = len(kinds)
    outcomes = []
    for unpack in (slices.unpack_slice, slices.unpack_slice_reference):
        try:
            classes, symbols = unpack(payload, np.array(kinds, dtype=np.int64), tables)
            assert 1 <= len(classes) <= limit
            outcomes.append((classes.tolist(), symbols.tolist()))
        except packets.CorruptStreamError:
            outcomes.append("corrupt")
    assert outcomes[0] == outcomes[1]


def put_plain(data: bytearray, offset: int, value: int) -> None:
    """Set a packet byte as the parser will read it: bytes after the header are whitened."""
    if offset >= packets.HEADER_SIZE:
        variant = int.from_bytes(data[9:12], "little") >> packets.WHITENING_SHIFT
        value ^= int(packets.WHITENING[variant, offset - packets.HEADER_SIZE])
    data[offset] = value


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
        (0, 0x42, "magic"),
        (0, 0x51, "version 1"),  # a version 1 packet
        (1, packets.SOURCE_BASE, "source"),  # digits (0, 1): an empty first character
        (7, 0xFF, "index"),  # index 65535 ...
        (12, 0x00, "size"),  # width low byte ...
        (16, 0x07, "colour"),
        (19, 0x00, "packets"),  # packet count low byte ...
    ],
)
def test_hostile_fields_with_a_valid_crc_are_refused(lena_packets, offset, value, message):
    data = bytearray(lena_packets[0])
    put_plain(data, offset, value)
    if offset == 1:
        data[1:5] = value.to_bytes(4, "little")
    if offset in (7, 12, 19):
        put_plain(data, offset + 1, value)  # ... and high byte
    with pytest.raises(CorruptPacketError, match=message):
        parse_packet(reseal(bytes(data)))


def test_placement_outside_the_frame_and_missing_stop_bit_are_refused(lena_packets):
    original = parse_packet(lena_packets[0])
    data = bytearray(lena_packets[0])
    variant_and_flag = int.from_bytes(data[9:12], "little") & ~(packets.MAX_FRAME_BLOCKS - 1)
    data[9:12] = (variant_and_flag | 4096).to_bytes(3, "little")  # block 4096 of a 64x64-block frame
    with pytest.raises(CorruptPacketError, match="outside the frame"):
        parse_packet(reseal(bytes(data)))
    data = bytearray(lena_packets[0])
    data[7:9] = original.header.descriptor.packet_count.to_bytes(2, "little")
    with pytest.raises(CorruptPacketError, match="beyond the frame"):
        parse_packet(reseal(bytes(data)))
    data = bytearray(lena_packets[0])
    put_plain(data, len(data) - 5, 0)  # last payload byte 0
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
    grids = (packet.header.descriptor or descriptor).block_grids()
    assert decoded.blocks.size >= 1
    for plane, (rows, cols) in enumerate(grids):
        blocks = decoded.blocks[decoded.planes == plane]
        assert blocks.size == 0 or (blocks.min() >= 0 and blocks.max() < rows * cols)
