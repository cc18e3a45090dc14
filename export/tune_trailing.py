"""Choose the klt encoder's trailing-one threshold on the training split and record it.

    python -m export.tune_trailing --out models

The encoder drops a block's trailing AC levels of magnitude 1 whose coefficient is under
``trailing_one`` steps (deadzone.drop_weak_trailing_ones). This chooses that threshold
the way a rate-distortion optimizing encoder would be judged: every image of the fit
subset of ``export.train_v2.split_training`` (as gray) is coded at each of QUALITIES with
every candidate of THRESHOLDS and with none (0), decoded as ``qpv decode`` does
(restoration and post-filter included), and each candidate's mean BD-rate against none
(firmware_py/bench/bdrate.py, 0.05-0.25 bpp) is measured; the best one on the fit subset is
then checked on the held-out subset (gray, and the colour images as RGB) and written to
the klt profile of the manifest (``trailing_one``, with the figures in
``trailing_one_tuning``). No test image is read.

Fixed qualities, not rate control: each curve is then smooth (rate control lands anywhere
within 3 % under a budget, which scatters per-image BD-rates by about a per cent, the size
of the effect measured). The whole frame is coded at full resolution.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from export import ablation_v2, train_v2
from export.manifest import update_manifest
from firmware_py import datasets, imageio, metrics
from firmware_py.codec import decode, encoder_v2, models
from firmware_py.codec.profile_v2 import TransformProfile, get_transform_profile

PROFILE = "klt"
COMMAND = "python -m export.tune_trailing --out models"
THRESHOLDS = (0.75, 0.8, 0.85, 0.9)
QUALITIES = (0.12, 0.16, 0.22, 0.3, 0.42, 0.6, 0.85, 1.2, 1.7, 2.4, 3.2, 4.5)  # step multipliers: ~0.03-2 bpp


def curve(image: np.ndarray, profile: TransformProfile) -> dict:
    """(bpp, PSNR) of ``image`` coded with ``profile`` at every quality of QUALITIES."""
    frame = encoder_v2.transform_frame(image, profile)
    points: dict = {"bpp": [], "psnr": []}
    for quality in QUALITIES:
        data = encoder_v2.code_frame(frame, quality)
        points["bpp"].append(len(data) * 8 / (image.shape[0] * image.shape[1]))
        points["psnr"].append(metrics.psnr(image, decode(data)))
    return points


def bd_rates(paths: list[Path], thresholds: tuple[float, ...], gray: bool, log) -> dict[float, dict]:
    """Each threshold's mean BD-rate against 0 over the images of ``paths`` (colour ones only
    unless ``gray``)."""
    base = get_transform_profile(PROFILE)
    curves: dict[float, list[dict]] = {t: [] for t in (0.0, *thresholds)}
    for path in paths:
        image = imageio.load_image(path, gray=gray)
        if not gray and image.ndim != 3:
            continue
        for threshold, found in curves.items():
            found.append(curve(image, replace(base, trailing_one=threshold)))
        log(f"{'luma' if gray else 'rgb'}: {path.name} measured")
    return {t: ablation_v2.mean_bd_rate(curves[0.0], curves[t], ("none", f"trailing_one {t}")) for t in thresholds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=models.models_dir(), help="models directory to update")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    fit, held_out = train_v2.split_training(datasets.training_images())
    on_fit = bd_rates(fit, THRESHOLDS, True, log)
    best = min(THRESHOLDS, key=lambda t: on_fit[t]["mean_percent"])
    tuning = {
        "command": COMMAND,
        "qualities": list(QUALITIES),
        "fit_luma_bd_rate_percent": {str(t): on_fit[t]["mean_percent"] for t in THRESHOLDS},
        "chosen": best,
        "held_out": [p.name for p in held_out],
        "held_out_luma_bd_rate_percent": bd_rates(held_out, (best,), True, log)[best]["mean_percent"],
        "held_out_rgb_bd_rate_percent": bd_rates(held_out, (best,), False, log)[best]["mean_percent"],
    }
    print(tuning)

    def record(manifest: dict) -> None:
        manifest["profiles"][PROFILE] |= {"trailing_one": best, "trailing_one_tuning": tuning}

    update_manifest(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
