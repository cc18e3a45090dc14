"""The learned block transform: encoder and decoder halves of a linear autoencoder.

Plain matrix products (BLAS does them faster than any hand loop); this stage is the
one an inference backend (numba, onnxruntime, LiteRT) replaces.
"""

import numpy as np

from .models import LinearAutoencoder


def analyse(blocks: np.ndarray, model: LinearAutoencoder) -> np.ndarray:
    """(n, 64) pixel blocks -> (n, k) latents."""
    return blocks @ model.encoder_weight + model.encoder_bias


def synthesise(latents: np.ndarray, model: LinearAutoencoder) -> np.ndarray:
    """(n, k) latents -> (n, 64) reconstructed pixel blocks (float, unclipped)."""
    return latents @ model.decoder_weight + model.decoder_bias
