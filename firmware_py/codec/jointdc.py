"""Joint DC symbols chosen by neighbour context: the block coding of format version 5.

Why: at quick-preview rates most blocks have no non-zero AC level. Version 4 (runlength.py)
codes such a block as a DC size-category symbol and then an EOB from the AC table: at
least 2 bits, and Huffman cannot code the very likely EOB in less than 1 bit. Version 5
joins the two: each block starts with one *joint DC* symbol ``2 * size + empty``
(``size`` the DC residual's size category, ``empty`` 1 when the block has no non-zero AC
level), then the residual's ``size`` extra bits, then, only when ``empty`` is 0, its AC
symbols exactly as runlength.py codes them (run/size symbols, ZRL, and EOB unless the
last level is non-zero).

Blocks with AC levels cluster (edges, texture), so the joint symbol of block b is coded
with the table of its *context*: 0, 1 or 2, how many of its left and upper neighbours
(same plane, raster order; outside the plane counts as empty) are not empty. The decoder
knows both when it reaches b. A plane thus has 3 joint DC tables and 1 AC table.

The kernels follow runlength.py's rules: the wrappers check shapes, the count and pack
kernels check every value they code, and the unpack kernel bounds every read by the
payload length and reports defects as status codes. A block flagged as not empty but
without a non-zero AC level cannot be written, so reading one is a defect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .bitio import (
    MAX_CODE_LENGTH,
    STATUS_BAD_CODE,
    STATUS_OK,
    STATUS_OUT_OF_BITS,
    check_padding,
    decode_symbol,
    flush_bits,
    put_bits,
    read_bits,
)
from .blocking import BLOCK_PIXELS
from .errors import CorruptStreamError
from .huffman import HuffmanTable
from .runlength import (
    _UNPACK_MESSAGES,
    _TOO_BIG,
    AC_ALPHABET,
    DC_ALPHABET,
    EOB,
    MAX_BLOCK_BYTES,
    MAX_RUN,
    MAX_SIZE,
    UNPACK_RUN_PAST_BLOCK,
    ZRL,
    PlaneTables,
    _check_levels,
    _decoder_arrays,
    _encoder_arrays,
    _extend,
    _extra_bits,
    _last_nonzero_kernel,
    block_symbols_reference,
    check_tables as check_plane_tables,
    code_bits,
    size_category,
    symbol_counts as plane_symbol_counts,
)

JOINT_ALPHABET = 2 * DC_ALPHABET
CONTEXTS = 3  # none, one or both of the left and upper neighbours have AC levels

UNPACK_EMPTY_BLOCK = UNPACK_RUN_PAST_BLOCK + 1
_MESSAGES = {**_UNPACK_MESSAGES, UNPACK_EMPTY_BLOCK: "a block flagged with AC levels has no non-zero AC level"}


@dataclass(frozen=True)
class JointTables:
    """The Huffman tables of a version 5 plane: the joint DC table of each context, and AC."""

    joint: tuple[HuffmanTable, ...]  # CONTEXTS tables
    ac: HuffmanTable


@dataclass(frozen=True)
class JointCounts:
    """What a version 5 plane's tables are built from and its payload is sized by."""

    joint: np.ndarray  # (CONTEXTS, JOINT_ALPHABET) int64: joint DC symbols per context
    ac: np.ndarray  # (AC_ALPHABET,) int64: AC symbols of the blocks that are not empty
    extra_bits: int  # DC and AC extra bits


@numba.njit(cache=True)
def _contexts_kernel(last_nonzero, cols, contexts):
    """Every block's context from the blocks' last non-zero AC indices (0: empty). The
    unpack kernel applies the same rule as it decodes; both run it inline, as a call per
    block that passes an array costs reference counting."""
    col = 0
    for b in range(last_nonzero.shape[0]):
        context = 0
        if col > 0 and last_nonzero[b - 1] > 0:
            context += 1
        if b >= cols and last_nonzero[b - cols] > 0:
            context += 1
        contexts[b] = context
        col += 1
        if col == cols:
            col = 0


@numba.njit(cache=True)
def _count_kernel(dc_residuals, last_nonzero, contexts, joint_hist):
    """Add each block's joint DC symbol to its context's row of ``joint_hist``; the DC
    extra bits, or -1 if a residual is too big."""
    extra = 0
    for b in range(dc_residuals.shape[0]):
        size = size_category(dc_residuals[b])
        if size > MAX_SIZE:
            return -1
        joint_hist[contexts[b], 2 * size + (1 if last_nonzero[b] == 0 else 0)] += 1
        extra += size
    return extra


@numba.njit(cache=True)
def _pack_kernel(dc_residuals, levels, last_nonzero, contexts, joint_codes, joint_lengths, ac_codes, ac_lengths, out):
    """Write the blocks into ``out``, which ends MAX_BLOCK_BYTES past the expected payload;
    the bytes written, or -1 (a value too big to code, a last non-zero index outside the
    block or not on a non-zero level, or more bits than expected)."""
    pos, acc, held = 0, 0, 0
    k = levels.shape[1]
    for b in range(levels.shape[0]):
        if pos + MAX_BLOCK_BYTES > out.shape[0]:
            return -1
        last = last_nonzero[b]
        if not 0 <= last < k or (last > 0 and levels[b, last] == 0):
            return -1
        r = dc_residuals[b]
        size = size_category(r)
        if size > MAX_SIZE:
            return -1
        context = contexts[b]
        symbol = 2 * size + (1 if last == 0 else 0)
        code = (joint_codes[context, symbol] << size) | _extra_bits(r, size)
        pos, acc, held = put_bits(out, pos, acc, held, code, joint_lengths[context, symbol] + size)
        if last == 0:
            continue
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
            code = (ac_codes[symbol] << size) | _extra_bits(v, size)
            pos, acc, held = put_bits(out, pos, acc, held, code, ac_lengths[symbol] + size)
            run = 0
        if last < k - 1:
            pos, acc, held = put_bits(out, pos, acc, held, ac_codes[EOB], ac_lengths[EOB])
    return flush_bits(out, pos, acc, held)


@numba.njit(cache=True)
def _unpack_kernel(
    data, cols, joint_counts, joint_first, joint_symbols, ac_counts, ac_first, ac_symbols, dc_residuals, levels, flags
):
    """Decode every block; ``flags[b]`` is set to 1 for a block with AC levels. (status, bit position)."""
    nbits = data.shape[0] * 8
    k = levels.shape[1]
    pos = 0
    col = -1
    for b in range(levels.shape[0]):
        col += 1
        if col == cols:
            col = 0
        context = 0  # as _contexts_kernel
        if col > 0 and flags[b - 1] > 0:
            context += 1
        if b >= cols and flags[b - cols] > 0:
            context += 1
        symbol, pos, status = decode_symbol(
            data, pos, nbits, joint_counts[context], joint_first[context], joint_symbols[context]
        )
        if status != STATUS_OK:
            return status, pos
        size = symbol >> 1  # <= MAX_SIZE: check_tables bounds the joint symbols
        if pos + size > nbits:
            return STATUS_OUT_OF_BITS, pos
        dc_residuals[b] = _extend(read_bits(data, pos, size), size)
        pos += size
        if symbol & 1:
            continue
        flags[b] = 1
        levelled = False
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
                levels[b, j] = _extend(read_bits(data, pos, size), size)
                pos += size
                j += 1
                levelled = True
        if not levelled:
            return UNPACK_EMPTY_BLOCK, pos
    return STATUS_OK, pos


def _check_grid(n: int, cols: int) -> None:
    if cols < 1 or n % cols:
        raise ValueError(f"{n} blocks are not rows of {cols} columns")


def _check_last_nonzero(last_nonzero: np.ndarray, n: int) -> np.ndarray:
    last_nonzero = np.ascontiguousarray(last_nonzero)
    if last_nonzero.shape != (n,) or not np.issubdtype(last_nonzero.dtype, np.integer):
        raise ValueError("expected one integer last non-zero index per block")
    return last_nonzero


def block_contexts(last_nonzero: np.ndarray, cols: int) -> np.ndarray:
    """(n,) int64 context of every block of a plane of ``cols`` blocks a row (validated)."""
    contexts = np.empty(last_nonzero.shape[0], dtype=np.int64)
    _contexts_kernel(last_nonzero, cols, contexts)
    return contexts


def last_nonzero_indices(levels: np.ndarray) -> np.ndarray:
    """Each block's last non-zero AC index, 0 for a block without AC levels."""
    out = np.empty(levels.shape[0], dtype=np.int64)
    _last_nonzero_kernel(levels, out)
    return out


def plane_counts(
    dc_residuals: np.ndarray, last_nonzero: np.ndarray, cols: int, ac_hist: np.ndarray, ac_extra_bits: int
) -> JointCounts:
    """The version 5 counts of a plane from what the quantizer gives (blockcoder.PlaneLevels):
    the joint DC symbols are counted here, and the EOBs of empty blocks, which version 5
    does not send, leave the AC histogram."""
    dc_residuals = np.ascontiguousarray(dc_residuals, dtype=np.int64)
    if dc_residuals.ndim != 1 or np.shape(ac_hist) != (AC_ALPHABET,):
        raise ValueError(f"expected (n,) DC residuals and an ({AC_ALPHABET},) AC histogram")
    n = dc_residuals.shape[0]
    _check_grid(n, cols)
    last_nonzero = _check_last_nonzero(last_nonzero, n)
    joint_hist = np.zeros((CONTEXTS, JOINT_ALPHABET), dtype=np.int64)
    dc_extra = _count_kernel(dc_residuals, last_nonzero, block_contexts(last_nonzero, cols), joint_hist)
    if dc_extra < 0:
        raise ValueError(_TOO_BIG)
    ac = np.array(ac_hist, dtype=np.int64)
    ac[EOB] -= int(joint_hist[:, 1::2].sum())
    if ac[EOB] < 0:
        raise ValueError("the AC histogram lacks the EOBs of the blocks without AC levels")
    return JointCounts(joint_hist, ac, int(dc_extra) + int(ac_extra_bits))


def symbol_counts(dc_residuals: np.ndarray, levels: np.ndarray, cols: int) -> JointCounts:
    """The version 5 counts of a plane's DC residuals and (n, 64) levels, ``cols`` blocks a row."""
    dc_residuals, levels = _check_levels(dc_residuals, levels)
    _, ac_hist, ac_extra = plane_symbol_counts(np.zeros_like(dc_residuals), levels)
    return plane_counts(dc_residuals, last_nonzero_indices(levels), cols, ac_hist, ac_extra)


def payload_bits(counts: JointCounts, tables: JointTables) -> int:
    """Exact payload size in bits of ``counts`` coded with ``tables``; ValueError if a
    counted symbol has no code."""
    joint = sum(code_bits(hist, table) for hist, table in zip(counts.joint, tables.joint))
    return counts.extra_bits + joint + code_bits(counts.ac, tables.ac)


def _joint_encoder_arrays(tables: JointTables) -> tuple[np.ndarray, np.ndarray]:
    pairs = [_encoder_arrays(table, JOINT_ALPHABET) for table in tables.joint]
    return np.stack([codes for codes, _ in pairs]), np.stack([lengths for _, lengths in pairs])


def pack(
    dc_residuals: np.ndarray,
    levels: np.ndarray,
    cols: int,
    tables: JointTables,
    counts: JointCounts | None = None,
    last_nonzero: np.ndarray | None = None,
) -> bytes:
    """Code every block of a plane of ``cols`` blocks a row in raster order; zero-pad the
    last byte. ``counts`` and ``last_nonzero``, if the caller has them (the encoder), are
    not computed again; ValueError if they do not match the levels."""
    dc_residuals, levels = _check_levels(dc_residuals, levels)
    n = levels.shape[0]
    _check_grid(n, cols)
    last_nonzero = last_nonzero_indices(levels) if last_nonzero is None else _check_last_nonzero(last_nonzero, n)
    if counts is None:
        counts = symbol_counts(dc_residuals, levels, cols)
    size = (payload_bits(counts, tables) + 7) // 8
    out = np.zeros(size + MAX_BLOCK_BYTES, dtype=np.uint8)
    joint_arrays, ac_arrays = _joint_encoder_arrays(tables), _encoder_arrays(tables.ac, AC_ALPHABET)
    contexts = block_contexts(last_nonzero, cols)
    if _pack_kernel(dc_residuals, levels, last_nonzero, contexts, *joint_arrays, *ac_arrays, out) != size:
        raise ValueError("the levels do not match their symbol counts or last non-zero indices")
    return out[:size].tobytes()


def check_tables(tables: JointTables) -> None:
    """Reject tables whose symbols the block syntax cannot have (before any kernel runs)."""
    if len(tables.joint) != CONTEXTS:
        raise CorruptStreamError(f"a version 5 plane has {CONTEXTS} joint DC tables, not {len(tables.joint)}")
    for table in tables.joint:
        if len(table.lengths) and (table.min_symbol < 0 or table.min_symbol + len(table.lengths) > JOINT_ALPHABET):
            raise CorruptStreamError(f"joint DC table covers symbols outside 0..{JOINT_ALPHABET - 1}")
    check_plane_tables(PlaneTables(HuffmanTable.empty(), tables.ac))


def _joint_decoder_arrays(tables: JointTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = [_decoder_arrays(table) for table in tables.joint]
    symbols = np.zeros((CONTEXTS, JOINT_ALPHABET + 1), dtype=np.int64)
    for context, (_, _, ordered) in enumerate(parts):
        symbols[context, : len(ordered)] = ordered
    return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]), symbols


def unpack(payload: bytes, rows: int, cols: int, tables: JointTables) -> tuple[np.ndarray, np.ndarray]:
    """Decode a plane of rows x cols blocks: (DC residuals int64 (n,), levels int64 (n, 64),
    DC column 0). CorruptStreamError unless the payload holds exactly those blocks
    followed by fewer than 8 zero padding bits."""
    check_tables(tables)
    nblocks = rows * cols
    # Every block costs at least one bit (its joint DC code), which bounds the allocation.
    if nblocks > 8 * len(payload):
        raise CorruptStreamError(f"payload of {len(payload)} bytes cannot hold {nblocks} blocks")
    if nblocks and not len(tables.joint[0].lengths):
        raise CorruptStreamError("a plane with blocks has an empty joint DC table for context 0")
    data = np.frombuffer(payload, dtype=np.uint8)
    dc_residuals = np.zeros(nblocks, dtype=np.int64)
    levels = np.zeros((nblocks, BLOCK_PIXELS), dtype=np.int64)
    flags = np.zeros(nblocks, dtype=np.int64)
    status, pos = _unpack_kernel(
        data, max(cols, 1), *_joint_decoder_arrays(tables), *_decoder_arrays(tables.ac), dc_residuals, levels, flags
    )
    if status != STATUS_OK:
        raise CorruptStreamError(f"{_MESSAGES[status]} (bit {pos})")
    check_padding(data, pos)
    return dc_residuals, levels


def _bits_of(value: int, size: int) -> str:
    return format(value, f"0{size}b") if size else ""


def pack_reference(dc_residuals: np.ndarray, levels: np.ndarray, cols: int, tables: JointTables) -> bytes:
    """Plain-Python bit writer, for tests of :func:`pack`: runlength's block symbols with
    the DC symbol joined to the empty flag, and an empty block's EOB left out."""
    joint = [_encoder_arrays(table, JOINT_ALPHABET) for table in tables.joint]
    ac_codes, ac_lengths = _encoder_arrays(tables.ac, AC_ALPHABET)
    empty = [not np.any(row[1:]) for row in levels]
    bits = []
    for b, row in enumerate(levels):
        left = b % cols > 0 and not empty[b - 1]
        up = b >= cols and not empty[b - cols]
        codes, lengths = joint[int(left) + int(up)]
        (_, size, value, _), *ac_symbols = block_symbols_reference(int(dc_residuals[b]), row)
        symbol = 2 * size + int(empty[b])
        bits += [_bits_of(int(codes[symbol]), int(lengths[symbol])), _bits_of(value, size)]
        for _, symbol, value, size in [] if empty[b] else ac_symbols:
            bits += [_bits_of(int(ac_codes[symbol]), int(ac_lengths[symbol])), _bits_of(value, size)]
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


def unpack_reference(payload: bytes, rows: int, cols: int, tables: JointTables) -> tuple[np.ndarray, np.ndarray]:
    """Plain-Python bit reader, for tests of :func:`unpack`."""
    check_tables(tables)
    bits = "".join(format(byte, "08b") for byte in payload)
    pos = 0

    def fail(status: int) -> CorruptStreamError:
        return CorruptStreamError(f"{_MESSAGES[status]} (bit {pos})")

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > len(bits):
            raise fail(STATUS_OUT_OF_BITS)
        value = int(bits[pos : pos + n], 2) if n else 0
        pos += n
        return value

    def symbol(table: HuffmanTable) -> int:
        codes = table.canonical_codes()
        lookup = {(int(table.lengths[s]), int(codes[s])): s + table.min_symbol for s in np.flatnonzero(table.lengths)}
        code = 0
        for length in range(1, MAX_CODE_LENGTH + 1):
            if pos >= len(bits):
                raise fail(STATUS_OUT_OF_BITS)
            code = (code << 1) | take(1)
            if (length, code) in lookup:
                return lookup[(length, code)]
        raise fail(STATUS_BAD_CODE)

    def extend(value: int, size: int) -> int:
        return value if size == 0 or value >> (size - 1) else value - (1 << size) + 1

    nblocks = rows * cols
    dc_residuals = np.zeros(nblocks, dtype=np.int64)
    levels = np.zeros((nblocks, BLOCK_PIXELS), dtype=np.int64)
    filled = [False] * nblocks
    for b in range(nblocks):
        context = int(b % cols > 0 and filled[b - 1]) + int(b >= cols and filled[b - cols])
        joint = symbol(tables.joint[context])
        size = joint >> 1
        dc_residuals[b] = extend(take(size), size)
        if joint & 1:
            continue
        filled[b] = True
        j = 1
        while j < BLOCK_PIXELS:
            s = symbol(tables.ac)
            if s == EOB:
                break
            run, size = (MAX_RUN + 1, 0) if s == ZRL else (s >> 4, s & 15)
            if j + run >= BLOCK_PIXELS:
                raise fail(UNPACK_RUN_PAST_BLOCK)
            j += run
            if size:
                levels[b, j] = extend(take(size), size)
                j += 1
        if not levels[b, 1:].any():
            raise fail(UNPACK_EMPTY_BLOCK)
    check_padding(np.frombuffer(payload, dtype=np.uint8), pos)
    return dc_residuals, levels
