"""The ``klt`` transform profile (format version 2): round trips, its numba kernels against
their references, hostile streams, rate control, and that seed (version 1) streams still
decode beside it."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_py import metrics
from firmware_py.cli import main as qpv_main
from firmware_py.codec import CorruptStreamError, ModelError, RateControlError, decode, encode, read_header
from firmware_py.codec import color, deadzone, encoder_v2, prediction, ratecontrol, runlength
from firmware_py.codec.profile_v2 import get_transform_profile
from firmware_py.codec.profiles import MAX_QUALITY, MIN_QUALITY

from codec_helpers import crop, reseal

PROFILE = "klt"
FINGERPRINT = slice(12, 16)


@pytest.fixture(scope="module")
def klt_gray(lena2) -> bytes:
    return encode(crop(lena2, 24, 40), quality=0.5, profile=PROFILE)


@pytest.fixture(scope="module")
def klt_colour(kodim23) -> bytes:
    return encode(crop(kodim23, 21, 35), quality=0.5, profile=PROFILE)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (7, 9), (8, 8), (17, 30), (64, 96)])
def test_gray_round_trip_any_size(lena2, height, width):
    image = crop(lena2, height, width)
    stream = encode(image, quality=0.25, profile=PROFILE)
    decoded = decode(stream)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert read_header(stream).version == 6
    assert metrics.psnr(image, decoded) > 28.0


@pytest.mark.parametrize(("height", "width"), [(1, 1), (5, 3), (21, 35), (48, 80)])
def test_colour_round_trip_any_size(kodim23, height, width):
    image = crop(kodim23, height, width)
    decoded = decode(encode(image, quality=0.25, profile=PROFILE))
    assert decoded.shape == image.shape
    assert metrics.psnr(image, decoded) > 25.0


def test_finer_quality_costs_more_and_decodes_better(lena2):
    image = crop(lena2, 128, 128)
    coarse, fine = (encode(image, quality=q, profile=PROFILE) for q in (2.0, 0.5))
    assert len(fine) > len(coarse)
    assert metrics.psnr(image, decode(fine)) > metrics.psnr(image, decode(coarse))


def test_beats_seed_at_the_same_budget(lena2):
    budget = int(0.2 * lena2.size / 8)
    klt, seed = (decode(encode(lena2, max_bytes=budget, profile=p)) for p in (PROFILE, "seed"))
    assert metrics.psnr(lena2, klt) > metrics.psnr(lena2, seed) + 1.0


def test_seed_streams_still_decode(gray_crop, colour_crop):
    for image in (gray_crop, colour_crop):
        stream = encode(image, profile="seed")
        assert read_header(stream).version == 1
        assert decode(stream).shape == image.shape


# --- kernels against their references -------------------------------------------------


def random_levels(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse levels with long zero runs, big values and full blocks, as real planes have."""
    levels = np.where(rng.random((n, 64)) < rng.random((n, 1)) ** 3, rng.integers(-40, 41, (n, 64)), 0)
    levels[::7, 63] = rng.integers(1, 3000, len(levels[::7]))
    levels[::11] = rng.integers(-3, 4, (len(levels[::11]), 64))
    return rng.integers(-2000, 2001, n), levels.astype(np.int64)


@given(st.integers(0, 2**32 - 1), st.integers(1, 60))
def test_pack_and_unpack_match_references(seed, n):
    dc, levels = random_levels(np.random.default_rng(seed), n)
    levels[:, 0] = 0
    tables = runlength.tables_for(*runlength.symbol_counts(dc, levels)[:2])
    payload = runlength.pack(dc, levels, tables)
    assert payload == runlength.pack_reference(dc, levels, tables)
    for unpacked in (runlength.unpack(payload, n, tables), runlength.unpack_reference(payload, n, tables)):
        np.testing.assert_array_equal(unpacked[0], dc)
        np.testing.assert_array_equal(unpacked[1], levels)


@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12))
def test_dc_prediction_matches_reference_and_inverts(seed, rows, cols):
    levels = np.random.default_rng(seed).integers(-500, 500, rows * cols)
    residuals = prediction.dc_residuals(levels, rows, cols)
    np.testing.assert_array_equal(residuals, prediction.dc_residuals_reference(levels, rows, cols))
    np.testing.assert_array_equal(prediction.dc_levels(residuals, rows, cols), levels)


@given(st.integers(0, 2**32 - 1), st.floats(0.5, 300.0), st.sampled_from([0.1, 0.25, 0.3, 0.5]))
def test_deadzone_quantizer_matches_reference_and_its_cells(seed, step, rounding):
    coefficients = np.random.default_rng(seed).normal(0, 200, (50, 64))
    steps = np.full(64, step)
    levels = deadzone.quantize(coefficients, steps, rounding)
    np.testing.assert_array_equal(levels, deadzone.quantize_reference(coefficients, steps, rounding))
    low, high = deadzone.cell_bounds(levels, steps, rounding)
    error = coefficients - levels * step
    assert np.all(error >= low - 1e-9) and np.all(error <= high + 1e-9)


def test_dc_levels_refuse_to_grow_without_bound():
    with pytest.raises(CorruptStreamError, match="DC level"):
        prediction.dc_levels(np.full(4, 30000), 1, 4)


# --- hostile streams ------------------------------------------------------------------


def decode_or_corrupt(stream: bytes) -> None:
    """A mutated stream either decodes to an image or raises CorruptStreamError."""
    try:
        decode(stream)
    except CorruptStreamError:
        pass


@pytest.mark.slow
@pytest.mark.parametrize("which", ["gray", "colour"])
def test_mutated_streams_raise_only_corrupt_stream_error(which, klt_gray, klt_colour):
    stream = klt_gray if which == "gray" else klt_colour
    rng = np.random.default_rng(5)
    for cut in range(len(stream)):
        with pytest.raises(CorruptStreamError):
            decode(stream[:cut])
    body_bits = (len(stream) - 4) * 8
    for _ in range(1500):
        mutated = bytearray(stream)
        for bit in rng.choice(body_bits, rng.integers(1, 4), replace=False):
            if FINGERPRINT.start * 8 <= bit < FINGERPRINT.stop * 8:
                continue  # a changed fingerprint is a ModelError, tested below
            mutated[bit // 8] ^= 1 << (bit % 8)
        if bytes(mutated) == stream:
            continue
        with pytest.raises(CorruptStreamError):
            decode(bytes(mutated))  # CRC not recomputed: the checksum catches it
        decode_or_corrupt(reseal(bytes(mutated)))


def test_truncated_payload_with_valid_crc_is_corrupt(klt_gray):
    with pytest.raises(CorruptStreamError):
        decode(reseal(klt_gray[:-6] + klt_gray[-4:]))


def test_changed_fingerprint_is_a_model_error(klt_gray):
    mutated = bytearray(klt_gray)
    mutated[FINGERPRINT.start] ^= 0xFF
    with pytest.raises(ModelError):
        decode(reseal(bytes(mutated)))


def test_bad_dead_zone_offset_is_corrupt(klt_gray):
    offset = 16 + 4  # fixed header, one step
    for value in (0, 33, 255):
        mutated = klt_gray[:offset] + struct.pack("<B", value) + klt_gray[offset + 1 :]
        with pytest.raises(CorruptStreamError, match="dead-zone"):
            decode(reseal(mutated))


def test_ac_table_with_impossible_symbol_is_corrupt():
    from firmware_py.codec.huffman import HuffmanTable

    tables = runlength.PlaneTables(HuffmanTable(0, np.array([1], np.uint8)), HuffmanTable(0x10, np.array([1, 1], np.uint8)))
    with pytest.raises(CorruptStreamError, match="zero-size"):
        runlength.unpack(b"\x00", 1, tables)


# --- rate control ---------------------------------------------------------------------


@pytest.mark.parametrize("bpp", [0.05, 0.1, 0.15, 0.25, 0.5])
def test_rate_control_never_exceeds_the_budget(lena2, bpp):
    image = crop(lena2, 256, 256)
    budget = int(bpp * image.size / 8)
    stream = encode(image, bpp=bpp, profile=PROFILE)
    assert len(stream) <= budget
    if len(stream) < 0.97 * budget:
        # Only where the size jumps over the whole band (a small frame's tables change
        # with the step): then a slightly finer quality is already over the budget.
        profile = get_transform_profile(PROFILE)
        quality = read_header(stream).steps[0] / profile.base_step
        frame = encoder_v2.transform_frame(image, profile)
        assert encoder_v2.coded_size(frame, *encoder_v2.quantize_frame(frame, quality * 0.999)) > budget


def test_a_budget_that_rounds_to_no_bytes_is_a_rate_control_error(lena2):
    with pytest.raises(RateControlError, match="budget of 0 bytes fits no stream"):
        encode(crop(lena2, 16, 16), bpp=0.01, profile=PROFILE)


@given(st.floats(0.3, 3.0), st.integers(200, 100_000))
def test_fit_quality_lands_in_band_or_at_the_finest(exponent, budget):
    def size_at(quality: float) -> int:
        return int(5000 * quality**-exponent) + 40

    if size_at(MAX_QUALITY) > budget:
        with pytest.raises(RateControlError):
            ratecontrol.fit_quality(size_at, budget)
        return
    calls = []
    quality, size = ratecontrol.fit_quality(lambda q: calls.append(q) or size_at(q), budget)
    assert size == size_at(quality) <= budget
    assert size >= 0.97 * budget or quality == pytest.approx(MIN_QUALITY)
    assert len(calls) <= ratecontrol.MAX_PASSES


def test_impossible_budget_is_a_rate_control_error(lena2):
    with pytest.raises(RateControlError):
        encode(lena2, max_bytes=60, profile=PROFILE)


# --- command line ---------------------------------------------------------------------


def test_cli_encodes_and_decodes_with_the_profile(tmp_path, capsys):
    source = tmp_path / "in.png"
    from firmware_py import datasets, imageio

    imageio.save_image(source, crop(imageio.load_image(datasets.data_dir() / "waterloo/lena2.png"), 40, 56))
    assert qpv_main(["encode", str(source), "-o", str(tmp_path / "a.qpv"), "--profile", PROFILE, "--bpp", "0.5"]) == 0
    assert qpv_main(["decode", str(tmp_path / "a.qpv"), "-o", str(tmp_path / "a.png")]) == 0
    assert qpv_main(["info", str(tmp_path / "a.qpv")]) == 0
    assert f"profile {PROFILE}" in capsys.readouterr().out


def test_colour_streams_carry_one_step_per_plane_kind(kodim23):
    stream = encode(crop(kodim23, 64, 80), quality=1.0, profile=PROFILE)
    luma, chroma = read_header(stream).steps
    assert 0.45 < color.CHROMA_STEP_RATIO < 0.55
    assert chroma == pytest.approx(luma * color.CHROMA_STEP_RATIO, rel=1e-6)
    assert metrics.psnr(crop(kodim23, 64, 80), decode(stream)) > 25
    one_step = reseal(stream[:7] + bytes([1]) + stream[8:])  # class count byte: 2 -> 1
    with pytest.raises(CorruptStreamError, match="has 2 steps, not 1"):
        decode(one_step)
