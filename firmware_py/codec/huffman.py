"""Canonical Huffman coding of quantized latents, with per-stream tables.

Each block class has its own table, built from the frame's own symbol counts (like
libjpeg's ``optimize``) and sent in the stream as 4-bit code lengths over a contiguous
symbol range. The bit packer writes, per block in raster order, the class index in
``class_bits`` plain bits followed by the block's latent symbols; MSB first.

The numba kernels trust their arrays completely (numba does not bounds-check), so every
table is validated when parsed and every symbol is checked before packing; the unpack
kernel bounds every read by the payload length and reports failures as a status code.
"""

from __future__ import annotations

import heapq
import struct
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
from .errors import CorruptStreamError

MAX_ALPHABET = 1 << 15
_TABLE_HEADER = struct.Struct("<hH")

UNPACK_BAD_CLASS = 3
_UNPACK_MESSAGES = {**STATUS_MESSAGES, UNPACK_BAD_CLASS: "block class index is out of range"}


@dataclass(frozen=True)
class HuffmanTable:
    """Code lengths of the symbols ``min_symbol .. min_symbol + len(lengths) - 1`` (0 = unused)."""

    min_symbol: int
    lengths: np.ndarray  # uint8

    @classmethod
    def empty(cls) -> "HuffmanTable":
        return cls(0, np.zeros(0, dtype=np.uint8))

    @classmethod
    def from_symbols(cls, symbols: np.ndarray) -> "HuffmanTable":
        """Optimal length-limited code for the symbols' own histogram."""
        symbols = np.asarray(symbols).ravel()
        if symbols.size == 0:
            return cls.empty()
        low, high = int(symbols.min()), int(symbols.max())
        if low < -32768 or high > 32767 or high - low + 1 > MAX_ALPHABET:
            raise ValueError(f"symbols {low}..{high} do not fit a table")
        counts = np.bincount(symbols - low, minlength=high - low + 1)
        return cls(low, code_lengths(counts))

    @property
    def symbol_count(self) -> int:
        return int(np.count_nonzero(self.lengths))

    def serialize(self) -> bytes:
        n = len(self.lengths)
        nibbles = np.zeros(n + (n & 1), dtype=np.uint8)
        nibbles[:n] = self.lengths
        packed = (nibbles[0::2] << 4) | nibbles[1::2]
        return _TABLE_HEADER.pack(self.min_symbol, n) + packed.tobytes()

    @classmethod
    def parse(cls, data: bytes | memoryview, offset: int) -> tuple["HuffmanTable", int]:
        """Read and validate a table at ``offset``; return it and the offset after it."""
        if offset + _TABLE_HEADER.size > len(data):
            raise CorruptStreamError("stream ends inside a Huffman table header")
        min_symbol, n = _TABLE_HEADER.unpack_from(data, offset)
        offset += _TABLE_HEADER.size
        if n > MAX_ALPHABET or min_symbol + n - 1 > 32767:
            raise CorruptStreamError(f"Huffman table range {min_symbol}+{n} exceeds int16 symbols")
        size = (n + 1) // 2
        if offset + size > len(data):
            raise CorruptStreamError("stream ends inside a Huffman table")
        packed = np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
        nibbles = np.empty(2 * size, dtype=np.uint8)
        nibbles[0::2] = packed >> 4
        nibbles[1::2] = packed & 0x0F
        if n & 1 and nibbles[-1] != 0:
            raise CorruptStreamError("Huffman table padding nibble is not zero")
        lengths = nibbles[:n].copy()
        if n and not lengths.any():
            raise CorruptStreamError("Huffman table declares a range but no symbol")
        if not fits_kraft(lengths):
            raise CorruptStreamError("Huffman table code lengths violate the Kraft inequality")
        return cls(int(min_symbol), lengths), offset + size

    @classmethod
    def with_canonical_codes(cls, min_symbol: int, lengths: np.ndarray, codes: np.ndarray) -> "HuffmanTable":
        """A table whose canonical codes (as :meth:`canonical_codes` gives them) a kernel
        has already assigned: the encoder's table choice builds its explicit tables so."""
        table = cls(min_symbol, lengths)
        codes.flags.writeable = False
        object.__setattr__(table, "_canonical_codes", codes)  # a cache, not a field
        return table

    def canonical_codes(self) -> np.ndarray:
        """uint32 code of every symbol slot (0 where unused), assigned canonically: the
        used slots in (length, slot) order take consecutive codes from their length's first
        code. Array operations, not a loop over slots: the encoder builds codes for every
        table of every frame. Computed once per table and read-only: a profile's static
        tables code planes of most frames."""
        codes = self.__dict__.get("_canonical_codes")
        if codes is None:
            counts, first, order = self._canonical_order()
            lengths = self.lengths[order].astype(np.int64)
            group_start = np.cumsum(counts) - counts  # index in ``order`` of each length's first slot
            codes = np.zeros(len(self.lengths), dtype=np.uint32)
            codes[order] = first[lengths] + np.arange(len(order)) - group_start[lengths]
            codes.flags.writeable = False
            object.__setattr__(self, "_canonical_codes", codes)  # a cache, not a field
        return codes

    def decoder_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count per length, first code per length, symbols in canonical order)."""
        counts, first, order = self._canonical_order()
        return counts, first, (order + self.min_symbol).astype(np.int32)

    def _canonical_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count per length, first code per length, used slots by (length, slot))."""
        counts = np.bincount(self.lengths, minlength=MAX_CODE_LENGTH + 1).astype(np.int64)
        counts[0] = 0
        per_length = counts.tolist()  # Python ints: the loop below runs for every table built
        first = [0] * (MAX_CODE_LENGTH + 1)
        code = 0
        for length in range(1, MAX_CODE_LENGTH + 1):
            code = (code + per_length[length - 1]) << 1
            first[length] = code
        order = np.argsort(self.lengths, kind="stable")  # by length, then slot; unused slots first
        return counts, np.array(first, dtype=np.int64), order[len(order) - sum(per_length) :]


def fits_kraft(lengths: np.ndarray) -> bool:
    """Whether code ``lengths`` (0 = unused, at most MAX_CODE_LENGTH) satisfy Kraft's
    inequality, i.e. a prefix code with them exists: every table read is checked."""
    used = lengths[lengths > 0].astype(np.int64)
    return int(np.sum(1 << (MAX_CODE_LENGTH - used))) <= 1 << MAX_CODE_LENGTH


def code_lengths(counts: np.ndarray) -> np.ndarray:
    """Huffman code lengths for a histogram, limited to MAX_CODE_LENGTH bits.

    A lone symbol gets a 1-bit code so that every coded value costs at least one bit
    (which bounds how many blocks a payload of a given size can claim). One kernel call:
    the encoder builds up to five tables per plane and rate control pass.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    if counts.ndim != 1 or (counts.size and counts.min() < 0):
        raise ValueError("code lengths need a 1-D histogram of non-negative counts")
    lengths = np.zeros(counts.size, dtype=np.uint8)
    code_lengths_into(counts, *huffman_work(counts.size), lengths)
    return lengths


def huffman_work(alphabet: int) -> tuple[np.ndarray, ...]:
    """The work buffers of :func:`code_lengths_into` for histograms of ``alphabet`` symbols."""
    nodes = max(2 * alphabet - 1, 1)
    return (
        np.empty(alphabet, np.int64),
        np.empty(alphabet, np.int64),
        np.empty(nodes, np.int64),
        np.empty(nodes, np.int64),
        np.empty(max(alphabet, MAX_CODE_LENGTH) + 1, np.int64),
    )


def code_lengths_reference(counts: np.ndarray) -> np.ndarray:
    """NumPy/heap reference of :func:`code_lengths`, for tests."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.uint8)
    used = np.flatnonzero(counts)
    if used.size == 0:
        return lengths
    if used.size == 1:
        lengths[used[0]] = 1
        return lengths
    raw = _unlimited_lengths(counts[used])
    per_length = np.bincount(raw, minlength=max(raw.max(), MAX_CODE_LENGTH) + 1).astype(np.int64)
    _limit_length_counts(per_length, len(per_length) - 1)
    per_length = per_length[: MAX_CODE_LENGTH + 1]
    # Most frequent symbols take the shortest codes (ties: lower symbol first).
    by_frequency = used[np.lexsort((used, -counts[used]))]
    assigned = np.repeat(np.arange(len(per_length)), per_length)
    lengths[by_frequency] = assigned
    return lengths


@numba.njit(cache=True)
def code_lengths_into(counts, used, order, weight, parent, per_length, lengths):
    """:func:`code_lengths_reference` into ``lengths`` (zeros), with work buffers the
    caller allocates (:func:`huffman_work`); other kernels call it too (the encoder's
    table choice builds several tables in one call). Scalar loops only: array
    expressions and library sorts would cost seconds of compilation on a cold cache,
    for a few dozen used symbols."""
    n = 0
    for symbol in range(counts.shape[0]):
        if counts[symbol] > 0:
            used[n] = symbol
            n += 1
    if n == 0:
        return
    if n == 1:
        lengths[used[0]] = 1
        return
    _leaf_depths_kernel(counts, used, n, order, weight, parent)  # depths in weight[:n]
    for length in range(per_length.shape[0]):
        per_length[length] = 0
    deepest = 0
    for i in range(n):
        per_length[weight[i]] += 1
        if weight[i] > deepest:
            deepest = weight[i]
    _limit_length_counts(per_length, deepest)
    # Most frequent symbols take the shortest codes (ties: lower symbol first): an
    # insertion sort of the used symbols, which are in increasing order, by count.
    for i in range(n):
        symbol = used[i]
        j = i
        while j > 0 and counts[order[j - 1]] < counts[symbol]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = symbol
    length = 1
    for i in range(n):
        while per_length[length] == 0:
            length += 1
        lengths[order[i]] = length
        per_length[length] -= 1


@numba.njit(cache=True)
def _leaf_depths_kernel(counts, leaves, n, order, weight, parent):
    """Depths of the Huffman tree of ``counts[leaves[:n]]`` into ``weight[:n]``, without a
    heap: leaves sorted by (count, index) and the merged nodes, which are made in
    non-decreasing count order, are two queues whose heads are the heap's two smallest,
    so the tree and its ties are :func:`_unlimited_lengths`'s."""
    for i in range(n):  # insertion sort, stable: equal counts keep the lower leaf first
        j = i
        while j > 0 and counts[leaves[order[j - 1]]] > counts[leaves[i]]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
    for i in range(n):
        weight[i] = counts[leaves[i]]
    leaf, merged = 0, n
    for node in range(n, 2 * n - 1):
        total = 0
        for _ in range(2):
            # A leaf before a merged node of the same count: its index is lower.
            if leaf < n and (merged == node or weight[order[leaf]] <= weight[merged]):
                child = order[leaf]
                leaf += 1
            else:
                child = merged
                merged += 1
            parent[child] = node
            total += weight[child]
        weight[node] = total
    # Depths from the root (the last node) down, into ``weight``: counts are no longer needed.
    root = 2 * n - 2
    weight[root] = 0
    for child in range(root - 1, -1, -1):
        weight[child] = weight[parent[child]] + 1


def _unlimited_lengths(freqs: np.ndarray) -> np.ndarray:
    """Depth of every leaf of a Huffman tree (ties: lower leaf or older node first); the
    reference of :func:`_leaf_depths_kernel`."""
    n = len(freqs)
    heap = list(zip(freqs.tolist(), range(n)))
    heapq.heapify(heap)
    parent = [0] * (2 * n - 1)
    node = n
    while len(heap) > 1:
        fa, a = heapq.heappop(heap)
        fb, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (fa + fb, node))
        node += 1
    # Nodes are numbered children before parents, the root last: one pass from the top.
    depth = [0] * (2 * n - 1)
    for child in range(2 * n - 3, -1, -1):
        depth[child] = depth[parent[child]] + 1
    return np.array(depth[:n], dtype=np.int64)


@numba.njit(cache=True)
def _limit_length_counts(per_length, deepest):
    """Shorten codes longer than MAX_CODE_LENGTH in ``per_length`` (codes per length, none
    deeper than ``deepest``), keeping the code complete (JPEG Annex K.2); the kernel and
    the reference share it."""
    for i in range(deepest, MAX_CODE_LENGTH, -1):
        while per_length[i] > 0:
            j = i - 2
            while per_length[j] == 0:
                j -= 1
            per_length[i] -= 2
            per_length[i - 1] += 1
            per_length[j + 1] += 2
            per_length[j] -= 1


@dataclass(frozen=True)
class BlockLayout:
    """How many latents each class codes, and how many bits name a class."""

    latents_per_class: tuple[int, ...]
    class_bits: int

    @property
    def max_latents(self) -> int:
        return max(self.latents_per_class)


def _encoder_arrays(tables: list[HuffmanTable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max(1, max(len(t.lengths) for t in tables))
    codes = np.zeros((len(tables), width), dtype=np.int64)
    lengths = np.zeros((len(tables), width), dtype=np.int64)
    for c, table in enumerate(tables):
        codes[c, : len(table.lengths)] = table.canonical_codes()
        lengths[c, : len(table.lengths)] = table.lengths
    offsets = np.array([t.min_symbol for t in tables], dtype=np.int64)
    return codes, lengths, offsets


def _check_symbols(classes, symbols, layout: BlockLayout, tables: list[HuffmanTable]) -> None:
    """Every symbol must have a code: the pack kernel indexes tables without checks."""
    if len(tables) != len(layout.latents_per_class):
        raise ValueError("one table per class is required")
    if classes.shape[0] != symbols.shape[0] or symbols.shape[1] < layout.max_latents:
        raise ValueError("classes and symbols do not match the layout")
    if classes.size and int(classes.max()) >= len(tables):
        raise ValueError("class index out of range")
    for c, table in enumerate(tables):
        k = layout.latents_per_class[c]
        values = symbols[classes == c, :k].astype(np.int64) - table.min_symbol
        if values.size == 0:
            continue
        if values.min() < 0 or values.max() >= len(table.lengths) or np.any(table.lengths[values] == 0):
            raise ValueError(f"class {c} has a symbol its Huffman table cannot code")


def payload_bits(classes: np.ndarray, symbols: np.ndarray, layout: BlockLayout, tables: list[HuffmanTable]) -> int:
    """Exact size in bits of the packed payload, without packing it."""
    total = classes.shape[0] * layout.class_bits
    for c, table in enumerate(tables):
        k = layout.latents_per_class[c]
        values = symbols[classes == c, :k].astype(np.int64) - table.min_symbol
        total += int(table.lengths[values].sum(dtype=np.int64))
    return total


@numba.njit(cache=True)
def _pack_kernel(classes, symbols, latents_per_class, class_bits, codes, lengths, offsets, out):
    pos, acc, held = 0, 0, 0
    for b in range(classes.shape[0]):
        c = classes[b]
        pos, acc, held = put_bits(out, pos, acc, held, c, class_bits)
        for j in range(latents_per_class[c]):
            slot = symbols[b, j] - offsets[c]
            pos, acc, held = put_bits(out, pos, acc, held, codes[c, slot], lengths[c, slot])
    flush_bits(out, pos, acc, held)


def pack(classes: np.ndarray, symbols: np.ndarray, layout: BlockLayout, tables: list[HuffmanTable]) -> bytes:
    """Huffman-code every block (class index, then its latents); zero-pad the last byte."""
    classes = np.ascontiguousarray(classes, dtype=np.int64)
    symbols = np.ascontiguousarray(symbols, dtype=np.int64)
    _check_symbols(classes, symbols, layout, tables)
    nbits = payload_bits(classes, symbols, layout, tables)
    out = np.zeros((nbits + 7) // 8, dtype=np.uint8)
    codes, lengths, offsets = _encoder_arrays(tables)
    _pack_kernel(
        classes, symbols, np.array(layout.latents_per_class, dtype=np.int64), layout.class_bits, codes, lengths, offsets, out
    )
    return out.tobytes()


@numba.njit(cache=True)
def _unpack_kernel(data, nblocks, latents_per_class, class_bits, counts, first, sorted_symbols, classes, symbols):
    nbits = data.shape[0] * 8
    pos = 0
    for b in range(nblocks):
        if pos + class_bits > nbits:
            return STATUS_OUT_OF_BITS, pos
        c = read_bits(data, pos, class_bits)
        pos += class_bits
        if c >= latents_per_class.shape[0]:
            return UNPACK_BAD_CLASS, pos
        classes[b] = c
        for j in range(latents_per_class[c]):
            symbols[b, j], pos, status = decode_symbol(data, pos, nbits, counts[c], first[c], sorted_symbols[c])
            if status != STATUS_OK:
                return status, pos
    return STATUS_OK, pos


def _decoder_arrays(tables: list[HuffmanTable]):
    parts = [t.decoder_tables() for t in tables]
    width = max(1, max(len(p[2]) for p in parts))
    counts = np.stack([p[0] for p in parts])
    first = np.stack([p[1] for p in parts])
    ordered = np.zeros((len(tables), width), dtype=np.int32)
    for c, (_, _, syms) in enumerate(parts):
        ordered[c, : len(syms)] = syms
    return counts, first, ordered


def _check_unpack_args(payload: bytes, nblocks: int, layout: BlockLayout, tables: list[HuffmanTable]) -> None:
    if len(tables) != len(layout.latents_per_class):
        raise ValueError("one table per class is required")
    # Every block costs at least one bit, so a payload cannot describe more blocks
    # than it has bits: this bounds the output allocation by the input size.
    if nblocks > 8 * len(payload):
        raise CorruptStreamError(f"payload of {len(payload)} bytes cannot hold {nblocks} blocks")


def unpack(payload: bytes, nblocks: int, layout: BlockLayout, tables: list[HuffmanTable]) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``nblocks`` blocks: (classes uint8 (n,), symbols int32 (n, max_latents)).

    Raises CorruptStreamError unless the payload holds exactly those blocks followed by
    fewer than 8 zero padding bits.
    """
    _check_unpack_args(payload, nblocks, layout, tables)
    counts, first, ordered = _decoder_arrays(tables)
    classes = np.zeros(nblocks, dtype=np.uint8)
    symbols = np.zeros((nblocks, layout.max_latents), dtype=np.int32)
    data = np.frombuffer(payload, dtype=np.uint8)
    status, pos = _unpack_kernel(
        data, nblocks, np.array(layout.latents_per_class, dtype=np.int64), layout.class_bits, counts, first, ordered, classes, symbols
    )
    if status != STATUS_OK:
        raise CorruptStreamError(f"{_UNPACK_MESSAGES[status]} (bit {pos})")
    check_padding(data, pos)
    return classes, symbols


def pack_reference(classes: np.ndarray, symbols: np.ndarray, layout: BlockLayout, tables: list[HuffmanTable]) -> bytes:
    """Plain-Python bit writer, for tests of :func:`pack`."""
    codes = [t.canonical_codes() for t in tables]
    bits: list[str] = []
    for b, c in enumerate(classes):
        c = int(c)
        bits.append(format(c, f"0{layout.class_bits}b"))
        for j in range(layout.latents_per_class[c]):
            slot = int(symbols[b, j]) - tables[c].min_symbol
            bits.append(format(int(codes[c][slot]), f"0{int(tables[c].lengths[slot])}b"))
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


def unpack_reference(payload: bytes, nblocks: int, layout: BlockLayout, tables: list[HuffmanTable]) -> tuple[np.ndarray, np.ndarray]:
    """Plain-Python bit reader, for tests of :func:`unpack`."""
    _check_unpack_args(payload, nblocks, layout, tables)
    reader = ReferenceBitReader(payload, _UNPACK_MESSAGES)
    classes = np.zeros(nblocks, dtype=np.uint8)
    symbols = np.zeros((nblocks, layout.max_latents), dtype=np.int32)
    for b in range(nblocks):
        c = reader.take(layout.class_bits)
        if c >= len(tables):
            raise reader.fail(UNPACK_BAD_CLASS)
        classes[b] = c
        for j in range(layout.latents_per_class[c]):
            symbols[b, j] = reader.symbol(tables[c])
    reader.finish()
    return classes, symbols
