"""Uniform quantization: the numba kernels give exactly the NumPy reference's values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from firmware_py.codec import quantize


@given(
    latents=npst.arrays(
        np.float64,
        npst.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=12),
        elements=st.floats(-2000, 2000, allow_nan=False),
    ),
    step=st.floats(min_value=2000 / 16383, max_value=1e3),
)
def test_quantize_matches_reference(latents, step):
    np.testing.assert_array_equal(quantize.quantize(latents, step), quantize.quantize_reference(latents, step))


@given(
    levels=npst.arrays(
        np.int32,
        npst.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=12),
        elements=st.integers(-16383, 16383),
    ),
    step=st.floats(min_value=1e-3, max_value=1e6),
)
def test_dequantize_matches_reference(levels, step):
    np.testing.assert_array_equal(quantize.dequantize(levels, step), quantize.dequantize_reference(levels, step))


@pytest.mark.parametrize("step", [1.0, 2.0, 0.5, 63.0, 3.9375])
def test_ties_round_half_to_even_in_both_paths(step):
    # Exact .5 multiples of the step (exactly representable for these steps and values).
    halves = np.arange(-10.5, 11.0, 1.0)
    latents = (halves * step).reshape(-1, 1)
    assert np.array_equal(latents[:, 0] / step, halves)
    expected = np.rint(halves).astype(np.int32).reshape(-1, 1)
    np.testing.assert_array_equal(quantize.quantize(latents, step), expected)
    np.testing.assert_array_equal(quantize.quantize_reference(latents, step), expected)


def test_per_column_steps():
    latents = np.array([[3.0, 3.0], [-7.0, 10.0]])
    steps = np.array([2.0, 4.0])
    levels = quantize.quantize(latents, steps)
    np.testing.assert_array_equal(levels, [[2, 1], [-4, 2]])  # ties 1.5 -> 2, 0.75 -> 1, -3.5 -> -4, 2.5 -> 2
    np.testing.assert_array_equal(quantize.dequantize(levels, steps), [[4.0, 4.0], [-8.0, 8.0]])


@pytest.mark.parametrize(
    ("latents", "step", "message"),
    [
        (np.array([[1.0, np.nan]]), 1.0, "non-finite"),
        (np.array([[1.0]]), 0.0, "finite and positive"),
        (np.array([[1.0]]), -1.0, "finite and positive"),
        (np.array([[1.0]]), np.inf, "finite and positive"),
        (np.array([[16384.0]]), 1.0, "exceeds 16383"),
        (np.array([1.0, 2.0]), 1.0, "2-D"),
    ],
    ids=["nan-latent", "zero-step", "negative-step", "infinite-step", "too-many-levels", "1-d"],
)
def test_quantize_rejects_bad_input(latents, step, message):
    with pytest.raises(ValueError, match=message):
        quantize.quantize(latents, step)
