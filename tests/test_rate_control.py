"""Rate control: the whole stream never exceeds the byte budget, on real gray and colour crops.

What the seed encoder guarantees (encoder.fit_budget): the result fits; if the finest quality
fits it is chosen; otherwise the result is the bisection's coarse end, whose neighbour one
bisection step finer did not fit. Stream size is *not* monotone in quality (Huffman tables
and ties change with the step), so a larger budget is not asserted to give a larger stream.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.codec import RateControlError, available_profiles, decode, encode, encoder, read_header
from firmware_py.codec.profiles import MAX_QUALITY, MIN_QUALITY, get_profile

from codec_helpers import crop

PROFILE = "seed"
BISECTION_STEP = math.log(MAX_QUALITY / MIN_QUALITY) / 2**encoder.RATE_CONTROL_STEPS


@pytest.fixture(scope="module", params=["gray", "colour"])
def subject(request, lena2, kodim23):
    """An image, its analysis, and the stream sizes at the coarsest and finest quality."""
    image = crop(lena2, 64, 96) if request.param == "gray" else crop(kodim23, 40, 72)
    analysis = encoder.analyse_frame(image, get_profile(PROFILE))
    coarsest = len(encoder.code_frame(analysis, MAX_QUALITY))
    finest = len(encoder.code_frame(analysis, MIN_QUALITY))
    assert coarsest < finest
    return image, analysis, coarsest, finest


def stream_quality(stream: bytes) -> float:
    """The quality grid point a rate-controlled stream was coded at, from its stored steps."""
    ratio = read_header(stream).steps[0] / get_profile(PROFILE).base_steps[0]
    k = round((math.log(ratio) - math.log(MIN_QUALITY)) / BISECTION_STEP)
    assert abs(math.log(ratio) - math.log(MIN_QUALITY) - k * BISECTION_STEP) < 1e-5
    return math.exp(math.log(MIN_QUALITY) + k * BISECTION_STEP)


@settings(max_examples=60)
@given(fraction=st.floats(0.0, 1.1))
def test_stream_fits_the_budget_and_is_tight(subject, fraction):
    image, analysis, coarsest, finest = subject
    budget = coarsest + int(fraction * (finest - coarsest))
    stream = encode(image, max_bytes=budget, profile=PROFILE)
    assert len(stream) <= budget
    assert decode(stream).shape == image.shape
    if budget >= finest:
        assert stream == encoder.code_frame(analysis, MIN_QUALITY)
        return
    quality = stream_quality(stream)
    assert stream == encoder.code_frame(analysis, quality)
    one_step_finer = quality * math.exp(-BISECTION_STEP)
    assert len(encoder.code_frame(analysis, one_step_finer)) > budget


@pytest.mark.parametrize("bpp", [0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0])
def test_bpp_target_is_never_exceeded(subject, bpp):
    image, _, coarsest, _ = subject
    pixels = image.shape[0] * image.shape[1]
    budget = int(bpp * pixels / 8)
    if budget < coarsest:
        with pytest.raises(RateControlError, match="coarsest quality needs"):
            encode(image, bpp=bpp, profile=PROFILE)
        return
    stream = encode(image, bpp=bpp, profile=PROFILE)
    assert len(stream) * 8 / pixels <= bpp
    assert stream == encode(image, max_bytes=budget, profile=PROFILE)


@pytest.mark.parametrize("profile", available_profiles())
def test_every_profile_keeps_every_budget(lena2, kodim23, profile):
    """The budget is a hard limit for every installed profile, whatever its rate control."""
    for image, bpps in ((lena2, (0.1, 0.2)), (kodim23, (0.15, 0.25))):
        pixels = image.shape[0] * image.shape[1]
        for bpp in bpps:
            assert len(encode(image, bpp=bpp, profile=profile)) * 8 / pixels <= bpp
    for image in (crop(lena2, 64, 96), crop(kodim23, 40, 72)):
        for budget in range(150, 1200, 50):
            try:
                stream = encode(image, max_bytes=budget, profile=profile)
            except RateControlError:
                continue
            assert len(stream) <= budget
            assert decode(stream).shape == image.shape


def test_impossible_budget_raises_rate_control_error(subject):
    image, _, coarsest, _ = subject
    with pytest.raises(RateControlError, match=f"needs {coarsest} bytes"):
        encode(image, max_bytes=coarsest - 1, profile=PROFILE)
    assert len(encode(image, max_bytes=coarsest, profile=PROFILE)) == coarsest


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_bytes": 0},
        {"max_bytes": -5},
        {"bpp": 0.0},
        {"bpp": -0.1},
        {"bpp": float("nan")},
        {"bpp": float("inf")},
        {"bpp": 0.2, "max_bytes": 1000},
        {"bpp": 0.2, "quality": 1.0},
        {"max_bytes": 1000, "quality": 1.0},
    ],
)
def test_contradictory_or_invalid_requests_are_refused(gray_crop, kwargs):
    with pytest.raises(ValueError):
        encode(gray_crop, **kwargs)


def test_rate_control_is_deterministic(subject):
    image, _, coarsest, finest = subject
    budget = (coarsest + finest) // 2
    assert encode(image, max_bytes=budget, profile=PROFILE) == encode(
        np.array(image), max_bytes=budget, profile=PROFILE
    )
