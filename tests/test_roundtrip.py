"""encode -> decode on crops of real images: any size, gray and colour, deterministic,
for every installed profile."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_py import metrics
from firmware_py.codec import ImageError, QpvError, available_profiles, blocking, color, decode, encode, read_header

from codec_helpers import crop

SIZES = [(1, 1), (1, 17), (7, 13), (8, 8), (9, 17), (63, 65), (257, 129)]
# A preview must look like its image at the default quality; tiny crops of smooth
# regions score higher, so this is a floor, not the codec's typical figure.
MIN_PSNR_DB = 24.0
PROFILES = available_profiles()


@pytest.fixture(params=["gray", "colour"])
def source(request, lena2, kodim23):
    return lena2 if request.param == "gray" else kodim23


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("height", "width"), SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_round_trip_preserves_shape_and_dtype(source, height, width, profile):
    image = crop(source, height, width)
    stream = encode(image, profile=profile)
    decoded = decode(stream)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    header = read_header(stream)
    assert (header.height, header.width) == (height, width)
    assert metrics.psnr(image, decoded) >= MIN_PSNR_DB
    np.testing.assert_array_equal(decode(stream), decoded)
    assert encode(image, profile=profile) == stream


@pytest.mark.parametrize("profile", PROFILES)
def test_whole_images_round_trip(lena2, kodim23, profile):
    for image, floor in ((lena2, 28.0), (kodim23, 26.0)):
        decoded = decode(encode(image, profile=profile))
        assert decoded.shape == image.shape
        assert metrics.psnr(image, decoded) >= floor


def test_paper_regime_on_lena2(lena2):
    """The paper's Table 3: seed mode on lena2 reaches >= 29.0 dB at <= 0.22 bpp."""
    stream = encode(lena2, bpp=0.22, profile="seed")
    bpp = len(stream) * 8 / lena2.size
    assert bpp <= 0.22
    assert metrics.psnr(lena2, decode(stream)) >= 29.0


@pytest.mark.parametrize("profile", PROFILES)
def test_finer_quality_costs_more_bytes_and_gains_quality(lena2, profile):
    image = crop(lena2, 128, 128)
    coarse, fine = encode(image, quality=4.0, profile=profile), encode(image, quality=0.25, profile=profile)
    assert len(fine) > len(coarse)
    assert metrics.psnr(image, decode(fine)) > metrics.psnr(image, decode(coarse))


def test_colour_planes_are_coded_at_420(kodim23):
    image = crop(kodim23, 33, 47)
    decoded = decode(encode(image, quality=0.25, profile="seed"))
    # Luma carries the detail: the decoded luma is close to the input's.
    luma_in = color.rgb_to_ycbcr(image)[..., 0]
    luma_out = color.rgb_to_ycbcr(decoded)[..., 0]
    assert np.sqrt(np.mean((luma_in - luma_out) ** 2)) < np.sqrt(np.mean((luma_in - luma_in.mean()) ** 2))


@pytest.mark.parametrize("profile", PROFILES)
def test_gray_looking_rgb_stays_colour_through_the_api(lena2, profile):
    rgb = np.repeat(crop(lena2, 16, 24)[..., None], 3, axis=2)
    stream = encode(rgb, profile=profile)
    assert decode(stream).shape == rgb.shape
    assert read_header(stream).colour.name == "YCBCR420"


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((8, 8), dtype=np.float64),
        np.zeros((8, 8), dtype=np.uint16),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((8, 8, 1), dtype=np.uint8),
        np.zeros((0, 8), dtype=np.uint8),
        np.zeros(8, dtype=np.uint8),
        np.zeros((1, 65536), dtype=np.uint8),
    ],
    ids=["float", "uint16", "rgba", "one-channel", "empty", "1-d", "too-wide"],
)
def test_unsupported_images_raise_image_error(image):
    with pytest.raises(ImageError):
        encode(image)


def test_list_input_raises_image_error():
    with pytest.raises(ImageError):
        encode([[1, 2], [3, 4]])


@pytest.mark.parametrize("quality", [0.0, 1 / 32, 17.0, float("nan")])
def test_quality_outside_the_range_is_refused(gray_crop, quality):
    with pytest.raises(QpvError, match="outside"):
        encode(gray_crop, quality=quality)


def test_blocks_reassemble_exactly(lena2):
    for height, width in SIZES:
        plane = crop(lena2, height, width).astype(np.float64)
        blocks = blocking.plane_to_blocks(plane)
        assert blocks.shape == (np.prod(blocking.block_grid(height, width)), 64)
        np.testing.assert_array_equal(blocking.blocks_to_plane(blocks, height, width), plane)


def test_colour_conversion_round_trips(kodim23):
    image = crop(kodim23, 64, 64)
    np.testing.assert_array_equal(color.ycbcr_to_rgb(color.rgb_to_ycbcr(image)), image)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (5, 7), (6, 8)])
def test_chroma_resampling_keeps_flat_planes_and_sizes(height, width):
    flat = np.full((height, width), 77.0)
    small = color.downsample_420(flat)
    assert small.shape == ((height + 1) // 2, (width + 1) // 2)
    np.testing.assert_allclose(color.upsample_420(small, height, width), flat)
