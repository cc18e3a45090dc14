"""The format version 2 stream: shared fixed header, dead-zone offset, and per plane a DC
and an AC Huffman table and a run-length payload (docs/FORMAT.md, "Format version 2").
Version 3 is the same with one quantizer step per plane kind (luma; chroma in colour
streams) and a coded-scale byte after the dead-zone offset: its planes code the frame at
1/scale of the header's size (docs/FORMAT.md, "Format version 3").

Parsing validates every field (CRC first, via the shared header parser) before anything
downstream allocates or decodes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .bitstream import (
    LENGTH_PREFIX_BYTES,
    ColourMode,
    StreamHeader,
    check_consumed,
    length_prefixed,
    pack_header,
    parse_header,
    read_payload,
    seal,
)
from .errors import CorruptStreamError
from .huffman import HuffmanTable
from .runlength import PlaneTables

# The dead-zone rounding offset is sent in 1/64 units: 1..32 (1/64 .. 1/2).
ROUNDING_UNITS = 64
_ROUNDING = struct.Struct("<B")
_SCALE = struct.Struct("<B")
SCALE_BYTES = _SCALE.size
SCALED_VERSION = 3
CODED_SCALES = (1, 2)  # resample.FULL, resample.HALF
_CRC_BYTES = 4


@dataclass(frozen=True)
class PlaneSegmentV2:
    tables: PlaneTables
    payload: bytes


@dataclass(frozen=True)
class StreamV2:
    header: StreamHeader  # version 2: steps = (step,); version 3: one step per plane kind
    rounding_units: int
    planes: tuple[PlaneSegmentV2, ...]
    scale: int = 1  # coded scale; version 3 streams store it, version 2 streams are 1

    def __post_init__(self) -> None:
        if self.scale not in CODED_SCALES or (self.scale != 1 and self.header.version != SCALED_VERSION):
            raise ValueError(f"coded scale {self.scale} cannot be written in a version {self.header.version} stream")

    @property
    def rounding(self) -> float:
        return self.rounding_units / ROUNDING_UNITS


def step_count(header: StreamHeader) -> int:
    """Steps a stream carries: version 3 has one per plane kind, version 2 one in all."""
    if header.version == SCALED_VERSION and header.colour is not ColourMode.GRAY:
        return 2
    return 1


def plane_step(steps: tuple[float, ...], plane_index: int) -> float:
    """Plane 0 (luma or gray) uses the first step, both chroma planes the last."""
    return steps[min(plane_index, len(steps) - 1)]


def rounding_units(rounding: float) -> int:
    units = round(rounding * ROUNDING_UNITS)
    if not 1 <= units <= ROUNDING_UNITS // 2:
        raise ValueError(f"rounding offset {rounding} is outside 1/64..1/2")
    return units


def segment_size(tables: PlaneTables, payload_bytes: int) -> int:
    """Bytes a plane segment takes in the stream."""
    return len(tables.dc.serialize()) + len(tables.ac.serialize()) + LENGTH_PREFIX_BYTES + payload_bytes


def overhead_size(header: StreamHeader) -> int:
    """Bytes of a stream besides its plane segments."""
    scale = _SCALE.size if header.version == SCALED_VERSION else 0
    return len(pack_header(header)) + _ROUNDING.size + scale + _CRC_BYTES


def write_stream(stream: StreamV2) -> bytes:
    parts = [pack_header(stream.header), _ROUNDING.pack(stream.rounding_units)]
    if stream.header.version == SCALED_VERSION:
        parts.append(_SCALE.pack(stream.scale))
    for plane in stream.planes:
        parts += [plane.tables.dc.serialize(), plane.tables.ac.serialize(), length_prefixed(plane.payload)]
    return seal(b"".join(parts))


def read_stream(data: bytes) -> StreamV2:
    view = memoryview(data)
    header, offset = parse_header(view)
    if header.version not in (2, SCALED_VERSION):
        raise CorruptStreamError(f"not a version 2 or 3 stream (version {header.version})")
    if header.class_count != step_count(header):
        raise CorruptStreamError(
            f"a version {header.version} {header.colour.name.lower()} stream has {step_count(header)} steps, "
            f"not {header.class_count}"
        )
    end = len(view) - _CRC_BYTES
    if offset + _ROUNDING.size > end:
        raise CorruptStreamError("stream ends before the dead-zone offset")
    (units,) = _ROUNDING.unpack_from(view, offset)
    offset += _ROUNDING.size
    if not 1 <= units <= ROUNDING_UNITS // 2:
        raise CorruptStreamError(f"dead-zone offset {units}/{ROUNDING_UNITS} is outside 1/64..1/2")
    scale = 1
    if header.version == SCALED_VERSION:
        if offset + _SCALE.size > end:
            raise CorruptStreamError("stream ends before the coded scale")
        (scale,) = _SCALE.unpack_from(view, offset)
        offset += _SCALE.size
        if scale not in CODED_SCALES:
            raise CorruptStreamError(f"coded scale {scale} is not one of {CODED_SCALES}")
    planes = []
    for index in range(len(header.colour.plane_shapes(header.height, header.width))):
        dc, offset = HuffmanTable.parse(view[:end], offset)
        ac, offset = HuffmanTable.parse(view[:end], offset)
        payload, offset = read_payload(view, offset, end, index)
        planes.append(PlaneSegmentV2(PlaneTables(dc, ac), payload))
    check_consumed(offset, end)
    return StreamV2(header, units, tuple(planes), scale)
