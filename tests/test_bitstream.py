"""The seed profile's stream format (version 1) byte by byte (docs/FORMAT.md; bitstream.py is its implementation):
header fields, Huffman tables, payload lengths and the CRC-32 trailer."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from firmware_py.codec import ColourMode, CorruptStreamError, ModelError, decode, encode, read_header
from firmware_py.codec.bitstream import read_stream
from firmware_py.codec.profiles import get_profile

from codec_helpers import field, replace_field, reseal, stream_fields


@pytest.mark.parametrize(("kind", "colour_code"), [("gray", 0), ("colour", 1)])
def test_fixed_header_bytes(kind, colour_code, gray_crop, colour_crop):
    image = gray_crop if kind == "gray" else colour_crop
    quality = 0.75
    stream = encode(image, quality=quality, profile="seed")
    seed = get_profile("seed")
    magic, version, profile_id, colour, classes, width, height, fingerprint = struct.unpack_from("<4sBBBBHH4s", stream)
    assert magic == b"QPVC"
    assert version == 1
    assert profile_id == seed.profile_id == 1
    assert colour == colour_code
    assert classes == 2
    assert (height, width) == image.shape[:2]
    assert fingerprint == seed.fingerprint
    steps = struct.unpack_from("<2f", stream, 16)
    assert steps == tuple(np.float32(np.array(seed.base_steps) * quality))
    (crc,) = struct.unpack("<I", stream[-4:])
    assert crc == zlib.crc32(stream[:-4])


def test_body_is_tables_then_length_prefixed_payload_per_plane(colour_stream):
    header, planes = read_stream(colour_stream)
    assert len(planes) == 3
    offset = 16 + 4 * header.class_count
    for plane in planes:
        for table in plane.tables:
            min_symbol, count = struct.unpack_from("<hH", colour_stream, offset)
            assert (min_symbol, count) == (table.min_symbol, len(table.lengths))
            nibbles = colour_stream[offset + 4 : offset + 4 + (count + 1) // 2]
            lengths = [n for byte in nibbles for n in (byte >> 4, byte & 15)][:count]
            assert lengths == table.lengths.tolist()
            offset += 4 + (count + 1) // 2
        (length,) = struct.unpack_from("<I", colour_stream, offset)
        assert colour_stream[offset + 4 : offset + 4 + length] == plane.payload
        offset += 4 + length
    assert offset == len(colour_stream) - 4


def test_read_header_reports_the_fields(colour_stream):
    header = read_header(colour_stream)
    assert header.version == 1
    assert header.profile_id == 1
    assert header.colour is ColourMode.YCBCR420
    assert (header.height, header.width) == (21, 35)
    assert header.model_fingerprint == get_profile("seed").fingerprint
    assert header.class_count == 2 and all(s > 0 for s in header.steps)
    assert header.colour.plane_shapes(21, 35) == [(21, 35), (11, 18), (11, 18)]


def test_field_map_covers_the_stream(gray_stream):
    fields = stream_fields(gray_stream)
    assert fields[0].start == 0 and fields[-1].stop == len(gray_stream)
    assert all(a.stop == b.start for a, b in zip(fields, fields[1:]))


def test_crc_covers_every_byte(gray_stream):
    for position in range(len(gray_stream)):
        damaged = bytearray(gray_stream)
        damaged[position] ^= 0x10
        with pytest.raises(CorruptStreamError):
            decode(bytes(damaged))


def test_crc_mismatch_is_reported_as_damage(gray_stream):
    damaged = bytearray(gray_stream)
    damaged[30] ^= 1
    with pytest.raises(CorruptStreamError, match="CRC-32 mismatch"):
        read_header(bytes(damaged))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("magic", b"QPVD", "bad magic"),
        ("version", b"\x00", "unsupported format version 0"),
        ("version", b"\x07", "unsupported format version 7"),
        ("version", b"\xff", "unsupported format version 255"),
        ("profile_id", b"\x63", "profile id 99"),
        ("colour", b"\x02", "unknown colour mode 2"),
        ("class_count", b"\x00", "class count 0"),
        ("class_count", b"\x09", "class count 9"),
        ("width", b"\x00\x00", "empty"),
        ("height", b"\x00\x00", "empty"),
        ("step0", struct.pack("<f", float("nan")), "invalid quantizer steps"),
        ("step1", struct.pack("<f", float("inf")), "invalid quantizer steps"),
        ("step0", struct.pack("<f", -1.0), "invalid quantizer steps"),
        ("step0", struct.pack("<f", 0.0), "invalid quantizer steps"),
        ("step1", struct.pack("<f", 2.0e6), "invalid quantizer steps"),
    ],
)
def test_invalid_header_fields_are_rejected(gray_stream, name, value, message):
    with pytest.raises(CorruptStreamError, match=message):
        decode(replace_field(gray_stream, name, value))


def test_class_count_must_match_the_profile(gray_stream):
    # Three classes parse as a header (one more step) but the seed profile has two.
    header_end = 16 + 8
    body = gray_stream[:7] + b"\x03" + gray_stream[8:header_end] + struct.pack("<f", 5.0) + gray_stream[header_end:]
    with pytest.raises(CorruptStreamError, match="3 block classes"):
        decode(reseal(body))


def test_model_fingerprint_mismatch_raises_model_error(gray_stream):
    with pytest.raises(ModelError, match="encoded with models"):
        decode(replace_field(gray_stream, "fingerprint", b"\x00\x01\x02\x03"))


def test_payload_length_beyond_the_stream_is_rejected(gray_stream):
    with pytest.raises(CorruptStreamError, match="claims"):
        decode(replace_field(gray_stream, "plane0.payload_length", struct.pack("<I", 0xFFFFFFFF)))


def test_bytes_between_last_plane_and_crc_are_rejected(gray_stream):
    with pytest.raises(CorruptStreamError, match="unexpected bytes"):
        decode(reseal(gray_stream[:-4] + b"\x00" + gray_stream[-4:]))


def test_gray_stream_claiming_colour_is_rejected(gray_stream):
    with pytest.raises(CorruptStreamError):
        decode(replace_field(gray_stream, "colour", b"\x01"))


def test_table_with_a_kraft_violation_is_rejected(gray_stream):
    span = field(gray_stream, "plane0.table1.lengths")
    (count,) = struct.unpack_from("<H", gray_stream, span.start - 2)
    nibbles = [1] * count + [0] * (count & 1)  # every symbol a 1-bit code
    lengths = bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))
    with pytest.raises(CorruptStreamError, match="Kraft"):
        decode(replace_field(gray_stream, "plane0.table1.lengths", lengths))


def test_header_limits_cap_the_pixel_count(gray_stream):
    with pytest.raises(CorruptStreamError, match="above"):
        decode(replace_field(replace_field(gray_stream, "width", b"\xff\xff"), "height", b"\xff\xff"))


def test_empty_table_for_an_unused_class():
    flat = np.full((16, 16), 90, dtype=np.uint8)  # every block is low detail
    stream = encode(flat, profile="seed")
    _, planes = read_stream(stream)
    assert planes[0].tables[1].symbol_count == 0
    assert len(planes[0].tables[1].serialize()) == 4
    assert np.abs(decode(stream).astype(int) - 90).max() <= 2
