"""The format version 2 stream: shared fixed header, dead-zone offset, and per plane a DC
and an AC Huffman table and a run-length payload (docs/FORMAT.md, "Format version 2").
Version 3 is the same with one quantizer step per plane kind (luma; chroma in colour
streams) and a coded-scale byte after the dead-zone offset: its planes code the frame at
1/scale of the header's size (docs/FORMAT.md, "Format version 3"). Version 4 is version 3
with each plane's tables given by a reference byte: a static table of the profile's set
or an explicit table in a compact coding (tablecoding.py; "Format version 4").
Version 5 is version 4 with blocks coded by joint DC symbols and last-flagged AC symbols
(jointdc.py): each plane gives three joint DC tables and two AC tables by three
reference bytes ("Format version 5"). Version 6 is version 5 with four "other" AC tables
instead of one, chosen by where a symbol's run starts: eight tables by four reference
bytes ("Format version 6").

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
from .jointdc import JointTables
from .runlength import PlaneTables
from .statictables import StaticTables
from .tablecoding import (
    EXPLICIT,
    EXPLICIT_REFS,
    JointRefs,
    PlaneStatic,
    TableRefs,
    joint_refs_bytes,
    joint_tables_size,
    parse_compact,
    segment_tables_size,
    serialize_compact,
)

# The dead-zone rounding offset is sent in 1/64 units: 1..32 (1/64 .. 1/2).
ROUNDING_UNITS = 64
_ROUNDING = struct.Struct("<B")
_SCALE = struct.Struct("<B")
SCALE_BYTES = _SCALE.size
SCALED_VERSION = 3
STATIC_TABLE_VERSION = 4
JOINT_VERSION = 5
CONTEXT_VERSION = 6
# Versions with joint DC symbols -> their planes' number of other-AC tables.
REST_TABLES = {JOINT_VERSION: 1, CONTEXT_VERSION: 4}
# Versions with per-kind steps and a scale.
SCALED_VERSIONS = (SCALED_VERSION, STATIC_TABLE_VERSION, JOINT_VERSION, CONTEXT_VERSION)
_REFS = struct.Struct("<B")
CODED_SCALES = (1, 2)  # resample.FULL, resample.HALF
_CRC_BYTES = 4


@dataclass(frozen=True)
class PlaneSegmentV2:
    tables: PlaneTables | JointTables  # versions 5 and 6: JointTables
    payload: bytes
    refs: TableRefs | JointRefs = EXPLICIT_REFS  # versions 4 to 6: how the stream gives the tables


@dataclass(frozen=True)
class StreamV2:
    header: StreamHeader  # version 2: steps = (step,); versions 3 to 6: one step per plane kind
    rounding_units: int
    planes: tuple[PlaneSegmentV2, ...]
    scale: int = 1  # coded scale; version 3 to 6 streams store it, version 2 streams are 1

    def __post_init__(self) -> None:
        if self.scale not in CODED_SCALES or (self.scale != 1 and self.header.version not in SCALED_VERSIONS):
            raise ValueError(f"coded scale {self.scale} cannot be written in a version {self.header.version} stream")

    @property
    def rounding(self) -> float:
        return self.rounding_units / ROUNDING_UNITS


def step_count(header: StreamHeader) -> int:
    """Steps a stream carries: versions 3 to 6 have one per plane kind, version 2 one in all."""
    if header.version in SCALED_VERSIONS and header.colour is not ColourMode.GRAY:
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


def segment_size(
    tables: PlaneTables | JointTables, payload_bytes: int, refs: TableRefs | JointRefs | None = None
) -> int:
    """Bytes a plane segment takes in the stream: with TableRefs a version 4 segment, with
    JointRefs a version 5 or 6 one, without refs one of version 2 or 3."""
    if refs is None:
        table_bytes = len(tables.dc.serialize()) + len(tables.ac.serialize())
    elif isinstance(refs, JointRefs):
        table_bytes = joint_tables_size(refs, tables)
    else:
        table_bytes = segment_tables_size(refs, tables)
    return table_bytes + LENGTH_PREFIX_BYTES + payload_bytes


def overhead_size(header: StreamHeader) -> int:
    """Bytes of a stream besides its plane segments."""
    scale = _SCALE.size if header.version in SCALED_VERSIONS else 0
    return len(pack_header(header)) + _ROUNDING.size + scale + _CRC_BYTES


def write_stream(stream: StreamV2) -> bytes:
    parts = [pack_header(stream.header), _ROUNDING.pack(stream.rounding_units)]
    if stream.header.version in SCALED_VERSIONS:
        parts.append(_SCALE.pack(stream.scale))
    version = stream.header.version
    for plane in stream.planes:
        if version in REST_TABLES:
            if len(plane.refs.rest) != REST_TABLES[version]:
                raise ValueError(f"a version {version} plane has {REST_TABLES[version]} other-AC tables")
            parts += [plane.refs.to_bytes()] + _explicit_joint_compact(plane)
        elif stream.header.version == STATIC_TABLE_VERSION:
            parts += [_REFS.pack(plane.refs.to_byte())] + _explicit_compact(plane)
        else:
            parts += [plane.tables.dc.serialize(), plane.tables.ac.serialize()]
        parts.append(length_prefixed(plane.payload))
    return seal(b"".join(parts))


def _explicit_compact(plane: PlaneSegmentV2) -> list[bytes]:
    """The compact codings of the plane's explicit tables, DC first."""
    pairs = ((plane.tables.dc, "dc", plane.refs.dc), (plane.tables.ac, "ac", plane.refs.ac))
    return [serialize_compact(table, kind) for table, kind, ref in pairs if ref == EXPLICIT]


def _explicit_joint_compact(plane: PlaneSegmentV2) -> list[bytes]:
    """The compact codings of a version 5 or 6 plane's explicit tables, in reference order."""
    tables = (*plane.tables.joint, plane.tables.first, *plane.tables.rest)
    return [serialize_compact(table, kind) for (kind, ref), table in zip(plane.refs.kinds, tables) if ref == EXPLICIT]


def _read_tables_v1(view: memoryview, offset: int) -> tuple[PlaneTables, TableRefs, int]:
    dc, offset = HuffmanTable.parse(view, offset)
    ac, offset = HuffmanTable.parse(view, offset)
    return PlaneTables(dc, ac), EXPLICIT_REFS, offset


def _read_tables_v4(
    view: memoryview, offset: int, static: StaticTables | None, index: int
) -> tuple[PlaneTables, TableRefs, int]:
    """A plane's reference byte and the explicit tables it announces; static references
    are resolved in ``static``, the profile's set (None: any static reference is corrupt)."""
    if offset + _REFS.size > len(view):
        raise CorruptStreamError(f"stream ends before the table references of plane {index}")
    refs = TableRefs.from_byte(_REFS.unpack_from(view, offset)[0])
    offset += _REFS.size
    tables, offset = _referenced_tables(view, offset, static, index, (("dc", refs.dc), ("ac", refs.ac)))
    return PlaneTables(*tables), refs, offset


def _read_joint_tables(
    view: memoryview, offset: int, static: StaticTables | None, index: int, rest_tables: int
) -> tuple[JointTables, JointRefs, int]:
    """A version 5 or 6 plane's reference bytes (``rest_tables`` other-AC tables) and the
    explicit tables they announce."""
    size = joint_refs_bytes(rest_tables)
    if offset + size > len(view):
        raise CorruptStreamError(f"stream ends before the table references of plane {index}")
    refs = JointRefs.from_bytes(bytes(view[offset : offset + size]), rest_tables)
    tables, offset = _referenced_tables(view, offset + size, static, index, refs.kinds)
    contexts = len(refs.joint)
    return JointTables(tuple(tables[:contexts]), tables[contexts], tuple(tables[contexts + 1 :])), refs, offset


def _referenced_tables(
    view: memoryview, offset: int, static: StaticTables | None, index: int, kinds
) -> tuple[list[HuffmanTable], int]:
    """The tables of (kind, reference) pairs: static ones resolved in ``static`` (None:
    any static reference is corrupt), explicit ones parsed from ``offset`` on."""
    plane_static: PlaneStatic | None = static.for_plane(index) if static is not None else None
    tables = []
    for kind, ref in kinds:
        if ref != EXPLICIT:
            if plane_static is None:
                raise CorruptStreamError(
                    f"plane {index} references a static {kind.upper()} table, and no set is installed"
                )
            tables.append(plane_static.table(kind, ref))
        else:
            table, offset = parse_compact(view, offset, kind)
            tables.append(table)
    return tables, offset


def read_stream(data: bytes, static: StaticTables | None) -> StreamV2:
    """Parse a version 2 to 6 stream. Version 4 to 6 planes may reference static tables
    of ``static``, the set of the profile the header names for the header's version (the
    decoder passes its profile's; None: any static reference is corrupt)."""
    view = memoryview(data)
    header, offset = parse_header(view)
    if header.version not in (2,) + SCALED_VERSIONS:
        raise CorruptStreamError(f"not a version 2 to 6 stream (version {header.version})")
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
    if header.version in SCALED_VERSIONS:
        if offset + _SCALE.size > end:
            raise CorruptStreamError("stream ends before the coded scale")
        (scale,) = _SCALE.unpack_from(view, offset)
        offset += _SCALE.size
        if scale not in CODED_SCALES:
            raise CorruptStreamError(f"coded scale {scale} is not one of {CODED_SCALES}")
    planes = []
    for index in range(len(header.colour.plane_shapes(header.height, header.width))):
        if header.version in REST_TABLES:
            tables, refs, offset = _read_joint_tables(view[:end], offset, static, index, REST_TABLES[header.version])
        elif header.version == STATIC_TABLE_VERSION:
            tables, refs, offset = _read_tables_v4(view[:end], offset, static, index)
        else:
            tables, refs, offset = _read_tables_v1(view[:end], offset)
        payload, offset = read_payload(view, offset, end, index)
        planes.append(PlaneSegmentV2(tables, payload, refs))
    check_consumed(offset, end)
    return StreamV2(header, units, tuple(planes), scale)
