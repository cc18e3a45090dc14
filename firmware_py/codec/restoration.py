"""Decoder-side restoration of quantized transform blocks (format version 2, ground only).

At quick-preview rates most coefficients are quantized to zero and blocks decode as flat
or nearly flat tiles. The neighbours know more: a smooth ramp across four DC-only blocks
says what each block's low-frequency coefficients probably were. This stage estimates
every block's quantization error from its own dequantized coefficients and the first
``NEIGHBOUR_COEFFICIENTS`` of its 8 neighbours, with a linear map learned offline (ridge
regression on the training split, one map per quantizer step; ``export/train_v2.py``),
then clips each estimate to its level's quantization cell, so that the restored block
is still one the encoder could have sent. It replaces smooth interpolation of
low-detail blocks with one learned, cell-consistent estimator.

After synthesis, :func:`deblock` corrects the EDGE_OUTPUT pixels either side of every
block edge from the EDGE_INPUT pixels either side of it, with one more learned linear
map per step (vertical edges, then horizontal ones with the same map): the coefficient
map sees only its neighbours' first coefficients and its output is clipped, so a little
edge error is left that the pixels show directly (held-out check: +0.02-0.03 dB,
BD-rate -0.6 %, docs/MODELS.md).

It costs one (n, 193) x (193, 64) product per plane and one (m, 8) x (8, 4) product per
edge direction on the ground; the encoder never runs it. The model is the decoder's
own choice: a stream's fingerprint names the basis it was coded with, not this model
(profile_v2), so a retrained restoration model decodes every stream of the same basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import deadzone
from .blocking import BLOCK, BLOCK_PIXELS
from .errors import ModelError
from .models import artifact_cache, manifest_artifact

NEIGHBOUR_COEFFICIENTS = 16
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
FEATURES = BLOCK_PIXELS + len(NEIGHBOURS) * NEIGHBOUR_COEFFICIENTS + 1
EDGE_INPUT = BLOCK // 2  # pixels read either side of a block edge: the two half blocks
EDGE_OUTPUT = 2  # pixels corrected either side of it
EDGE_FEATURES = 2 * EDGE_INPUT + 1
CORRECTED = slice(EDGE_INPUT - EDGE_OUTPUT, EDGE_INPUT + EDGE_OUTPUT)  # within an edge_chunks row
ARRAYS = ("steps", "weights", "edge_weights")  # of the model file


@dataclass(frozen=True)
class RestorationModel:
    """Linear maps per quantizer step: weights[i] (FEATURES, 64) and edge_weights[i]
    (EDGE_FEATURES, 2 * EDGE_OUTPUT) are used near steps[i]."""

    name: str
    steps: np.ndarray  # (bins,) increasing
    weights: np.ndarray  # (bins, FEATURES, 64)
    edge_weights: np.ndarray  # (bins, EDGE_FEATURES, 2 * EDGE_OUTPUT)
    sha256: str

    def bin_for(self, step: float) -> int:
        """The bin trained at the step nearest to ``step`` (in log scale)."""
        return int(np.argmin(np.abs(np.log(self.steps) - np.log(step))))


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


def restore(
    levels: np.ndarray, step: float, rounding: float, rows: int, cols: int, model: RestorationModel
) -> np.ndarray:
    """Estimated (n, 64) coefficients of quantized blocks, each inside its level's cell."""
    steps = np.full(BLOCK_PIXELS, step)
    dequantized = levels * step
    correction = features(levels.astype(np.float64), rows, cols) @ model.weights[model.bin_for(step)] * step
    low, high = deadzone.cell_bounds(levels, steps, rounding)
    return dequantized + np.clip(correction, low, high)


def edge_chunks(pixels: np.ndarray) -> np.ndarray:
    """(rows, edges, 2 * EDGE_INPUT) view of the pixels across each vertical block edge
    (columns 8k, k >= 1, with EDGE_INPUT pixels on both sides), row by row."""
    edges = (pixels.shape[1] - EDGE_INPUT) // BLOCK
    return pixels[:, EDGE_INPUT : EDGE_INPUT + BLOCK * edges].reshape(pixels.shape[0], edges, BLOCK)


def deblock(plane: np.ndarray, step: float, model: RestorationModel) -> np.ndarray:
    """The synthesised plane with the pixels along its block edges corrected."""
    edge_map = model.edge_weights[model.bin_for(step)]
    out = np.array(plane, dtype=np.float64)
    for view in (out, out.T):  # vertical edges, then horizontal ones (in place, through the transpose)
        chunks = edge_chunks(view)
        chunks[:, :, CORRECTED] += chunks @ edge_map[:-1] + edge_map[-1]
    return out


@artifact_cache(maxsize=8)
def load_restoration(name: str, directory: Path | None = None) -> RestorationModel:
    """Load a restoration model by manifest name, refusing any hash or shape mismatch."""
    path, sha256 = manifest_artifact(name, "block-restoration", "restoration model", directory)
    with np.load(path, allow_pickle=False) as arrays:
        try:
            steps, weights, edge_weights = (np.asarray(arrays[k], dtype=np.float64) for k in ARRAYS)
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(
                f"model '{name}': restoration arrays {ARRAYS} are missing or not numbers ({exc})"
            ) from None
    check_arrays(name, steps, weights, edge_weights)
    return RestorationModel(name, steps, weights, edge_weights, sha256)


def check_arrays(name: str, steps: np.ndarray, weights: np.ndarray, edge_weights: np.ndarray) -> None:
    """Refuse arrays the decoder could not use as a restoration model."""
    bins = len(steps) if steps.ndim == 1 else 0
    expected = ((bins, FEATURES, BLOCK_PIXELS), (bins, EDGE_FEATURES, 2 * EDGE_OUTPUT))
    if not bins or (weights.shape, edge_weights.shape) != expected:
        shapes = ", ".join(str(a.shape) for a in (steps, weights, edge_weights))
        raise ModelError(f"model '{name}': restoration arrays have shapes {shapes}")
    finite = all(np.all(np.isfinite(a)) for a in (steps, weights, edge_weights))
    if not (finite and np.all(steps > 0) and np.all(np.diff(steps) > 0)):
        raise ModelError(f"model '{name}': restoration steps or weights are invalid")
