"""Colour conversion: the fused numba kernels against their NumPy references, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import color

sizes = st.tuples(st.integers(1, 40), st.integers(1, 40))


@settings(max_examples=60)
@given(sizes, st.integers(0, 2**32 - 1))
def test_rgb_to_planes_equals_its_reference(size, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    for kernel, reference in zip(color.rgb_to_planes(rgb), color.rgb_to_planes_reference(rgb)):
        np.testing.assert_array_equal(kernel, reference)


@settings(max_examples=60)
@given(sizes, st.integers(0, 2**32 - 1))
def test_planes_to_image_equals_its_reference(size, seed):
    rng = np.random.default_rng(seed)
    h, w = size
    # Decoded planes overshoot 0..255, and the clip must behave the same on both paths.
    planes = [rng.normal(128, 80, (h, w))] + [rng.normal(128, 60, color.chroma_shape(h, w)) for _ in range(2)]
    np.testing.assert_array_equal(color.planes_to_image(planes, h, w), color.planes_to_image_reference(planes, h, w))


def test_on_a_real_odd_sized_image(kodim23):
    rgb = kodim23[:301, :433]
    planes = color.rgb_to_planes(rgb)
    for kernel, reference in zip(planes, color.rgb_to_planes_reference(rgb)):
        np.testing.assert_array_equal(kernel, reference)
    restored = color.planes_to_image(planes, 301, 433)
    np.testing.assert_array_equal(restored, color.planes_to_image_reference(planes, 301, 433))
    assert np.abs(restored.astype(int) - rgb).mean() < 3  # only 4:2:0 chroma is lost


def test_bad_shapes_are_refused_before_the_kernels():
    with pytest.raises(ValueError):
        color.rgb_to_planes(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError):
        color.planes_to_image([np.zeros((4, 4)), np.zeros((2, 2)), np.zeros((3, 2))], 4, 4)
