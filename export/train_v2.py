"""Train the ``klt`` transform profile (format version 2) on the Waterloo training split.

    python -m export.train_v2 --out models

Reproducible (closed-form fits, fixed grids, no randomness) and run only on the training
split (``firmware_py.datasets.training_images``: never lena*, boat*, goldhill*, kodak or
aerials). It updates only its own keys of ``models/manifest.json`` (``klt-basis``,
``klt-restore``, profile ``klt``); every other entry is left as it is.

1. Basis: latent 0 is the block DC (the constant vector / 8); latents 1..63 are the
   principal axes (KLT) of the mean-removed 8x8 luma blocks, in decreasing variance.
   This is the optimum of a linear autoencoder (Baldi & Hornik 1989), so its first k
   latents are the best k-latent linear code of the training blocks, nested for every k.
2. Dead-zone rounding offset: the one of ROUNDING_GRID with the best mean training PSNR
   at TUNING_BPP (before restoration); the base step is the median step that reaches
   TUNING_BPP on the training images.
3. Restoration: at each of RESTORATION_STEPS, ridge regression from a block's scaled
   levels and its neighbours' first levels to its quantization error
   (firmware_py/codec/restoration.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from export.manifest import update_manifest
from export.train import training_blocks
from firmware_py import datasets, imageio
from firmware_py.codec import blocking, deadzone, models, ratecontrol, restoration
from firmware_py.codec.encoder_v2 import PlaneCoefficients, quantize_plane

PROFILE = "klt"
PROFILE_ID = 2
BASIS_MODEL = "klt-basis"
RESTORATION_MODEL = "klt-restore"
ROUNDING_GRID = (0.15, 0.2, 0.25, 0.3, 0.35)
TUNING_BPP = 0.15
RESTORATION_STEPS = tuple(float(s) for s in np.geomspace(5.0, 800.0, 12).round(2))
RIDGE = 1e-3
COMMAND = "python -m export.train_v2 --out models"
DATA = "waterloo training split (all but lena*, boat*, goldhill*), 8x8 luma blocks"
CENTRE = 128.0


def learn_basis(x: np.ndarray) -> np.ndarray:
    """(64, 64) orthonormal rows: DC, then the KLT of mean-removed blocks."""
    ac = x - x.mean(axis=1, keepdims=True)
    variances, vectors = np.linalg.eigh(ac.T @ ac / len(ac))
    order = np.argsort(variances)[::-1][: blocking.BLOCK_PIXELS - 1]
    axes = vectors[:, order].T
    axes *= np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])[:, None]
    return np.concatenate([np.full((1, blocking.BLOCK_PIXELS), 1.0 / blocking.BLOCK), axes])


def save_basis(out: Path, basis: np.ndarray) -> dict:
    path = out / f"{BASIS_MODEL}.npz"
    with open(path, "wb") as handle:
        np.savez(
            handle,
            encoder_weight=basis.T.astype(np.float32),
            encoder_bias=(-CENTRE * basis.sum(axis=1)).astype(np.float32),
            decoder_weight=basis.astype(np.float32),
            decoder_bias=np.full(blocking.BLOCK_PIXELS, CENTRE, dtype=np.float32),
        )
    return {"file": path.name, "sha256": models.file_sha256(path), "kind": "linear-autoencoder", "latents": blocking.BLOCK_PIXELS}


def plane_coefficients(image: np.ndarray, model: models.LinearAutoencoder) -> PlaneCoefficients:
    rows, cols = blocking.block_grid(*image.shape)
    blocks = blocking.plane_to_blocks(image.astype(np.float64))
    return PlaneCoefficients(rows, cols, blocks @ model.encoder_weight + model.encoder_bias)


def unrestored_mse_at(image, plane: PlaneCoefficients, model, rounding: float, bpp: float) -> tuple[float, float]:
    """(MSE without restoration, step) where the payload reaches ``bpp``."""
    base = 32.0

    def size_at(quality: float) -> int:
        return quantize_plane(plane, base * quality, rounding).payload_bits // 8

    quality, _ = ratecontrol.fit_quality(size_at, int(bpp * image.size / 8))
    levels = quantize_plane(plane, base * quality, rounding).levels
    blocks = (levels * base * quality) @ model.decoder_weight + model.decoder_bias
    decoded = np.clip(np.rint(blocking.blocks_to_plane(blocks, *image.shape)), 0, 255).astype(np.uint8)
    return float(np.mean((image.astype(np.float64) - decoded) ** 2)), base * quality


def tune_rounding(images, planes, model, log) -> tuple[float, float, dict]:
    # Pooled MSE as PSNR: some synthetic training images decode exactly (infinite PSNR).
    results = {r: [unrestored_mse_at(img, p, model, r, TUNING_BPP) for img, p in zip(images, planes)] for r in ROUNDING_GRID}
    means = {str(r): float(10 * np.log10(255.0**2 / np.mean([v[0] for v in results[r]]))) for r in ROUNDING_GRID}
    best = max(ROUNDING_GRID, key=lambda r: means[str(r)])
    base_step = float(f"{np.median([v[1] for v in results[best]]):.2g}")
    for r in ROUNDING_GRID:
        log(f"rounding {r}: pooled training PSNR at {TUNING_BPP} bpp (unrestored) {means[str(r)]:.3f} dB")
    log(f"chosen rounding {best}, base step {base_step}")
    return best, base_step, {"bpp": TUNING_BPP, "pooled_unrestored_psnr_db": means}


def train_restoration(planes, rounding: float, log) -> np.ndarray:
    weights = []
    for step in RESTORATION_STEPS:
        gram = np.zeros((restoration.FEATURES, restoration.FEATURES))
        cross = np.zeros((restoration.FEATURES, blocking.BLOCK_PIXELS))
        count = 0
        for plane in planes:
            levels = deadzone.quantize(plane.coefficients, np.full(blocking.BLOCK_PIXELS, step), rounding)
            x = restoration.features(levels.astype(np.float64), plane.rows, plane.cols)
            y = plane.coefficients / step - levels
            gram += x.T @ x
            cross += x.T @ y
            count += len(x)
        weights.append(np.linalg.solve(gram + RIDGE * count * np.eye(restoration.FEATURES), cross))
        log(f"restoration at step {step:g} trained on {count} blocks")
    return np.array(weights)


def save_restoration(out: Path, weights: np.ndarray) -> dict:
    path = out / f"{RESTORATION_MODEL}.npz"
    with open(path, "wb") as handle:
        np.savez(handle, steps=np.array(RESTORATION_STEPS), weights=weights.astype(np.float32))
    return {"file": path.name, "sha256": models.file_sha256(path), "kind": "block-restoration"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=models.models_dir(), help="models directory to update")
    args = parser.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    args.out.mkdir(parents=True, exist_ok=True)
    paths = datasets.training_images()
    x = training_blocks(paths)
    record = {"data": DATA, "images": [p.name for p in paths], "blocks": int(len(x)), "command": COMMAND}
    basis_entry = save_basis(args.out, learn_basis(x))
    basis_entry["training"] = record
    model = models.LinearAutoencoder(BASIS_MODEL, *(np.asarray(a, dtype=np.float64) for a in _basis_arrays(args.out)), basis_entry["sha256"])
    images = [imageio.load_image(p, gray=True) for p in paths]
    planes = [plane_coefficients(img, model) for img in images]
    rounding, base_step, tuning = tune_rounding(images, planes, model, log)
    restore_entry = save_restoration(args.out, train_restoration(planes, rounding, log))
    restore_entry["training"] = {**record, "steps": list(RESTORATION_STEPS), "ridge": RIDGE, "rounding": rounding}
    profile = {
        "id": PROFILE_ID,
        "format": 2,
        "description": "learned 64-latent orthonormal basis (DC + KLT), dead-zone steps, MED DC prediction, "
        "run-length Huffman, decoder-side learned restoration",
        "class_models": [BASIS_MODEL],
        "threshold": 0.0,
        "base_steps": [base_step],
        "rounding": rounding,
        "restoration": RESTORATION_MODEL,
        "tuning": tuning,
    }

    def record(manifest: dict) -> None:
        manifest["models"].update({BASIS_MODEL: basis_entry, RESTORATION_MODEL: restore_entry})
        manifest["profiles"][PROFILE] = profile

    update_manifest(args.out, record)
    return 0


def _basis_arrays(out: Path) -> tuple[np.ndarray, ...]:
    with np.load(out / f"{BASIS_MODEL}.npz") as arrays:
        return tuple(arrays[k] for k in ("encoder_weight", "encoder_bias", "decoder_weight", "decoder_bias"))


if __name__ == "__main__":
    sys.exit(main())
