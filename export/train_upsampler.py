"""Fit the half-resolution stage of the ``klt`` profile (format version 3) on training images.

    python -m export.train_upsampler --out models

Deterministic (closed-form fits, fixed grids) and on the Waterloo training split only
(never lena*, boat*, goldhill*, kodak or aerials). The sorted training images are split
in two, gray and colour images alternating separately (:func:`split`): the *fit* part
trains the upsampler, the *held-out* part measures it (export/measure_halfres.py).

1. Upsampler: per output phase, 7x7 weights by least squares from the half-size images
   as the codec decodes them (box-downsampled, coded at each of LEARN_BPP of the full
   frame's pixels) to the original luma, so the filter also undoes part of the coding loss.
2. Rule: for gray and for colour frames, the budget in bpp below which half resolution
   is chosen: per image, the candidate threshold (BPP_GRID) with the best mean PSNR of
   the switched codec over full resolution, each frame coded at every rate of BPP_GRID;
   then the median over the images. Each image votes, so a synthetic image that full
   resolution codes near losslessly (squares.png: 88 dB) cannot outweigh the rest, as
   it did a mean of dB gains. The thresholds are fitted on every training image, both
   parts: on the four colour images of the fit part alone, the colour threshold
   (0.21 bpp) sat well above the held-out colour images' crossover (~0.12 bpp).

Writes models/klt-half.npz, its manifest entry, and the klt profile's
``half_resolution`` key; every other manifest entry is left as it is. Stream
fingerprints name the upsampler, so one that differs from the one in ``--out`` is not
written (exit status 2, nothing changed) unless ``--replace-frozen`` is given
(docs/MODELS.md, "Frozen artifacts").
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from export.manifest import REPLACE_FROZEN_FLAG, FrozenArtifactError, record_profile_model, write_frozen_artifact
from firmware_py import datasets, imageio, metrics
from firmware_py.codec import decode, models, resample
from firmware_py.codec.encoder_v2 import encode
from firmware_py.codec.errors import RateControlError

PROFILE = "klt"
MODEL = "klt-half"
COMMAND = "python -m export.train_upsampler --out models"
LEARN_BPP = (0.04, 0.07, 0.12, 0.2)
BPP_GRID = tuple(float(b) for b in np.geomspace(0.03, 0.3, 14).round(4))
RIDGE = 1e-9  # relative to the mean diagonal of the normal equations: only against singular systems


def split() -> tuple[list[Path], list[Path]]:
    """(fit, held out): alternate images in sorted order, gray and colour images separately."""
    images = datasets.training_images()
    colour = [p for p in images if imageio.load_image(p).ndim == 3]
    gray = [p for p in images if p not in colour]
    return gray[0::2] + colour[0::2], gray[1::2] + colour[1::2]


def coded_half(image: np.ndarray, bpp: float) -> np.ndarray | None:
    """The half-size image as the decoder gets it at ``bpp`` of the full frame (None: no fit)."""
    budget = int(bpp * image.shape[0] * image.shape[1] / 8)
    try:
        return decode(encode(resample.downsample(image), max_bytes=budget, profile=PROFILE, scale=resample.FULL))
    except RateControlError:
        return None


def learn_weights(pairs) -> np.ndarray:
    """Least-squares polyphase weights (resample.WEIGHTS_SHAPE) from (half, original) planes."""
    taps_count = resample.TAPS * resample.TAPS
    normal = np.zeros((2, 2, taps_count, taps_count))
    rhs = np.zeros((2, 2, taps_count))
    for half, original in pairs:
        taps = resample.shifted_taps(half).reshape(taps_count, -1)
        rows, cols = half.shape
        target = np.pad(
            original.astype(np.float64),
            [(0, 2 * rows - original.shape[0]), (0, 2 * cols - original.shape[1])],
            mode="edge",
        )
        for py in range(2):
            for px in range(2):
                normal[py, px] += taps @ taps.T
                rhs[py, px] += taps @ target[py::2, px::2].ravel()
    weights = np.empty_like(rhs)
    for py in range(2):
        for px in range(2):
            ridge = RIDGE * np.trace(normal[py, px]) / taps_count
            weights[py, px] = np.linalg.solve(normal[py, px] + ridge * np.eye(taps_count), rhs[py, px])
    return weights.reshape(resample.WEIGHTS_SHAPE)


def training_pairs(paths: list[Path], log) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for path in paths:
        luma = imageio.load_image(path, gray=True)
        if min(luma.shape) < resample.MIN_HALF_SIDE:
            continue
        pairs += [(half, luma) for half in (coded_half(luma, bpp) for bpp in LEARN_BPP) if half is not None]
        log(f"upsampler pairs: {path.name}")
    return pairs


def rd_rows(image: np.ndarray, weights: np.ndarray) -> list[dict]:
    """PSNR of full and half resolution at each rate of BPP_GRID (None where it cannot fit)."""
    height, width = image.shape[:2]
    half = resample.HalfResolution("candidate", weights, 0.0, 0.0, "")
    rows = []
    for bpp in BPP_GRID:
        row: dict = {"target": bpp}
        try:
            row["full"] = metrics.psnr(image, decode(encode(image, bpp=bpp, profile=PROFILE, scale=resample.FULL)))
        except RateControlError:
            row["full"] = None
        coded = coded_half(image, bpp)
        row["half"] = None if coded is None else metrics.psnr(image, resample.upsample(coded, half, height, width))
        rows.append(row)
    return rows


def switched_gain(curves: list[list[dict]], threshold: float) -> float:
    """Mean PSNR gain (dB) over full resolution of choosing half below ``threshold`` bpp."""
    gains = []
    for rows in curves:
        for row in rows:
            chosen = row["half"] if row["target"] < threshold else row["full"]
            if row["full"] is not None and chosen is not None and np.isfinite(row["full"]):
                gains.append(chosen - row["full"])
    return float(np.mean(gains)) if gains else 0.0


def fit_threshold(curves: list[list[dict]]) -> float:
    """The candidate threshold (0 = never half) with the best mean gain on ``curves``."""
    candidates = [0.0] + [b * 1.0001 for b in BPP_GRID]
    return max(candidates, key=lambda t: switched_gain(curves, t))


def fit(weight_paths: list[Path], rule_paths: list[Path], log) -> dict:
    """Weights fitted on ``weight_paths`` and rule thresholds on ``rule_paths``."""
    weights = learn_weights(training_pairs(weight_paths, log))
    curves: dict[str, list] = {"gray": [], "colour": []}
    for path in rule_paths:
        image = imageio.load_image(path)
        if min(image.shape[:2]) < resample.MIN_HALF_SIDE:
            continue
        curves["colour" if image.ndim == 3 else "gray"].append(rd_rows(image, weights))
        log(f"rule curves: {path.name}")
    thresholds = {kind: float(np.median([fit_threshold([rows]) for rows in c])) for kind, c in curves.items()}
    gains = {kind: switched_gain(curves[kind], thresholds[kind]) for kind in curves}
    return {"weights": weights, "thresholds": thresholds, "gains_db": gains}


def save(out: Path, fitted: dict, replace_frozen: bool = False) -> dict:
    """Write the npz (FrozenArtifactError if that changes the upsampler in ``out`` and
    not ``replace_frozen``) and return its manifest entry."""
    path = out / f"{MODEL}.npz"
    buffer = io.BytesIO()
    np.savez(
        buffer,
        weights=fitted["weights"],
        gray_below_bpp=np.float64(fitted["thresholds"]["gray"]),
        colour_below_bpp=np.float64(fitted["thresholds"]["colour"]),
    )
    write_frozen_artifact(path, buffer.getvalue(), replace_frozen)
    return {"file": path.name, "sha256": models.file_sha256(path), "kind": resample.KIND}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument(
        REPLACE_FROZEN_FLAG,
        action="store_true",
        help="write an upsampler that differs from the one in --out (breaks its streams)",
    )
    args = parser.parse_args(argv)
    fit_part, held_out = split()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    fitted = fit(fit_part, sorted(fit_part + held_out), log)
    try:
        entry = save(args.out, fitted, args.replace_frozen)
    except FrozenArtifactError as error:
        log(f"export.train_upsampler: error: {error}")
        return 2
    entry["training"] = {
        "data": "waterloo training split: weights on the fit part (export/train_upsampler.split, luma), thresholds on every training image",
        "images": [p.name for p in fit_part],
        "held_out": [p.name for p in held_out],
        "learn_bpp": list(LEARN_BPP),
        "bpp_grid": list(BPP_GRID),
        "thresholds_bpp": fitted["thresholds"],
        "fit_gain_db": fitted["gains_db"],
        "command": COMMAND,
    }

    record_profile_model(args.out, PROFILE, "half_resolution", MODEL, entry)
    print(f"{MODEL}: thresholds {fitted['thresholds']}, mean gains {fitted['gains_db']} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
