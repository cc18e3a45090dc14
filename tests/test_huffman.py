"""Canonical Huffman coding: optimal and length-limited code lengths, table format,
and the numba bit packer/unpacker against the plain-Python reference."""

from __future__ import annotations

import heapq
import itertools
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import CorruptStreamError, encoder, huffman, quantize
from firmware_py.codec.huffman import MAX_CODE_LENGTH, BlockLayout, HuffmanTable, code_lengths
from firmware_py.codec.profiles import get_profile

SEED_LAYOUT = BlockLayout((1, 8), 1)
# Three classes need 2 class bits, so class index 3 is representable but invalid.
THREE_CLASS_LAYOUT = BlockLayout((1, 4, 8), 2)


def huffman_cost(counts: list[int]) -> int:
    """Total bits of an optimal (unlimited) prefix code: the sum of all merge weights."""
    heap = [c for c in counts if c > 0]
    if len(heap) == 1:
        return heap[0]  # a lone symbol still costs one bit per occurrence
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


def brute_force_cost(counts: list[int], max_length: int = 6) -> int:
    """Minimum cost over every assignment of lengths that satisfies Kraft's inequality."""
    used = [c for c in counts if c > 0]
    best = None
    for lengths in itertools.product(range(1, max_length + 1), repeat=len(used)):
        if sum(2.0**-n for n in lengths) <= 1.0:
            cost = sum(c * n for c, n in zip(used, lengths))
            best = cost if best is None else min(best, cost)
    return best


def kraft_sum(lengths: np.ndarray) -> float:
    used = lengths[lengths > 0].astype(np.int64)
    return float(np.sum(2.0**-used))


def code_strings(table: HuffmanTable) -> list[str]:
    codes = table.canonical_codes()
    return [format(int(codes[s]), f"0{int(n)}b") for s, n in enumerate(table.lengths) if n]


# -- code lengths ---------------------------------------------------------------------


@given(st.lists(st.integers(0, 50), min_size=2, max_size=5))
def test_code_lengths_match_brute_force_optimum(counts):
    lengths = code_lengths(np.array(counts))
    assert np.all((lengths > 0) == (np.array(counts) > 0))
    if sum(c > 0 for c in counts) >= 2:
        assert int(np.dot(lengths, counts)) == brute_force_cost(counts)


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=200))
def test_code_lengths_are_optimal_and_kraft_complete(counts):
    counts = np.array(counts)
    lengths = code_lengths(counts)
    used = np.count_nonzero(counts)
    assert np.all((lengths > 0) == (counts > 0))
    if used == 0:
        return
    assert int(np.dot(lengths.astype(np.int64), counts)) == huffman_cost(counts.tolist())
    # A lone symbol gets one bit (Kraft 1/2); two or more form a complete code.
    assert kraft_sum(lengths) == (0.5 if used == 1 else 1.0)
    # More frequent symbols never get longer codes.
    order = np.argsort(-counts[counts > 0], kind="stable")
    assert np.all(np.diff(lengths[counts > 0][order].astype(int)) >= 0)


@given(st.lists(st.integers(0, 5000) | st.integers(0, 3), min_size=0, max_size=520))
def test_code_lengths_kernel_matches_the_reference(counts):
    """Zero counts, lone symbols and many ties (small counts: the kernel's tree must break
    them as the reference's heap does)."""
    counts = np.array(counts, dtype=np.int64)
    np.testing.assert_array_equal(code_lengths(counts), huffman.code_lengths_reference(counts))


def test_code_lengths_of_a_deep_tree_are_limited_like_the_reference():
    counts = np.array(fibonacci(30), dtype=np.int64)
    lengths = code_lengths(counts)
    assert lengths.max() == MAX_CODE_LENGTH
    np.testing.assert_array_equal(lengths, huffman.code_lengths_reference(counts))


def fibonacci(n: int) -> list[int]:
    values = [1, 1]
    while len(values) < n:
        values.append(values[-1] + values[-2])
    return values


@pytest.mark.parametrize("histogram", [fibonacci(30), [2**i for i in range(25)]], ids=["fibonacci", "geometric"])
def test_length_limit_keeps_a_complete_decodable_code(histogram):
    counts = np.array(histogram, dtype=np.int64)
    unlimited = huffman._unlimited_lengths(counts)
    assert unlimited.max() > MAX_CODE_LENGTH  # the limit really has work to do
    lengths = code_lengths(counts)
    assert lengths.max() == MAX_CODE_LENGTH
    assert kraft_sum(lengths) == 1.0
    assert np.dot(lengths.astype(np.int64), counts) >= huffman_cost(histogram)
    table = HuffmanTable(0, lengths)
    symbols = np.repeat(np.arange(len(counts)), np.minimum(counts, 3)).astype(np.int32)
    classes = np.zeros(len(symbols), dtype=np.uint8)
    layout = BlockLayout((1,), 1)
    payload = huffman.pack(classes, symbols[:, None], layout, [table])
    _, decoded = huffman.unpack(payload, len(symbols), layout, [table])
    np.testing.assert_array_equal(decoded[:, 0], symbols)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=300))
def test_canonical_codes_are_prefix_free(counts):
    table = HuffmanTable(0, code_lengths(np.array(counts)))
    codes = code_strings(table)
    assert len(set(codes)) == len(codes)
    for a, b in itertools.permutations(codes, 2):
        assert not b.startswith(a)



def canonical_codes_by_slot(table: HuffmanTable) -> np.ndarray:
    """The definition: used slots in (length, slot) order, each the next code, shifted
    left when the length grows."""
    codes = np.zeros(len(table.lengths), dtype=np.uint32)
    code, previous = 0, 0
    for slot in np.lexsort((np.arange(len(table.lengths)), table.lengths)):
        length = int(table.lengths[slot])
        if length:
            code <<= length - previous
            codes[slot] = code
            code, previous = code + 1, length
    return codes


@given(st.lists(st.integers(0, 1000), min_size=0, max_size=300))
def test_canonical_codes_match_slot_by_slot_assignment(counts):
    counts = np.array(counts, dtype=np.int64)
    table = HuffmanTable(0, code_lengths(counts)) if counts.any() else HuffmanTable.empty()
    codes = table.canonical_codes()
    assert codes.dtype == np.uint32
    np.testing.assert_array_equal(codes, canonical_codes_by_slot(table))


def test_canonical_codes_are_built_once_per_table_and_read_only():
    """The encoder asks the profile's static tables for their codes every frame."""
    table = HuffmanTable(3, code_lengths(np.array([40, 1, 0, 7, 7, 2])))
    codes = table.canonical_codes()
    assert table.canonical_codes() is codes
    with pytest.raises(ValueError):
        codes[0] = 1  # a caller cannot corrupt the codes of later frames
    np.testing.assert_array_equal(codes, canonical_codes_by_slot(table))


# -- table serialization --------------------------------------------------------------


@given(st.lists(st.integers(-300, 300), min_size=0, max_size=400))
def test_table_serialize_parse_round_trip(symbols):
    table = HuffmanTable.from_symbols(np.array(symbols, dtype=np.int64))
    blob = b"\xaa" + table.serialize() + b"\x55"
    parsed, end = HuffmanTable.parse(blob, 1)
    assert end == len(blob) - 1
    assert parsed.min_symbol == table.min_symbol
    np.testing.assert_array_equal(parsed.lengths, table.lengths)


def raw_table(min_symbol: int, nibbles: list[int]) -> bytes:
    padded = nibbles + [0] * (len(nibbles) & 1)
    body = bytes((padded[i] << 4) | padded[i + 1] for i in range(0, len(padded), 2))
    return struct.pack("<hH", min_symbol, len(nibbles)) + body


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (raw_table(0, [1, 1, 1]), "Kraft"),
        (raw_table(0, [1, 2, 2, 3]), "Kraft"),
        (raw_table(32767, [1, 1]), "exceeds int16"),
        (struct.pack("<hH", -32768, 40000) + bytes(20000), "exceeds int16"),
        (raw_table(0, [0, 0, 0]), "no symbol"),
        (struct.pack("<hH", 0, 3) + bytes([0x11, 0x01]), "padding nibble"),
        (raw_table(0, [1, 1])[:3], "ends inside a Huffman table header"),
        (raw_table(0, [2, 2, 2, 2, 0, 0])[:6], "ends inside a Huffman table"),
    ],
    ids=[
        "kraft-3x1",
        "kraft-mixed",
        "range-overflow",
        "alphabet-too-big",
        "no-symbol",
        "padding",
        "short-header",
        "short-body",
    ],
)
def test_parse_rejects_bad_tables(blob, message):
    with pytest.raises(CorruptStreamError, match=message):
        HuffmanTable.parse(blob, 0)


def test_empty_table_round_trips():
    parsed, end = HuffmanTable.parse(HuffmanTable.empty().serialize(), 0)
    assert end == 4 and parsed.symbol_count == 0


# -- pack / unpack ------------------------------------------------------------------------


@st.composite
def coded_blocks(draw, layout: BlockLayout = SEED_LAYOUT):
    """Random classes and symbols (geometric-like, as quantized latents), with per-class
    tables fitted to them. Hypothesis draws the shape and a seed; numpy draws the values."""
    n = draw(st.integers(0, 80))
    spread = draw(st.sampled_from([0, 1, 5, 200, 10000]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ncls = len(layout.latents_per_class)
    classes = rng.integers(0, ncls, n).astype(np.uint8)
    magnitudes = np.minimum(rng.geometric(1 / (1 + spread), (n, layout.max_latents)) - 1, spread)
    symbols = (magnitudes * rng.choice([-1, 1], magnitudes.shape)).astype(np.int32)
    tables = [HuffmanTable.from_symbols(symbols[classes == c, : layout.latents_per_class[c]]) for c in range(ncls)]
    return classes, symbols, tables


def active(symbols: np.ndarray, classes: np.ndarray, layout: BlockLayout) -> np.ndarray:
    """Symbols with the unused latent slots of each block zeroed, as unpack returns them."""
    out = np.zeros_like(symbols)
    for c, k in enumerate(layout.latents_per_class):
        out[classes == c, :k] = symbols[classes == c, :k]
    return out


@pytest.mark.parametrize("layout", [SEED_LAYOUT, THREE_CLASS_LAYOUT], ids=["seed", "three-class"])
@settings(max_examples=200)
@given(data=st.data())
def test_pack_and_unpack_match_reference(layout, data):
    classes, symbols, tables = data.draw(coded_blocks(layout))
    payload = huffman.pack(classes, symbols, layout, tables)
    assert payload == huffman.pack_reference(classes, symbols, layout, tables)
    assert len(payload) == (huffman.payload_bits(classes, symbols, layout, tables) + 7) // 8
    got = huffman.unpack(payload, len(classes), layout, tables)
    want = huffman.unpack_reference(payload, len(classes), layout, tables)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[0], classes)
    np.testing.assert_array_equal(got[1], active(symbols, classes, layout))


@pytest.fixture(scope="module")
def lena_symbols(lena2):
    """Classes, symbols, layout and tables of lena2's plane as the real encoder codes it."""
    profile = get_profile("seed")
    (analysis,) = encoder.analyse_frame(lena2, profile).planes
    steps = encoder.stream_steps(profile, 1.0)
    segment = encoder.code_plane(analysis, profile, steps)
    layout = BlockLayout(tuple(m.latents for m in profile.models), profile.class_bits)
    classes, symbols = huffman.unpack_reference(segment.payload, len(analysis.classes), layout, list(segment.tables))
    np.testing.assert_array_equal(classes, analysis.classes)
    for c, latents in enumerate(analysis.latents):
        np.testing.assert_array_equal(symbols[classes == c, : latents.shape[1]], quantize.quantize(latents, steps[c]))
    return classes, symbols, layout, list(segment.tables), segment.payload


def test_pack_and_unpack_match_reference_on_a_real_image(lena_symbols):
    classes, symbols, layout, tables, encoded = lena_symbols
    assert set(np.unique(classes)) == {0, 1}
    payload = huffman.pack(classes, symbols, layout, tables)
    assert payload == encoded == huffman.pack_reference(classes, symbols, layout, tables)
    got_classes, got_symbols = huffman.unpack(payload, len(classes), layout, tables)
    np.testing.assert_array_equal(got_classes, classes)
    np.testing.assert_array_equal(got_symbols, symbols)


def both_unpackers(payload, nblocks, layout, tables, message):
    for unpacker in (huffman.unpack, huffman.unpack_reference):
        with pytest.raises(CorruptStreamError, match=message):
            unpacker(payload, nblocks, layout, tables)


def seed_payload(lena_symbols, blocks: int):
    classes, symbols, layout, tables, _ = lena_symbols
    payload = huffman.pack(classes[:blocks], symbols[:blocks], layout, tables)
    return payload, layout, tables


def test_unpack_detects_a_payload_that_ends_early(lena_symbols):
    payload, layout, tables = seed_payload(lena_symbols, 100)
    both_unpackers(payload[:-3], 100, layout, tables, "ends in the middle of a block")
    both_unpackers(payload, 101 + 8 * 3, layout, tables, "ends in the middle of a block")


def test_unpack_detects_trailing_bytes(lena_symbols):
    payload, layout, tables = seed_payload(lena_symbols, 100)
    both_unpackers(payload + b"\x00", 100, layout, tables, "unexplained data")


def test_unpack_detects_nonzero_padding():
    table = HuffmanTable(0, np.array([1, 1], dtype=np.uint8))  # codes '0', '1'
    layout = BlockLayout((1,), 1)
    payload = huffman.pack(np.zeros(3, np.uint8), np.array([[0], [1], [0]], np.int32), layout, [table])
    assert payload == bytes([0b00010000])
    both_unpackers(bytes([0b00010001]), 3, layout, [table], "non-zero padding")


def test_unpack_detects_a_bit_pattern_that_is_no_code():
    table = HuffmanTable(5, np.array([1], dtype=np.uint8))  # lone symbol 5: code '0'; '1' starts no code
    layout = BlockLayout((1,), 1)
    # Block 0: class '0', code '0'. Block 1: class '0', then 15 one-bits that match no code.
    both_unpackers(bytes([0b00011111, 0xFF, 0xFF]), 2, layout, [table], "not a code")


def test_unpack_detects_a_class_index_out_of_range():
    tables = [HuffmanTable(0, np.array([1, 1], dtype=np.uint8))] * 3
    both_unpackers(bytes([0b11000000]), 1, THREE_CLASS_LAYOUT, tables, "class index")


def test_unpack_refuses_more_blocks_than_payload_bits():
    table = HuffmanTable(0, np.array([1, 1], dtype=np.uint8))
    both_unpackers(bytes(2), 17, BlockLayout((1,), 1), [table], "cannot hold 17 blocks")


def test_pack_refuses_a_symbol_without_a_code():
    table = HuffmanTable.from_symbols(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="cannot code"):
        huffman.pack(np.zeros(1, np.uint8), np.array([[3]], np.int32), BlockLayout((1,), 1), [table])
