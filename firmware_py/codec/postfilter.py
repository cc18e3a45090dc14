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
pixels, so any plane size works, and filtered in strips of rows with one float32 matrix product per
layer and kernel tap, so memory stays bounded on 12 Mpx frames. NumPy only:
the ground needs no deep-learning runtime. The model is the decoder's own choice, like
restoration: a stream's fingerprint does not name it (profile_v2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blocking import BLOCK
from .errors import ModelError
from .models import artifact_cache, load_manifest, models_dir, verified_artifact

KIND = "plane-postfilter"
CHANNELS = 16
KERNELS = (5, 3, 3)  # first, middle, last convolution
RADIUS = sum(k // 2 for k in KERNELS)  # pixels of context each side of an output pixel
CENTRE, SCALE = 128.0, 64.0  # plane values are filtered as (value - CENTRE) / SCALE
STEP_REFERENCE = 50.0  # the step conditioning is log(step / STEP_REFERENCE)
STRIP_ROWS = 32  # output rows per strip (bounds memory: a few rows * width * CHANNELS floats)
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
    "step_range": (2,),
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


def conv_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 2-D convolution (cross-correlation) of (H, W, in) by (k, k, in, out): one
    (pixels, in) x (in, out) product per tap, accumulated (cheaper than an im2col copy
    when ``in`` is large)."""
    k = kernel.shape[0]
    rows, cols = x.shape[0] - k + 1, x.shape[1] - k + 1
    out = np.zeros((rows * cols, kernel.shape[3]), dtype=np.float32)
    for dy in range(k):
        for dx in range(k):
            out += x[dy : dy + rows, dx : dx + cols].reshape(rows * cols, -1) @ kernel[dy, dx]
    return out.reshape(rows, cols, kernel.shape[3])


def phase_bias(model: PostFilter, first_row: int, rows: int, first_col: int, cols: int) -> np.ndarray:
    """(rows, cols, CHANNELS) first-layer bias of each pixel's position in its block."""
    row_phase = model.arrays["phase_rows"][np.arange(first_row, first_row + rows) % BLOCK]
    col_phase = model.arrays["phase_cols"][np.arange(first_col, first_col + cols) % BLOCK]
    return row_phase[:, None, :] + col_phase[None, :, :]


def correction(padded: np.ndarray, first_row: int, step: float, model: PostFilter) -> np.ndarray:
    """Correction (in SCALE units) of the plane rows starting at ``first_row`` from their
    normalized, edge-padded rows (RADIUS more on each side than the output)."""
    w, s = model.arrays, step_input(step)
    margin = RADIUS - KERNELS[0] // 2  # first-layer outputs reach this far beyond the plane
    hidden = conv_plane(padded, w["conv1"])
    hidden += w["bias1"] + s * w["step1"]
    hidden += phase_bias(model, first_row - margin, hidden.shape[0], -margin, hidden.shape[1])
    np.maximum(hidden, 0, out=hidden)
    hidden = conv_valid(hidden, w["conv2"])
    hidden += w["bias2"] + s * w["step2"]
    np.maximum(hidden, 0, out=hidden)
    return conv_valid(hidden, w["conv3"])[:, :, 0] + w["bias3"][0]


def covers(model: PostFilter, step: float) -> bool:
    """Whether ``step`` lies in the range of steps the filter was trained on.

    Outside it the filter extrapolates: on a very smooth 12 Mpx frame coded at a step
    below any training step it cost 1.3 dB, so such planes are left as they are.
    """
    low, high = model.arrays["step_range"]
    return bool(low <= step <= high)


def apply(plane: np.ndarray, step: float, model: PostFilter | None) -> np.ndarray:
    """The decoded float plane with its coding artifacts reduced (unchanged without a
    model, or at a step outside the model's trained range)."""
    if plane.ndim != 2 or plane.size == 0 or not step > 0:
        raise ValueError(f"post-filter needs a non-empty 2-D plane and a positive step, got {plane.shape}, {step}")
    if model is None or not covers(model, step):
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
    directory = directory or models_dir()
    entry = load_manifest(directory)["models"].get(name)
    if entry is None or entry.get("kind") != KIND:
        raise ModelError(f"post-filter '{name}' is not in the manifest of {directory}")
    path, sha256 = verified_artifact(directory, entry, f"model '{name}'")
    with np.load(path, allow_pickle=False) as stored:
        if sorted(stored.files) != sorted(SHAPES):
            raise ModelError(f"model '{name}': post-filter arrays are {sorted(stored.files)}, expected {sorted(SHAPES)}")
        arrays = {key: np.asarray(stored[key]) for key in SHAPES}
    return PostFilter(name, check_arrays(name, arrays), sha256)


def check_arrays(name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as float32, refused unless each is finite, numeric and of its SHAPES shape."""
    checked = {}
    for key, shape in SHAPES.items():
        array = arrays[key]
        if array.shape != shape or array.dtype.kind not in "fi":
            raise ModelError(f"model '{name}': post-filter array '{key}' is {array.dtype} {array.shape}, expected {shape}")
        if not np.all(np.isfinite(array)):
            raise ModelError(f"model '{name}': post-filter array '{key}' is not finite")
        checked[key] = array.astype(np.float32)
    low, high = checked["step_range"]
    if not 0 < low <= high:
        raise ModelError(f"model '{name}': post-filter step_range {low}..{high} is not a positive range")
    return checked
