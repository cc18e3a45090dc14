"""Colour conversion and chroma resampling (the JPEG/JFIF conventions).

Colour streams carry full-range BT.601 YCbCr with 4:2:0 chroma: the eye forgives
halved chroma resolution, and it cuts the colour payload to about half a luma plane.

Conversion dominated whole-frame encode and decode time when done as separate NumPy
passes over float64 frames, so each direction is one fused numba kernel. The NumPy
references below do the same float operations in the same order, and the tests
require bit-identical results.
"""

import numba
import numpy as np

from . import scratch

_RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ]
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
_CHROMA_OFFSET = (0.0, 128.0, 128.0)


def _chroma_step_ratio() -> float:
    """The chroma quantizer step, relative to luma, that minimises RGB mean squared error.

    A chroma sample's error reaches 4 RGB pixels (4:2:0), in each of R, G and B with the
    weight of its column of the YCbCr -> RGB matrix, so it costs 4 * w times a luma
    error (w: mean squared column entry over the chroma columns and R, G, B). Equal
    distortion slopes give step_c / step_y = 1 / sqrt(4 * w), about 0.51. Measured on the
    colour training images (klt, RGB PSNR), ratios of 0.4 / 0.5 / 0.65 / 0.8 save 7.4 /
    8.0 / 6.7 / 4.2 % BD-rate against equal steps.
    """
    weight = float(np.mean(_YCBCR_TO_RGB[:, 1:] ** 2))
    return 1.0 / float(np.sqrt(4.0 * weight))


CHROMA_STEP_RATIO = _chroma_step_ratio()


def chroma_shape(height: int, width: int) -> tuple[int, int]:
    return (height + 1) // 2, (width + 1) // 2


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxWx3 float64 YCbCr (Y, Cb, Cr in 0..255), full resolution."""
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    m = _RGB_TO_YCBCR
    return np.stack([m[k, 0] * r + m[k, 1] * g + m[k, 2] * b + _CHROMA_OFFSET[k] for k in range(3)], axis=-1)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """HxWx3 float YCbCr -> HxWx3 uint8 RGB, rounded and clipped."""
    y, cb, cr = (ycbcr[..., k] - _CHROMA_OFFSET[k] for k in range(3))
    m = _YCBCR_TO_RGB
    rgb = np.stack([m[k, 0] * y + m[k, 1] * cb + m[k, 2] * cr for k in range(3)], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def downsample_420(plane: np.ndarray) -> np.ndarray:
    """Average 2x2 neighbourhoods; an odd last row or column is replicated first."""
    h, w = plane.shape
    padded = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
    return 0.25 * (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2])


def _upsample_axis(plane: np.ndarray, axis: int) -> np.ndarray:
    """Double one axis with the 3/4-1/4 triangle filter (libjpeg's "fancy upsampling")."""
    n = plane.shape[axis]
    before = np.take(plane, np.maximum(np.arange(n) - 1, 0), axis)
    after = np.take(plane, np.minimum(np.arange(n) + 1, n - 1), axis)
    out = np.stack([0.75 * plane + 0.25 * before, 0.75 * plane + 0.25 * after], axis=axis + 1)
    shape = list(plane.shape)
    shape[axis] *= 2
    return out.reshape(shape)


def upsample_420(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`downsample_420`, cropped to the full-resolution size."""
    return _upsample_axis(_upsample_axis(plane, 0), 1)[:height, :width]


@numba.njit(cache=True)
def _rgb_to_planes_kernel(rgb, m, y, cb, cr):
    """Row pairs: Y of each pixel, and its Cb, Cr into two-row buffers that are then
    averaged 2x2 in the reference's summation order (even, even), (odd, even),
    (even, odd), (odd, odd). An odd last row or column is its own pair.

    ``rgb`` is the image as (H, 3W) rows of interleaved bytes: a constant stride between
    a row's pixels lets the loop load them as vectors (about twice as fast as HxWx3).
    """
    h, w = y.shape
    m00, m01, m02 = m[0, 0], m[0, 1], m[0, 2]
    m10, m11, m12 = m[1, 0], m[1, 1], m[1, 2]
    m20, m21, m22 = m[2, 0], m[2, 1], m[2, 2]
    blue = np.empty((2, w))
    red = np.empty((2, w))
    for i in range(cb.shape[0]):
        for half in range(2):
            r = min(2 * i + half, h - 1)
            for c in range(w):
                red_in = np.float64(rgb[r, 3 * c])
                green_in = np.float64(rgb[r, 3 * c + 1])
                blue_in = np.float64(rgb[r, 3 * c + 2])
                y[r, c] = m00 * red_in + m01 * green_in + m02 * blue_in + 0.0
                blue[half, c] = m10 * red_in + m11 * green_in + m12 * blue_in + 128.0
                red[half, c] = m20 * red_in + m21 * green_in + m22 * blue_in + 128.0
        # Column pairs without a clamp in the loop (which kept it from vectorizing), then
        # an odd last column averaged with itself.
        for j in range(w // 2):
            cb[i, j] = 0.25 * (blue[0, 2 * j] + blue[1, 2 * j] + blue[0, 2 * j + 1] + blue[1, 2 * j + 1])
            cr[i, j] = 0.25 * (red[0, 2 * j] + red[1, 2 * j] + red[0, 2 * j + 1] + red[1, 2 * j + 1])
        if w % 2:
            j, c = w // 2, w - 1
            cb[i, j] = 0.25 * (blue[0, c] + blue[1, c] + blue[0, c] + blue[1, c])
            cr[i, j] = 0.25 * (red[0, c] + red[1, c] + red[0, c] + red[1, c])


def rgb_to_planes(rgb: np.ndarray) -> list[np.ndarray]:
    """HxWx3 uint8 RGB -> [Y (HxW), Cb, Cr (4:2:0)] float64 planes, as the codec codes them
    (in memory reused from earlier encodes inside scratch.reusing_arrays)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(f"expected a non-empty HxWx3 uint8 image, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    y = scratch.empty((h, w))
    cb = scratch.empty(chroma_shape(h, w))
    cr = scratch.empty(chroma_shape(h, w))
    _rgb_to_planes_kernel(np.ascontiguousarray(rgb).reshape(h, 3 * w), _RGB_TO_YCBCR, y, cb, cr)
    return [y, cb, cr]


def rgb_to_planes_reference(rgb: np.ndarray) -> list[np.ndarray]:
    """NumPy reference of :func:`rgb_to_planes`, for tests."""
    ycbcr = rgb_to_ycbcr(rgb)
    return [ycbcr[..., 0], downsample_420(ycbcr[..., 1]), downsample_420(ycbcr[..., 2])]


@numba.njit(cache=True)
def _upsampled(plane, i, i2, j, j2):
    """The triangle filter's value: rows first (i and its neighbour i2), then columns."""
    near = 0.75 * plane[i, j] + 0.25 * plane[i2, j]
    far = 0.75 * plane[i, j2] + 0.25 * plane[i2, j2]
    return 0.75 * near + 0.25 * far


@numba.njit(cache=True)
def _planes_to_rgb_kernel(y, cb, cr, m, out):
    h, w = y.shape
    hc, wc = cb.shape
    for r in range(h):
        i = r // 2
        i2 = max(i - 1, 0) if r % 2 == 0 else min(i + 1, hc - 1)
        for c in range(w):
            j = c // 2
            j2 = max(j - 1, 0) if c % 2 == 0 else min(j + 1, wc - 1)
            luma = y[r, c] - 0.0
            blue = _upsampled(cb, i, i2, j, j2) - 128.0
            red = _upsampled(cr, i, i2, j, j2) - 128.0
            for k in range(3):
                value = np.rint(m[k, 0] * luma + m[k, 1] * blue + m[k, 2] * red)
                out[r, c, k] = min(max(value, 0.0), 255.0)


def _check_planes(planes: list[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    shapes = [(height, width)] + [chroma_shape(height, width)] * (len(planes) - 1)
    if len(planes) not in (1, 3) or [p.shape for p in planes] != shapes:
        raise ValueError(f"planes {[p.shape for p in planes]} do not fit a {width}x{height} image")
    return [np.ascontiguousarray(p, dtype=np.float64) for p in planes]


def planes_to_image(planes: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Decoded float planes (gray, or Y and 4:2:0 Cb, Cr) -> uint8 HxW or HxWx3 RGB."""
    planes = _check_planes(planes, height, width)
    if len(planes) == 1:
        return np.clip(np.rint(planes[0]), 0, 255).astype(np.uint8)
    out = np.empty((height, width, 3), dtype=np.uint8)
    _planes_to_rgb_kernel(*planes, _YCBCR_TO_RGB, out)
    return out


def planes_to_image_reference(planes: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """NumPy reference of :func:`planes_to_image`, for tests."""
    planes = _check_planes(planes, height, width)
    if len(planes) == 1:
        return np.clip(np.rint(planes[0]), 0, 255).astype(np.uint8)
    chroma = [upsample_420(p, height, width) for p in planes[1:]]
    return ycbcr_to_rgb(np.stack([planes[0], *chroma], axis=-1))
