"""Block classification: the fused numba kernel against the NumPy reference, on real images."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_py.codec import blocking, classify, color
from firmware_py.codec.profiles import get_profile

# Summation order differs between the kernel and BLAS, so an error may differ in its
# last bits; only a block that close to the threshold may change class.
THRESHOLD_RTOL = 1e-9


@pytest.fixture(scope="module")
def seed():
    return get_profile("seed")


def real_planes(lena2, kodim23):
    ycbcr = color.rgb_to_ycbcr(kodim23)
    return {
        "lena2": lena2.astype(np.float64),
        "kodim23-Y": ycbcr[..., 0],
        "kodim23-Cb": color.downsample_420(ycbcr[..., 1]),
        "kodim23-Cr": color.downsample_420(ycbcr[..., 2]),
    }


@pytest.mark.parametrize("plane_name", ["lena2", "kodim23-Y", "kodim23-Cb", "kodim23-Cr"])
def test_classify_matches_reference_on_real_planes(plane_name, lena2, kodim23, seed):
    blocks = blocking.plane_to_blocks(real_planes(lena2, kodim23)[plane_name])
    classes, errors = classify.classify(blocks, seed.models[0], seed.threshold)
    ref_classes, ref_errors = classify.classify_reference(blocks, seed.models[0], seed.threshold)
    assert classes.dtype == ref_classes.dtype == np.uint8
    np.testing.assert_allclose(errors, ref_errors, rtol=1e-9, atol=1e-9)
    differ = np.flatnonzero(classes != ref_classes)
    near = np.abs(ref_errors - seed.threshold) <= THRESHOLD_RTOL * seed.threshold
    assert np.all(near[differ]), f"blocks {differ[~near[differ]]} changed class away from the threshold"


def test_classify_uses_both_classes_on_lena(lena2, seed):
    classes, errors = classify.classify(blocking.plane_to_blocks(lena2), seed.models[0], seed.threshold)
    assert 0.05 < classes.mean() < 0.95
    np.testing.assert_array_equal(classes, (errors >= seed.threshold).astype(np.uint8))


def test_threshold_is_inclusive_for_the_high_detail_class(lena2, seed):
    blocks = blocking.plane_to_blocks(lena2)[:50]
    _, errors = classify.classify_reference(blocks, seed.models[0], seed.threshold)
    threshold = float(errors[7])  # put one block exactly on the threshold
    classes, _ = classify.classify_reference(blocks, seed.models[0], threshold)
    assert classes[7] == 1
    classes, got = classify.classify(blocks, seed.models[0], threshold)
    np.testing.assert_array_equal(classes, (got >= threshold).astype(np.uint8))


def test_flat_blocks_are_low_detail(seed):
    blocks = np.full((4, 64), 117.0)
    classes, errors = classify.classify(blocks, seed.models[0], seed.threshold)
    assert np.all(classes == 0) and np.all(errors < 1.0)


def test_classify_rejects_wrong_block_shape(seed):
    with pytest.raises(ValueError, match="blocks must be"):
        classify.classify(np.zeros((3, 63)), seed.models[0], seed.threshold)
