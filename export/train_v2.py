"""Train the ``klt`` transform profile (format version 2) on the Waterloo training split.

    python -m export.train_v2 --out models

Reproducible (closed-form fits, fixed grids, no randomness) and run only on the training
split (``firmware_py.datasets.training_images``: never lena*, boat*, goldhill*, kodak or
aerials). It updates only its own keys of ``models/manifest.json`` (``klt-basis``,
``klt-restore``, profile ``klt``); every other entry is left as it is.

1. Basis: latent 0 is the block DC (the constant vector / 8); latents 1..63 are the
   products of the principal axes (KLT) of the training blocks' mean-removed rows and
   of their mean-removed columns (a separable KLT), in decreasing training variance.
   Why separable: the full 64-dimensional KLT codes the training blocks best, but out of
   sample it needs 4.5 % more bits than the separable one for the same PSNR
   (``python -m export.ablation_v2``, variant ``full-klt``): 8+8 fitted axes generalize
   where 63 overfit, as well as the fixed DCT does (variant ``dct``).
2. Dead-zone rounding offset: the one of ROUNDING_GRID with the best mean training PSNR
   at TUNING_BPP (before restoration); the base step is the median step that reaches
   TUNING_BPP on the training images.
3. Restoration: at each of RESTORATION_STEPS, ridge regression from a block's scaled
   levels and its neighbours' first levels to its quantization error, then from the
   pixels across each block edge of the restored planes to their error
   (firmware_py/codec/restoration.py).

``split_training`` holds every 4th training image out for design checks
(``python -m export.ablation_v2``, which fits with these same functions on the rest).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from export.manifest import update_manifest
from export.train import training_blocks
from firmware_py import datasets, imageio
from firmware_py.codec import blocking, deadzone, models, ratecontrol, restoration, transform
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
HELD_OUT_EVERY = 4


def split_training(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(fit, held out): every HELD_OUT_EVERY-th training image, counting from the
    HELD_OUT_EVERY-th in sorted order, is held out of fitting for design checks
    (export/ablation_v2.py); the shipped models are fitted on all of them."""
    held = [p for i, p in enumerate(paths) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    return [p for p in paths if p not in held], held


def learn_basis(x: np.ndarray) -> np.ndarray:
    """(64, 64) orthonormal rows: DC, then products of the row and column KLTs of the
    (n, 64) blocks ``x``, in decreasing variance of their coefficients on ``x``."""
    blocks = x.reshape(-1, blocking.BLOCK, blocking.BLOCK)
    vertical = principal_axes_1d(blocks.transpose(0, 2, 1).reshape(-1, blocking.BLOCK))
    horizontal = principal_axes_1d(blocks.reshape(-1, blocking.BLOCK))
    products = np.array([np.outer(v, h).ravel() for v in vertical for h in horizontal])
    variances = ((x - CENTRE) @ products[1:].T).var(axis=0)
    order = np.argsort(-variances, kind="stable") + 1
    return np.concatenate([products[:1], products[order]])


def principal_axes_1d(vectors: np.ndarray) -> np.ndarray:
    """(8, 8) orthonormal rows: the constant, then the principal axes of the mean-removed
    ``vectors`` in decreasing variance, each signed so that its largest entry is positive."""
    n = vectors.shape[1]
    ac = vectors - vectors.mean(axis=1, keepdims=True)
    variances, axes = np.linalg.eigh(ac.T @ ac / len(ac))
    axes = axes[:, np.argsort(variances)[::-1][: n - 1]].T
    axes *= np.sign(axes[np.arange(n - 1), np.argmax(np.abs(axes), axis=1)])[:, None]
    return np.concatenate([np.full((1, n), 1.0 / np.sqrt(n)), axes])


def basis_arrays(basis: np.ndarray) -> dict[str, np.ndarray]:
    """The float32 arrays of the basis as a linear autoencoder on pixels centred at 128."""
    return {
        "encoder_weight": basis.T.astype(np.float32),
        "encoder_bias": (-CENTRE * basis.sum(axis=1)).astype(np.float32),
        "decoder_weight": basis.astype(np.float32),
        "decoder_bias": np.full(blocking.BLOCK_PIXELS, CENTRE, dtype=np.float32),
    }


def basis_model(basis: np.ndarray, name: str = BASIS_MODEL, sha256: str = "") -> models.LinearAutoencoder:
    """The model the runtime would load from the saved basis (same float32 weights)."""
    arrays = basis_arrays(basis)
    keys = ("encoder_weight", "encoder_bias", "decoder_weight", "decoder_bias")
    return models.LinearAutoencoder(name, *(arrays[k].astype(np.float64) for k in keys), sha256)


def save_basis(out: Path, basis: np.ndarray) -> dict:
    path = out / f"{BASIS_MODEL}.npz"
    with open(path, "wb") as handle:
        np.savez(handle, **basis_arrays(basis))
    return {
        "file": path.name,
        "sha256": models.file_sha256(path),
        "kind": "linear-autoencoder",
        "latents": blocking.BLOCK_PIXELS,
    }


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
    results = {
        r: [unrestored_mse_at(img, p, model, r, TUNING_BPP) for img, p in zip(images, planes)] for r in ROUNDING_GRID
    }
    means = {str(r): float(10 * np.log10(255.0**2 / np.mean([v[0] for v in results[r]]))) for r in ROUNDING_GRID}
    best = max(ROUNDING_GRID, key=lambda r: means[str(r)])
    base_step = float(f"{np.median([v[1] for v in results[best]]):.2g}")
    for r in ROUNDING_GRID:
        log(f"rounding {r}: pooled training PSNR at {TUNING_BPP} bpp (unrestored) {means[str(r)]:.3f} dB")
    log(f"chosen rounding {best}, base step {base_step}")
    return best, base_step, {"bpp": TUNING_BPP, "pooled_unrestored_psnr_db": means}


def levels_at(plane: PlaneCoefficients, step: float, rounding: float) -> np.ndarray:
    """The plane's levels as the encoder quantizes them at ``step``."""
    return deadzone.quantize(plane.coefficients, np.full(blocking.BLOCK_PIXELS, step), rounding)


def restoration_model(weights: np.ndarray, edge_weights: np.ndarray) -> restoration.RestorationModel:
    """The model the runtime would load from the saved weights (float32; not hashed)."""
    single = (np.asarray(a, dtype=np.float32).astype(np.float64) for a in (weights, edge_weights))
    return restoration.RestorationModel(RESTORATION_MODEL, np.array(RESTORATION_STEPS), *single, "")


def fit_restoration(
    images, planes, basis: models.LinearAutoencoder, rounding: float, log
) -> restoration.RestorationModel:
    """Coefficient maps first, then the edge maps on what they restore."""
    weights = train_restoration(planes, rounding, log)
    return restoration_model(weights, train_deblocking(images, planes, basis, rounding, weights, log))


def train_restoration(planes, rounding: float, log) -> np.ndarray:
    weights = []
    for step in RESTORATION_STEPS:
        gram = np.zeros((restoration.FEATURES, restoration.FEATURES))
        cross = np.zeros((restoration.FEATURES, blocking.BLOCK_PIXELS))
        count = 0
        for plane in planes:
            levels = levels_at(plane, step, rounding)
            x = restoration.features(levels.astype(np.float64), plane.rows, plane.cols)
            y = plane.coefficients / step - levels
            gram += x.T @ x
            cross += x.T @ y
            count += len(x)
        weights.append(np.linalg.solve(gram + RIDGE * count * np.eye(restoration.FEATURES), cross))
        log(f"restoration at step {step:g} trained on {count} blocks")
    return np.array(weights)


def train_deblocking(images, planes, basis, rounding: float, weights: np.ndarray, log) -> np.ndarray:
    """Per step: ridge regression from the pixels across every block edge of the restored
    training planes (vertical edges, and horizontal ones as the transposed plane's) to
    the error of the EDGE_OUTPUT pixels either side of it."""
    model = restoration_model(
        weights, np.zeros((len(RESTORATION_STEPS), restoration.EDGE_FEATURES, 2 * restoration.EDGE_OUTPUT))
    )
    edge_weights = []
    for step in RESTORATION_STEPS:
        gram = np.zeros((restoration.EDGE_FEATURES, restoration.EDGE_FEATURES))
        cross = np.zeros((restoration.EDGE_FEATURES, 2 * restoration.EDGE_OUTPUT))
        for image, plane in zip(images, planes):
            coefficients = restoration.restore(
                levels_at(plane, step, rounding), step, rounding, plane.rows, plane.cols, model
            )
            pixels = blocking.blocks_to_plane(transform.synthesise(coefficients, basis), *image.shape)
            for decoded, original in ((pixels, image.astype(np.float64)), (pixels.T, image.T.astype(np.float64))):
                around, truth = restoration.edge_chunks(decoded), restoration.edge_chunks(original)
                x = np.hstack([around.reshape(-1, 2 * restoration.EDGE_INPUT), np.ones((around[..., 0].size, 1))])
                gram += x.T @ x
                cross += x.T @ (truth - around)[:, :, restoration.CORRECTED].reshape(len(x), -1)
        edge_weights.append(np.linalg.solve(gram + RIDGE * gram[-1, -1] * np.eye(len(gram)), cross))
        log(f"deblocking at step {step:g} trained on {int(gram[-1, -1])} edge rows")
    return np.array(edge_weights)


def save_restoration(out: Path, model: restoration.RestorationModel) -> dict:
    path = out / f"{RESTORATION_MODEL}.npz"
    with open(path, "wb") as handle:
        np.savez(
            handle,
            steps=model.steps,
            weights=model.weights.astype(np.float32),
            edge_weights=model.edge_weights.astype(np.float32),
        )
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
    basis = learn_basis(x)
    basis_entry = save_basis(args.out, basis)
    basis_entry["training"] = record
    model = basis_model(basis, sha256=basis_entry["sha256"])
    images = [imageio.load_image(p, gray=True) for p in paths]
    planes = [plane_coefficients(img, model) for img in images]
    rounding, base_step, tuning = tune_rounding(images, planes, model, log)
    restore_entry = save_restoration(args.out, fit_restoration(images, planes, model, rounding, log))
    restore_entry["training"] = {
        **record,
        "steps": list(RESTORATION_STEPS),
        "ridge": RIDGE,
        "rounding": rounding,
        "edge_pixels": {"input": restoration.EDGE_INPUT, "output": restoration.EDGE_OUTPUT},
    }
    profile = {
        "id": PROFILE_ID,
        "format": 2,
        "description": "learned 64-latent orthonormal basis (DC + separable KLT), dead-zone steps, MED DC prediction, "
        "run-length Huffman, decoder-side learned restoration",
        "class_models": [BASIS_MODEL],
        "threshold": 0.0,
        "base_steps": [base_step],
        "rounding": rounding,
        "restoration": RESTORATION_MODEL,
        "tuning": tuning,
    }

    def record(manifest: dict) -> None:
        # Other tools' keys stay: a basis retrained to the same bytes keeps its exports, and
        # the profile keeps entries it does not own (e.g. its half-resolution model).
        previous = manifest["models"].get(BASIS_MODEL, {})
        kept = previous if previous.get("sha256") == basis_entry["sha256"] else {}
        manifest["models"].update({BASIS_MODEL: {**kept, **basis_entry}, RESTORATION_MODEL: restore_entry})
        manifest["profiles"][PROFILE] = {**manifest["profiles"].get(PROFILE, {}), **profile}

    update_manifest(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
