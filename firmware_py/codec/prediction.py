"""Prediction of each block's DC level from its decoded neighbours (format version 2).

The DC (block mean) levels of neighbouring blocks are strongly correlated, so only the
difference from a prediction is coded. The predictor is LOCO-I's median edge detector
(MED, as in JPEG-LS) on the left (L), top (T) and top-left (TL) levels: min(L, T) or
max(L, T) when TL suggests an edge, else the plane L + T - TL. The first row predicts
from the left, the first column from the top, the first block from 0. MED always lies
between min(L, T) and max(L, T), so decoded levels grow by at most one residual per block.

Prediction runs on integer levels, so encoder and decoder agree exactly (no drift).
"""

from __future__ import annotations

import numba
import numpy as np

from .errors import CorruptStreamError

# Bound on a decoded DC level (|level| <= 2^15), checked as a hostile stream is decoded.
MAX_DC_LEVEL = 1 << 15


@numba.njit(cache=True)
def _med(left, top, top_left):
    high = max(left, top)
    low = min(left, top)
    if top_left >= high:
        return low
    if top_left <= low:
        return high
    return left + top - top_left


@numba.njit(cache=True)
def _predict(levels, r, c, cols):
    b = r * cols + c
    if r == 0 and c == 0:
        return 0
    if r == 0:
        return levels[b - 1]
    if c == 0:
        return levels[b - cols]
    return _med(levels[b - 1], levels[b - cols], levels[b - cols - 1])


@numba.njit(cache=True)
def _residuals_kernel(levels, rows, cols, out):
    for r in range(rows):
        for c in range(cols):
            out[r * cols + c] = levels[r * cols + c] - _predict(levels, r, c, cols)


@numba.njit(cache=True)
def _levels_kernel(residuals, rows, cols, out):
    for r in range(rows):
        for c in range(cols):
            b = r * cols + c
            out[b] = residuals[b] + _predict(out, r, c, cols)
            if abs(out[b]) > MAX_DC_LEVEL:
                return b
    return -1


def _check(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.int64)
    if values.shape != (rows * cols,):
        raise ValueError(f"expected {rows * cols} DC values for a {rows}x{cols} block grid, got {values.shape}")
    return values


def dc_residuals(levels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Residual of each DC level (raster order) against its MED prediction."""
    levels = _check(levels, rows, cols)
    out = np.empty_like(levels)
    _residuals_kernel(levels, rows, cols, out)
    return out


def dc_levels(residuals: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`dc_residuals`; CorruptStreamError if a level leaves +-2^15."""
    residuals = _check(residuals, rows, cols)
    out = np.empty_like(residuals)
    bad = _levels_kernel(residuals, rows, cols, out)
    if bad >= 0:
        raise CorruptStreamError(f"DC level of block {bad} leaves the range +-{MAX_DC_LEVEL}")
    return out


def dc_residuals_reference(levels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """NumPy reference of :func:`dc_residuals` (vectorized MED), for tests."""
    grid = np.asarray(levels, dtype=np.int64).reshape(rows, cols)
    prediction = np.zeros_like(grid)
    prediction[0, 1:] = grid[0, :-1]
    prediction[1:, 0] = grid[:-1, 0]
    left, top, top_left = grid[1:, :-1], grid[:-1, 1:], grid[:-1, :-1]
    high, low = np.maximum(left, top), np.minimum(left, top)
    prediction[1:, 1:] = np.where(top_left >= high, low, np.where(top_left <= low, high, left + top - top_left))
    return (grid - prediction).ravel()
