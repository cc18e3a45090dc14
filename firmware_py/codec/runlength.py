"""(zero-run, magnitude) Huffman coding of transform blocks, JPEG style (format version 2).

Each block is coded as its predicted-DC residual (a size category symbol from the DC
table, then that many extra bits) followed by its AC levels in basis order (decreasing
variance): every non-zero level is one symbol ``run * 16 + size`` from the AC table
(``run`` zeros before it, ``size`` = its bit length) plus ``size`` extra bits; 16 zeros
are ``ZRL``; the zeros after the last non-zero level are one ``EOB``. At quick-preview
rates most levels are zero, and a block of zeros costs one EOB code instead of one code
per zero.

Extra bits follow JPEG: a value ``v`` of size ``s`` is sent as ``v`` if positive, else
``v + 2^s - 1`` (so the leading bit tells the sign). The numba kernels trust their
arrays' shapes (the wrappers check them); the count and pack kernels check every value
they code (one too big for its size category stops them), and the unpack kernel bounds
every read by the payload length and reports defects as a status code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .bitio import (
    MAX_CODE_LENGTH,
    STATUS_MESSAGES,
    STATUS_OK,
    STATUS_OUT_OF_BITS,
    ReferenceBitReader,
    check_padding,
    decode_symbol,
    flush_bits,
    put_bits,
    read_bits,
)
from .blocking import BLOCK_PIXELS
from .errors import CorruptStreamError
from .huffman import HuffmanTable, code_lengths

EOB = 0x00
ZRL = 0xF0
MAX_RUN = 15
# A size category fits the 4 low bits of an AC symbol; values up to 2^15 - 1.
MAX_SIZE = 15
MAX_VALUE = (1 << MAX_SIZE) - 1
DC_ALPHABET = MAX_SIZE + 1
AC_ALPHABET = 256
# Most bytes one block can take: a DC code and 63 AC codes (plus at most 3 ZRL and an
# EOB), each code at most MAX_CODE_LENGTH bits and MAX_SIZE extra bits.
MAX_BLOCK_BYTES = ((64 + 4) * (MAX_CODE_LENGTH + MAX_SIZE) + 7) // 8
TOO_BIG_MESSAGE = f"a DC residual or AC level exceeds {MAX_VALUE}"

UNPACK_RUN_PAST_BLOCK = 3
UNPACK_MESSAGES = {**STATUS_MESSAGES, UNPACK_RUN_PAST_BLOCK: "a zero run or level runs past the end of the block"}


@dataclass(frozen=True)
class PlaneTables:
    """The two Huffman tables of a plane: DC size categories and AC (run, size) symbols."""

    dc: HuffmanTable
    ac: HuffmanTable


@numba.njit(cache=True)
def size_category(value):
    """Bit length of |value|: the size category of its symbol (0 for 0)."""
    magnitude = abs(np.int64(value))  # widened first: abs(int16 -32768) would stay negative
    size = 0
    while magnitude:
        magnitude >>= 1
        size += 1
    return size


@numba.njit(cache=True)
def _last_nonzero(levels, b):
    for j in range(levels.shape[1] - 1, 0, -1):
        if levels[b, j] != 0:
            return j
    return 0


@numba.njit(cache=True)
def last_nonzero_kernel(levels, out):
    for b in range(levels.shape[0]):
        out[b] = _last_nonzero(levels, b)


@numba.njit(cache=True)
def _count_dc(dc_residuals, dc_hist):
    """Add the DC size symbols to ``dc_hist``; their extra bits, or -1 if a residual is too big."""
    extra = 0
    for b in range(dc_residuals.shape[0]):
        size = size_category(dc_residuals[b])
        if size > MAX_SIZE:
            return -1
        dc_hist[size] += 1
        extra += size
    return extra


@numba.njit(cache=True)
def _count_kernel(dc_residuals, levels, dc_hist, ac_hist):
    """Add the plane's symbols to the histograms; the extra bits, or -1 if a value is too big."""
    extra = _count_dc(dc_residuals, dc_hist)
    if extra < 0:
        return -1
    for b in range(levels.shape[0]):
        last = _last_nonzero(levels, b)
        run = 0
        for j in range(1, last + 1):
            v = levels[b, j]
            if v == 0:
                run += 1
                continue
            while run > MAX_RUN:
                ac_hist[ZRL] += 1
                run -= MAX_RUN + 1
            size = size_category(v)
            if size > MAX_SIZE:
                return -1
            ac_hist[run * 16 + size] += 1
            extra += size
            run = 0
        if last < levels.shape[1] - 1:
            ac_hist[EOB] += 1
    return extra


@numba.njit(cache=True)
def coded_extra_bits(value, size):
    """JPEG's extra bits of a value of bit length ``size`` (negative: value + 2^size - 1)."""
    return (value if value > 0 else value + (1 << size) - 1) & ((1 << size) - 1)


@numba.njit(cache=True)
def _pack_kernel(dc_residuals, levels, last_nonzero, dc_codes, dc_lengths, ac_codes, ac_lengths, out):
    """Write the blocks into ``out``, which ends MAX_BLOCK_BYTES past the expected payload;
    the bytes written, or -1 (a value too big to code, a last non-zero index outside the
    block, or more bits than expected)."""
    pos, acc, held = 0, 0, 0
    k = levels.shape[1]
    for b in range(levels.shape[0]):
        if pos + MAX_BLOCK_BYTES > out.shape[0]:
            return -1
        # Each block: DC size symbol + extra bits, then (run, size) AC symbols.
        r = dc_residuals[b]
        size = size_category(r)
        if size > MAX_SIZE:
            return -1
        # A code and its extra bits (at most 15 + 15 bits) go in one call: fewer calls,
        # each of which passes ``out`` with its reference counting.
        code = (dc_codes[size] << size) | coded_extra_bits(r, size)
        pos, acc, held = put_bits(out, pos, acc, held, code, dc_lengths[size] + size)
        last = last_nonzero[b]
        if not 0 <= last < k:
            return -1
        run = 0
        for j in range(1, last + 1):
            v = levels[b, j]
            if v == 0:
                run += 1
                continue
            while run > MAX_RUN:
                pos, acc, held = put_bits(out, pos, acc, held, ac_codes[ZRL], ac_lengths[ZRL])
                run -= MAX_RUN + 1
            size = size_category(v)
            if size > MAX_SIZE:
                return -1
            symbol = run * 16 + size
            code = (ac_codes[symbol] << size) | coded_extra_bits(v, size)
            pos, acc, held = put_bits(out, pos, acc, held, code, ac_lengths[symbol] + size)
            run = 0
        if last < k - 1:
            pos, acc, held = put_bits(out, pos, acc, held, ac_codes[EOB], ac_lengths[EOB])
    return flush_bits(out, pos, acc, held)


@numba.njit(cache=True)
def signed_value(bits, size):
    """Undo the extra-bits mapping: a leading 0 bit means a negative value."""
    if size == 0:
        return 0
    if bits >> (size - 1):
        return bits
    return bits - (1 << size) + 1


@numba.njit(cache=True)
def _unpack_kernel(data, dc_counts, dc_first, dc_symbols, ac_counts, ac_first, ac_symbols, dc_residuals, levels):
    nbits = data.shape[0] * 8
    k = levels.shape[1]
    pos = 0
    for b in range(levels.shape[0]):
        size, pos, status = decode_symbol(data, pos, nbits, dc_counts, dc_first, dc_symbols)
        if status != STATUS_OK:
            return status, pos
        if pos + size > nbits:
            return STATUS_OUT_OF_BITS, pos
        dc_residuals[b] = signed_value(read_bits(data, pos, size), size)
        pos += size
        j = 1
        while j < k:
            symbol, pos, status = decode_symbol(data, pos, nbits, ac_counts, ac_first, ac_symbols)
            if status != STATUS_OK:
                return status, pos
            if symbol == EOB:
                break
            run = symbol >> 4
            size = symbol & 15
            if symbol == ZRL:
                run = MAX_RUN + 1
            if j + run >= k:
                return UNPACK_RUN_PAST_BLOCK, pos
            j += run
            if size:
                if pos + size > nbits:
                    return STATUS_OUT_OF_BITS, pos
                levels[b, j] = signed_value(read_bits(data, pos, size), size)
                pos += size
                j += 1
    return STATUS_OK, pos


def encoder_arrays(table: HuffmanTable, alphabet: int) -> tuple[np.ndarray, np.ndarray]:
    """(code, length) of every symbol of ``alphabet``, 0 where unused: what the pack
    kernels index. Made once per table and alphabet, read-only: a profile's static
    tables code the planes of most frames."""
    key = f"_encoder_arrays_{alphabet}"
    arrays = table.__dict__.get(key)
    if arrays is None:
        codes = np.zeros(alphabet, dtype=np.int64)
        lengths = np.zeros(alphabet, dtype=np.int64)
        if len(table.lengths):
            span = slice(table.min_symbol, table.min_symbol + len(table.lengths))
            codes[span] = table.canonical_codes()
            lengths[span] = table.lengths
        codes.flags.writeable = lengths.flags.writeable = False
        arrays = (codes, lengths)
        object.__setattr__(table, key, arrays)  # a cache, not a field
    return arrays


def check_levels(dc_residuals: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer arrays of the right shapes; the kernels check the values as they go."""
    dc_residuals, levels = np.asarray(dc_residuals), np.asarray(levels)
    if not (np.issubdtype(dc_residuals.dtype, np.integer) and np.issubdtype(levels.dtype, np.integer)):
        raise ValueError("DC residuals and levels must be integers")
    if levels.ndim != 2 or levels.shape[1] != BLOCK_PIXELS or dc_residuals.shape != (levels.shape[0],):
        raise ValueError(f"expected (n,) DC residuals and (n, {BLOCK_PIXELS}) levels")
    # int16/int32/int64 levels are coded as they are (no widening copy of a whole plane).
    return np.ascontiguousarray(dc_residuals, dtype=np.int64), np.ascontiguousarray(levels)


def dc_symbol_counts(dc_residuals: np.ndarray) -> tuple[np.ndarray, int]:
    """(DC histogram, DC extra bits) of a plane's DC residuals."""
    dc_residuals = np.ascontiguousarray(dc_residuals, dtype=np.int64)
    if dc_residuals.ndim != 1:
        raise ValueError("expected (n,) DC residuals")
    dc_hist = np.zeros(DC_ALPHABET, dtype=np.int64)
    extra = _count_dc(dc_residuals, dc_hist)
    if extra < 0:
        raise ValueError(TOO_BIG_MESSAGE)
    return dc_hist, int(extra)


def symbol_counts(dc_residuals: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(DC histogram, AC histogram, extra bits) of a plane: what its tables are built from."""
    dc_residuals, levels = check_levels(dc_residuals, levels)
    dc_hist = np.zeros(DC_ALPHABET, dtype=np.int64)
    ac_hist = np.zeros(AC_ALPHABET, dtype=np.int64)
    extra = _count_kernel(dc_residuals, levels, dc_hist, ac_hist)
    if extra < 0:
        raise ValueError(TOO_BIG_MESSAGE)
    return dc_hist, ac_hist, int(extra)


def tables_for(dc_hist: np.ndarray, ac_hist: np.ndarray) -> PlaneTables:
    """Optimal length-limited tables for a plane's histograms."""
    return PlaneTables(_table_from_counts(dc_hist), _table_from_counts(ac_hist))


def _table_from_counts(counts: np.ndarray) -> HuffmanTable:
    used = np.flatnonzero(counts)
    if used.size == 0:
        return HuffmanTable.empty()
    low, high = int(used[0]), int(used[-1])
    return HuffmanTable(low, code_lengths(counts[low : high + 1]))


def payload_bits(dc_hist: np.ndarray, ac_hist: np.ndarray, extra: int, tables: PlaneTables) -> int:
    """Exact payload size in bits for histograms coded with ``tables``.

    Rate control sizes every plane of every pass with this, so it reads only the span
    each table covers: every count must fall on a symbol with a code there.
    """
    return extra + code_bits(dc_hist, tables.dc) + code_bits(ac_hist, tables.ac)


def code_bits(hist: np.ndarray, table: HuffmanTable) -> int:
    """Code bits of the symbols counted in ``hist`` under ``table`` (only the span the table
    covers is read); ValueError if a counted symbol has no code."""
    span = hist[table.min_symbol : table.min_symbol + len(table.lengths)]
    lengths = table.lengths[: len(span)]
    if int(span[lengths > 0].sum()) != int(hist.sum()):
        raise ValueError("a symbol has no code in its table")
    return int(np.dot(span, lengths.astype(np.int64)))


def pack(
    dc_residuals: np.ndarray,
    levels: np.ndarray,
    tables: PlaneTables,
    counts: tuple[np.ndarray, np.ndarray, int] | None = None,
    last_nonzero: np.ndarray | None = None,
) -> bytes:
    """Code every block of a plane in raster order; zero-pad the last byte.

    The encoder passes what its quantizer already knows, so that nothing is counted or
    scanned twice: ``counts``, the plane's :func:`symbol_counts`, and ``last_nonzero``,
    each block's last non-zero AC index (0 if none). ValueError if they do not match the
    levels.
    """
    dc_residuals, levels = check_levels(dc_residuals, levels)
    if counts is None:
        counts = symbol_counts(dc_residuals, levels)
    if last_nonzero is None:
        last_nonzero = np.empty(levels.shape[0], dtype=np.int64)
        last_nonzero_kernel(levels, last_nonzero)
    last_nonzero = np.ascontiguousarray(last_nonzero)
    if last_nonzero.shape != dc_residuals.shape or not np.issubdtype(last_nonzero.dtype, np.integer):
        raise ValueError("expected one integer last non-zero index per block")
    size = (payload_bits(*counts, tables) + 7) // 8
    out = np.zeros(size + MAX_BLOCK_BYTES, dtype=np.uint8)
    dc_arrays, ac_arrays = encoder_arrays(tables.dc, DC_ALPHABET), encoder_arrays(tables.ac, AC_ALPHABET)
    if _pack_kernel(dc_residuals, levels, last_nonzero, *dc_arrays, *ac_arrays, out) != size:
        raise ValueError("the levels do not match their symbol counts or last non-zero indices")
    return out[:size].tobytes()


def check_tables(tables: PlaneTables) -> None:
    """Reject tables whose symbols the block syntax cannot have (before any kernel runs)."""
    dc, ac = tables.dc, tables.ac
    if len(dc.lengths) and (dc.min_symbol < 0 or dc.min_symbol + len(dc.lengths) > DC_ALPHABET):
        raise CorruptStreamError(f"DC table covers symbols outside 0..{DC_ALPHABET - 1}")
    if len(ac.lengths) and (ac.min_symbol < 0 or ac.min_symbol + len(ac.lengths) > AC_ALPHABET):
        raise CorruptStreamError(f"AC table covers symbols outside 0..{AC_ALPHABET - 1}")
    symbols = np.flatnonzero(ac.lengths) + ac.min_symbol
    if np.any((symbols & 15 == 0) & (symbols != EOB) & (symbols != ZRL)):
        raise CorruptStreamError("AC table holds a zero-size symbol other than EOB and ZRL")


def decoder_arrays(table: HuffmanTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts, first, symbols = table.decoder_tables()
    return counts, first, np.concatenate([symbols, np.zeros(1, dtype=np.int32)]).astype(np.int64)


def unpack(payload: bytes, nblocks: int, tables: PlaneTables) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``nblocks`` blocks: (DC residuals int64 (n,), levels int64 (n, 64), DC column 0).

    Raises CorruptStreamError unless the payload holds exactly those blocks followed by
    fewer than 8 zero padding bits.
    """
    check_tables(tables)
    # Every block costs at least one bit (its DC code), which bounds the allocation.
    if nblocks > 8 * len(payload):
        raise CorruptStreamError(f"payload of {len(payload)} bytes cannot hold {nblocks} blocks")
    if nblocks and (not len(tables.dc.lengths) or not len(tables.ac.lengths)):
        raise CorruptStreamError("a plane with blocks has an empty Huffman table")
    data = np.frombuffer(payload, dtype=np.uint8)
    dc_residuals = np.zeros(nblocks, dtype=np.int64)
    levels = np.zeros((nblocks, BLOCK_PIXELS), dtype=np.int64)
    status, pos = _unpack_kernel(data, *decoder_arrays(tables.dc), *decoder_arrays(tables.ac), dc_residuals, levels)
    if status != STATUS_OK:
        raise CorruptStreamError(f"{UNPACK_MESSAGES[status]} (bit {pos})")
    check_padding(data, pos)
    return dc_residuals, levels


def block_symbols_reference(dc_residual: int, row: np.ndarray) -> list[tuple[str, int, int, int]]:
    """Plain-Python symbol list of one block: (table, symbol, extra bits value, extra size)."""
    size = int(abs(dc_residual)).bit_length()
    out = [("dc", size, dc_residual if dc_residual > 0 else dc_residual + (1 << size) - 1, size)]
    nonzero = [j for j in range(1, len(row)) if row[j] != 0]
    run = 0
    for j in range(1, (nonzero[-1] if nonzero else 0) + 1):
        v = int(row[j])
        if v == 0:
            run += 1
            continue
        while run > MAX_RUN:
            out.append(("ac", ZRL, 0, 0))
            run -= MAX_RUN + 1
        size = abs(v).bit_length()
        out.append(("ac", run * 16 + size, v if v > 0 else v + (1 << size) - 1, size))
        run = 0
    if not nonzero or nonzero[-1] < len(row) - 1:
        out.append(("ac", EOB, 0, 0))
    return out


def pack_reference(dc_residuals: np.ndarray, levels: np.ndarray, tables: PlaneTables) -> bytes:
    """Plain-Python bit writer, for tests of :func:`pack`."""
    codes = {"dc": encoder_arrays(tables.dc, DC_ALPHABET), "ac": encoder_arrays(tables.ac, AC_ALPHABET)}
    bits = []
    for b in range(levels.shape[0]):
        for name, symbol, value, size in block_symbols_reference(int(dc_residuals[b]), levels[b]):
            code, length = codes[name][0][symbol], codes[name][1][symbol]
            bits.append(format(int(code), f"0{int(length)}b"))
            if size:
                bits.append(format(value, f"0{size}b"))
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


def unpack_reference(payload: bytes, nblocks: int, tables: PlaneTables) -> tuple[np.ndarray, np.ndarray]:
    """Plain-Python bit reader, for tests of :func:`unpack`."""
    check_tables(tables)
    reader = ReferenceBitReader(payload, UNPACK_MESSAGES)
    dc_residuals = np.zeros(nblocks, dtype=np.int64)
    levels = np.zeros((nblocks, BLOCK_PIXELS), dtype=np.int64)
    for b in range(nblocks):
        dc_residuals[b] = reader.signed(reader.symbol(tables.dc))
        j = 1
        while j < BLOCK_PIXELS:
            s = reader.symbol(tables.ac)
            if s == EOB:
                break
            run, size = (MAX_RUN + 1, 0) if s == ZRL else (s >> 4, s & 15)
            if j + run >= BLOCK_PIXELS:
                raise reader.fail(UNPACK_RUN_PAST_BLOCK)
            j += run
            if size:
                levels[b, j] = reader.signed(size)
                j += 1
    reader.finish()
    return dc_residuals, levels
