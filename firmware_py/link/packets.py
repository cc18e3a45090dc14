"""Quick-preview packets: a compressed frame cut into radio-frame-sized pieces that
each decode on their own.

A packet is a fixed 12-byte header, an optional 13-byte frame descriptor, a slice
payload (a run of blocks coded by ``firmware_py.codec.slices`` with the static tables
of ``firmware_py.codec.packet_tables``) and a CRC-32C of everything before it.
docs/FORMAT.md ("Packets") specifies it byte by byte and gives the figures behind
the choices; in short:

- every packet restarts the bit stream, so a lost packet costs only its own blocks,
  and the sending order interleaves blocks (and planes) so those are scattered, not a
  stripe; a packet's run may continue from one plane into the next, so only the
  frame's last packet is partly filled;
- the frame descriptor (size, colour, profile, quality, model fingerprint, packet
  count) rides in the first packets, every DESCRIPTOR_INTERVAL-th packet and the
  last one, so that no single lost packet (nor any likely run of them) loses the frame;
- Huffman tables are static (trained offline), so no packet carries any;
- descriptor and payload are whitened (CCSDS randomizer) so that KISS escapes stay
  rare, with the one of four randomizer phases that costs the fewest framed bytes.

This module is the format's only writer and parser, plus the frame-level encoder
with rate control on the bytes that go on the wire.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import numpy as np

from ..codec import encoder, levels, models, packet_tables, slices
from ..codec.bitstream import MAX_PIXELS, ColourMode
from ..codec.blocking import block_grid
from ..codec.errors import CorruptStreamError, ModelError, RateControlError
from ..codec.profiles import Profile, get_profile, profile_by_id
from . import framing as framing_module
from .crc32c import crc32c

MAGIC = 0x5  # high nibble of byte 0; version 1 packets began with 0x51 ("Q")
VERSION = 2
_HEADER = struct.Struct("<BIHH3s")  # magic << 4 | version, source, frame id, packet index, coverage
_DESCRIPTOR = struct.Struct("<HHBBBH4s")  # width, height, colour, profile, quality code, packets, fingerprint
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size
DESCRIPTOR_SIZE = _DESCRIPTOR.size
CRC_SIZE = _CRC.size

MIN_PACKET_SIZE = 64
MAX_PACKET_SIZE = 4096
DEFAULT_PACKET_SIZE = 256
# Frame ids are 16 bits on the wire: a sender counts modulo FRAME_ID_LIMIT.
FRAME_ID_LIMIT = 1 << 16
MAX_PACKETS_PER_FRAME = 0xFFFF
# Which packets carry the frame descriptor: the first DESCRIPTOR_LEAD, then every
# DESCRIPTOR_INTERVAL-th, and the final one. A frame is lost only if every copy is:
# at 19% packet loss (1e-4 BER, 256-byte packets) a 26-packet frame (8 copies) loses
# its descriptor with probability 0.19^8 = 2e-6, for 1.6% of its bytes.
DESCRIPTOR_LEAD = 4
DESCRIPTOR_INTERVAL = 8
# Coverage (24 bits): the first block in the frame's sending order (START_BITS), the
# DESCRIPTOR flag, and the whitening variant (WHITENING_BITS).
START_BITS = 21
MAX_FRAME_BLOCKS = 1 << START_BITS
FLAG_DESCRIPTOR = 1 << START_BITS  # a frame descriptor follows the header
WHITENING_SHIFT = START_BITS + 1
WHITENING_BITS = 2
# Packet mode codes with the profiles that have packet statistics; this one by default.
PACKET_PROFILE = "seed"

# Source ids: up to 6 characters of SOURCE_ALPHABET, base 39 in 32 bits, first
# character least significant, digit 0 ending the id (as M17 packs callsigns).
SOURCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
SOURCE_BASE = len(SOURCE_ALPHABET) + 1
MAX_SOURCE_LENGTH = 6


def _ccsds_randomizer() -> np.ndarray:
    """The CCSDS pseudo-randomizer (CCSDS 131.0-B): x^8+x^7+x^5+x^3+1, all-ones seed, 255 bytes."""
    state, out = 0xFF, []
    for _ in range(255):
        byte = 0
        for _ in range(8):
            byte = byte << 1 | (state & 1)
            feedback = (state ^ state >> 3 ^ state >> 5 ^ state >> 7) & 1
            state = state >> 1 | feedback << 7
        out.append(byte)
    return np.array(out, dtype=np.uint8)


# The slice payload is XORed with the randomizer, repeated: Huffman-coded blocks at coarse
# quantization repeat short bit patterns (a G2 block of zero levels is "1 00000000"),
# and some of them are the KISS FEND/FESC bytes, which would cost two wire bytes each.
# Variant v starts the randomizer at its byte WHITENING_PHASE * v; the sender picks the
# variant whose packet frames shortest (random bytes hold ~2 FEND/FESC per 256: the best
# of four phases halves the escapes of a packet).
WHITENING_PHASE = 64
WHITENING = np.stack(
    [np.resize(np.roll(_ccsds_randomizer(), -WHITENING_PHASE * v), MAX_PACKET_SIZE) for v in range(1 << WHITENING_BITS)]
)


def whiten(payload: bytes, variant: int = 0) -> bytes:
    """XOR with randomizer variant ``variant``; its own inverse."""
    data = np.frombuffer(payload, dtype=np.uint8)
    return (data ^ WHITENING[variant, : len(data)]).tobytes()


class CorruptPacketError(CorruptStreamError):
    """A packet is truncated, damaged (CRC), hostile or not a qpv packet: drop it, count it."""


def encode_source(source: str) -> int:
    """A station id as its 32-bit wire value; lower case is folded to upper case."""
    name = source.upper()
    if not 1 <= len(name) <= MAX_SOURCE_LENGTH or any(ch not in SOURCE_ALPHABET for ch in name):
        raise ValueError(
            f"source id {source!r} must be 1..{MAX_SOURCE_LENGTH} characters of A-Z, 0-9, '-' and '_'"
        )
    return sum((SOURCE_ALPHABET.index(ch) + 1) * SOURCE_BASE**i for i, ch in enumerate(name))


def decode_source(value: int) -> str:
    digits = []
    while value:
        value, digit = divmod(value, SOURCE_BASE)
        digits.append(digit)
    if not digits or len(digits) > MAX_SOURCE_LENGTH or 0 in digits:
        raise CorruptPacketError("source id field is not a valid station id")
    return "".join(SOURCE_ALPHABET[d - 1] for d in digits)


@dataclass(frozen=True)
class FrameDescriptor:
    """Everything about a frame that a packet's blocks need to be decoded and placed."""

    width: int
    height: int
    colour: ColourMode
    profile_id: int
    quality_code: int
    packet_count: int
    fingerprint: bytes  # packet_tables.packet_fingerprint of the profile

    def plane_shapes(self) -> list[tuple[int, int]]:
        return self.colour.plane_shapes(self.height, self.width)

    def block_grids(self) -> tuple[tuple[int, int], ...]:
        """(rows, cols) of each plane's block grid."""
        return tuple(block_grid(h, w) for h, w in self.plane_shapes())

    def plane_blocks(self) -> list[int]:
        """Number of blocks of each plane."""
        return [rows * cols for rows, cols in self.block_grids()]

    @property
    def quality(self) -> float:
        return packet_tables.quality_of_code(self.quality_code)


@dataclass(frozen=True)
class PacketHeader:
    """A packet's header; ``start_block`` counts blocks in the frame's sending order."""

    source: str
    frame_id: int
    index: int  # 0 .. packet count - 1, in sending order
    start_block: int
    descriptor: FrameDescriptor | None = None

    @property
    def final(self) -> bool:
        """Whether this is known to be the frame's last packet (the last one carries the descriptor)."""
        return self.descriptor is not None and self.index == self.descriptor.packet_count - 1


@dataclass(frozen=True)
class Packet:
    header: PacketHeader
    payload: bytes  # one slice, ending with its stop bit


def build_packet(header: PacketHeader, payload: bytes, framing: str = "kiss") -> bytes:
    """Serialize a packet (the CRC-32C is computed here), with the whitening variant
    whose packet takes the fewest bytes once framed with ``framing``."""
    if not 0 <= header.frame_id < FRAME_ID_LIMIT:
        raise ValueError(f"frame id {header.frame_id} is outside 0..{FRAME_ID_LIMIT - 1} (count modulo {FRAME_ID_LIMIT})")
    if not 0 <= header.index < MAX_PACKETS_PER_FRAME:
        raise ValueError(f"packet index {header.index} is outside 0..{MAX_PACKETS_PER_FRAME - 1}")
    if not 0 <= header.start_block < MAX_FRAME_BLOCKS:
        raise ValueError(f"start block {header.start_block} is outside 0..{MAX_FRAME_BLOCKS - 1}")
    descriptor = b""
    if header.descriptor:
        d = header.descriptor
        descriptor = _DESCRIPTOR.pack(d.width, d.height, int(d.colour), d.profile_id, d.quality_code, d.packet_count, d.fingerprint)
    source = encode_source(header.source)
    candidates = []
    for variant in range(1 << WHITENING_BITS):
        coverage = header.start_block | (FLAG_DESCRIPTOR if descriptor else 0) | variant << WHITENING_SHIFT
        body = _HEADER.pack(MAGIC << 4 | VERSION, source, header.frame_id, header.index, coverage.to_bytes(3, "little"))
        body += whiten(descriptor + payload, variant)
        candidates.append(body + _CRC.pack(crc32c(body)))
    return min(candidates, key=lambda packet: len(framing_module.frame(packet, framing)))


def parse_packet(data: bytes) -> Packet:
    """Validate and parse one packet (as the deframer delivers it).

    Raises CorruptPacketError for anything that is not an intact packet of this
    format version: bad length, magic, version, CRC-32C, source id, packet index,
    coverage or descriptor. Nothing in a packet is trusted before its CRC has been checked.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse_packet takes bytes")
    data = bytes(data)
    if not HEADER_SIZE + 1 + CRC_SIZE <= len(data) <= MAX_PACKET_SIZE:
        raise CorruptPacketError(f"packet of {len(data)} bytes is outside {HEADER_SIZE + 1 + CRC_SIZE}..{MAX_PACKET_SIZE}")
    if data[0] >> 4 != MAGIC:
        raise CorruptPacketError("not a qpv packet (bad magic nibble)")
    if data[0] & 0x0F != VERSION:
        raise CorruptPacketError(f"unsupported packet version {data[0] & 0x0F} (this decoder reads {VERSION})")
    (stored,) = _CRC.unpack_from(data, len(data) - CRC_SIZE)
    if crc32c(data[:-CRC_SIZE]) != stored:
        raise CorruptPacketError("CRC-32C mismatch: the packet is damaged")
    _, source, frame_id, index, coverage = _HEADER.unpack_from(data)
    if index >= MAX_PACKETS_PER_FRAME:
        raise CorruptPacketError(f"packet index {index} is outside 0..{MAX_PACKETS_PER_FRAME - 1}")
    coverage_value = int.from_bytes(coverage, "little")
    start, variant = coverage_value & (MAX_FRAME_BLOCKS - 1), coverage_value >> WHITENING_SHIFT
    rest, descriptor = whiten(data[HEADER_SIZE:-CRC_SIZE], variant), None
    if coverage_value & FLAG_DESCRIPTOR:
        descriptor = _parse_descriptor(rest)
        check_placement(descriptor, index, start)
    payload = rest[DESCRIPTOR_SIZE:] if descriptor else rest
    if not payload or payload[-1] == 0:
        raise CorruptPacketError("packet payload is empty or lacks its stop bit")
    return Packet(PacketHeader(decode_source(source), frame_id, index, start, descriptor), payload)


def peek_frame_key(data: bytes) -> tuple[str, int] | None:
    """The (source, frame id) a packet's header claims, without checking the CRC.

    Only for attributing a damaged packet to a frame in statistics: never trust it
    for anything else. None if the header is not even legible.
    """
    if len(data) < HEADER_SIZE or data[0] != MAGIC << 4 | VERSION:
        return None
    _, source, frame_id, _, _ = _HEADER.unpack_from(data)
    try:
        return decode_source(source), frame_id
    except CorruptPacketError:
        return None


def _parse_descriptor(rest: bytes) -> FrameDescriptor:
    """The descriptor at the start of a packet's unwhitened bytes after the header."""
    if DESCRIPTOR_SIZE + 1 > len(rest):
        raise CorruptPacketError("packet ends inside its frame descriptor")
    width, height, colour, profile_id, quality_code, count, fingerprint = _DESCRIPTOR.unpack_from(rest)
    if colour not in ColourMode._value2member_map_:
        raise CorruptPacketError(f"unknown colour mode {colour}")
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise CorruptPacketError(f"frame size {width}x{height} is empty or above {MAX_PIXELS} pixels")
    if not 1 <= count <= MAX_PACKETS_PER_FRAME:
        raise CorruptPacketError(f"frame descriptor claims {count} packets, outside 1..{MAX_PACKETS_PER_FRAME}")
    descriptor = FrameDescriptor(width, height, ColourMode(colour), profile_id, quality_code, count, bytes(fingerprint))
    if sum(descriptor.plane_blocks()) > MAX_FRAME_BLOCKS:
        raise CorruptPacketError(f"frame of {width}x{height} has more than {MAX_FRAME_BLOCKS} blocks")
    return descriptor


def check_placement(descriptor: FrameDescriptor, index: int, start: int) -> None:
    """A packet's index and first block must exist in its frame."""
    if index >= descriptor.packet_count:
        raise CorruptPacketError(f"packet index {index} is beyond the frame's {descriptor.packet_count} packets")
    if start >= sum(descriptor.plane_blocks()):
        raise CorruptPacketError(f"packet starts at block {start}, outside the frame")


# --- encoding a frame -------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The blocks ``start .. end`` (frame sending order) that one packet carries."""

    start: int
    end: int
    descriptor: bool


def payload_capacity_bits(packet_size: int, descriptor: bool) -> int:
    """Bits of block data a packet holds (its stop bit deducted)."""
    room = packet_size - HEADER_SIZE - CRC_SIZE - (DESCRIPTOR_SIZE if descriptor else 0)
    return 8 * room - 1


def carries_descriptor(index: int) -> bool:
    """Whether packet ``index`` of a frame carries the descriptor (the final one always does)."""
    return index < DESCRIPTOR_LEAD or index % DESCRIPTOR_INTERVAL == 0


def partition(costs: np.ndarray, packet_size: int) -> list[Run]:
    """Cut the frame's blocks (costs in bits, sending order) greedily into packets.

    Packet k carries the descriptor if :func:`carries_descriptor` says so, and the
    final packet always does. Raises RateControlError if one block alone is too big
    for a packet.
    """
    plain = payload_capacity_bits(packet_size, False)
    with_descriptor = payload_capacity_bits(packet_size, True)
    largest = int(costs.max())
    if largest > with_descriptor:
        raise RateControlError(f"a block needs {largest} bits, more than a {packet_size}-byte packet holds")
    cumulative = np.concatenate([[0], np.cumsum(costs)])
    runs: list[Run] = []
    start, n = 0, len(costs)
    while start < n:
        if cumulative[n] - cumulative[start] <= with_descriptor:
            runs.append(Run(start, n, True))
            break
        descriptor = carries_descriptor(len(runs))
        capacity = with_descriptor if descriptor else plain
        end = int(np.searchsorted(cumulative, cumulative[start] + capacity, side="right")) - 1
        if end == n:
            end = n - 1  # leave a block for the final packet, which carries the descriptor
        runs.append(Run(start, end, descriptor))
        start = end
    return runs


class FrameCoder:
    """One analysed frame, coded into packets at any quality code."""

    def __init__(self, analysis: encoder.FrameAnalysis, source: str, frame_id: int, packet_size: int, framing: str) -> None:
        self.analysis = analysis
        self.profile = analysis.profile
        self.source = source
        self.frame_id = frame_id
        self.packet_size = packet_size
        self.framing = framing
        self.fingerprint = packet_tables.packet_fingerprint(self.profile)
        self.layout = self.profile.layout
        grids = tuple(block_grid(h, w) for h, w in analysis.colour.plane_shapes(analysis.height, analysis.width))
        planes, blocks = slices.frame_order(grids)
        if planes.size > MAX_FRAME_BLOCKS:
            raise ValueError(f"frame has {planes.size} blocks, more than packet mode's {MAX_FRAME_BLOCKS}")
        offsets = np.concatenate([[0], np.cumsum([rows * cols for rows, cols in grids])])
        self.sequence = offsets[planes] + blocks  # index into the planes' blocks, concatenated
        self.kinds = plane_kinds_in_order(grids)

    def frame_symbols(self, steps: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(classes, symbols) of the frame's blocks in sending order."""
        planes = self.analysis.planes
        classes = np.concatenate([plane.classes for plane in planes])
        symbols = np.concatenate(
            [levels.quantize_blocks(plane.classes, plane.latents, steps, self.layout.max_latents) for plane in planes]
        )
        return classes[self.sequence], symbols[self.sequence]

    def packets(self, quality_code: int) -> list[bytes]:
        """All packets of the frame at one quality code, in sending order."""
        tables = packet_tables.table_set(self.profile.name, quality_code)
        classes, symbols = self.frame_symbols(tables.steps)
        runs = partition(slices.block_costs(classes, symbols, self.kinds, tables), self.packet_size)
        if len(runs) > MAX_PACKETS_PER_FRAME:
            raise RateControlError(f"frame needs {len(runs)} packets, more than {MAX_PACKETS_PER_FRAME}")
        descriptor = FrameDescriptor(
            self.analysis.width, self.analysis.height, self.analysis.colour, self.profile.profile_id,
            quality_code, len(runs), self.fingerprint,
        )
        bounds = np.array([run.start for run in runs] + [runs[-1].end])
        payloads = slices.pack_slices(classes, symbols, self.kinds, bounds, tables)
        return [
            build_packet(
                PacketHeader(self.source, self.frame_id, index, run.start, descriptor if run.descriptor else None),
                payload,
                self.framing,
            )
            for index, (run, payload) in enumerate(zip(runs, payloads))
        ]


def wire_bytes(packets: list[bytes], framing: str) -> int:
    """Bytes the packets take on the wire once framed."""
    return sum(len(framing_module.frame(p, framing)) for p in packets)


def fit_wire_budget(coder: FrameCoder, max_wire_bytes: int, framing: str) -> list[bytes]:
    """Packets of the finest quality code whose framed size fits ``max_wire_bytes``."""

    def fitting(code: int) -> list[bytes] | None:
        try:
            packets = coder.packets(code)
        except RateControlError:
            return None
        return packets if wire_bytes(packets, framing) <= max_wire_bytes else None

    coarsest_code = packet_tables.QUALITY_CODES - 1
    best = fitting(coarsest_code)
    if best is None:
        raise RateControlError(f"even the coarsest quality does not fit {max_wire_bytes} wire bytes")
    finest = fitting(0)
    if finest is not None:
        return finest
    low, high = 0, coarsest_code  # low does not fit, high does
    while high - low > 1:
        middle = (low + high) // 2
        packets = fitting(middle)
        if packets is None:
            low = middle
        else:
            best, high = packets, middle
    return best


def encode_frame_packets(
    image: np.ndarray,
    *,
    source: str,
    frame_id: int,
    packet_size: int = DEFAULT_PACKET_SIZE,
    max_wire_bytes: int | None = None,
    quality: float | None = None,
    profile: str | None = None,
    framing: str = "kiss",
) -> list[bytes]:
    """Compress a frame into its packets (each complete, with CRC, not yet framed).

    Each packet is at most ``packet_size`` bytes (64..4096) and decodes on its own.
    ``max_wire_bytes`` bounds the sum of the framed sizes (``framing.frame`` of every
    packet, escapes included), since that is what costs link time: rate control picks
    the finest quality that fits, or raises RateControlError. Otherwise ``quality``
    scales the quantizer steps (default 1.0; stored as the nearest of 256 codes).
    ``frame_id`` must be 0..65535: a sender numbers frames modulo FRAME_ID_LIMIT.
    """
    if not MIN_PACKET_SIZE <= packet_size <= MAX_PACKET_SIZE:
        raise ValueError(f"packet size {packet_size} is outside {MIN_PACKET_SIZE}..{MAX_PACKET_SIZE}")
    if not 0 <= frame_id < FRAME_ID_LIMIT:
        raise ValueError(f"frame id {frame_id} is outside 0..{FRAME_ID_LIMIT - 1} (count modulo {FRAME_ID_LIMIT})")
    encode_source(source)
    framing_module.check_framing(framing)
    if max_wire_bytes is not None and quality is not None:
        raise ValueError("give quality or max_wire_bytes, not both")
    if max_wire_bytes is not None and max_wire_bytes <= 0:
        raise ValueError(f"max_wire_bytes must be positive, got {max_wire_bytes}")
    chosen = get_profile(profile or PACKET_PROFILE)
    coder = FrameCoder(encoder.analyse_frame(image, chosen), source.upper(), frame_id, packet_size, framing)
    if max_wire_bytes is not None:
        return fit_wire_budget(coder, max_wire_bytes, framing)
    return coder.packets(packet_tables.code_of_quality(1.0 if quality is None else quality))


# --- decoding a packet --------------------------------------------------------------


@dataclass(frozen=True)
class DecodedSlice:
    """The blocks one packet carries: where they go and their decoded levels."""

    planes: np.ndarray  # plane of each block
    blocks: np.ndarray  # raster block index of each block in its plane
    classes: np.ndarray
    symbols: np.ndarray


@models.artifact_cache(maxsize=16)
def packet_profile(profile_id: int, fingerprint: bytes) -> Profile:
    """The installed profile a frame descriptor names, refused if its models differ."""
    profile = profile_by_id(profile_id)
    if profile is None:
        raise ModelError(f"frame uses profile id {profile_id}, which no installed model defines")
    expected = packet_tables.packet_fingerprint(profile)
    if expected != fingerprint:
        raise ModelError(
            f"frame was encoded with packet models {fingerprint.hex()}, installed '{profile.name}' has {expected.hex()}"
        )
    return profile


@functools.lru_cache(maxsize=16)
def plane_kinds_in_order(grids: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Plane kind (index into packet_tables.PLANE_KINDS) of every block in sending order."""
    planes, _ = slices.frame_order(grids)
    kinds = np.array([packet_tables.kind_index(p) for p in range(len(grids))])[planes]
    kinds.setflags(write=False)
    return kinds


def decode_slice(packet: Packet, descriptor: FrameDescriptor) -> DecodedSlice:
    """Decode a packet's blocks with its frame's descriptor.

    Raises CorruptPacketError if the packet does not fit that frame or its payload is
    not a valid slice of it, and ModelError if the frame needs models this station
    does not have.
    """
    header = packet.header
    check_placement(descriptor, header.index, header.start_block)
    profile = packet_profile(descriptor.profile_id, descriptor.fingerprint)
    grids = descriptor.block_grids()
    tables = packet_tables.table_set(profile.name, descriptor.quality_code)
    try:
        classes, symbols = slices.unpack_slice(packet.payload, plane_kinds_in_order(grids)[header.start_block :], tables)
    except CorruptStreamError as exc:
        raise CorruptPacketError(str(exc)) from None
    planes, blocks = slices.frame_order(grids)
    placed = slice(header.start_block, header.start_block + len(classes))
    return DecodedSlice(planes[placed], blocks[placed], classes, symbols)
