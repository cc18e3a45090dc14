"""Half-resolution coding (format version 3): the resampling kernels against their
references, round trips in both coded scales at odd sizes, the mode rule, rate control,
the coded-scale byte and the upsampler's fingerprint, and version 2 streams beside it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_py import metrics
from firmware_py.codec import (
    CorruptStreamError,
    ImageError,
    ModelError,
    container_v2,
    decode,
    encode,
    encoder_v2,
    models,
    read_header,
    resample,
)
from firmware_py.codec.profile_v2 import get_transform_profile

from codec_helpers import as_version_2, crop, parse_v2, reseal

PROFILE = "klt"
SCALE_OFFSET = 16 + 2 * 4 + 1  # fixed header, luma and chroma steps, dead-zone offset (colour)


@pytest.fixture(scope="module")
def half() -> resample.HalfResolution:
    model = get_transform_profile(PROFILE).half
    assert model is not None, "the klt profile ships a half-resolution model"
    return model


def random_image(seed: int, height: int, width: int, colour: bool) -> np.ndarray:
    shape = (height, width, 3) if colour else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- kernels against their references ----------------------------------------------------


@given(st.integers(0, 2**16), st.integers(1, 40), st.integers(1, 40), st.booleans())
def test_downsample_matches_reference(seed, height, width, colour):
    image = random_image(seed, height, width, colour)
    out = resample.downsample(image)
    assert out.shape[:2] == ((height + 1) // 2, (width + 1) // 2)
    np.testing.assert_array_equal(out, resample.downsample_reference(image))


def test_downsample_is_the_rounded_2x2_mean():
    image = np.array([[0, 1, 10], [2, 2, 30]], dtype=np.uint8)
    np.testing.assert_array_equal(resample.downsample(image), [[1, 20]])  # (5+2)//4, (10+10+30+30+2)//4


@given(st.integers(0, 2**16), st.integers(1, 40), st.integers(1, 40))
def test_upsample_matches_reference(half, seed, height, width):
    low = random_image(seed, (height + 1) // 2, (width + 1) // 2, False)
    fast = resample.upsample_plane(low, half.weights, height, width)
    np.testing.assert_allclose(fast, resample.upsample_plane_reference(low, half.weights, height, width), atol=1e-9)


def test_upsampler_keeps_a_flat_image_flat(half):
    flat = np.full((20, 30), 117, dtype=np.uint8)
    assert np.abs(resample.upsample(flat, half, 40, 59).astype(int) - 117).max() <= 1


def test_inputs_are_validated_before_the_kernels(half):
    with pytest.raises(ImageError):
        resample.downsample(np.zeros((4, 4), dtype=np.float64))
    with pytest.raises(ImageError):
        resample.downsample(np.zeros((4, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="half size"):
        resample.upsample_plane(np.zeros((5, 5), np.uint8), half.weights, 12, 10)
    with pytest.raises(ModelError):
        resample.upsample_plane(np.zeros((5, 5), np.uint8), np.zeros((2, 2, 3, 3)), 10, 10)
    with pytest.raises(ValueError):
        resample.coded_size(10, 10, 3)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 5), (17, 9), (70, 90), (100, 34)])
@pytest.mark.parametrize("scale", [resample.FULL, resample.HALF])
def test_round_trip_any_size_both_scales(lena2, kodim23, height, width, scale):
    for image in (crop(lena2, height, width), crop(kodim23, height, width)):
        stream = encoder_v2.encode(image, quality=1.0, profile=PROFILE, scale=scale)
        header = read_header(stream)
        assert header.version == 6 and len(header.steps) == (1 if image.ndim == 2 else 2)
        assert parse_v2(stream).scale == scale
        decoded = decode(stream)
        assert decoded.shape == image.shape and decoded.dtype == np.uint8
        if min(height, width) >= 16:
            assert metrics.psnr(image, decoded) > 20


def test_half_resolution_pays_at_the_lowest_rates(lena2):
    """What the stage is for, on a test image (not tuned on): 0.04 bpp, half beats full."""
    image = crop(lena2, 256, 256)
    streams = {s: encoder_v2.encode(image, bpp=0.05, profile=PROFILE, scale=s) for s in (resample.FULL, resample.HALF)}
    psnr = {s: metrics.psnr(image, decode(stream)) for s, stream in streams.items()}
    assert psnr[resample.HALF] > psnr[resample.FULL]


# --- the rule and rate control ----------------------------------------------------------


def test_rule_picks_half_only_for_low_budgets_of_large_enough_frames(half):
    assert half.gray_below_bpp > 0 and half.colour_below_bpp > 0
    big = resample.MIN_HALF_SIDE * 4
    assert half.pays(big, big, False, int(0.5 * half.gray_below_bpp * big * big / 8))
    assert not half.pays(big, big, False, int(2 * half.gray_below_bpp * big * big / 8))
    assert half.pays(big, big, True, int(0.5 * half.colour_below_bpp * big * big / 8))
    assert not half.pays(resample.MIN_HALF_SIDE - 1, big, False, 1)
    assert not half.pays(big, resample.MIN_HALF_SIDE - 1, True, 1)


def test_encode_chooses_the_scale_by_the_rule(lena2, half):
    image = crop(lena2, 256, 256)
    low, high = 0.5 * half.gray_below_bpp, 2 * half.gray_below_bpp
    assert parse_v2(encode(image, bpp=low, profile=PROFILE)).scale == resample.HALF
    assert parse_v2(encode(image, bpp=high, profile=PROFILE)).scale == resample.FULL
    assert parse_v2(encode(image, quality=8.0, profile=PROFILE)).scale == resample.FULL  # no budget


@pytest.mark.parametrize(("height", "width"), [(3, 5), (17, 9), (40, 300)])
def test_small_frames_stay_at_full_resolution(lena2, height, width):
    image = crop(lena2, height, width)
    stream = encode(image, max_bytes=400, profile=PROFILE)
    assert parse_v2(stream).scale == resample.FULL


@pytest.mark.parametrize("bpp", [0.03, 0.04, 0.05, 0.07])
@pytest.mark.parametrize("colour", [False, True])
def test_rate_control_lands_under_the_budget_at_half_resolution(lena2, kodim23, bpp, colour):
    image = kodim23 if colour else lena2
    budget = int(bpp * image.shape[0] * image.shape[1] / 8)
    stream = encoder_v2.encode(image, bpp=bpp, profile=PROFILE, scale=resample.HALF)
    assert 0.97 * budget <= len(stream) <= budget
    assert decode(stream).shape == image.shape


# --- the stream -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def half_stream(kodim23) -> bytes:
    return encoder_v2.encode(crop(kodim23, 70, 90), quality=2.0, profile=PROFILE, scale=resample.HALF)


def test_corrupt_scale_byte_is_rejected(half_stream):
    assert half_stream[SCALE_OFFSET] == resample.HALF
    for value in (0, 3, 255):
        mutated = half_stream[:SCALE_OFFSET] + bytes([value]) + half_stream[SCALE_OFFSET + 1 :]
        with pytest.raises(CorruptStreamError, match="coded scale"):
            decode(reseal(mutated))


def test_truncated_before_the_scale_byte_is_corrupt(half_stream):
    with pytest.raises(CorruptStreamError):
        decode(reseal(half_stream[:SCALE_OFFSET] + bytes(4)))


def test_version_2_stream_with_a_scale_is_never_written(half_stream):
    stream = parse_v2(half_stream)
    with pytest.raises(ValueError):
        container_v2.StreamV2(replace(stream.header, version=2), stream.rounding_units, stream.planes, resample.HALF)


def test_scale_1_over_half_size_planes_is_rejected_or_decodes(half_stream):
    """Scale 1 is legal in version 3; the planes then code the full size, so this one's
    half-size planes no longer match and the payload check rejects it, never misdecodes."""
    mutated = half_stream[:SCALE_OFFSET] + bytes([1]) + half_stream[SCALE_OFFSET + 1 :]
    try:
        image = decode(reseal(mutated))
    except CorruptStreamError:
        return
    assert image.shape == (70, 90, 3)


def test_stream_names_the_upsampler(half_stream, models_copy):
    """Another upsampler (retrained weights) changes the fingerprint: a ModelError, never a
    silent decode with different weights."""
    from export.manifest import update_manifest

    model = get_transform_profile(PROFILE).half
    path = models_copy / f"{model.name}.npz"
    with np.load(path) as arrays:
        data = dict(arrays)
    data["weights"] = data["weights"] * 1.01
    np.savez(path, **data)
    sha = models.file_sha256(path)
    update_manifest(models_copy, lambda m: m["models"][model.name].update(sha256=sha))
    with pytest.raises(ModelError, match="encoded with models"):
        decode(half_stream)


def test_modified_upsampler_artifact_is_refused(models_copy):
    model_name = get_transform_profile(PROFILE).half.name
    with open(models_copy / f"{model_name}.npz", "ab") as handle:
        handle.write(b"\0")
    models.clear_caches()
    with pytest.raises(ModelError, match="modified artifact"):
        resample.load_half_resolution(model_name)


def test_version_2_streams_still_decode(lena2):
    image = crop(lena2, 64, 96)
    stream = as_version_2(encoder_v2.encode(image, bpp=0.5, profile=PROFILE, scale=resample.FULL))
    assert read_header(stream).version == 2 and parse_v2(stream).scale == 1
    assert metrics.psnr(image, decode(stream)) > 25


def test_version_byte_flipped_between_2_and_3_is_corrupt(half_stream, lena2):
    """The version byte must agree with the fingerprint and the profile: 3 -> 2, 2 -> 3, and
    either to 1 (a seed-profile layout) is damage, not a model mismatch."""
    full_stream = encoder_v2.encode(crop(lena2, 64, 96), quality=1.0, profile=PROFILE, scale=resample.FULL)
    v2_stream = as_version_2(full_stream)
    cases = ((half_stream, 2), (half_stream, 1), (full_stream, 2), (full_stream, 1), (v2_stream, 3), (v2_stream, 1))
    for stream, version in cases:
        with pytest.raises(CorruptStreamError):
            decode(reseal(stream[:4] + bytes([version]) + stream[5:]))
