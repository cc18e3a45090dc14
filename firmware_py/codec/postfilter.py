"""Learned ground-side post-filter of decoded transform-profile planes (ground only).

After restoration and the linear block-edge filter (restoration.py), a decoded plane at
quick-preview rates still shows ringing around edges, leftover blocking and flat tiles.
A small non-linear filter removes part of that, as artifact-reduction CNNs do for JPEG
(AR-CNN, Dong et al. 2015): three convolutions (5x5 -> CHANNELS, 3x3 -> CHANNELS,
3x3 -> 1, ReLU between) predict a correction that is added to the plane. It is told two
things a plain CNN cannot see: the plane's quantizer step (log scale, as a bias of each
hidden layer: the artifacts grow with the step) and each pixel's position inside its
8x8 block (a learned bias per row and column phase of the first layer: blocking sits on
the block grid). Trained on decoded klt planes of the training split
(export/train_postfilter.py).

It runs on every decoded plane (Y, Cb, Cr or gray) at its coded size, before colour
conversion and upsampling. The plane is padded by the filter's radius with its edge
pixels, so any plane size works, and filtered in strips of rows, so memory stays bounded
on 12 Mpx frames, with float32 matrix products arranged to copy little (conv_plane,
conv_wide, conv_to_one). NumPy only:
the ground needs no deep-learning runtime. The model is the decoder's own choice, like
restoration: a stream's fingerprint does not name it (profile_v2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import resample
from .blocking import BLOCK
from .errors import ModelError
from .models import artifact_cache, manifest_artifact

KIND = "plane-postfilter"
CHANNELS = 16
KERNELS = (5, 3, 3)  # first, middle, last convolution
RADIUS = sum(k // 2 for k in KERNELS)  # pixels of context each side of an output pixel
CENTRE, SCALE = 128.0, 64.0  # plane values are filtered as (value - CENTRE) / SCALE
STEP_REFERENCE = 50.0  # the step conditioning is log(step / STEP_REFERENCE)
STRIP_ROWS = 64  # output rows per strip (bounds memory: ~4 * rows * width * CHANNELS floats)
SCALES = (resample.FULL, resample.HALF)  # the rows of step_range: one trained step range per coded scale
SHAPES = {
    "conv1": (KERNELS[0], KERNELS[0], 1, CHANNELS),
    "bias1": (CHANNELS,),
    "step1": (CHANNELS,),
    "phase_rows": (BLOCK, CHANNELS),
    "phase_cols": (BLOCK, CHANNELS),
    "conv2": (KERNELS[1], KERNELS[1], CHANNELS, CHANNELS),
    "bias2": (CHANNELS,),
    "step2": (CHANNELS,),
    "conv3": (KERNELS[2], KERNELS[2], CHANNELS, 1),
    "bias3": (1,),
    "step_range": (len(SCALES), 2),
}  # the model file's arrays; convolutions are (kernel rows, kernel columns, in, out)
TRAINED = tuple(key for key in SHAPES if key != "step_range")  # learned; step_range is measured


@dataclass(frozen=True)
class PostFilter:
    """Weights of the post-filter (SHAPES, float32) and the hash of their file."""

    name: str
    arrays: dict[str, np.ndarray]
    sha256: str


def step_input(step: float) -> float:
    """The step as the network sees it."""
    return float(np.log(step / STEP_REFERENCE))


def conv_plane(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 2-D convolution (cross-correlation) of an (H, W) plane by (k, k, 1, out):
    one (pixels, k*k) x (k*k, out) product over the plane's k x k windows (im2col)."""
    k, channels_out = kernel.shape[0], kernel.shape[3]
    windows = np.lib.stride_tricks.sliding_window_view(plane, (k, k))  # (Ho, Wo, k, k)
    rows, cols = windows.shape[:2]
    return (windows.reshape(rows * cols, k * k) @ kernel.reshape(k * k, channels_out)).reshape(rows, cols, channels_out)


def conv_wide(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 2-D convolution of (H, W, in) by (k, k, in, out) for many outputs: the k
    column shifts of each row side by side (H, Wo, k*in), then one product per kernel
    row. A third of a full im2col copy, and products three times as deep as one per tap."""
    k, channels_in, channels_out = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    rows, cols = x.shape[0] - k + 1, x.shape[1] - k + 1
    shifted = np.concatenate([x[:, dx : dx + cols] for dx in range(k)], axis=2)
    out = shifted[:rows].reshape(rows * cols, -1) @ kernel[0].reshape(k * channels_in, channels_out)
    for dy in range(1, k):
        out += shifted[dy : dy + rows].reshape(rows * cols, -1) @ kernel[dy].reshape(k * channels_in, channels_out)
    return out.reshape(rows, cols, channels_out)


def conv_to_one(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 2-D convolution of (H, W, in) by (k, k, in, 1) to an (Ho, Wo) plane: one
    (pixels, in) x (in, k*k) product gives every tap's contribution at every pixel, which
    k*k shifted plane additions gather (far cheaper than k*k products of one column)."""
    k = kernel.shape[0]
    rows, cols = x.shape[0] - k + 1, x.shape[1] - k + 1
    taps = (x.reshape(-1, x.shape[2]) @ kernel[:, :, :, 0].reshape(k * k, -1).T).reshape(x.shape[0], x.shape[1], k * k)
    out = taps[:rows, :cols, 0].copy()
    for tap in range(1, k * k):
        dy, dx = divmod(tap, k)
        out += taps[dy : dy + rows, dx : dx + cols, tap]
    return out


def correction(padded: np.ndarray, first_row: int, step: float, model: PostFilter) -> np.ndarray:
    """Correction (in SCALE units) of the plane rows starting at ``first_row`` from their
    normalized, edge-padded rows (RADIUS more on each side than the output)."""
    w, s = model.arrays, np.float32(step_input(step))
    margin = RADIUS - KERNELS[0] // 2  # first-layer outputs reach this far beyond the plane
    hidden = conv_plane(padded, w["conv1"])
    rows, cols = hidden.shape[:2]
    hidden += w["phase_rows"][np.arange(first_row - margin, first_row - margin + rows) % BLOCK][:, None, :]
    hidden += (w["phase_cols"][np.arange(-margin, cols - margin) % BLOCK] + w["bias1"] + s * w["step1"])[None, :, :]
    np.maximum(hidden, 0, out=hidden)
    hidden = conv_wide(hidden, w["conv2"])
    hidden += w["bias2"] + s * w["step2"]
    np.maximum(hidden, 0, out=hidden)
    return conv_to_one(hidden, w["conv3"]) + w["bias3"][0]


def covers(model: PostFilter, step: float, scale: int) -> bool:
    """Whether ``step`` lies in the range of steps the filter was trained on at coded ``scale``.

    Outside it the filter extrapolates: on a very smooth 12 Mpx frame coded at a step
    below any training step it cost 1.3 dB, so such planes are left as they are. The
    range is per coded scale: the same step means different content at full and at half
    resolution, and the filter knows only the steps it saw at each.
    """
    low, high = model.arrays["step_range"][SCALES.index(scale)]
    return bool(low <= step <= high)


def apply(plane: np.ndarray, step: float, model: PostFilter | None, scale: int) -> np.ndarray:
    """The decoded float plane (coded at ``scale``) with its coding artifacts reduced
    (unchanged without a model, or at a step outside the model's range at that scale)."""
    if plane.ndim != 2 or plane.size == 0 or not step > 0 or scale not in SCALES:
        raise ValueError(
            f"post-filter needs a non-empty 2-D plane, a positive step and a scale in {SCALES}, "
            f"got {plane.shape}, {step}, {scale}"
        )
    if model is None or not covers(model, step, scale):
        return plane
    padded = ((np.pad(plane, RADIUS, mode="edge") - CENTRE) / SCALE).astype(np.float32)
    out = np.array(plane, dtype=np.float64)
    for top in range(0, plane.shape[0], STRIP_ROWS):
        bottom = min(top + STRIP_ROWS, plane.shape[0])
        out[top:bottom] += SCALE * correction(padded[top : bottom + 2 * RADIUS], top, step, model)
    return out


@artifact_cache(maxsize=4)
def load_postfilter(name: str, directory: Path | None = None) -> PostFilter:
    """Load a post-filter by manifest name, refusing any hash, name, shape or value mismatch."""
    path, sha256 = manifest_artifact(name, KIND, "post-filter", directory)
    with np.load(path, allow_pickle=False) as stored:
        if sorted(stored.files) != sorted(SHAPES):
            raise ModelError(
                f"model '{name}': post-filter arrays are {sorted(stored.files)}, expected {sorted(SHAPES)}"
            )
        arrays = {key: np.asarray(stored[key]) for key in SHAPES}
    return PostFilter(name, check_arrays(name, arrays), sha256)


def check_arrays(name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as float32, refused unless each is finite, numeric and of its SHAPES shape."""
    checked = {}
    for key, shape in SHAPES.items():
        array = arrays[key]
        if array.shape != shape or array.dtype.kind not in "fi":
            raise ModelError(
                f"model '{name}': post-filter array '{key}' is {array.dtype} {array.shape}, expected {shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ModelError(f"model '{name}': post-filter array '{key}' is not finite")
        checked[key] = array.astype(np.float32)
    for scale, (low, high) in zip(SCALES, checked["step_range"]):
        if not 0 < low <= high:
            raise ModelError(
                f"model '{name}': post-filter step_range {low}..{high} at scale {scale} is not a positive range"
            )
    return checked
