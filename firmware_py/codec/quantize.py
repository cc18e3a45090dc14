"""Uniform scalar quantization of latents, one step size per latent column."""

import numba
import numpy as np

# Quantized latents must fit the int16 symbols of the Huffman tables.
MAX_LEVEL = 16383


@numba.njit(cache=True)
def _quantize_kernel(latents, steps, out):
    n, k = latents.shape
    for i in range(n):
        for j in range(k):
            out[i, j] = np.int32(np.rint(latents[i, j] / steps[j]))


@numba.njit(cache=True)
def _dequantize_kernel(levels, steps, out):
    n, k = levels.shape
    for i in range(n):
        for j in range(k):
            out[i, j] = levels[i, j] * steps[j]


def _check(values: np.ndarray, steps, dtype) -> tuple[np.ndarray, np.ndarray]:
    values = np.ascontiguousarray(values, dtype=dtype)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {values.shape}")
    steps = np.ascontiguousarray(np.broadcast_to(np.asarray(steps, dtype=np.float64), (values.shape[1],)))
    if not np.all(np.isfinite(steps)) or np.any(steps <= 0):
        raise ValueError("quantizer steps must be finite and positive")
    return values, steps


def quantize(latents: np.ndarray, steps) -> np.ndarray:
    """Round latents to the nearest multiple of their step: (n, k) int32 levels."""
    latents, steps = _check(latents, steps, np.float64)
    if not np.all(np.isfinite(latents)):
        raise ValueError("latents hold non-finite values")
    if latents.size and np.max(np.abs(latents) / steps) > MAX_LEVEL:
        raise ValueError(f"a latent exceeds {MAX_LEVEL} quantizer steps; use a coarser quality")
    out = np.empty(latents.shape, dtype=np.int32)
    _quantize_kernel(latents, steps, out)
    return out


def dequantize(levels: np.ndarray, steps) -> np.ndarray:
    levels, steps = _check(levels, steps, np.int32)
    out = np.empty(levels.shape, dtype=np.float64)
    _dequantize_kernel(levels, steps, out)
    return out


def quantize_reference(latents: np.ndarray, steps) -> np.ndarray:
    return np.rint(np.asarray(latents, dtype=np.float64) / np.asarray(steps, dtype=np.float64)).astype(np.int32)


def dequantize_reference(levels: np.ndarray, steps) -> np.ndarray:
    return np.asarray(levels, dtype=np.float64) * np.asarray(steps, dtype=np.float64)
