"""Quantized latents of a plane's blocks, class by class, and the blocks they decode to.

Shared by the whole-file coder (encoder/decoder) and packet mode (slices, ground), so
both ends of both paths quantize and reconstruct exactly alike.
"""

from __future__ import annotations

import numpy as np

from . import quantize, transform
from .blocking import BLOCK_PIXELS
from .profiles import Profile


def quantize_blocks(classes: np.ndarray, latents: tuple[np.ndarray, ...], steps: tuple[float, ...], max_latents: int) -> np.ndarray:
    """(n, max_latents) int32 levels in raster order; class c's blocks fill its first k_c columns."""
    symbols = np.zeros((classes.shape[0], max_latents), dtype=np.int32)
    for c, values in enumerate(latents):
        levels = quantize.quantize(values, steps[c])
        symbols[classes == c, : levels.shape[1]] = levels
    return symbols


def synthesise_blocks(classes: np.ndarray, symbols: np.ndarray, profile: Profile, steps: tuple[float, ...]) -> np.ndarray:
    """(n, 64) reconstructed pixel blocks of decoded classes and levels."""
    blocks = np.empty((classes.shape[0], BLOCK_PIXELS))
    for c, model in enumerate(profile.models):
        chosen = classes == c
        latents = quantize.dequantize(symbols[chosen, : model.latents], steps[c])
        blocks[chosen] = transform.synthesise(latents, model)
    return blocks
