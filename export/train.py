"""Train the seed profile's block autoencoders and tune its classifier threshold.

Reproduces ``models/`` exactly (fixed seed, deterministic order of operations):

    python -m export.train --out models

G1 (64 -> 1 -> 64) and G2 (64 -> 8 -> 64) are linear autoencoders trained with Adam on
MSE, on the 8x8 luma blocks of the Waterloo training split only (never lena*, boat*,
goldhill*). A linear autoencoder's latents are defined only up to an invertible mixing;
after training we re-express them in the orthonormal principal axes of the learned
reconstructions (same reconstructions, decorrelated latents in pixel units, decreasing
variance), so that one uniform quantizer step means the same distortion on every latent.

The seed threshold (G1 reconstruction MSE above which a block goes to G2) and the base
quantizer step are then chosen on the training images with the real encoder.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_py import datasets, imageio, metrics
from firmware_py.codec import blocking, decode, encoder, models, profiles
from firmware_py.codec.bitstream import read_header

from .manifest import update_manifest

SEED = 20251121
EPOCHS = 40
BATCH = 256
LEARNING_RATE = 2e-3
SEED_LATENTS = {"seed-g1": 1, "seed-g2": 8}
THRESHOLD_GRID = (25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0)
TUNING_BPP = 0.2
# Step at quality 1 while tuning: the middle of the quality range spans steps 2..512.
TUNING_STEP = 32.0
SEED_PROFILE_ID = 1


@dataclass
class Weights:
    encoder_weight: np.ndarray
    encoder_bias: np.ndarray
    decoder_weight: np.ndarray
    decoder_bias: np.ndarray

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.encoder_weight + self.encoder_bias) @ self.decoder_weight + self.decoder_bias


def training_blocks(paths: list[Path]) -> np.ndarray:
    """All complete 8x8 luma blocks of the given images, in file order."""
    blocks = []
    for path in paths:
        luma = imageio.load_image(path, gray=True)
        h, w = (s // blocking.BLOCK * blocking.BLOCK for s in luma.shape)
        blocks.append(blocking.plane_to_blocks(luma[:h, :w]))
    return np.concatenate(blocks)


def train_linear_autoencoder(x: np.ndarray, latents: int, rng: np.random.Generator) -> Weights:
    """Adam on mean squared error, in [0, 1] pixel units; returned in 0..255 units."""
    data = x / 255.0
    n, d = data.shape
    params = [
        rng.normal(0.0, 1.0 / math.sqrt(d), (d, latents)),
        np.zeros(latents),
        rng.normal(0.0, 1.0 / math.sqrt(latents), (latents, d)),
        np.zeros(d),
    ]
    moments = [np.zeros_like(p) for p in params]
    velocities = [np.zeros_like(p) for p in params]
    beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
    for epoch in range(EPOCHS):
        rate = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * epoch / EPOCHS))
        for batch in np.array_split(rng.permutation(n), n // BATCH):
            xb = data[batch]
            z = xb @ params[0] + params[1]
            err = z @ params[2] + params[3] - xb
            grad_out = 2.0 * err / err.size
            grad_z = grad_out @ params[2].T
            grads = [xb.T @ grad_z, grad_z.sum(0), z.T @ grad_out, grad_out.sum(0)]
            step += 1
            for p, g, m, v in zip(params, grads, moments, velocities):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
    w_e, b_e, w_d, b_d = params
    return Weights(w_e, b_e * 255.0, w_d, b_d * 255.0)


def principal_axes(weights: Weights, x: np.ndarray) -> Weights:
    """Same reconstructions, latents along the principal axes of the reconstructions."""
    recon = weights.reconstruct(x)
    mean = recon.mean(0)
    _, _, basis = np.linalg.svd(weights.decoder_weight, full_matrices=False)
    coords = (recon - mean) @ basis.T
    variances, rotation = np.linalg.eigh(np.cov(coords.T).reshape(len(basis), len(basis)))
    axes = (basis.T @ rotation[:, ::-1]).T
    axes *= np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])[:, None]
    projection = weights.decoder_weight @ axes.T
    return Weights(
        weights.encoder_weight @ projection,
        (weights.encoder_bias @ weights.decoder_weight + weights.decoder_bias - mean) @ axes.T,
        axes,
        mean,
    )


def pca_optimum_mse(x: np.ndarray, latents: int) -> float:
    """The best MSE any linear k-latent autoencoder can reach (Baldi & Hornik 1989)."""
    eigenvalues = np.linalg.eigvalsh(np.cov(x.T, bias=True))
    return float(eigenvalues[: x.shape[1] - latents].sum() / x.shape[1])


def save_artifact(out: Path, name: str, weights: Weights) -> dict:
    path = out / f"{name}.npz"
    with open(path, "wb") as handle:
        np.savez(
            handle,
            encoder_weight=weights.encoder_weight.astype(np.float32),
            encoder_bias=weights.encoder_bias.astype(np.float32),
            decoder_weight=weights.decoder_weight.astype(np.float32),
            decoder_bias=weights.decoder_bias.astype(np.float32),
        )
    return {"file": path.name, "sha256": models.file_sha256(path), "kind": "linear-autoencoder", "latents": weights.encoder_bias.shape[0]}


def psnr_at_budget(image: np.ndarray, profile: profiles.Profile, bpp: float) -> tuple[float, float] | None:
    """(PSNR, class-0 quantizer step) of the rate-controlled stream at ``bpp``; None if it cannot fit."""
    analysis = encoder.analyse_frame(image, profile)
    try:
        stream = encoder.fit_budget(analysis, int(bpp * image.size / 8))
    except encoder.RateControlError:
        return None
    return metrics.psnr(image, decode(stream)), read_header(stream).steps[0]


def tune_seed_profile(class_models: tuple[str, ...], log) -> tuple[float, float, dict]:
    """Threshold with the best mean training PSNR at TUNING_BPP, then the base step."""
    images = [imageio.load_image(p, gray=True) for p in datasets.training_images()]
    loaded = tuple(models.load_autoencoder(name) for name in class_models)
    results = {}
    for threshold in THRESHOLD_GRID:
        profile = profiles.Profile("seed", SEED_PROFILE_ID, loaded, threshold, (TUNING_STEP, TUNING_STEP))
        results[threshold] = [psnr_at_budget(img, profile, TUNING_BPP) for img in images]
    fitting = [i for i in range(len(images)) if all(results[t][i] for t in THRESHOLD_GRID)]
    means = {t: float(np.mean([results[t][i][0] for i in fitting])) for t in THRESHOLD_GRID}
    best = max(THRESHOLD_GRID, key=lambda t: means[t])
    base_step = float(f"{np.median([results[best][i][1] for i in fitting]):.2g}")
    for t in THRESHOLD_GRID:
        log(f"threshold {t:6.1f}: mean training PSNR at {TUNING_BPP} bpp {means[t]:.3f} dB")
    log(f"chosen threshold {best}, base step {base_step} ({len(fitting)}/{len(images)} images fit)")
    return best, base_step, {"bpp": TUNING_BPP, "images_fitting": len(fitting), "mean_psnr_db": means}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=models.models_dir(), help="models directory to write")
    args = parser.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    args.out.mkdir(parents=True, exist_ok=True)
    paths = datasets.training_images()
    x = training_blocks(paths)
    log(f"{len(x)} training blocks from {len(paths)} images")
    rng = np.random.default_rng(SEED)
    entries = {}
    for name, latents in SEED_LATENTS.items():
        weights = principal_axes(train_linear_autoencoder(x, latents, rng), x)
        mse = float(np.mean((weights.reconstruct(x) - x) ** 2))
        optimum = pca_optimum_mse(x, latents)
        log(f"{name}: training block MSE {mse:.3f} (linear optimum {optimum:.3f})")
        entry = save_artifact(args.out, name, weights)
        entry["training"] = {
            "data": "waterloo training split (all but lena*, boat*, goldhill*), 8x8 luma blocks",
            "images": [p.name for p in paths],
            "blocks": int(len(x)),
            "command": "python -m export.train --out models",
            "seed": SEED,
            "epochs": EPOCHS,
        }
        entry["quality"] = {"training_block_mse": round(mse, 4), "linear_optimum_block_mse": round(optimum, 4)}
        entries[name] = entry
    class_models = tuple(SEED_LATENTS)
    seed = {
        "id": SEED_PROFILE_ID,
        "description": "the paper's method: G1 (1 latent) or G2 (8 latents) per block by G1's MSE",
        "class_models": list(class_models),
        "threshold": THRESHOLD_GRID[0],
        "base_steps": [TUNING_STEP, TUNING_STEP],
    }

    def record(manifest: dict) -> None:
        manifest["models"].update(entries)
        manifest["profiles"]["seed"] = seed

    # Tuning runs the real encoder and decoder on the models just written.
    os.environ[models.MODELS_DIR_ENV] = str(args.out.resolve())
    update_manifest(args.out, record)
    threshold, base_step, tuning = tune_seed_profile(class_models, log)
    seed.update(threshold=threshold, base_steps=[base_step, base_step], tuning=tuning)
    update_manifest(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
