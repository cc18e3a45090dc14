"""Helpers of the codec tests: image crops and a map of a stream's fields.

The field map lets corruption tests mutate one named part of a stream (a header
field, a Huffman table, a payload length, payload bits) and then re-seal it with a
correct CRC-32, so that the parser itself, not the checksum, has to catch the damage.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_py.codec.bitstream import read_stream

REPO = Path(__file__).resolve().parents[1]
CRC_BYTES = 4
# (name, size) of the fixed header fields, in stream order (docs/FORMAT.md).
HEADER_FIELDS = (
    ("magic", 4),
    ("version", 1),
    ("profile_id", 1),
    ("colour", 1),
    ("class_count", 1),
    ("width", 2),
    ("height", 2),
    ("fingerprint", 4),
)


def header_span(name: str) -> slice:
    """Byte span of a fixed header field."""
    offset = 0
    for field_name, size in HEADER_FIELDS:
        if field_name == name:
            return slice(offset, offset + size)
        offset += size
    raise KeyError(name)


def crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A detailed region of ``image`` near its centre (not a flat corner), as a new array."""
    top = min(image.shape[0] - height, image.shape[0] // 3)
    left = min(image.shape[1] - width, image.shape[1] // 3)
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def reseal(body_and_old_crc: bytes) -> bytes:
    """Replace the last 4 bytes with the CRC-32 of everything before them."""
    body = bytes(body_and_old_crc[:-CRC_BYTES])
    return body + struct.pack("<I", zlib.crc32(body))


@dataclass(frozen=True)
class Field:
    name: str
    start: int
    stop: int


def stream_fields(stream: bytes) -> list[Field]:
    """Every field of a valid stream with its byte span, header to CRC."""
    header, planes = read_stream(stream)
    fields, offset = [], 0
    for name, size in HEADER_FIELDS:
        fields.append(Field(name, offset, offset + size))
        offset += size
    for c in range(header.class_count):
        fields.append(Field(f"step{c}", offset, offset + 4))
        offset += 4
    for p, plane in enumerate(planes):
        for c, table in enumerate(plane.tables):
            size = len(table.serialize())
            fields.append(Field(f"plane{p}.table{c}.range", offset, offset + 4))
            fields.append(Field(f"plane{p}.table{c}.lengths", offset + 4, offset + size))
            offset += size
        fields.append(Field(f"plane{p}.payload_length", offset, offset + 4))
        fields.append(Field(f"plane{p}.payload", offset + 4, offset + 4 + len(plane.payload)))
        offset += 4 + len(plane.payload)
    fields.append(Field("crc", offset, offset + CRC_BYTES))
    assert offset + CRC_BYTES == len(stream)
    return fields


def field(stream: bytes, name: str) -> Field:
    return next(f for f in stream_fields(stream) if f.name == name)


def replace_field(stream: bytes, name: str, value: bytes) -> bytes:
    """The stream with one field's bytes replaced (same size) and the CRC recomputed."""
    span = field(stream, name)
    assert len(value) == span.stop - span.start
    return reseal(stream[: span.start] + value + stream[span.stop :])


def parse_v2(stream: bytes):
    """The container of an installed transform profile's stream, its static tables
    resolved in that profile's set for the stream's version (container_v2.read_stream
    without the decoder's fingerprint and upsampler checks)."""
    from firmware_py.codec import container_v2
    from firmware_py.codec.bitstream import read_header
    from firmware_py.codec.profile_v2 import transform_profile_by_id

    header = read_header(stream)
    return container_v2.read_stream(stream, transform_profile_by_id(header.profile_id).static_set(header.version))


def as_version(stream: bytes, version: int) -> bytes:
    """The same frame of a klt stream (version 6) as an earlier encoder wrote it: the
    levels re-coded as runlength.py codes blocks, with optimal tables in the version 1
    table format (versions 2 and 3) or chosen among the profile's version 4 static set
    (version 4), or as jointdc.py codes them with one other-AC table, tables chosen
    among the profile's version 5 set (version 5), and that version's fingerprint
    (version 2: no coded-scale byte, so only full-resolution gray streams). The tests use
    it to keep those streams decodable."""
    from dataclasses import replace

    from firmware_py.codec import blocking, container_v2, jointdc, resample, runlength, tablecoding
    from firmware_py.codec.profile_v2 import transform_profile_by_id

    parsed = parse_v2(stream)
    if version == 2:
        assert parsed.scale == 1 and len(parsed.header.steps) == 1, "only full-resolution gray streams have a v2 twin"
    profile = transform_profile_by_id(parsed.header.profile_id)
    header = replace(parsed.header, version=version, model_fingerprint=profile.stream_fingerprint(version))
    shapes = header.colour.plane_shapes(*resample.coded_size(header.height, header.width, parsed.scale))
    planes = []
    for index, (segment, shape) in enumerate(zip(parsed.planes, shapes)):
        rows, cols = blocking.block_grid(*shape)
        dc_residuals, levels = jointdc.unpack(segment.payload, rows, cols, segment.tables)
        if version == container_v2.JOINT_VERSION:
            joint = jointdc.symbol_counts(dc_residuals, levels, cols, container_v2.REST_TABLES[version])
            refs, tables, _ = tablecoding.choose_joint_tables(joint, profile.joint_tables.for_plane(index))
            planes.append(container_v2.PlaneSegmentV2(tables, jointdc.pack(dc_residuals, levels, cols, tables), refs))
            continue
        counts = runlength.symbol_counts(dc_residuals, levels)
        refs, tables = tablecoding.EXPLICIT_REFS, runlength.tables_for(*counts[:2])
        if version == container_v2.STATIC_TABLE_VERSION:
            refs, tables = tablecoding.choose_tables(*counts[:2], tables, profile.static_tables.for_plane(index))
        planes.append(container_v2.PlaneSegmentV2(tables, runlength.pack(dc_residuals, levels, tables, counts), refs))
    return container_v2.write_stream(replace(parsed, header=header, planes=tuple(planes)))


def as_version_2(stream: bytes) -> bytes:
    """The version 2 stream of a full-resolution gray klt stream (:func:`as_version`)."""
    return as_version(stream, 2)


def as_version_3(stream: bytes) -> bytes:
    """The version 3 stream of a klt stream (:func:`as_version`)."""
    return as_version(stream, 3)


def as_version_4(stream: bytes) -> bytes:
    """The version 4 stream of a klt stream (:func:`as_version`)."""
    return as_version(stream, 4)


def as_version_5(stream: bytes) -> bytes:
    """The version 5 stream of a klt stream (:func:`as_version`)."""
    return as_version(stream, 5)
