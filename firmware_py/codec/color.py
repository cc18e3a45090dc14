"""Colour conversion and chroma resampling (the JPEG/JFIF conventions).

Colour streams carry full-range BT.601 YCbCr with 4:2:0 chroma: the eye forgives
halved chroma resolution, and it cuts the colour payload to about half a luma plane.
"""

import numpy as np

_RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ]
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
_CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxWx3 float64 YCbCr (Y, Cb, Cr in 0..255)."""
    return rgb.astype(np.float64) @ _RGB_TO_YCBCR.T + _CHROMA_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """HxWx3 float YCbCr -> HxWx3 uint8 RGB, rounded and clipped."""
    rgb = (ycbcr - _CHROMA_OFFSET) @ _YCBCR_TO_RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def downsample_420(plane: np.ndarray) -> np.ndarray:
    """Average 2x2 neighbourhoods; an odd last row or column is replicated first."""
    h, w = plane.shape
    padded = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
    return 0.25 * (
        padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]
    )


def _upsample_axis(plane: np.ndarray, axis: int) -> np.ndarray:
    """Double one axis with the 3/4-1/4 triangle filter (libjpeg's "fancy upsampling")."""
    near = plane
    before = np.concatenate([np.take(plane, [0], axis), np.take(plane, np.arange(plane.shape[axis] - 1), axis)], axis)
    after = np.concatenate([np.take(plane, np.arange(1, plane.shape[axis]), axis), np.take(plane, [-1], axis)], axis)
    even = 0.75 * near + 0.25 * before
    odd = 0.75 * near + 0.25 * after
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(plane.shape)
    shape[axis] *= 2
    return out.reshape(shape)


def upsample_420(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`downsample_420`, cropped to the full-resolution size."""
    return _upsample_axis(_upsample_axis(plane, 0), 1)[:height, :width]


def planes_to_image(planes: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Decoded float planes (gray, or Y and 4:2:0 Cb, Cr) -> uint8 HxW or HxWx3 RGB."""
    if len(planes) == 1:
        return np.clip(np.rint(planes[0]), 0, 255).astype(np.uint8)
    chroma = [upsample_420(p, height, width) for p in planes[1:]]
    return ycbcr_to_rgb(np.stack([planes[0], *chroma], axis=-1))
