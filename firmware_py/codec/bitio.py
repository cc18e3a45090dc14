"""Bit-level reading and writing shared by every entropy coder (numba helpers).

All qpv payloads are MSB-first bit strings. A writer keeps an accumulator ``acc`` holding
``held`` pending bits (fewer than 8 between calls) and the next output byte index
``pos``; :func:`put_bits` appends a code and returns the new state. Readers index bits
directly and must be given ``nbits``, the payload length in bits, which every read is
bounded by: numba does not check array bounds.
"""

from __future__ import annotations

import numba
import numpy as np

from .errors import CorruptStreamError

MAX_CODE_LENGTH = 15

# Status codes of the shared readers; each coder numbers its own codes from 3 up.
STATUS_OK = 0
STATUS_OUT_OF_BITS = 1
STATUS_BAD_CODE = 2
# What those statuses mean in a payload; each coder adds the messages of its own codes.
STATUS_MESSAGES = {
    STATUS_OUT_OF_BITS: "payload ends in the middle of a block",
    STATUS_BAD_CODE: "bit pattern is not a code of the Huffman table",
}


@numba.njit(cache=True)
def put_bits(out, pos, acc, held, value, n):
    """Append the ``n`` low bits of ``value``; return the new (pos, acc, held)."""
    acc = (acc << n) | value
    held += n
    while held >= 8:
        held -= 8
        out[pos] = (acc >> held) & 0xFF
        pos += 1
    return pos, acc & ((1 << held) - 1), held


@numba.njit(cache=True)
def flush_bits(out, pos, acc, held):
    """Write the last partial byte, zero padded; return the index after it."""
    if held > 0:
        out[pos] = (acc << (8 - held)) & 0xFF
        pos += 1
    return pos


@numba.njit(cache=True)
def read_bits(data, pos, n):
    """The ``n`` bits at ``pos`` as an integer; the caller has checked pos + n <= nbits."""
    value = 0
    for _ in range(n):
        value = (value << 1) | ((data[pos >> 3] >> (7 - (pos & 7))) & 1)
        pos += 1
    return value


@numba.njit(cache=True)
def decode_symbol(data, pos, nbits, counts, first, symbols):
    """(symbol, new position, status) of the canonical Huffman code at ``pos``.

    ``counts[L]`` codes of length L start at code ``first[L]``; ``symbols`` lists the
    symbols in canonical order.
    """
    code = 0
    index = 0
    for length in range(1, MAX_CODE_LENGTH + 1):
        if pos >= nbits:
            return 0, pos, STATUS_OUT_OF_BITS
        code = (code << 1) | ((data[pos >> 3] >> (7 - (pos & 7))) & 1)
        pos += 1
        delta = code - first[length]
        if 0 <= delta < counts[length]:
            return symbols[index + delta], pos, STATUS_OK
        index += counts[length]
    return 0, pos, STATUS_BAD_CODE


def check_padding(data: np.ndarray, pos: int) -> None:
    """A payload must end within the byte after bit ``pos``, padded with zero bits."""
    if (pos + 7) // 8 != len(data):
        raise CorruptStreamError(f"{len(data) - (pos + 7) // 8} bytes of unexplained data after the last block")
    if pos & 7 and data[-1] & ((1 << (8 - (pos & 7))) - 1):
        raise CorruptStreamError("non-zero padding bits after the last block")


class ReferenceBitReader:
    """Plain-Python MSB-first reader of a payload, for the coders' reference decoders
    (which tests compare the kernels against): defects raise CorruptStreamError with the
    coder's ``messages`` for the shared status codes and the bit position."""

    def __init__(self, payload: bytes, messages: dict[int, str]) -> None:
        self.payload = payload
        self.bits = "".join(format(byte, "08b") for byte in payload)
        self.pos = 0
        self.messages = messages
        self._lookups: dict[int, dict[tuple[int, int], int]] = {}

    def fail(self, status: int) -> CorruptStreamError:
        return CorruptStreamError(f"{self.messages[status]} (bit {self.pos})")

    def take(self, n: int) -> int:
        if self.pos + n > len(self.bits):
            raise self.fail(STATUS_OUT_OF_BITS)
        value = int(self.bits[self.pos : self.pos + n], 2) if n else 0
        self.pos += n
        return value

    def signed(self, size: int) -> int:
        """A value sent as ``size`` extra bits (a leading 0 bit: negative)."""
        value = self.take(size)
        return value if size == 0 or value >> (size - 1) else value - (1 << size) + 1

    def symbol(self, table) -> int:
        """The symbol of ``table`` (a huffman.HuffmanTable) whose canonical code is next."""
        lookup = self._lookups.get(id(table))
        if lookup is None:
            codes = table.canonical_codes()
            lookup = {(int(table.lengths[s]), int(codes[s])): int(s) + table.min_symbol for s in np.flatnonzero(table.lengths)}
            self._lookups[id(table)] = lookup
        code = 0
        for length in range(1, MAX_CODE_LENGTH + 1):
            code = (code << 1) | self.take(1)
            if (length, code) in lookup:
                return lookup[(length, code)]
        raise self.fail(STATUS_BAD_CODE)

    def finish(self) -> None:
        check_padding(np.frombuffer(self.payload, dtype=np.uint8), self.pos)
