"""Rate-distortion optimized levels (rdoq.py): the fused kernel against the NumPy
reference, what the choice may and may not change, and the encoder built on it (streams
decode to the chosen levels, rate control keeps its budget)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import blockcoder, blocking, decoder_v2, encoder_v2, jointdc, rdoq, scratch, transform
from firmware_py.codec.errors import ModelError
from firmware_py.codec.profile_v2 import get_transform_profile

from codec_helpers import crop, parse_v2
from test_blockcoder import assert_matches_reference

ROUNDING = 0.3


@pytest.fixture(scope="module")
def profile():
    """The installed klt profile with a rate-distortion factor, whatever the manifest's."""
    installed = get_transform_profile("klt")
    return replace(installed, rd=rdoq.rd_choice(0.15, installed.context_tables))


def chosen(plane: np.ndarray, profile, step: float, factor: float) -> tuple[blockcoder.PlaneLevels, np.ndarray]:
    """(the kernel's levels, the reference's) of ``plane`` at ``step`` and ``factor``."""
    rate = profile.rd.luma
    coefficients = transform.analyse(blocking.plane_to_blocks(plane), profile.basis)
    dead_zone = blockcoder.quantize_reference(plane, profile.basis, step, ROUNDING)
    cols = blocking.block_grid(*plane.shape)[1]
    reference = rdoq.choose_levels_reference(coefficients, dead_zone, cols, step, factor, rate)
    quantized = blockcoder.BlockCoefficients.of_plane(plane, profile.basis).quantize(step, ROUNDING, factor, rate)
    return quantized, reference


def random_plane(size: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.add.outer(np.arange(size[0]), 2 * np.arange(size[1])) + rng.normal(0, 4, size)
    return np.where(rng.random(size) < 0.3, rng.uniform(0, 255, size), 60 + smooth)


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(st.integers(1, 48), st.integers(1, 48)),
    st.integers(0, 2**32 - 1),
    st.sampled_from([6.25, 37.5, 100.0, 250.0]),
    st.sampled_from([0.02, 0.15, 1.0]),
)
def test_kernel_matches_reference_on_random_planes(profile, size, seed, step, factor):
    quantized, reference = chosen(random_plane(size, seed), profile, step, factor)
    assert_matches_reference(quantized, reference)


def test_kernel_matches_reference_on_a_real_plane_and_lowers_levels(profile, lena2):
    plane = lena2.astype(np.float64)
    dead_zone = blockcoder.quantize_reference(plane, profile.basis, 80.0, ROUNDING)
    quantized, reference = chosen(plane, profile, 80.0, 0.15)
    assert_matches_reference(quantized, reference)
    # Only AC levels move, only towards zero, and many do at this step.
    np.testing.assert_array_equal(reference[:, 0], dead_zone[:, 0])
    assert np.all(np.abs(reference) <= np.abs(dead_zone))
    assert np.all(reference * dead_zone >= 0)
    assert np.count_nonzero(reference) < 0.95 * np.count_nonzero(dead_zone)  # ~10 % with the shipped tables
    assert np.count_nonzero(reference[:, 1:].any(axis=1)) < np.count_nonzero(dead_zone[:, 1:].any(axis=1))


def test_retained_coefficients_give_the_levels_of_a_fresh_pass(profile, lena2):
    """Rate control quantizes retained coefficients at several steps: each pass chooses
    what one pass over the plane would."""
    plane = crop(lena2, 128, 160).astype(np.float64)
    retained = blockcoder.BlockCoefficients.of_plane(plane, profile.basis)
    retained.retain()
    for step in (120.0, 60.0, 90.0, 30.0):
        again = retained.quantize(step, ROUNDING, 0.1, profile.rd.luma)
        fresh = blockcoder.BlockCoefficients.of_plane(plane, profile.basis).quantize(
            step, ROUNDING, 0.1, profile.rd.luma
        )
        assert_matches_reference(again, fresh.levels)


def test_factor_zero_keeps_dead_zone_levels(profile, lena2):
    plane = crop(lena2, 64, 96).astype(np.float64)
    quantized = blockcoder.BlockCoefficients.of_plane(plane, profile.basis).quantize(
        40.0, ROUNDING, 0.0, profile.rd.luma
    )
    assert_matches_reference(quantized, blockcoder.quantize_reference(plane, profile.basis, 40.0, ROUNDING))


def test_choice_lowers_the_modelled_cost_of_every_block(profile, lena2):
    """Each accepted change lowers D + lambda * R, so no block that keeps AC levels ends
    dearer than its dead-zone levels (an emptied block's cost also has joint DC bits)."""
    plane, step, factor = crop(lena2, 128, 128).astype(np.float64), 60.0, 0.15
    coefficients = transform.analyse(blocking.plane_to_blocks(plane), profile.basis)
    dead_zone = blockcoder.quantize_reference(plane, profile.basis, step, ROUNDING)
    levels = rdoq.choose_levels_reference(coefficients, dead_zone, 16, step, factor, profile.rd.luma)

    def cost(row: np.ndarray, c: np.ndarray) -> float:
        return float(np.sum((c[1:] - row[1:] * step) ** 2)) + factor * step * step * ac_bits(row, profile.rd.luma)

    kept = [row[1:].any() for row in levels]
    assert sum(kept) > 10 and np.any(levels != dead_zone)
    for row, before, c, keep in zip(levels, dead_zone, coefficients, kept):
        if keep:
            assert cost(row, c) <= cost(before, c) + 1e-9


def ac_bits(row: np.ndarray, rate: rdoq.RateModel) -> float:
    """A block's AC bits, summed symbol by symbol with the kernel's symbol_bits."""
    nonzero = np.flatnonzero(row[1:]) + 1
    bits, previous = 0.0, 0
    for i, j in enumerate(nonzero):
        size = int(abs(row[j])).bit_length()
        bits += rdoq.symbol_bits(int(previous + 1), int(j), size, i == 0, j == nonzero[-1], rate.ac)
        previous = j
    return bits


def test_bad_factors_and_rate_models_are_refused(profile):
    plane = blockcoder.BlockCoefficients.of_plane(np.zeros((8, 8)), profile.basis)
    for factor in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="rate-distortion factor"):
            plane.quantize(10.0, ROUNDING, factor, profile.rd.luma)
    for ac in (
        np.zeros((2, rdoq.LAST_ALPHABET)),
        np.zeros((65, 10)),
        np.full((65, rdoq.LAST_ALPHABET), np.nan),
        np.zeros((65, rdoq.LAST_ALPHABET), np.int64),
    ):
        with pytest.raises(ValueError, match="rate model"):
            plane.quantize(10.0, ROUNDING, 0.1, rdoq.RateModel(ac))
    with pytest.raises(ModelError, match="static version 6 tables"):
        rdoq.rd_choice(0.1, None)
    with pytest.raises(ModelError, match="rate-distortion factor"):
        rdoq.rd_choice(-0.1, profile.context_tables)
    assert rdoq.rd_choice(0.0, None) is None


def test_rate_model_mixes_the_static_tables(profile):
    """Row 0 (a block's first AC symbol) mixes the first-AC tables; row 1 + s (a symbol
    whose run starts at s) the other-AC tables of s's start context."""
    tables = profile.context_tables.luma
    ac = profile.rd.luma.ac
    kinds = ["first"] + [f"rest{c}" for c in jointdc.start_contexts(4)]
    for row, kind in enumerate(kinds):
        lengths = getattr(tables, kind)
        # A mixture codes each symbol within log2(k) bits of its best table, never better.
        best = np.min(np.where(lengths > 0, lengths, np.inf), axis=0)
        coded = np.isfinite(best)
        assert np.all(ac[row][coded] >= best[coded] - 1e-9)
        assert np.all(ac[row][coded] <= best[coded] + np.log2(len(lengths)) + 1e-9)
    assert not np.array_equal(ac[1 + 1], ac[1 + 30])  # start contexts 0 and 3 differ


def encode_with(image: np.ndarray, profile, **budget) -> bytes:
    with scratch.reusing_arrays():
        frame = encoder_v2.transform_frame(image, profile)
        if budget:
            return encoder_v2.fit_budget(frame, budget["max_bytes"])
        return encoder_v2.code_frame(frame, 1.0)


def test_streams_decode_to_the_chosen_levels_and_are_smaller(profile, kodim23):
    image = crop(kodim23, 96, 128)
    stream = encode_with(image, profile)
    assert len(stream) < len(encode_with(image, replace(profile, rd=None)))
    with scratch.reusing_arrays():
        _, planes = encoder_v2.quantize_frame(encoder_v2.transform_frame(image, profile), 1.0)
        sent = [(q.levels.copy(), q.cols) for q in planes]
    for segment, (levels, cols) in zip(parse_v2(stream).planes, sent):
        np.testing.assert_array_equal(decoder_v2.decode_levels(segment, len(levels) // cols, cols), levels)


@pytest.mark.parametrize("bpp", [0.05, 0.15, 0.25])
def test_rate_control_keeps_the_budget_within_3_percent(profile, kodim23, lena2, bpp):
    for image in (crop(kodim23, 256, 256), crop(lena2, 256, 256)):
        budget = int(bpp * image.shape[0] * image.shape[1] / 8)
        size = len(encode_with(image, profile, max_bytes=budget))
        assert 0.97 * budget <= size <= budget
