"""Joint DC symbols chosen by neighbour context and AC symbols with a "last" flag: the
block coding of format version 5.

Why: at quick-preview rates most blocks have no non-zero AC level. Version 4 (runlength.py)
codes such a block as a DC size-category symbol and then an EOB from the AC table: at
least 2 bits, and Huffman cannot code the very likely EOB in less than 1 bit. Version 5
joins the two: each block starts with one *joint DC* symbol ``2 * size + empty``
(``size`` the DC residual's size category, ``empty`` 1 when the block has no non-zero AC
level), then the residual's ``size`` extra bits, then, only when ``empty`` is 0, its AC
symbols.

A block with AC levels sends no EOB either: each AC symbol is ``run * 16 + size`` as in
runlength.py, plus LAST (256) when it codes the block's last non-zero level (the
H.263 / MPEG-4 "3-D VLC" idea: the flag rides on a symbol that is sent anyway, where an
EOB costs a code of its own); ZRL is never last. The first AC symbol of a block has its
own table: its run is the position of the first level, which a later symbol's is not
(and a lone level is both first and last), so the two distributions differ.

Blocks with AC levels cluster (edges, texture), so the joint symbol of block b is coded
with the table of its *context*: 0, 1 or 2, how many of its left and upper neighbours
(same plane, raster order; outside the plane counts as empty) are not empty. The decoder
knows both when it reaches b. A version 5 plane thus has 3 joint DC tables and 2 AC tables.

Version 6 codes the same symbols, but a block's other AC symbols (all but its first)
with one of 4 tables chosen by the coefficient index where the symbol's run *starts*
(the index after the block's previous level, or after the previous ZRL: the decoder's
position): under 4, 4-9, 10-23, 24 and up (REST_CONTEXT_EDGES). Symbols early in a block
are mostly short runs of big levels, late ones long runs of +-1, which one table codes
badly. A plane's syntax is named by its number of other-AC tables (1: version 5, 4:
version 6); the kernels take it as a 64-entry table of the context of each start index.

The kernels follow runlength.py's rules: the wrappers check shapes, the count and pack
kernels check every value they code, and the unpack kernel bounds every read by the
payload length and reports defects as status codes. A block flagged as not empty ends
with a last-flagged level: reading one whose levels run out first is a defect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .bitio import (
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
from .huffman import HuffmanTable
from .runlength import (
    AC_ALPHABET,
    DC_ALPHABET,
    EOB,
    MAX_BLOCK_BYTES,
    MAX_RUN,
    MAX_SIZE,
    TOO_BIG_MESSAGE,
    UNPACK_MESSAGES,
    UNPACK_RUN_PAST_BLOCK,
    ZRL,
    block_symbols_reference,
    check_levels,
    code_bits,
    coded_extra_bits,
    decoder_arrays,
    encoder_arrays,
    last_nonzero_kernel,
    signed_value,
    size_category,
)
from .runlength import (
    symbol_counts as plane_symbol_counts,
)

JOINT_ALPHABET = 2 * DC_ALPHABET
CONTEXTS = 3  # none, one or both of the left and upper neighbours have AC levels
LAST = AC_ALPHABET  # added to the AC symbol of a block's last non-zero level
LAST_ALPHABET = 2 * AC_ALPHABET
# The AC symbols the block syntax can have: ZRL, and run/size symbols with or without LAST.
_RUN_SIZE = [run * 16 + size for run in range(MAX_RUN + 1) for size in range(1, MAX_SIZE + 1)]
AC_SYMBOLS = np.array([ZRL] + _RUN_SIZE + [LAST + symbol for symbol in _RUN_SIZE], dtype=np.int64)

UNPACK_NO_LAST = UNPACK_RUN_PAST_BLOCK + 1
_MESSAGES = {**UNPACK_MESSAGES, UNPACK_NO_LAST: "a block with AC levels ends without a last-flagged level"}


# Number of other-AC tables of a plane -> the start indices where each context after the
# first begins: version 5 has one table, version 6 four.
REST_CONTEXT_EDGES = {1: (), 4: (4, 10, 24)}


def _start_context_table(edges: tuple[int, ...]) -> np.ndarray:
    table = np.searchsorted(edges, np.arange(BLOCK_PIXELS), side="right").astype(np.int64)
    table.flags.writeable = False
    return table


_START_CONTEXTS = {n: _start_context_table(edges) for n, edges in REST_CONTEXT_EDGES.items()}


def start_contexts(rest_tables: int) -> np.ndarray:
    """(64,) int64: the other-AC context of a symbol whose run starts at each index
    (read-only, made once: every plane's counting, packing and unpacking reads it)."""
    if rest_tables not in _START_CONTEXTS:
        raise ValueError(f"a plane has {' or '.join(map(str, REST_CONTEXT_EDGES))} other-AC tables, not {rest_tables}")
    return _START_CONTEXTS[rest_tables]


@dataclass(frozen=True)
class JointTables:
    """The Huffman tables of a version 5 or 6 plane: the joint DC table of each context,
    the table of each block's first AC symbol and those of its other AC symbols (one in
    version 5, one per start context in version 6)."""

    joint: tuple[HuffmanTable, ...]  # CONTEXTS tables
    first: HuffmanTable
    rest: tuple[HuffmanTable, ...]  # a key of REST_CONTEXT_EDGES tables


@dataclass(frozen=True)
class JointCounts:
    """What a version 5 or 6 plane's tables are built from and its payload is sized by."""

    joint: np.ndarray  # (CONTEXTS, JOINT_ALPHABET) int64: joint DC symbols per context
    first: np.ndarray  # (LAST_ALPHABET,) int64: the first AC symbol of each block that is not empty
    rest: np.ndarray  # (rest tables, LAST_ALPHABET) int64: their other AC symbols per start context
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


_COUNT_TOO_BIG = 1
_COUNT_BAD_LAST = 2
_COUNT_BAD_LEVEL = 3
_COUNT_MESSAGES = {
    _COUNT_TOO_BIG: TOO_BIG_MESSAGE,
    _COUNT_BAD_LAST: "a last non-zero index is outside the block or not on a non-zero level",
    _COUNT_BAD_LEVEL: "a level is too big to code",
}


@numba.njit(cache=True)
def _count_kernel(dc_residuals, levels, last_nonzero, contexts, start_context, joint_hist, first_hist, rest_hists):
    """Count every block's joint DC symbol in its context's row of ``joint_hist`` and
    every non-empty block's AC symbols (zeros on entry): its first in ``first_hist``, the
    others in the row of ``rest_hists`` of the context of the index where their run
    starts; only coefficients 1..last of those blocks are read. (0, DC extra bits, AC
    extra bits), or a status (_COUNT_TOO_BIG: a residual, _COUNT_BAD_LAST,
    _COUNT_BAD_LEVEL) and zeros. One kernel, not one per count: each costs compilation
    on a cold start."""
    dc_extra = 0
    for b in range(dc_residuals.shape[0]):
        size = size_category(dc_residuals[b])
        if size > MAX_SIZE:
            return _COUNT_TOO_BIG, 0, 0
        joint_hist[contexts[b], 2 * size + (1 if last_nonzero[b] == 0 else 0)] += 1
        dc_extra += size
    k = levels.shape[1]
    extra = 0
    for b in range(levels.shape[0]):
        last = last_nonzero[b]
        if last == 0:
            continue
        if not 0 < last < k or levels[b, last] == 0:
            return _COUNT_BAD_LAST, 0, 0
        first = True
        start = 1
        for j in range(1, last + 1):
            v = levels[b, j]
            if v == 0:
                continue
            while j - start > MAX_RUN:
                if first:
                    first_hist[ZRL] += 1
                    first = False
                else:
                    rest_hists[start_context[start], ZRL] += 1
                start += MAX_RUN + 1
            size = size_category(v)
            if size > MAX_SIZE:
                return _COUNT_BAD_LEVEL, 0, 0
            symbol = (j - start) * 16 + size + (LAST if j == last else 0)
            if first:
                first_hist[symbol] += 1
                first = False
            else:
                rest_hists[start_context[start], symbol] += 1
            extra += size
            start = j + 1
    return 0, dc_extra, extra


@numba.njit(cache=True)
def _pack_kernel(
    dc_residuals, levels, last_nonzero, contexts, start_context, joint_codes, joint_lengths, ac_codes, ac_lengths, out
):
    """Write the blocks into ``out``, which ends MAX_BLOCK_BYTES past the expected payload;
    ``ac_codes`` and ``ac_lengths`` hold the first-symbol table in row 0 and the other
    AC table of start context c in row 1 + c. The bytes written, or -1 (a value too big
    to code, a last non-zero index outside the block or not on a non-zero level, or more
    bits than expected)."""
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
        code = (joint_codes[context, symbol] << size) | coded_extra_bits(r, size)
        pos, acc, held = put_bits(out, pos, acc, held, code, joint_lengths[context, symbol] + size)
        table = 0
        start = 1  # where the next symbol's run starts
        for j in range(1, last + 1):
            v = levels[b, j]
            if v == 0:
                continue
            while j - start > MAX_RUN:
                pos, acc, held = put_bits(out, pos, acc, held, ac_codes[table, ZRL], ac_lengths[table, ZRL])
                start += MAX_RUN + 1
                table = 1 + start_context[start]
            size = size_category(v)
            if size > MAX_SIZE:
                return -1
            symbol = (j - start) * 16 + size + (LAST if j == last else 0)
            code = (ac_codes[table, symbol] << size) | coded_extra_bits(v, size)
            pos, acc, held = put_bits(out, pos, acc, held, code, ac_lengths[table, symbol] + size)
            start = j + 1
            if start < k:
                table = 1 + start_context[start]
    return flush_bits(out, pos, acc, held)


@numba.njit(cache=True)
def _unpack_kernel(
    data,
    cols,
    start_context,
    joint_counts,
    joint_first,
    joint_symbols,
    ac_counts,
    ac_first,
    ac_symbols,
    dc_residuals,
    levels,
    flags,
):
    """Decode every block; ``flags[b]`` is set to 1 for a block with AC levels; the AC
    arrays hold the first-symbol table in row 0, the other AC table of start context c
    in row 1 + c (``start_context``: 64 entries). (status, bit position)."""
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
        dc_residuals[b] = signed_value(read_bits(data, pos, size), size)
        pos += size
        if symbol & 1:
            continue
        flags[b] = 1
        ended = False
        table = 0
        j = 1
        while j < k:
            symbol, pos, status = decode_symbol(data, pos, nbits, ac_counts[table], ac_first[table], ac_symbols[table])
            if status != STATUS_OK:
                return status, pos
            # check_tables admits only ZRL and symbols of size 1..MAX_SIZE.
            run = MAX_RUN + 1 if symbol == ZRL else (symbol >> 4) & 15
            size = symbol & 15
            if j + run >= k:
                return UNPACK_RUN_PAST_BLOCK, pos
            j += run
            if size:
                if pos + size > nbits:
                    return STATUS_OUT_OF_BITS, pos
                levels[b, j] = signed_value(read_bits(data, pos, size), size)
                pos += size
                j += 1
                if symbol >= LAST:
                    ended = True
                    break
            if j < k:  # the next symbol's run starts at j
                table = 1 + start_context[j]
        if not ended:
            return UNPACK_NO_LAST, pos
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
    last_nonzero_kernel(levels, out)
    return out


def plane_counts(
    dc_residuals: np.ndarray,
    levels: np.ndarray,
    last_nonzero: np.ndarray,
    cols: int,
    ac_hist: np.ndarray,
    ac_extra_bits: int,
    rest_tables: int = 1,
) -> JointCounts:
    """The version 5 (``rest_tables`` 1) or 6 (4) counts of a plane from what the quantizer
    gives (blockcoder.PlaneLevels): the joint DC symbols and the AC symbols of the blocks
    with AC levels are counted here, the latter by reading each such block up to its last
    level; runlength's AC histogram and extra bits of the same levels must agree with
    them (less the EOBs, which these versions do not send), which checks the last indices."""
    dc_residuals, levels = check_levels(dc_residuals, levels)
    if np.shape(ac_hist) != (AC_ALPHABET,):
        raise ValueError(f"expected an ({AC_ALPHABET},) AC histogram")
    n = dc_residuals.shape[0]
    _check_grid(n, cols)
    last_nonzero = _check_last_nonzero(last_nonzero, n)
    joint_hist = np.zeros((CONTEXTS, JOINT_ALPHABET), dtype=np.int64)
    first = np.zeros(LAST_ALPHABET, dtype=np.int64)
    rest = np.zeros((rest_tables, LAST_ALPHABET), dtype=np.int64)
    contexts = block_contexts(last_nonzero, cols)
    status, dc_extra, ac_extra = _count_kernel(
        dc_residuals, levels, last_nonzero, contexts, start_contexts(rest_tables), joint_hist, first, rest
    )
    if status:
        raise ValueError(_COUNT_MESSAGES[status])
    folded = first + rest.sum(axis=0)
    expected = np.array(ac_hist, dtype=np.int64)
    expected[EOB] = 0
    if ac_extra != ac_extra_bits or not np.array_equal(folded[:AC_ALPHABET] + folded[AC_ALPHABET:], expected):
        raise ValueError("the levels up to their last non-zero indices do not have the AC histogram's symbols")
    return JointCounts(joint_hist, first, rest, int(dc_extra) + int(ac_extra))


def symbol_counts(dc_residuals: np.ndarray, levels: np.ndarray, cols: int, rest_tables: int = 1) -> JointCounts:
    """The version 5 (``rest_tables`` 1) or 6 (4) counts of a plane's DC residuals and
    (n, 64) levels, ``cols`` blocks a row."""
    dc_residuals, levels = check_levels(dc_residuals, levels)
    _, ac_hist, ac_extra = plane_symbol_counts(np.zeros_like(dc_residuals), levels)
    return plane_counts(dc_residuals, levels, last_nonzero_indices(levels), cols, ac_hist, ac_extra, rest_tables)


def payload_bits(counts: JointCounts, tables: JointTables) -> int:
    """Exact payload size in bits of ``counts`` coded with ``tables``; ValueError if a
    counted symbol has no code."""
    if len(counts.rest) != len(tables.rest):
        raise ValueError(f"{len(counts.rest)} other-AC histograms for {len(tables.rest)} tables")
    pairs = [*zip(counts.joint, tables.joint), (counts.first, tables.first), *zip(counts.rest, tables.rest)]
    return counts.extra_bits + sum(code_bits(hist, table) for hist, table in pairs)


def _stacked_encoder_arrays(tables, alphabet: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [encoder_arrays(table, alphabet) for table in tables]
    return np.stack([codes for codes, _ in pairs]), np.stack([lengths for _, lengths in pairs])


def pack(
    dc_residuals: np.ndarray,
    levels: np.ndarray,
    cols: int,
    tables: JointTables,
    counts: JointCounts | None = None,
    last_nonzero: np.ndarray | None = None,
    bits: int | None = None,
) -> bytes:
    """Code every block of a plane of ``cols`` blocks a row in raster order; zero-pad the
    last byte. ``counts``, ``last_nonzero`` and ``bits`` (the payload bits of ``counts``
    with ``tables``), if the caller has them (the encoder), are not computed again;
    ValueError if they do not match the levels."""
    dc_residuals, levels = check_levels(dc_residuals, levels)
    n = levels.shape[0]
    _check_grid(n, cols)
    last_nonzero = last_nonzero_indices(levels) if last_nonzero is None else _check_last_nonzero(last_nonzero, n)
    if counts is None:
        counts = symbol_counts(dc_residuals, levels, cols, len(tables.rest))
    size = ((payload_bits(counts, tables) if bits is None else bits) + 7) // 8
    out = np.zeros(size + MAX_BLOCK_BYTES, dtype=np.uint8)
    joint_arrays = _stacked_encoder_arrays(tables.joint, JOINT_ALPHABET)
    ac_arrays = _stacked_encoder_arrays((tables.first, *tables.rest), LAST_ALPHABET)
    contexts = block_contexts(last_nonzero, cols)
    starts = start_contexts(len(tables.rest))
    if _pack_kernel(dc_residuals, levels, last_nonzero, contexts, starts, *joint_arrays, *ac_arrays, out) != size:
        raise ValueError("the levels do not match their symbol counts or last non-zero indices")
    return out[:size].tobytes()


_AC_SYMBOL = np.zeros(LAST_ALPHABET, dtype=bool)
_AC_SYMBOL[AC_SYMBOLS] = True


def check_tables(tables: JointTables) -> None:
    """Reject tables whose symbols the block syntax cannot have (before any kernel runs)."""
    if len(tables.joint) != CONTEXTS:
        raise CorruptStreamError(f"a version 5 or 6 plane has {CONTEXTS} joint DC tables, not {len(tables.joint)}")
    if len(tables.rest) not in REST_CONTEXT_EDGES:
        raise CorruptStreamError(f"a plane has 1 or 4 other-AC tables, not {len(tables.rest)}")
    for table in tables.joint:
        if len(table.lengths) and (table.min_symbol < 0 or table.min_symbol + len(table.lengths) > JOINT_ALPHABET):
            raise CorruptStreamError(f"joint DC table covers symbols outside 0..{JOINT_ALPHABET - 1}")
    for table in (tables.first, *tables.rest):
        if len(table.lengths) and (table.min_symbol < 0 or table.min_symbol + len(table.lengths) > LAST_ALPHABET):
            raise CorruptStreamError(f"AC table covers symbols outside 0..{LAST_ALPHABET - 1}")
        if not _AC_SYMBOL[np.flatnonzero(table.lengths) + table.min_symbol].all():
            raise CorruptStreamError("AC table holds a zero-size symbol other than ZRL, or a last-flagged ZRL")


def _stacked_decoder_arrays(tables, alphabet: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = [decoder_arrays(table) for table in tables]
    symbols = np.zeros((len(parts), alphabet + 1), dtype=np.int64)
    for row, (_, _, ordered) in enumerate(parts):
        symbols[row, : len(ordered)] = ordered
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
        data,
        max(cols, 1),
        start_contexts(len(tables.rest)),
        *_stacked_decoder_arrays(tables.joint, JOINT_ALPHABET),
        *_stacked_decoder_arrays((tables.first, *tables.rest), LAST_ALPHABET),
        dc_residuals,
        levels,
        flags,
    )
    if status != STATUS_OK:
        raise CorruptStreamError(f"{_MESSAGES[status]} (bit {pos})")
    check_padding(data, pos)
    return dc_residuals, levels


def _bits_of(value: int, size: int) -> str:
    return format(value, f"0{size}b") if size else ""


def block_ac_symbols_reference(row: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(symbol, extra bits value, size, start) of a block's AC symbols in versions 5 and
    6: runlength's without the EOB, the last level's symbol plus LAST; ``start`` is the
    index where the symbol's run starts."""
    symbols = [(symbol, value, size) for _, symbol, value, size in block_symbols_reference(0, row)[1:]]
    if symbols and symbols[-1][0] == EOB:
        symbols.pop()
    if symbols:
        symbol, value, size = symbols[-1]
        symbols[-1] = (symbol + LAST, value, size)
    out, start = [], 1
    for symbol, value, size in symbols:
        out.append((symbol, value, size, start))
        start += MAX_RUN + 1 if symbol == ZRL else ((symbol >> 4) & 15) + 1
    return out


def rest_context_reference(start: int, rest_tables: int) -> int:
    """The other-AC context of a symbol whose run starts at ``start``, for tests."""
    return sum(start >= edge for edge in REST_CONTEXT_EDGES[rest_tables])


def pack_reference(dc_residuals: np.ndarray, levels: np.ndarray, cols: int, tables: JointTables) -> bytes:
    """Plain-Python bit writer, for tests of :func:`pack`: runlength's block symbols with
    the DC symbol joined to the empty flag, the EOB left out, the last level flagged,
    the first AC symbol of a block from the first-symbol table and the others from the
    other-AC table of the context of their start."""
    joint = [encoder_arrays(table, JOINT_ALPHABET) for table in tables.joint]
    first = encoder_arrays(tables.first, LAST_ALPHABET)
    rest = [encoder_arrays(table, LAST_ALPHABET) for table in tables.rest]
    empty = [not np.any(row[1:]) for row in levels]
    bits = []
    for b, row in enumerate(levels):
        left = b % cols > 0 and not empty[b - 1]
        up = b >= cols and not empty[b - cols]
        codes, lengths = joint[int(left) + int(up)]
        _, _, value, size = block_symbols_reference(int(dc_residuals[b]), row)[0]
        symbol = 2 * size + int(empty[b])
        bits += [_bits_of(int(codes[symbol]), int(lengths[symbol])), _bits_of(value, size)]
        for i, (symbol, value, size, start) in enumerate(block_ac_symbols_reference(row)):
            codes, lengths = first if i == 0 else rest[rest_context_reference(start, len(rest))]
            bits += [_bits_of(int(codes[symbol]), int(lengths[symbol])), _bits_of(value, size)]
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


def unpack_reference(payload: bytes, rows: int, cols: int, tables: JointTables) -> tuple[np.ndarray, np.ndarray]:
    """Plain-Python bit reader, for tests of :func:`unpack`."""
    check_tables(tables)
    reader = ReferenceBitReader(payload, _MESSAGES)
    nblocks = rows * cols
    dc_residuals = np.zeros(nblocks, dtype=np.int64)
    levels = np.zeros((nblocks, BLOCK_PIXELS), dtype=np.int64)
    filled = [False] * nblocks
    for b in range(nblocks):
        context = int(b % cols > 0 and filled[b - 1]) + int(b >= cols and filled[b - cols])
        joint = reader.symbol(tables.joint[context])
        dc_residuals[b] = reader.signed(joint >> 1)
        if joint & 1:
            continue
        filled[b] = True
        j, table, ended = 1, tables.first, False
        while j < BLOCK_PIXELS and not ended:
            s = reader.symbol(table)
            run, size = (MAX_RUN + 1, 0) if s == ZRL else ((s >> 4) & 15, s & 15)
            if j + run >= BLOCK_PIXELS:
                raise reader.fail(UNPACK_RUN_PAST_BLOCK)
            j += run
            if size:
                levels[b, j] = reader.signed(size)
                j += 1
                ended = s >= LAST
            table = tables.rest[rest_context_reference(j, len(tables.rest))]
        if not ended:
            raise reader.fail(UNPACK_NO_LAST)
    reader.finish()
    return dc_residuals, levels
