"""Format versions 5 and 6's block coding (jointdc.py): the numba kernels against their
plain Python references (one other-AC table, version 5, and four by start context,
version 6), the counts the encoder derives from the quantizer, the neighbour contexts,
the last flag, the first-symbol table and the start contexts, rejection of damaged
payloads, and that version 3, 4 and 5 twins of the same frames still decode to the same
images."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import CorruptStreamError, decode, encoder_v2, jointdc, read_header, runlength, tablecoding
from firmware_py.codec.huffman import HuffmanTable

from codec_helpers import as_version_3, as_version_4, as_version_5, crop, parse_v2

REST_TABLES = sorted(jointdc.REST_CONTEXT_EDGES)  # version 5's 1 and version 6's 4


def sparse_levels(rng: np.random.Generator, n: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    """DC residuals and levels of ``n`` blocks, most of them without AC levels, some with
    long zero runs, large values and a non-zero last coefficient."""
    dc = rng.integers(-300, 300, n) * (rng.random(n) < 0.5)
    levels = np.zeros((n, 64), dtype=np.int16)
    mask = rng.random((n, 64)) < density
    mask[rng.random(n) < 0.6] = False  # empty blocks
    levels[mask] = rng.integers(-40, 41, int(mask.sum()))
    levels[rng.integers(0, n), 63] = 5
    levels[rng.integers(0, n), 40] = -2000
    levels[:, 0] = 0
    return dc, levels


def coded(seed: int, n: int, density: float, rest_tables: int = 1):
    dc, levels = sparse_levels(np.random.default_rng(seed), n, density)
    counts = jointdc.symbol_counts(dc, levels, cols_of(n, seed), rest_tables)
    return dc, levels, counts, tablecoding.choose_joint_tables(counts, tablecoding.NO_STATIC)[1]


def cols_of(n: int, seed: int) -> int:
    divisors = [c for c in range(1, n + 1) if n % c == 0]
    return divisors[seed % len(divisors)]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 60),
    density=st.sampled_from([0.02, 0.1, 0.5]),
    rest_tables=st.sampled_from(REST_TABLES),
)
def test_pack_and_unpack_match_their_references_and_invert_each_other(seed, n, density, rest_tables):
    dc, levels, counts, tables = coded(seed, n, density, rest_tables)
    cols = cols_of(n, seed)
    payload = jointdc.pack(dc, levels, cols, tables)
    assert payload == jointdc.pack_reference(dc, levels, cols, tables)
    assert payload == jointdc.pack(dc, levels, cols, tables, counts, jointdc.last_nonzero_indices(levels))
    assert len(payload) == (jointdc.payload_bits(counts, tables) + 7) // 8
    for decoded_dc, decoded in (
        jointdc.unpack(payload, n // cols, cols, tables),
        jointdc.unpack_reference(payload, n // cols, cols, tables),
    ):
        np.testing.assert_array_equal(decoded_dc, dc)
        np.testing.assert_array_equal(decoded, levels)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000), density=st.sampled_from([0.02, 0.1, 0.5]), rest_tables=st.sampled_from(REST_TABLES)
)
def test_counts_from_the_quantizer_are_the_counts_of_the_reference_symbols(seed, density, rest_tables):
    dc, levels = sparse_levels(np.random.default_rng(seed), 48, density)
    _, ac_hist, ac_extra = runlength.symbol_counts(np.zeros_like(dc), levels)
    last = jointdc.last_nonzero_indices(levels)
    derived = jointdc.plane_counts(dc, levels, last, 8, ac_hist, ac_extra, rest_tables)
    first = np.zeros(jointdc.LAST_ALPHABET, dtype=np.int64)
    rest = np.zeros((rest_tables, jointdc.LAST_ALPHABET), dtype=np.int64)
    for row in levels:
        for i, (symbol, _, _, start) in enumerate(jointdc.block_ac_symbols_reference(row)):
            if i == 0:
                first[symbol] += 1
            else:
                rest[jointdc.rest_context_reference(start, rest_tables), symbol] += 1
    np.testing.assert_array_equal(derived.first, first)
    np.testing.assert_array_equal(derived.rest, rest)
    empty = int((~levels[:, 1:].any(axis=1)).sum())
    assert derived.joint[:, 1::2].sum() == empty and first.sum() == len(levels) - empty
    assert not first[runlength.ZRL + jointdc.LAST] and not rest[:, runlength.EOB].any()
    assert derived.extra_bits == runlength.symbol_counts(dc, levels)[2]


def test_a_block_sends_its_first_symbol_from_its_own_table_and_flags_its_last_level():
    """Levels at 1 (lone), 2 and 5, and 20 (after a ZRL) and 63: no EOB anywhere."""
    levels = np.zeros((3, 64), dtype=np.int16)
    levels[0, 1] = 1
    levels[1, [2, 5]] = [1, -3]
    levels[2, [20, 63]] = [2, 1]
    symbols = [[s for s, _, _, _ in jointdc.block_ac_symbols_reference(row)] for row in levels]
    last = jointdc.LAST
    zrl = runlength.ZRL
    assert symbols == [[last + 0x01], [0x11, last + 0x22], [zrl, 0x32, zrl, zrl, last + 0xA1]]
    counts = jointdc.symbol_counts(np.zeros(3, dtype=np.int64), levels, 3)
    assert np.flatnonzero(counts.first).tolist() == [0x11, zrl, last + 0x01]
    assert counts.rest[0, [0x32, zrl, last + 0x22, last + 0xA1]].tolist() == [1, 2, 1, 1] and counts.rest.sum() == 5


def test_version_6_codes_the_other_symbols_with_the_table_of_where_their_run_starts():
    """The symbols of the last block above start at 1 (the first, a ZRL), 17 (0x32),
    21 and 37 (ZRLs) and 53 (last + 0xA1); levels at 3 and 9 start at 1 and 4."""
    levels = np.zeros((2, 64), dtype=np.int16)
    levels[0, [20, 63]] = [2, 1]
    levels[1, [3, 9]] = [1, 1]
    starts = [[start for _, _, _, start in jointdc.block_ac_symbols_reference(row)] for row in levels]
    assert starts == [[1, 17, 21, 37, 53], [1, 4]]
    assert jointdc.start_contexts(4)[[1, 3, 4, 9, 10, 23, 24, 63]].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert not jointdc.start_contexts(1).any()
    counts = jointdc.symbol_counts(np.zeros(2, dtype=np.int64), levels, 2, rest_tables=4)
    zrl, last = runlength.ZRL, jointdc.LAST
    assert np.flatnonzero(counts.first).tolist() == [0x21, zrl]
    # Each ZRL takes the context of its own start: 21 (10-23) and 37 (24 and up).
    assert [np.flatnonzero(row).tolist() for row in counts.rest] == [[], [last + 0x51], [0x32, zrl], [zrl, last + 0xA1]]
    assert counts.rest.sum() == 5


def test_a_block_takes_the_context_of_its_left_and_upper_neighbours():
    """3x3 blocks with AC levels in blocks 0, 1 and 3 (raster order). Contexts: block 0
    (no neighbour) 0; 1, 2, 3, 6 have one neighbour with AC levels: 1; block 4 has two: 2;
    5, 7, 8 none: 0 (outside the plane counts as empty)."""
    levels = np.zeros((9, 64), dtype=np.int16)
    levels[[0, 1, 3], 5] = 1
    counts = jointdc.symbol_counts(np.zeros(9, dtype=np.int64), levels, 3)
    # Zero residuals: joint symbol 0 (with AC levels) or 1 (without), per context.
    np.testing.assert_array_equal(counts.joint[:, :2], [[1, 3], [2, 2], [0, 1]])
    assert not counts.joint[:, 2:].any()


def test_pack_refuses_levels_that_do_not_match_their_counts_or_last_indices():
    dc, levels, counts, tables = coded(3, 40, 0.1)
    last = jointdc.last_nonzero_indices(levels)
    nonempty = int(np.flatnonzero(last)[0])
    wrong = last.copy()
    wrong[nonempty] += 1 if last[nonempty] < 63 else -1
    with pytest.raises(ValueError):
        jointdc.pack(dc, levels, 8, tables, counts, wrong)
    with pytest.raises(ValueError):
        jointdc.pack(dc, levels, 7, tables)
    with pytest.raises(ValueError):
        jointdc.plane_counts(dc, levels, last[:-1], 8, counts.first[:256], 0)
    with pytest.raises(ValueError, match="last non-zero"):
        jointdc.plane_counts(dc, levels, wrong, 8, runlength.symbol_counts(dc, levels)[1], 0)


def single_code_tables(ac_symbol: int) -> jointdc.JointTables:
    """Context 0 codes only the joint symbol 0 (size 0, *not* empty), each AC table only ``ac_symbol``."""
    one = HuffmanTable(ac_symbol, np.array([1], np.uint8))
    return jointdc.JointTables((HuffmanTable(0, np.array([1], np.uint8)),) * 3, one, (one,))


@pytest.mark.parametrize(
    ("ac_symbol", "payload", "message"),
    [
        # Joint code "0" (not empty), then 0x01 codes "0" + extra bit: 63 levels, none last.
        (0x01, b"\x00" * 16, "ends without a last-flagged level"),
        # ZRL codes "0": the fourth ZRL runs past coefficient 63.
        (0xF0, b"\x00", "runs past the end of the block"),
        # Run 15, size 1 codes "0" + extra bit: levels at 16, 32 and 48, then past 63.
        (0xF1, b"\x00", "runs past the end of the block"),
    ],
)
def test_a_block_flagged_with_ac_levels_must_end_on_a_last_level_inside_the_block(ac_symbol, payload, message):
    for unpack in (jointdc.unpack, jointdc.unpack_reference):
        with pytest.raises(CorruptStreamError, match=message):
            unpack(payload, 1, 1, single_code_tables(ac_symbol))


EMPTY = HuffmanTable.empty()


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (jointdc.JointTables((HuffmanTable(30, np.ones(3, np.uint8)),) * 3, EMPTY, (EMPTY,)), "outside 0..31"),
        (jointdc.JointTables((EMPTY,) * 2, EMPTY, (EMPTY,)), "3 joint DC tables"),
        (jointdc.JointTables((EMPTY,) * 3, EMPTY, (EMPTY,) * 2), "1 or 4 other-AC tables"),
        (jointdc.JointTables((EMPTY,) * 3, EMPTY, (EMPTY,)), "empty joint DC table"),
        (jointdc.JointTables((EMPTY,) * 3, EMPTY, (HuffmanTable(511, np.ones(2, np.uint8)),)), "outside 0..511"),
        (jointdc.JointTables((EMPTY,) * 3, HuffmanTable(0, np.ones(2, np.uint8)), (EMPTY,)), "zero-size symbol"),
        (
            jointdc.JointTables((EMPTY,) * 3, EMPTY, (EMPTY, EMPTY, HuffmanTable(0x1F0, np.ones(2, np.uint8)), EMPTY)),
            "last-flagged ZRL",
        ),
    ],
)
def test_tables_the_block_syntax_cannot_have_are_corrupt(tables, message):
    with pytest.raises(CorruptStreamError, match=message):
        jointdc.unpack(b"\x00", 1, 1, tables)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 50),
    payload=st.binary(min_size=1, max_size=40),
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    rest_tables=st.sampled_from(REST_TABLES),
)
def test_any_payload_decodes_as_the_reference_reads_it_or_is_rejected(seed, payload, rows, cols, rest_tables):
    """The kernel bounds every read: on arbitrary bytes it agrees with the plain reader."""
    _, _, _, tables = coded(seed, 30, 0.1, rest_tables)
    try:
        expected = jointdc.unpack_reference(payload, rows, cols, tables)
    except CorruptStreamError:
        with pytest.raises(CorruptStreamError):
            jointdc.unpack(payload, rows, cols, tables)
        return
    for mine, theirs in zip(jointdc.unpack(payload, rows, cols, tables), expected):
        np.testing.assert_array_equal(mine, theirs)


def test_version_3_4_and_5_twins_of_version_6_streams_decode_to_the_same_image(lena2, kodim23):
    for image in (crop(lena2, 40, 56), crop(kodim23, 45, 61)):
        stream = encoder_v2.encode(image, quality=1.0, profile="klt")
        assert read_header(stream).version == 6
        expected = decode(stream)
        for twin in (as_version_3(stream), as_version_4(stream), as_version_5(stream)):
            np.testing.assert_array_equal(decode(twin), expected)
        refs = [plane.refs for plane in parse_v2(as_version_4(stream)).planes]
        assert any(ref.dc > 0 or ref.ac > 0 for ref in refs)  # the version 4 set is still installed and used
        version_5 = parse_v2(as_version_5(stream))
        assert version_5.header.version == 5 and any(ref > 0 for p in version_5.planes for ref in p.refs.nibbles)
