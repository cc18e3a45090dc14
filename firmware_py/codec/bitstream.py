"""The qpv stream container: header, per-plane segments, CRC-32 trailer.

Byte layout is specified in docs/FORMAT.md; this module is its only reader and writer.
Parsing validates every field before anything downstream allocates or decodes, and
the CRC is checked first so that a damaged stream is reported as damaged.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from .errors import CorruptStreamError, ModelError
from .huffman import HuffmanTable

MAGIC = b"QPVC"
FORMAT_VERSION = 1
# Version 1: the seed profile's per-class latents; version 2: the run-length block
# layout of transform profiles (container_v2.py); version 3: version 2 with a coded scale
# (half-resolution frames); version 4: version 3 with compact or static Huffman tables;
# version 5: version 4 with joint DC symbols chosen by neighbour context; version 6:
# version 5 with other-AC tables chosen by where a symbol's run starts.
# All share the fixed header.
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5, 6)
MAX_DIMENSION = 65535
# 64 Mpx bounds what a hostile header can make the decoder allocate (the Pi HQ
# camera's 4056x3040 frame is 12.3 Mpx).
MAX_PIXELS = 1 << 26
MAX_STEP = 1.0e6

_FIXED = struct.Struct("<4sBBBBHH4s")
_STEP = struct.Struct("<f")
_LENGTH = struct.Struct("<I")
LENGTH_PREFIX_BYTES = _LENGTH.size
_CRC = struct.Struct("<I")


class ColourMode(IntEnum):
    GRAY = 0
    YCBCR420 = 1

    def plane_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """(height, width) of each coded plane: luma, then 4:2:0 chroma if colour."""
        if self is ColourMode.GRAY:
            return [(height, width)]
        chroma = ((height + 1) // 2, (width + 1) // 2)
        return [(height, width), chroma, chroma]


@dataclass(frozen=True)
class StreamHeader:
    profile_id: int
    colour: ColourMode
    width: int
    height: int
    model_fingerprint: bytes
    steps: tuple[float, ...]  # quantizer step of each block class
    version: int = FORMAT_VERSION

    @property
    def class_count(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class PlaneSegment:
    """One colour plane: a Huffman table per block class and the packed block payload."""

    tables: tuple[HuffmanTable, ...]
    payload: bytes


def pack_header(header: StreamHeader) -> bytes:
    """The fixed header and the class steps, the part every format version shares."""
    parts = [
        _FIXED.pack(
            MAGIC,
            header.version,
            header.profile_id,
            int(header.colour),
            header.class_count,
            header.width,
            header.height,
            header.model_fingerprint,
        )
    ]
    parts += [_STEP.pack(step) for step in header.steps]
    return b"".join(parts)


def seal(body: bytes) -> bytes:
    """Append the CRC-32 trailer."""
    return body + _CRC.pack(zlib.crc32(body))


def write_stream(header: StreamHeader, planes: list[PlaneSegment]) -> bytes:
    parts = [pack_header(header)]
    for plane in planes:
        parts += [table.serialize() for table in plane.tables]
        parts.append(length_prefixed(plane.payload))
    return seal(b"".join(parts))


def read_header(data: bytes) -> StreamHeader:
    """Parse and validate the header of a complete stream (CRC included)."""
    header, _ = parse_header(memoryview(data))
    return header


def read_stream(data: bytes) -> tuple[StreamHeader, list[PlaneSegment]]:
    """Parse a complete version 1 stream into its header and plane segments."""
    view = memoryview(data)
    header, offset = parse_header(view)
    if header.version != 1:
        raise CorruptStreamError(f"format version {header.version} streams have their own layout (container_v2)")
    end = len(view) - _CRC.size
    planes = []
    for index in range(len(header.colour.plane_shapes(header.height, header.width))):
        tables = []
        for _ in range(header.class_count):
            table, offset = HuffmanTable.parse(view[:end], offset)
            tables.append(table)
        payload, offset = read_payload(view, offset, end, index)
        planes.append(PlaneSegment(tuple(tables), payload))
    check_consumed(offset, end)
    return header, planes


def check_fingerprint(header: StreamHeader, profile_name: str, installed: bytes) -> None:
    """Refuse to decode with models other than the ones the stream was encoded with."""
    if installed != header.model_fingerprint:
        raise ModelError(
            f"stream was encoded with models {header.model_fingerprint.hex()}, installed '{profile_name}' "
            f"models are {installed.hex()}"
        )


def length_prefixed(payload: bytes) -> bytes:
    """A plane's payload as the stream stores it: u32 length, then the bytes."""
    return _LENGTH.pack(len(payload)) + payload


def read_payload(view: memoryview, offset: int, end: int, plane: int) -> tuple[bytes, int]:
    """The length-prefixed payload of ``plane`` at ``offset``; bounded by ``end`` (the CRC)."""
    if offset + _LENGTH.size > end:
        raise CorruptStreamError(f"stream ends before the payload length of plane {plane}")
    (length,) = _LENGTH.unpack_from(view, offset)
    offset += _LENGTH.size
    if offset + length > end:
        raise CorruptStreamError(f"plane {plane} claims {length} payload bytes, only {end - offset} remain")
    return bytes(view[offset : offset + length]), offset + length


def check_consumed(offset: int, end: int) -> None:
    if offset != end:
        raise CorruptStreamError(f"{end - offset} unexpected bytes before the CRC")


def parse_header(view: memoryview) -> tuple[StreamHeader, int]:
    """Validated header (CRC checked first) and the offset just after the class steps."""
    if len(view) < 4 or bytes(view[:4]) != MAGIC:
        raise CorruptStreamError("not a qpv stream (bad magic number)")
    if len(view) < _FIXED.size + _CRC.size:
        raise CorruptStreamError(f"stream of {len(view)} bytes is too short for a header")
    magic, version, profile_id, colour, classes, width, height, fingerprint = _FIXED.unpack_from(view, 0)
    if version not in SUPPORTED_VERSIONS:
        raise CorruptStreamError(
            f"unsupported format version {version} (this decoder reads {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    (stored_crc,) = _CRC.unpack_from(view, len(view) - _CRC.size)
    if zlib.crc32(view[: len(view) - _CRC.size]) != stored_crc:
        raise CorruptStreamError("CRC-32 mismatch: the stream is damaged or truncated")
    if colour not in ColourMode._value2member_map_:
        raise CorruptStreamError(f"unknown colour mode {colour}")
    if not 1 <= classes <= 8:
        raise CorruptStreamError(f"block class count {classes} is outside 1..8")
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise CorruptStreamError(f"image size {width}x{height} is empty or above {MAX_PIXELS} pixels")
    offset = _FIXED.size
    if offset + classes * _STEP.size + _CRC.size > len(view):
        raise CorruptStreamError("stream ends inside the quantizer steps")
    steps = tuple(_STEP.unpack_from(view, offset + i * _STEP.size)[0] for i in range(classes))
    if not all(math.isfinite(s) and 0 < s <= MAX_STEP for s in steps):
        raise CorruptStreamError(f"invalid quantizer steps {steps}")
    offset += classes * _STEP.size
    header = StreamHeader(profile_id, ColourMode(colour), width, height, bytes(fingerprint), steps, version)
    return header, offset
