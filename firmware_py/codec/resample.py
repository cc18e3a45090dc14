"""Half-resolution coding (format version 3): 2x box downsampling onboard, learned
polyphase upsampling on the ground.

At the lowest quick-preview rates almost every 8x8 block of a full-resolution frame is
DC-only, so the frame decodes as flat tiles. Coding the frame at half resolution lets
each coded block cover 16x16 pixels and spend its bits on low-frequency detail, which
is what those rates can buy (JPEG 2000 gets the same from its wavelet levels). The
onboard side stays cheap: a 2x2 mean in integers. The ground side has CPU to spare: a
linear filter per output phase (7x7 taps of the half-resolution image around the output
pixel's parent), fitted by least squares on coded training images so that it also undoes
part of the coding loss (export/train_upsampler.py).

Whether half resolution pays is decided by the encoder from the byte budget alone
(:meth:`HalfResolution.pays`): bits per pixel below a threshold fitted on the training
split, separately for gray and colour frames, and never for frames too small for it.

Both kernels have NumPy references that the tests compare against; every input is
validated before a kernel runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from .errors import ImageError, ModelError
from .models import artifact_cache, manifest_artifact

FULL, HALF = 1, 2  # coded scales: the stream's coded planes are 1/scale of the output size
RADIUS = 3
TAPS = 2 * RADIUS + 1
WEIGHTS_SHAPE = (2, 2, TAPS, TAPS)  # (output row parity, output column parity, dy, dx)
# A half-resolution frame needs at least a few blocks per side for its filter and its
# restoration to have neighbours; smaller frames are always coded at full resolution.
MIN_HALF_SIDE = 64
KIND = "half-resolution"


@dataclass(frozen=True)
class HalfResolution:
    """The ground-side upsampler and the encoder's rule for choosing half resolution."""

    name: str
    weights: np.ndarray  # WEIGHTS_SHAPE, float64
    gray_below_bpp: float  # half resolution when the budget is below this (gray frames)
    colour_below_bpp: float  # ... and this (colour frames)
    sha256: str

    def pays(self, height: int, width: int, colour: bool, budget_bytes: int) -> bool:
        """True when a frame of this size and budget is better coded at half resolution."""
        if min(height, width) < MIN_HALF_SIDE:
            return False
        threshold = self.colour_below_bpp if colour else self.gray_below_bpp
        return budget_bytes * 8 < threshold * height * width


def coded_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """(height, width) of the planes a stream codes for an output of height x width."""
    if scale == FULL:
        return height, width
    if scale == HALF:
        return (height + 1) // 2, (width + 1) // 2
    raise ValueError(f"coded scale {scale} is not {FULL} or {HALF}")


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageError("image must be a uint8 numpy array")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or image.size == 0:
        raise ImageError(f"image must be a non-empty HxW (gray) or HxWx3 (RGB) array, got shape {image.shape}")


def _channels(image: np.ndarray) -> list[np.ndarray]:
    return [image] if image.ndim == 2 else [np.ascontiguousarray(image[..., c]) for c in range(3)]


def _stack(planes: list[np.ndarray]) -> np.ndarray:
    return planes[0] if len(planes) == 1 else np.stack(planes, axis=-1)


# --- onboard: 2x box downsampling -------------------------------------------------------


@numba.njit(cache=True)
def _box_downsample_kernel(plane, out):
    height, width = plane.shape
    for i in range(out.shape[0]):
        r0, r1 = 2 * i, min(2 * i + 1, height - 1)
        for j in range(out.shape[1]):
            c0, c1 = 2 * j, min(2 * j + 1, width - 1)
            total = np.int32(plane[r0, c0]) + plane[r0, c1] + plane[r1, c0] + plane[r1, c1]
            out[i, j] = (total + 2) // 4


def downsample(image: np.ndarray) -> np.ndarray:
    """The uint8 image at half size (odd sides rounded up): rounded means of 2x2 pixels,
    the last row / column repeated where a side is odd."""
    _check_image(image)
    planes = []
    for plane in _channels(image):
        out = np.empty(coded_size(*plane.shape, HALF), dtype=np.uint8)
        _box_downsample_kernel(plane, out)
        planes.append(out)
    return _stack(planes)


def downsample_reference(image: np.ndarray) -> np.ndarray:
    """NumPy reference of :func:`downsample` (bit-identical)."""
    _check_image(image)
    pad = [(0, image.shape[0] % 2), (0, image.shape[1] % 2)] + [(0, 0)] * (image.ndim - 2)
    even = np.pad(image, pad, mode="edge").astype(np.int32)
    h2, w2 = even.shape[0] // 2, even.shape[1] // 2
    total = even.reshape(h2, 2, w2, 2, *even.shape[2:]).sum(axis=(1, 3))
    return ((total + 2) // 4).astype(np.uint8)


# --- ground: learned polyphase upsampling ----------------------------------------------


@numba.njit(cache=True)
def _polyphase_kernel(plane, weights, out):
    rows, cols = plane.shape
    for y in range(out.shape[0]):
        parent_row, py = y // 2, y % 2
        for x in range(out.shape[1]):
            parent_col, px = x // 2, x % 2
            total = 0.0
            for dy in range(TAPS):
                r = min(max(parent_row + dy - RADIUS, 0), rows - 1)
                for dx in range(TAPS):
                    c = min(max(parent_col + dx - RADIUS, 0), cols - 1)
                    total += weights[py, px, dy, dx] * plane[r, c]
            out[y, x] = total


def _check_upsampling(image: np.ndarray, weights: np.ndarray, height: int, width: int) -> None:
    _check_image(image)
    if not (isinstance(weights, np.ndarray) and weights.shape == WEIGHTS_SHAPE and np.all(np.isfinite(weights))):
        raise ModelError(f"upsampling weights must be finite with shape {WEIGHTS_SHAPE}")
    if image.shape[:2] != coded_size(height, width, HALF):
        raise ValueError(f"a {image.shape[1]}x{image.shape[0]} image is not the half size of {width}x{height}")


def upsample_plane(plane: np.ndarray, weights: np.ndarray, height: int, width: int) -> np.ndarray:
    """A uint8 half-size plane filtered up to a float64 height x width plane."""
    _check_upsampling(plane, weights, height, width)
    out = np.empty((height, width))
    _polyphase_kernel(plane, np.ascontiguousarray(weights, dtype=np.float64), out)
    return out


def upsample_plane_reference(plane: np.ndarray, weights: np.ndarray, height: int, width: int) -> np.ndarray:
    """NumPy reference of :func:`upsample_plane` (equal up to float summation order)."""
    _check_upsampling(plane, weights, height, width)
    rows, cols = plane.shape
    taps = shifted_taps(plane)
    out = np.empty((2 * rows, 2 * cols))
    for py in range(2):
        for px in range(2):
            out[py::2, px::2] = np.tensordot(weights[py, px].ravel(), taps, axes=1)
    return out[:height, :width]


def shifted_taps(plane: np.ndarray) -> np.ndarray:
    """(TAPS*TAPS, rows, cols): the plane shifted by each (dy, dx) of the filter window,
    edges repeated; the design matrix of the least-squares fit and of the reference."""
    rows, cols = plane.shape
    padded = np.pad(plane.astype(np.float64), RADIUS, mode="edge")
    return np.stack([padded[dy : dy + rows, dx : dx + cols] for dy in range(TAPS) for dx in range(TAPS)])


def upsample(image: np.ndarray, half: HalfResolution, height: int, width: int) -> np.ndarray:
    """A decoded half-size uint8 image (gray or RGB) brought back to height x width."""
    planes = [upsample_plane(plane, half.weights, height, width) for plane in _channels(image)]
    return _stack([np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in planes])


@artifact_cache(maxsize=8)
def load_half_resolution(name: str, directory: Path | None = None) -> HalfResolution:
    """Load an upsampler and its rule by manifest name, refusing any hash or shape mismatch."""
    path, sha256 = manifest_artifact(name, KIND, "half-resolution model", directory)
    with np.load(path, allow_pickle=False) as arrays:
        if not {"weights", "gray_below_bpp", "colour_below_bpp"} <= set(arrays.files):
            raise ModelError(f"model '{name}': {path} lacks the weights or the rule thresholds")
        weights = np.asarray(arrays["weights"], dtype=np.float64)
        gray, colour = float(arrays["gray_below_bpp"]), float(arrays["colour_below_bpp"])
    if weights.shape != WEIGHTS_SHAPE or not np.all(np.isfinite(weights)):
        raise ModelError(f"model '{name}': weights must be finite with shape {WEIGHTS_SHAPE}, got {weights.shape}")
    if not (0 <= gray and 0 <= colour):
        raise ModelError(f"model '{name}': negative rule thresholds {gray}, {colour}")
    return HalfResolution(name, weights, gray, colour, sha256)
