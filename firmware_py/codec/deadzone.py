"""Dead-zone scalar quantization of transform coefficients (format version 2).

``level = sign(c) * floor(|c| / step + rounding)``: with ``rounding`` = 1/2 this is plain
rounding; a smaller rounding widens the zero bin (the dead zone) and pulls every level
towards zero. At quick-preview rates that trades a little distortion for many zero
levels, which run-length coding makes nearly free. The DC column always rounds to
nearest (its prediction residuals, not its zeros, are what it costs).

The decoder needs the same numbers to know each level's quantization cell
(:func:`cell_bounds`), within which its restoration may move a coefficient.
"""

from __future__ import annotations

import numba
import numpy as np

from .quantize import MAX_LEVEL

# What a quantizing kernel reports instead of raising (numba kernels cannot raise cleanly).
STATUS_OK, STATUS_TOO_LARGE, STATUS_NOT_FINITE = 0, 1, 2
_NOT_FINITE = "coefficients hold non-finite values"
_TOO_LARGE = f"a coefficient exceeds {MAX_LEVEL} quantizer steps; use a coarser quality"


@numba.njit(cache=True)
def _quantize_kernel(coefficients, steps, rounding, out):
    """Quantize into ``out``; stops with a status at a coefficient over MAX_LEVEL steps or not finite."""
    n, k = coefficients.shape
    for i in range(n):
        for j in range(k):
            scaled = np.abs(coefficients[i, j]) / steps[j]
            if not scaled <= MAX_LEVEL:
                return STATUS_TOO_LARGE if np.isfinite(coefficients[i, j]) else STATUS_NOT_FINITE
            level = np.int64(scaled + rounding[j])
            out[i, j] = level if coefficients[i, j] >= 0 else -level
    return STATUS_OK


def check_status(status: int) -> None:
    """Raise the error a quantizing kernel's status stands for."""
    if status == STATUS_TOO_LARGE:
        raise ValueError(_TOO_LARGE)
    if status == STATUS_NOT_FINITE:
        raise ValueError(_NOT_FINITE)


def check_steps(steps: np.ndarray | float) -> None:
    steps = np.asarray(steps, dtype=np.float64)  # array methods: the encoder checks every plane's step
    if not (np.isfinite(steps).all() and (steps > 0).all()):
        raise ValueError("quantizer steps must be finite and positive")


def check_rounding(rounding: float) -> None:
    if not 0.0 < rounding <= 0.5:
        raise ValueError(f"rounding offset must be in (0, 0.5], got {rounding}")


def column_rounding(rounding: float, columns: int) -> np.ndarray:
    """Rounding offset of each coefficient column: 1/2 for DC, ``rounding`` for AC."""
    check_rounding(rounding)
    out = np.full(columns, float(rounding))
    out[0] = 0.5
    return out


def _check(coefficients: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coefficients = np.ascontiguousarray(coefficients, dtype=np.float64)
    steps = np.ascontiguousarray(steps, dtype=np.float64)
    if coefficients.ndim != 2 or steps.shape != (coefficients.shape[1],):
        raise ValueError(f"expected (n, k) coefficients and k steps, got {coefficients.shape} and {steps.shape}")
    check_steps(steps)
    return coefficients, steps


def quantize(coefficients: np.ndarray, steps: np.ndarray, rounding: float) -> np.ndarray:
    """(n, k) int64 levels of (n, k) coefficients with per-column ``steps``."""
    coefficients, steps = _check(coefficients, steps)
    out = np.empty(coefficients.shape, dtype=np.int64)
    check_status(_quantize_kernel(coefficients, steps, column_rounding(rounding, steps.shape[0]), out))
    return out


def quantize_reference(coefficients: np.ndarray, steps: np.ndarray, rounding: float) -> np.ndarray:
    """NumPy reference of :func:`quantize`, for tests."""
    coefficients, steps = _check(coefficients, steps)
    if not np.all(np.isfinite(coefficients)):
        raise ValueError(_NOT_FINITE)
    if coefficients.size and np.max(np.abs(coefficients) / steps) > MAX_LEVEL:
        raise ValueError(_TOO_LARGE)
    levels = np.floor(np.abs(coefficients) / steps + column_rounding(rounding, steps.shape[0])).astype(np.int64)
    return np.where(coefficients >= 0, levels, -levels)


def cell_bounds(levels: np.ndarray, steps: np.ndarray, rounding: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (low, high) from ``level * step`` to the edges of each level's cell."""
    r = column_rounding(rounding, steps.shape[0])
    low = np.where(levels > 0, -r, r - 1.0) * steps
    high = np.where(levels < 0, r, 1.0 - r) * steps
    return low, high
