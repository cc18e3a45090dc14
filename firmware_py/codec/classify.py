"""Block classification: does a block need more than the low-detail model?

A block goes to class 0 (low detail, the 1-latent model G1) when G1 reconstructs it
with MSE below the profile's threshold, else to class 1 (G2). The numba kernel fuses
G1's encode, decode and the error sum, so no (n, 64) temporary is made per frame.
"""

import numba
import numpy as np

from .blocking import BLOCK_PIXELS
from .models import LinearAutoencoder


@numba.njit(cache=True)
def _classify_kernel(blocks, enc_w, enc_b, dec_w, dec_b, threshold, classes, errors):
    n = blocks.shape[0]
    k = enc_b.shape[0]
    latent = np.empty(k)
    for b in range(n):
        for j in range(k):
            acc = enc_b[j]
            for p in range(BLOCK_PIXELS):
                acc += blocks[b, p] * enc_w[p, j]
            latent[j] = acc
        sq = 0.0
        for p in range(BLOCK_PIXELS):
            rec = dec_b[p]
            for j in range(k):
                rec += latent[j] * dec_w[j, p]
            diff = blocks[b, p] - rec
            sq += diff * diff
        errors[b] = sq / BLOCK_PIXELS
        classes[b] = 1 if errors[b] >= threshold else 0


def _check_blocks(blocks: np.ndarray) -> np.ndarray:
    blocks = np.ascontiguousarray(blocks, dtype=np.float64)
    if blocks.ndim != 2 or blocks.shape[1] != BLOCK_PIXELS:
        raise ValueError(f"blocks must be (n, {BLOCK_PIXELS}), got {blocks.shape}")
    return blocks


def classify(blocks: np.ndarray, low_model: LinearAutoencoder, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Class (uint8, 0 or 1) and low-model reconstruction MSE of every block."""
    blocks = _check_blocks(blocks)
    classes = np.empty(blocks.shape[0], dtype=np.uint8)
    errors = np.empty(blocks.shape[0], dtype=np.float64)
    _classify_kernel(
        blocks,
        np.ascontiguousarray(low_model.encoder_weight),
        np.ascontiguousarray(low_model.encoder_bias),
        np.ascontiguousarray(low_model.decoder_weight),
        np.ascontiguousarray(low_model.decoder_bias),
        float(threshold),
        classes,
        errors,
    )
    return classes, errors


def classify_reference(blocks: np.ndarray, low_model: LinearAutoencoder, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`classify`, for tests."""
    blocks = _check_blocks(blocks)
    latents = blocks @ low_model.encoder_weight + low_model.encoder_bias
    recon = latents @ low_model.decoder_weight + low_model.decoder_bias
    errors = np.mean((blocks - recon) ** 2, axis=1)
    return (errors >= threshold).astype(np.uint8), errors
