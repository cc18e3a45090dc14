"""Packet-mode block coding: the order blocks are sent in, what each block costs, and
coding a run of blocks ("slice") so that it decodes on its own.

Blocks are sent in an interleaved order: each plane's block grid is cut into 16 phases
by a 4x4 ordered-dither (Bayer) pattern, phases are sent one after another, and within
a phase the planes one after another (Y, Cb, Cr), each in raster order. A slice is a run
of consecutive blocks in that frame-wide order, so the blocks of a lost packet are
scattered four blocks apart, every one of them with its eight neighbours in other
packets, which is what makes concealment by interpolation work; no packet holds a
whole chroma plane; and the first packets of a frame already cover the whole picture
coarsely, in colour.

A slice is coded per block as the class index in ``class_bits`` plain bits followed
by each latent's code from the static tables of the block's plane kind
(``packet_tables.TableSet``), MSB first, with an escape code + 15 raw bits for a level
outside a table. The slice ends with a single
1 bit and zero bits up to the byte boundary (a stop bit): the decoder learns the
exact bit length from the last byte, so no block count is sent.

The numba kernels trust their arrays (numba does not bounds-check): every symbol is
checked before packing, and the unpack kernel bounds every read by the bit length and
every write by the block budget it is given, returning a status code.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from .bitio import (
    MAX_CODE_LENGTH,
    STATUS_BAD_CODE,
    STATUS_OK,
    STATUS_OUT_OF_BITS,
    decode_symbol,
    flush_bits,
    put_bits,
    read_bits,
)
from .errors import CorruptStreamError
from .huffman import BlockLayout
from .packet_tables import ESCAPE_BITS, TableSet
from .quantize import MAX_LEVEL

# Ordered-dither matrix: phase of block (row, col) is BAYER_4X4[row % 4, col % 4]. Each
# prefix of phases is spread as evenly as possible over the grid.
BAYER_4X4 = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])

UNPACK_BAD_CLASS = 3
UNPACK_BAD_ESCAPE = 4
UNPACK_TOO_MANY_BLOCKS = 5
_UNPACK_MESSAGES = {
    STATUS_OUT_OF_BITS: "slice ends in the middle of a block",
    STATUS_BAD_CODE: "bit pattern is not a code of the static Huffman table",
    UNPACK_BAD_CLASS: "block class index is out of range",
    UNPACK_BAD_ESCAPE: "escaped level is inside the table's range or beyond the quantizer's",
    UNPACK_TOO_MANY_BLOCKS: "slice holds more blocks than remain in the frame",
}
_ESCAPE_SIGN = 1 << (ESCAPE_BITS - 1)
_ESCAPE_MASK = (1 << ESCAPE_BITS) - 1


@functools.lru_cache(maxsize=16)
def transmission_order(rows: int, cols: int) -> np.ndarray:
    """Raster indices of a rows x cols block grid in sending order (read-only array)."""
    index = np.arange(rows * cols)
    phase = BAYER_4X4[(index // cols) % 4, (index % cols) % 4]
    order = np.argsort(phase, kind="stable")
    order.setflags(write=False)
    return order


@functools.lru_cache(maxsize=16)
def frame_order(grids: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Sending order of a frame whose planes have the block grids ``grids`` (rows, cols).

    Returns (plane, raster block index) of every block, read-only arrays: phase by
    phase, and within a phase plane by plane, each in raster order.
    """
    planes, blocks, phases = [], [], []
    for plane, (rows, cols) in enumerate(grids):
        order = transmission_order(rows, cols)
        planes.append(np.full(order.size, plane))
        blocks.append(order)
        phases.append(BAYER_4X4[(order // cols) % 4, (order % cols) % 4])
    phase, plane_of, block_of = (np.concatenate(parts) for parts in (phases, planes, blocks))
    sequence = np.lexsort((plane_of, phase))  # stable: raster order within (phase, plane)
    plane_of, block_of = plane_of[sequence], block_of[sequence]
    plane_of.setflags(write=False)
    block_of.setflags(write=False)
    return plane_of, block_of


def _check_symbols(classes: np.ndarray, symbols: np.ndarray, kinds: np.ndarray, tables: TableSet) -> None:
    layout = tables.layout
    if classes.ndim != 1 or symbols.ndim != 2 or symbols.shape != (classes.shape[0], layout.max_latents):
        raise ValueError("classes and symbols do not match the slice tables' layout")
    if kinds.shape != classes.shape or (kinds.size and not 0 <= int(kinds.min()) <= int(kinds.max()) < len(tables.kinds)):
        raise ValueError(f"block kinds must be one per block, 0..{len(tables.kinds) - 1}")
    if classes.size and int(classes.max()) >= len(layout.latents_per_class):
        raise ValueError("block class index out of range")
    if symbols.size and int(np.abs(symbols).max()) > MAX_LEVEL:
        raise ValueError(f"a level exceeds the quantizer's range of +-{MAX_LEVEL}")


def block_costs(classes: np.ndarray, symbols: np.ndarray, kinds: np.ndarray, tables: TableSet) -> np.ndarray:
    """Exact size in bits of every block as a slice codes it (int64, one per block);
    ``kinds[b]`` is block b's plane kind (index into ``tables.kinds``)."""
    kinds = np.asarray(kinds)
    _check_symbols(classes, symbols, kinds, tables)
    costs = np.full(classes.shape[0], tables.layout.class_bits, dtype=np.int64)
    for k, kind_tables in enumerate(tables.kinds):
        for c, row in enumerate(kind_tables.tables):
            chosen = (classes == c) & (kinds == k)
            for j, table in enumerate(row):
                values = symbols[chosen, j].astype(np.int64)
                reach = -table.min_symbol
                inside = np.abs(values) <= reach
                slots = np.where(inside, values + reach, len(table.lengths) - 1)
                costs[chosen] += table.lengths[slots].astype(np.int64) + np.where(inside, 0, ESCAPE_BITS)
    return costs


def slice_bytes(bits: int) -> int:
    """Bytes of a slice whose blocks take ``bits`` bits (the stop bit included)."""
    return (bits + 1 + 7) // 8


@numba.njit(cache=True)
def _pack_kernel(classes, symbols, kinds, bounds, latents_per_class, class_bits, max_latents, codes, lengths, reach, escape, out, offsets):
    for r in range(bounds.shape[0] - 1):
        pos, acc, held = offsets[r], 0, 0
        for b in range(bounds[r], bounds[r + 1]):
            c = classes[b]
            pos, acc, held = put_bits(out, pos, acc, held, c, class_bits)
            base = (kinds[b] * latents_per_class.shape[0] + c) * max_latents
            for j in range(latents_per_class[c]):
                t = base + j
                value = symbols[b, j]
                if -reach[t] <= value <= reach[t]:
                    slot = value + reach[t]
                    pos, acc, held = put_bits(out, pos, acc, held, codes[t, slot], lengths[t, slot])
                else:
                    slot = escape[t]
                    pos, acc, held = put_bits(out, pos, acc, held, codes[t, slot], lengths[t, slot])
                    pos, acc, held = put_bits(out, pos, acc, held, value & _ESCAPE_MASK, ESCAPE_BITS)
        # The stop bit marks where the blocks end inside the zero-padded last byte.
        pos, acc, held = put_bits(out, pos, acc, held, 1, 1)
        flush_bits(out, pos, acc, held)


def pack_slices(classes: np.ndarray, symbols: np.ndarray, kinds: np.ndarray, bounds: np.ndarray, tables: TableSet) -> list[bytes]:
    """Code the runs ``bounds[r] .. bounds[r + 1]`` of the given blocks, one slice each;
    ``kinds[b]`` is block b's plane kind (index into ``tables.kinds``)."""
    classes = np.ascontiguousarray(classes, dtype=np.int64)
    symbols = np.ascontiguousarray(symbols, dtype=np.int64)
    kinds = np.ascontiguousarray(kinds, dtype=np.int64)
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    costs = block_costs(classes, symbols, kinds, tables)
    if bounds.ndim != 1 or bounds.size < 2 or bounds[0] < 0 or bounds[-1] > classes.shape[0] or np.any(np.diff(bounds) <= 0):
        raise ValueError("slice bounds must increase strictly within the blocks")
    cumulative = np.concatenate([[0], np.cumsum(costs)])
    sizes = np.array([slice_bytes(int(b)) for b in cumulative[bounds[1:]] - cumulative[bounds[:-1]]], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = np.zeros(int(offsets[-1]), dtype=np.uint8)
    arrays = tables.arrays
    _pack_kernel(
        classes, symbols, kinds, bounds, arrays.latents_per_class, tables.layout.class_bits, tables.layout.max_latents,
        arrays.codes, arrays.lengths, arrays.reach, arrays.escape, out, offsets,
    )
    data = out.tobytes()
    return [data[offsets[r] : offsets[r + 1]] for r in range(len(sizes))]


@numba.njit(cache=True)
def _unpack_kernel(data, nbits, kinds, latents_per_class, class_bits, max_latents, counts, first, ordered, reach, escape, classes, symbols):
    pos = 0
    b = 0
    while pos < nbits:
        if b >= classes.shape[0]:
            return UNPACK_TOO_MANY_BLOCKS, b, pos
        if pos + class_bits > nbits:
            return STATUS_OUT_OF_BITS, b, pos
        c = read_bits(data, pos, class_bits)
        pos += class_bits
        if c >= latents_per_class.shape[0]:
            return UNPACK_BAD_CLASS, b, pos
        classes[b] = c
        base = (kinds[b] * latents_per_class.shape[0] + c) * max_latents
        for j in range(latents_per_class[c]):
            t = base + j
            slot, pos, status = decode_symbol(data, pos, nbits, counts[t], first[t], ordered[t])
            if status != STATUS_OK:
                return status, b, pos
            if slot == escape[t]:
                if pos + ESCAPE_BITS > nbits:
                    return STATUS_OUT_OF_BITS, b, pos
                raw = read_bits(data, pos, ESCAPE_BITS)
                pos += ESCAPE_BITS
                if raw >= _ESCAPE_SIGN:
                    raw -= 1 << ESCAPE_BITS
                if -reach[t] <= raw <= reach[t] or raw < -MAX_LEVEL:
                    return UNPACK_BAD_ESCAPE, b, pos
                symbols[b, j] = raw
            else:
                symbols[b, j] = slot - reach[t]
        b += 1
    return STATUS_OK, b, pos


def slice_bit_length(payload: bytes) -> int:
    """Bits of block data in a slice: everything before the stop bit."""
    if not payload or payload[-1] == 0:
        raise CorruptStreamError("slice does not end with a stop bit")
    last = payload[-1]
    return 8 * len(payload) - 1 - ((last & -last).bit_length() - 1)


def _min_block_bits(layout: BlockLayout) -> int:
    return layout.class_bits + min(layout.latents_per_class)


def _checked_kinds(kinds: np.ndarray, tables: TableSet) -> np.ndarray:
    kinds = np.ascontiguousarray(kinds, dtype=np.int64)
    if kinds.ndim != 1 or (kinds.size and not 0 <= int(kinds.min()) <= int(kinds.max()) < len(tables.kinds)):
        raise ValueError(f"block kinds must be a 1-d array of 0..{len(tables.kinds) - 1}")
    return kinds


def unpack_slice(payload: bytes, kinds: np.ndarray, tables: TableSet) -> tuple[np.ndarray, np.ndarray]:
    """Decode one slice: (classes uint8 (n,), symbols int32 (n, max_latents)), 1 <= n <= len(kinds).

    ``kinds`` are the plane kinds of the blocks that may follow in sending order (from
    the slice's first block to the end of the frame). Raises CorruptStreamError unless
    the payload is exactly whole blocks and a stop bit.
    """
    kinds = _checked_kinds(kinds, tables)
    nbits = slice_bit_length(payload)
    layout = tables.layout
    # Every block costs at least _min_block_bits: this bounds the allocation by the input.
    capacity = min(len(kinds), nbits // _min_block_bits(layout))
    if capacity < 1:
        raise CorruptStreamError(f"slice of {nbits} bits holds no block (or none remain in the frame)")
    classes = np.zeros(capacity, dtype=np.uint8)
    symbols = np.zeros((capacity, layout.max_latents), dtype=np.int32)
    arrays = tables.arrays
    status, count, pos = _unpack_kernel(
        np.frombuffer(payload, dtype=np.uint8), nbits, kinds[:capacity], arrays.latents_per_class, layout.class_bits,
        layout.max_latents, arrays.counts, arrays.first, arrays.ordered, arrays.reach, arrays.escape, classes, symbols,
    )
    if status != STATUS_OK:
        raise CorruptStreamError(f"{_UNPACK_MESSAGES[status]} (block {count}, bit {pos})")
    return classes[:count], symbols[:count]


def pack_slice_reference(classes: np.ndarray, symbols: np.ndarray, kinds: np.ndarray, tables: TableSet) -> bytes:
    """Plain-Python slice writer, for tests of :func:`pack_slices`."""
    bits: list[str] = []
    for b, c in enumerate(classes):
        c = int(c)
        bits.append(format(c, f"0{tables.layout.class_bits}b"))
        for j in range(tables.layout.latents_per_class[c]):
            table = tables.kinds[int(kinds[b])].tables[c][j]
            codes = table.canonical_codes()
            value, reach = int(symbols[b, j]), -table.min_symbol
            slot = value + reach if abs(value) <= reach else len(table.lengths) - 1
            bits.append(format(int(codes[slot]), f"0{int(table.lengths[slot])}b"))
            if abs(value) > reach:
                bits.append(format(value & _ESCAPE_MASK, f"0{ESCAPE_BITS}b"))
    stream = "".join(bits) + "1"
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


def _code_lookup(table) -> dict[tuple[int, int], int]:
    codes = table.canonical_codes()
    return {(int(table.lengths[s]), int(codes[s])): int(s) for s in np.flatnonzero(table.lengths)}


def unpack_slice_reference(payload: bytes, kinds: np.ndarray, tables: TableSet) -> tuple[np.ndarray, np.ndarray]:
    """Plain-Python slice reader, for tests of :func:`unpack_slice`."""
    kinds = _checked_kinds(kinds, tables)
    nbits = slice_bit_length(payload)
    bits = "".join(format(byte, "08b") for byte in payload)[:nbits]
    layout = tables.layout
    lookups = [[[_code_lookup(table) for table in row] for row in kind.tables] for kind in tables.kinds]
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > nbits:
            raise CorruptStreamError(_UNPACK_MESSAGES[STATUS_OUT_OF_BITS])
        value = int(bits[pos : pos + n], 2)
        pos += n
        return value

    classes, rows = [], []
    while pos < nbits:
        if len(classes) >= len(kinds):
            raise CorruptStreamError(_UNPACK_MESSAGES[UNPACK_TOO_MANY_BLOCKS])
        kind = int(kinds[len(classes)])
        c = take(layout.class_bits)
        if c >= len(layout.latents_per_class):
            raise CorruptStreamError(_UNPACK_MESSAGES[UNPACK_BAD_CLASS])
        row = [0] * layout.max_latents
        for j in range(layout.latents_per_class[c]):
            table, lookup = tables.kinds[kind].tables[c][j], lookups[kind][c][j]
            code = 0
            for length in range(1, MAX_CODE_LENGTH + 1):
                code = (code << 1) | take(1)
                if (length, code) in lookup:
                    slot = lookup[(length, code)]
                    break
            else:
                raise CorruptStreamError(_UNPACK_MESSAGES[STATUS_BAD_CODE])
            reach = -table.min_symbol
            if slot == len(table.lengths) - 1:
                raw = take(ESCAPE_BITS)
                raw = raw - (1 << ESCAPE_BITS) if raw & _ESCAPE_SIGN else raw
                if abs(raw) <= reach or raw < -MAX_LEVEL:
                    raise CorruptStreamError(_UNPACK_MESSAGES[UNPACK_BAD_ESCAPE])
                row[j] = raw
            else:
                row[j] = slot - reach
        classes.append(c)
        rows.append(row)
    if not classes:
        raise CorruptStreamError("slice holds no block")
    return np.array(classes, dtype=np.uint8), np.array(rows, dtype=np.int32).reshape(len(rows), layout.max_latents)
