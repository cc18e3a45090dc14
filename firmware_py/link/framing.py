"""Byte-stream framing of packets over a serial line: KISS, or COBS with 0x00 delimiters.

A serial link carries bytes, not packets, and loses or corrupts some of them. Framing
marks where each packet starts and ends so that a receiver joining mid-stream, or
hit by garbage or a cut, finds the next packet boundary by itself:

- ``kiss``: the framing of amateur-radio TNCs (Chepponis & Karn, 1987). A frame is
  ``FEND, command, escaped packet, FEND``; inside it ``FEND`` is sent as
  ``FESC TFEND`` and ``FESC`` as ``FESC TFESC``. The command byte is 0x00 (data frame,
  port 0). A receiver accepts data frames of any port and ignores other commands.
- ``cobs``: Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999) removes every
  0x00 from the packet at a cost of at most one byte per 254, and 0x00 delimits frames.

Both write the delimiter at the start and at the end of every frame, so that garbage
or a cut before a frame can damage only the bytes before it, never the frame itself.
The deframer does not check packets: a frame that is really garbage is rejected by the
packet CRC one layer up.
"""

from __future__ import annotations

from dataclasses import dataclass

FRAMINGS = ("kiss", "cobs")

FEND = 0xC0
FESC = 0xDB
TFEND = 0xDC
TFESC = 0xDD
KISS_DATA_FRAME = 0x00
COBS_DELIMITER = 0x00

# Default bound of one frame's packet (the packet format's largest packet size).
DEFAULT_MAX_PACKET = 4096

def check_framing(framing: str) -> str:
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing '{framing}'; choose one of {', '.join(FRAMINGS)}")
    return framing


def kiss_escape(packet: bytes) -> bytes:
    return packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")


def kiss_unescape(body: bytes) -> bytes | None:
    """The escaped bytes of a KISS frame decoded, or None if an escape is invalid."""
    first, *escaped = body.split(bytes((FESC,)))
    out = bytearray(first)
    for part in escaped:
        if not part or part[0] not in (TFEND, TFESC):
            return None
        out.append(FEND if part[0] == TFEND else FESC)
        out += part[1:]
    return bytes(out)


def cobs_encode(packet: bytes) -> bytes:
    """COBS: each zero-free run of up to 254 bytes is preceded by its length + 1."""
    out = bytearray()
    chunks = packet.split(b"\x00")
    for index, chunk in enumerate(chunks):
        while len(chunk) >= 254:
            out += b"\xff" + chunk[:254]
            chunk = chunk[254:]
            if not chunk and index == len(chunks) - 1:
                return bytes(out)  # a full last block needs no closing code
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Inverse of :func:`cobs_encode`, or None if ``data`` is not a valid COBS encoding."""
    out = bytearray()
    position = 0
    while position < len(data):
        code = data[position]
        end = position + code
        if code == 0 or end > len(data) or 0 in data[position + 1 : end]:
            return None
        out += data[position + 1 : end]
        position = end
        if code != 0xFF and position < len(data):
            out.append(0)
    return bytes(out) if data else None


def frame(packet: bytes, framing: str) -> bytes:
    """One packet as it goes on the wire: delimited, and escaped or stuffed."""
    check_framing(framing)
    if not packet:
        raise ValueError("cannot frame an empty packet")
    if framing == "kiss":
        return bytes((FEND, KISS_DATA_FRAME)) + kiss_escape(packet) + bytes((FEND,))
    return bytes((COBS_DELIMITER,)) + cobs_encode(packet) + bytes((COBS_DELIMITER,))


def max_framed_size(packet_size: int, framing: str) -> int:
    """The most wire bytes one packet of ``packet_size`` bytes can take."""
    check_framing(framing)
    if framing == "kiss":
        return 2 * packet_size + 3
    return packet_size + packet_size // 254 + 3


@dataclass
class DeframerStats:
    """What a deframer has seen; counters only grow."""

    bytes_in: int = 0
    frames: int = 0  # frames handed on
    invalid: int = 0  # bad escape / bad COBS code: dropped
    other_commands: int = 0  # KISS frames that are not data frames: ignored
    oversized: int = 0  # frames longer than the bound: dropped


class Deframer:
    """Cuts a byte stream into frames, whatever arrives: garbage, cuts, partial reads.

    ``feed`` takes bytes as they come from the link (any chunking) and returns the
    complete frames found so far. The buffer never holds more than one frame's worth of
    bytes: a frame growing past the bound is dropped and the deframer waits for the
    next delimiter.
    """

    def __init__(self, framing: str, *, max_packet: int = DEFAULT_MAX_PACKET) -> None:
        self.framing = check_framing(framing)
        self.delimiter = bytes((FEND if framing == "kiss" else COBS_DELIMITER,))
        self.max_frame = max_framed_size(max_packet, framing)
        self.stats = DeframerStats()
        self._buffer = bytearray()
        self._overflowing = False

    def feed(self, data: bytes) -> list[bytes]:
        self.stats.bytes_in += len(data)
        frames = []
        pieces = bytes(data).split(self.delimiter)
        for index, piece in enumerate(pieces):
            self._append(piece)
            if index < len(pieces) - 1:
                body = self._take()
                if body:
                    decoded = self._decode(body)
                    if decoded is not None:
                        self.stats.frames += 1
                        frames.append(decoded)
        return frames

    def _append(self, piece: bytes) -> None:
        if self._overflowing:
            return
        if len(self._buffer) + len(piece) > self.max_frame:
            self.stats.oversized += 1
            self._buffer.clear()
            self._overflowing = True
            return
        self._buffer += piece

    def _take(self) -> bytes:
        body = bytes(self._buffer)
        self._buffer.clear()
        self._overflowing = False
        return body

    def _decode(self, body: bytes) -> bytes | None:
        if self.framing == "cobs":
            packet = cobs_decode(body)
        elif body[0] & 0x0F != KISS_DATA_FRAME:
            self.stats.other_commands += 1
            return None
        else:
            packet = kiss_unescape(body[1:])
        if not packet:
            self.stats.invalid += 1
            return None
        return packet
