"""Image quality metrics, computed as ../shared/data/README.md defines them."""

from __future__ import annotations

import numpy as np


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB on 8-bit values over all pixels and channels (inf when identical)."""
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    mse = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_filter(plane: np.ndarray, sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    """Separable 11x11 Gaussian, 'valid' region only (as Wang et al.'s reference code)."""
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    rows = sum(taps[i] * plane[:, i : plane.shape[1] - 2 * radius + i] for i in range(2 * radius + 1))
    return sum(taps[i] * rows[i : rows.shape[0] - 2 * radius + i, :] for i in range(2 * radius + 1))


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _gaussian_filter(x), _gaussian_filter(y)
    sxx = _gaussian_filter(x * x) - mx * mx
    syy = _gaussian_filter(y * y) - my * my
    sxy = _gaussian_filter(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(ssim_map.mean())


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5); for RGB, the mean over the three channels."""
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    if min(reference.shape[:2]) < 11:
        raise ValueError("SSIM needs images of at least 11x11 pixels")
    x, y = reference.astype(np.float64), test.astype(np.float64)
    if x.ndim == 2:
        return _ssim_plane(x, y)
    return float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(x.shape[2])]))
