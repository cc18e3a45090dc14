"""Decoder-side restoration of quantized transform blocks (format version 2, ground only).

At quick-preview rates most coefficients are quantized to zero and blocks decode as flat
or nearly flat tiles. The neighbours know more: a smooth ramp across four DC-only blocks
says what each block's low-frequency coefficients probably were. This stage estimates
every block's quantization error from its own dequantized coefficients and the first
``NEIGHBOUR_COEFFICIENTS`` of its 8 neighbours, with a linear map learned offline (ridge
regression on the training split, one map per quantizer step; ``export/train_v2.py``),
then clips each estimate to its level's quantization cell, so that the restored block
is still one the encoder could have sent. It replaces a deblocking filter and smooth
interpolation of low-detail blocks with one learned, cell-consistent estimator.

It costs one (n, 193) x (193, 64) product per plane on the ground; the encoder never
runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import deadzone
from .blocking import BLOCK_PIXELS
from .errors import ModelError
from .models import artifact_cache, load_manifest, models_dir, verified_artifact

NEIGHBOUR_COEFFICIENTS = 16
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
FEATURES = BLOCK_PIXELS + len(NEIGHBOURS) * NEIGHBOUR_COEFFICIENTS + 1


@dataclass(frozen=True)
class RestorationModel:
    """One linear map per quantizer step: weights[i] (FEATURES, 64) is used near steps[i]."""

    name: str
    steps: np.ndarray  # (bins,) increasing
    weights: np.ndarray  # (bins, FEATURES, 64)
    sha256: str

    def weights_for(self, step: float) -> np.ndarray:
        """The map trained at the step nearest to ``step`` (in log scale)."""
        return self.weights[int(np.argmin(np.abs(np.log(self.steps) - np.log(step))))]


def features(scaled: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(n, FEATURES): a block's 64 coefficients, its neighbours' first ones, and 1.

    ``scaled`` holds dequantized coefficients divided by the step, raster order; blocks
    beyond the plane edge repeat the edge block.
    """
    grid = scaled.reshape(rows, cols, BLOCK_PIXELS)
    padded = np.pad(grid[:, :, :NEIGHBOUR_COEFFICIENTS], ((1, 1), (1, 1), (0, 0)), mode="edge")
    parts = [grid] + [padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols] for dr, dc in NEIGHBOURS]
    parts.append(np.ones((rows, cols, 1)))
    return np.concatenate(parts, axis=2).reshape(rows * cols, FEATURES)


def restore(levels: np.ndarray, step: float, rounding: float, rows: int, cols: int, model: RestorationModel) -> np.ndarray:
    """Estimated (n, 64) coefficients of quantized blocks, each inside its level's cell."""
    steps = np.full(BLOCK_PIXELS, step)
    dequantized = levels * step
    correction = features(levels.astype(np.float64), rows, cols) @ model.weights_for(step) * step
    low, high = deadzone.cell_bounds(levels, steps, rounding)
    return dequantized + np.clip(correction, low, high)


@artifact_cache(maxsize=8)
def load_restoration(name: str, directory: Path | None = None) -> RestorationModel:
    """Load a restoration model by manifest name, refusing any hash or shape mismatch."""
    directory = directory or models_dir()
    entry = load_manifest(directory)["models"].get(name)
    if entry is None or entry.get("kind") != "block-restoration":
        raise ModelError(f"restoration model '{name}' is not in the manifest of {directory}")
    path, sha256 = verified_artifact(directory, entry, f"model '{name}'")
    with np.load(path, allow_pickle=False) as arrays:
        steps = np.asarray(arrays["steps"], dtype=np.float64)
        weights = np.asarray(arrays["weights"], dtype=np.float64)
    if steps.ndim != 1 or weights.shape != (len(steps), FEATURES, BLOCK_PIXELS) or not len(steps):
        raise ModelError(f"model '{name}': restoration arrays have shapes {steps.shape} and {weights.shape}")
    if not (np.all(np.isfinite(weights)) and np.all(steps > 0) and np.all(np.diff(steps) > 0)):
        raise ModelError(f"model '{name}': restoration steps or weights are invalid")
    return RestorationModel(name, steps, weights, sha256)
