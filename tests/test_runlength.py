"""Run-length coding of format 2 planes: packing with the counts and last non-zero indices
the encoder already has, levels of any integer width, and values that cannot be coded;
and the dead-zone quantizer's kernel refusing what its reference refuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_py.codec import deadzone, runlength
from firmware_py.codec.huffman import HuffmanTable


def sparse_levels(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    levels = np.where(rng.random((n, 64)) < rng.random((n, 1)) ** 3, rng.integers(-300, 301, (n, 64)), 0)
    levels[::5, 63] = 7  # full blocks: no EOB
    levels[::3, 20:] = 0  # long zero runs: ZRL
    levels[::3, 40] = -1
    return rng.integers(-2000, 2001, n), levels


def last_nonzero(levels: np.ndarray) -> np.ndarray:
    return np.array([max([j for j in range(1, 64) if row[j]] or [0]) for row in levels])


@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.sampled_from([np.int16, np.int32, np.int64]))
def test_pack_with_known_counts_and_last_indices_matches_the_reference(seed, n, dtype):
    dc, levels = sparse_levels(seed, n)
    levels = levels.astype(dtype)
    counts = runlength.symbol_counts(dc, levels)
    tables = runlength.tables_for(*counts[:2])
    expected = runlength.pack_reference(dc, levels.astype(np.int64), tables)
    assert runlength.pack(dc, levels, tables) == expected
    assert runlength.pack(dc, levels, tables, counts, last_nonzero(levels)) == expected
    for mine, wide in zip(counts, runlength.symbol_counts(dc, levels.astype(np.int64))):
        np.testing.assert_array_equal(mine, wide)


def test_counts_or_last_indices_that_do_not_match_the_levels_are_refused():
    dc, levels = sparse_levels(1, 30)
    counts = runlength.symbol_counts(dc, levels)
    tables = runlength.tables_for(*counts[:2])
    last = last_nonzero(levels)
    fewer = (counts[0], counts[1], counts[2] - 8)  # a byte short
    with pytest.raises(ValueError, match="do not match"):
        runlength.pack(dc, levels, tables, fewer, last)
    for wrong in (np.maximum(last - 1, 0), np.full_like(last, 64), np.full_like(last, -1)):
        with pytest.raises(ValueError, match="do not match"):
            runlength.pack(dc, levels, tables, counts, wrong)
    with pytest.raises(ValueError, match="one integer last non-zero index per block"):
        runlength.pack(dc, levels, tables, counts, last[:-1])


@pytest.mark.parametrize("value", [-32768, 32768, 1 << 40])
def test_values_beyond_a_size_category_are_refused_not_looped_on(value):
    dtype = np.int16 if -32768 <= value <= 32767 else np.int64
    levels = np.zeros((2, 64), dtype=dtype)
    levels[1, 5] = value
    with pytest.raises(ValueError, match="exceeds"):
        runlength.symbol_counts(np.zeros(2, dtype=np.int64), levels)
    with pytest.raises(ValueError, match="exceeds"):
        runlength.dc_symbol_counts(np.array([0, value]))


def test_payload_bits_refuse_a_symbol_without_code():
    dc, levels = sparse_levels(2, 10)
    dc_hist, ac_hist, extra = runlength.symbol_counts(dc, levels)
    tables = runlength.tables_for(dc_hist, ac_hist)
    ac_hist = ac_hist.copy()
    ac_hist[255] += 1  # (run 15, size 15): levels of at most 300 never have it
    with pytest.raises(ValueError, match="no code"):
        runlength.payload_bits(dc_hist, ac_hist, extra, tables)


@pytest.mark.parametrize("symbol", [0, 3, 9], ids=["below the span", "in the span without code", "above the span"])
def test_payload_bits_count_the_table_span_and_refuse_any_symbol_without_code(symbol):
    tables = runlength.PlaneTables(
        HuffmanTable(2, np.array([1, 0, 2, 2], dtype=np.uint8)),  # DC sizes 2, 4, 5 have codes
        HuffmanTable(0, np.array([1, 1], dtype=np.uint8)),
    )
    dc_hist = np.zeros(runlength.DC_ALPHABET, dtype=np.int64)
    dc_hist[[2, 4, 5]] = [5, 6, 7]
    ac_hist = np.zeros(runlength.AC_ALPHABET, dtype=np.int64)
    ac_hist[runlength.EOB] = 18
    assert runlength.payload_bits(dc_hist, ac_hist, 40, tables) == 40 + 5 * 1 + 6 * 2 + 7 * 2 + 18 * 1
    dc_hist[symbol] += 1
    with pytest.raises(ValueError, match="no code"):
        runlength.payload_bits(dc_hist, ac_hist, 40, tables)


@pytest.mark.parametrize(("value", "message"), [(1e9, "exceeds 16383"), (np.nan, "non-finite"), (-np.inf, "non-finite")])
def test_deadzone_kernel_refuses_what_its_reference_refuses(value, message):
    coefficients = np.random.default_rng(0).normal(0, 100, (20, 64))
    coefficients[13, 40] = value
    steps = np.full(64, 10.0)
    for quantize in (deadzone.quantize, deadzone.quantize_reference):
        with pytest.raises(ValueError, match=message):
            quantize(coefficients, steps, 0.3)
