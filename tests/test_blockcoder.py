"""The transform profile encoder's fused kernel (blockcoder) against the NumPy reference
path (full transform, dead-zone quantizer, run-length symbol counts), and the encoder
paths built on it: lazy coefficients must give exactly the levels, counts and streams
of transforming every block."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import blockcoder, blocking, color, deadzone, encoder_v2, jointdc, prediction, runlength, transform
from firmware_py.codec.encoder import image_planes
from firmware_py.codec.models import LinearAutoencoder
from firmware_py.codec.profile_v2 import get_transform_profile

from codec_helpers import crop, parse_v2

PROFILE = "klt"


@pytest.fixture(scope="module")
def profile():
    return get_transform_profile(PROFILE)


def reference_levels(plane: np.ndarray, basis: LinearAutoencoder, step: float, rounding: float) -> np.ndarray:
    return blockcoder.quantize_reference(plane, basis, step, rounding)


def assert_matches_reference(quantized: blockcoder.PlaneLevels, reference: np.ndarray) -> None:
    """Levels, DC levels, last non-zero indices and AC counts all as the reference has them."""
    np.testing.assert_array_equal(quantized.levels, reference)
    np.testing.assert_array_equal(quantized.dc_levels, reference[:, 0])
    ac = reference[:, 1:] != 0
    last = np.where(ac.any(axis=1), blocking.BLOCK_PIXELS - 1 - np.argmax(ac[:, ::-1], axis=1), 0)
    np.testing.assert_array_equal(quantized.last_nonzero, last)
    _, ac_hist, extra = runlength.symbol_counts(np.zeros(len(reference), dtype=np.int64), reference)
    np.testing.assert_array_equal(quantized.ac_hist, ac_hist)
    assert quantized.ac_extra_bits == extra


sizes = st.tuples(st.integers(1, 40), st.integers(1, 40))
steps = st.sampled_from([6.25, 37.5, 100.0, 250.0, 1600.0])  # the klt steps at qualities 1/16 .. 16
roundings = st.sampled_from([0.1, 0.3, 0.5])


@settings(max_examples=60)
@given(sizes, st.integers(0, 2**32 - 1), steps, roundings)
def test_kernel_matches_reference_on_random_planes(profile, size, seed, step, rounding):
    rng = np.random.default_rng(seed)
    # Smooth areas (most blocks skip coefficients) beside noise (most blocks need many).
    smooth = np.add.outer(np.arange(size[0]), 2 * np.arange(size[1])) + rng.normal(0, 2, size)
    plane = np.where(rng.random(size) < 0.3, rng.uniform(0, 255, size), 60 + smooth)
    quantized = blockcoder.BlockCoefficients.of_plane(plane, profile.basis).quantize(step, rounding)
    assert_matches_reference(quantized, reference_levels(plane, profile.basis, step, rounding))


def test_kernel_matches_reference_on_real_planes_and_skips_coefficients(profile, kodim23):
    planes = color.rgb_to_planes(crop(kodim23, 203, 301))
    for step in (6.25, 100.0, 1600.0):
        for plane in planes:
            coefficients = blockcoder.BlockCoefficients.of_plane(plane, profile.basis)
            quantized = coefficients.quantize(step, profile.rounding)
            assert_matches_reference(quantized, reference_levels(plane, profile.basis, step, profile.rounding))
            if step >= 100.0:  # preview rates: most coefficients are never computed
                assert coefficients.known.mean() < 16


def test_retained_passes_extend_and_match_reference_at_every_step(profile, kodim23):
    plane = color.rgb_to_planes(crop(kodim23, 120, 168))[0]
    coefficients = blockcoder.BlockCoefficients.of_plane(plane, profile.basis)
    coefficients.retain()
    known = coefficients.known.copy()
    for step in (400.0, 50.0, 1600.0, 6.25, 100.0):
        quantized = coefficients.quantize(step, profile.rounding)
        assert_matches_reference(quantized, reference_levels(plane, profile.basis, step, profile.rounding))
        assert np.all(coefficients.known >= known)  # computed once, kept
        known = coefficients.known.copy()
    exact = transform.analyse(blocking.plane_to_blocks(plane), profile.basis)
    for b in range(len(known)):
        np.testing.assert_allclose(coefficients.coefficients[: known[b], b], exact[b, : known[b]], atol=1e-9)


def test_complete_coefficients_match_the_lazy_ones(profile, lena2):
    plane = crop(lena2, 77, 91).astype(np.float64)
    rows, cols = blocking.block_grid(*plane.shape)
    complete = blockcoder.BlockCoefficients.complete(
        rows, cols, transform.analyse(blocking.plane_to_blocks(plane), profile.basis)
    )
    lazy = blockcoder.BlockCoefficients.of_plane(plane, profile.basis)
    for step in (20.0, 300.0):
        a, b = complete.quantize(step, profile.rounding), lazy.quantize(step, profile.rounding)
        for field in ("levels", "dc_levels", "last_nonzero", "ac_hist"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert a.ac_extra_bits == b.ac_extra_bits


def random_basis(seed: int, scale: float) -> LinearAutoencoder:
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, scale / 8, (64, 64))
    return LinearAutoencoder("random", weight, rng.normal(0, 50, 64), weight.T, np.zeros(64), "")


@given(st.integers(0, 2**32 - 1), st.sampled_from([0.3, 1.0, 3.0]))
def test_the_skip_bound_holds_for_a_basis_that_is_not_orthonormal(seed, scale):
    basis = random_basis(seed, scale)
    plane = np.random.default_rng(seed + 1).uniform(0, 255, (19, 27))
    quantized = blockcoder.BlockCoefficients.of_plane(plane, basis).quantize(150.0, 0.3)
    assert_matches_reference(quantized, reference_levels(plane, basis, 150.0, 0.3))


def test_a_singular_basis_computes_every_coefficient():
    weight = np.zeros((64, 64))
    weight[:, 0] = 1 / 8
    basis = LinearAutoencoder("singular", weight, np.full(64, -1024.0 / 64), weight.T, np.zeros(64), "")
    plane = np.random.default_rng(3).uniform(0, 255, (16, 24))
    coefficients = blockcoder.BlockCoefficients.of_plane(plane, basis)
    quantized = coefficients.quantize(10.0, 0.3)
    assert np.all(coefficients.known == 64)
    assert_matches_reference(quantized, reference_levels(plane, basis, 10.0, 0.3))


@pytest.mark.parametrize(
    ("value", "message"),
    [(1e9, "exceeds 16383 quantizer steps"), (np.nan, "non-finite"), (np.inf, "non-finite")],
)
def test_out_of_range_planes_are_refused_as_the_reference_refuses_them(profile, value, message):
    plane = np.full((9, 17), 100.0)
    plane[4, 12] = value
    with pytest.raises(ValueError, match=message):
        blockcoder.BlockCoefficients.of_plane(plane, profile.basis).quantize(6.25, 0.3)
    with pytest.raises(ValueError, match=message):
        reference_levels(plane, profile.basis, 6.25, 0.3)


def test_bad_steps_and_roundings_are_refused(profile):
    coefficients = blockcoder.BlockCoefficients.of_plane(np.zeros((8, 8)), profile.basis)
    for step in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="steps must be finite and positive"):
            coefficients.quantize(step, 0.3)
    with pytest.raises(ValueError, match="rounding offset"):
        coefficients.quantize(10.0, 0.7)


# --- the encoder paths on top -----------------------------------------------------------


def complete_frame(image: np.ndarray, profile) -> encoder_v2.TransformedFrame:
    """The frame with every coefficient computed up front (as other backends do)."""
    mode, planes = image_planes(image)
    coded = []
    for plane in planes:
        coefficients = transform.analyse(blocking.plane_to_blocks(plane), profile.basis)
        coded.append(blockcoder.BlockCoefficients.complete(*blocking.block_grid(*plane.shape), coefficients))
    return encoder_v2.TransformedFrame(profile, mode, image.shape[0], image.shape[1], tuple(coded))


@pytest.mark.parametrize(("height", "width"), [(1, 1), (13, 29), (96, 128)])
def test_lazy_and_complete_transforms_code_identical_streams(profile, kodim23, lena2, height, width):
    for image in (crop(kodim23, height, width), crop(lena2, height, width)):
        complete = complete_frame(image, profile)
        for quality in (0.25, 2.0):
            lazy = encoder_v2.transform_frame(image, profile)
            assert encoder_v2.code_frame(lazy, quality) == encoder_v2.code_frame(complete, quality)
        budget = max(200, image.size // 40)
        lazy = encoder_v2.transform_frame(image, profile)
        assert encoder_v2.fit_budget(lazy, budget) == encoder_v2.fit_budget(complete, budget)


def test_rate_control_packs_the_pass_it_chose(profile, kodim23):
    image = crop(kodim23, 128, 192)
    frame = encoder_v2.transform_frame(image, profile)
    budget = image.shape[0] * image.shape[1] // 50
    stream = encoder_v2.fit_budget(frame, budget)
    assert len(stream) <= budget
    chosen = parse_v2(stream)
    quality = chosen.header.steps[0] / profile.base_step
    fresh = encoder_v2.transform_frame(image, profile)
    again = parse_v2(encoder_v2.code_frame(fresh, quality))
    # The chroma step derived again from the luma step may differ in its last float32 bit.
    np.testing.assert_allclose(again.header.steps, chosen.header.steps, rtol=1e-6)
    assert [(p.refs, p.payload) for p in again.planes] == [(p.refs, p.payload) for p in chosen.planes]
    assert encoder_v2.coded_size(fresh, *encoder_v2.quantize_frame(fresh, quality)) == len(stream)


def test_quantize_plane_counts_what_jointdc_counts(profile, lena2):
    plane = crop(lena2, 64, 72).astype(np.float64)
    coefficients = blockcoder.BlockCoefficients.of_plane(plane, profile.basis)
    quantized = encoder_v2.quantize_plane(coefficients, 80.0, profile.rounding)
    residuals = prediction.dc_residuals_reference(quantized.levels[:, 0], coefficients.rows, coefficients.cols)
    np.testing.assert_array_equal(quantized.dc_residuals, residuals)
    counts = jointdc.symbol_counts(residuals, quantized.levels, coefficients.cols, rest_tables=4)
    np.testing.assert_array_equal(quantized.counts.joint, counts.joint)
    np.testing.assert_array_equal(quantized.counts.first, counts.first)
    np.testing.assert_array_equal(quantized.counts.rest, counts.rest)
    assert quantized.counts.extra_bits == counts.extra_bits
    assert quantized.payload_bits == jointdc.payload_bits(counts, quantized.tables)
    levels = deadzone.quantize(transform.analyse(blocking.plane_to_blocks(plane), profile.basis), np.full(64, 80.0), 0.3)
    np.testing.assert_array_equal(quantized.levels, levels)


def test_the_basis_is_prepared_once_per_model_object(profile):
    """Every plane of every frame asks for the kernel's basis: it is kept on the model,
    and another model object of other numbers gets its own."""
    prepared = blockcoder._kernel_basis(profile.basis)
    assert blockcoder._kernel_basis(profile.basis) is prepared
    other = random_basis(7, 1.0)
    assert not np.array_equal(blockcoder._kernel_basis(other).weight_t, prepared.weight_t)
