"""Held-out check of rate-distortion optimized quantization (firmware_py/codec/rdoq.py):
BD-rate of each rate-distortion factor against plain dead-zone levels.

    python -m export.measure_rdoq [--factors 0.05,0.1,0.2] [--subset fit|held]

Reads only the Waterloo training split, cut by ``export.train_v2.split_training``: the
factor is chosen on its ``fit`` subset and checked on its ``held`` out one; no test
image is read. Every image, as gray (luma) and, if it is colour, as RGB, is rate-
controlled (the encoder's fit_budget, half-resolution rule included) to each bpp of
CURVE_BPP and decoded as ``qpv decode`` does (restoration, deblocking, post-filter).
Prints, per mode and factor, the mean BD-rate (firmware_py/bench/bdrate.py, 0.05-0.25
bpp) against factor 0 and the mean PSNR gain at each bpp. The installed restoration
and post-filter were fitted on all 26 training images, so for them the held-out images
are in-sample.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from export import train_v2
from export.measure_tables import held_out_frames
from firmware_py import datasets, metrics
from firmware_py.bench.bdrate import bjontegaard
from firmware_py.codec import decode, encoder_v2, rdoq, scratch
from firmware_py.codec.encoder import budget_bytes
from firmware_py.codec.profile_v2 import TransformProfile, get_transform_profile

CURVE_BPP = (0.04, 0.05, 0.07, 0.1, 0.13, 0.15, 0.2, 0.25, 0.3)


def with_factor(profile: TransformProfile, factor: float) -> TransformProfile:
    """``profile`` with its rate-distortion factor set to ``factor`` (0: dead-zone levels)."""
    return replace(profile, rd=rdoq.rd_choice(factor, profile.context_tables))


def point(image: np.ndarray, bpp: float, profile: TransformProfile) -> tuple[int, float]:
    """(stream bytes, PSNR of the ground decode) of ``image`` rate-controlled to ``bpp``."""
    scale = encoder_v2.chosen_scale(profile, image, bpp, None)
    with scratch.reusing_arrays():
        frame = encoder_v2.transform_frame(image, profile, None, scale)
        stream = encoder_v2.fit_budget(frame, budget_bytes(image.shape[0] * image.shape[1], bpp, None))
    return len(stream), metrics.psnr(image, decode(stream))


def curve(image: np.ndarray, profile: TransformProfile) -> dict:
    points = [point(image, bpp, profile) for bpp in CURVE_BPP]
    pixels = image.shape[0] * image.shape[1]
    return {"bpp": [size * 8 / pixels for size, _ in points], "psnr": [psnr for _, psnr in points]}


def bd_rates(anchors: list[dict], tests: list[dict]) -> list[float]:
    values = [bjontegaard(a["bpp"], a["psnr"], t["bpp"], t["psnr"]).percent for a, t in zip(anchors, tests)]
    return [v for v in values if v is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="0.05,0.1,0.2", help="comma-separated factors to compare with 0")
    parser.add_argument("--subset", choices=("fit", "held"), default="held")
    parser.add_argument("--profile", default="klt")
    args = parser.parse_args(argv)
    factors = [float(f) for f in args.factors.split(",")]
    fit, held = train_v2.split_training(datasets.training_images())
    paths = fit if args.subset == "fit" else held
    base = get_transform_profile(args.profile)
    print(f"{args.subset} subset: {', '.join(p.name for p in paths)}")
    for mode, images in held_out_frames(paths).items():
        anchors = [curve(image, with_factor(base, 0.0)) for image in images]
        print(f"\n{mode} ({len(images)} images)")
        print("factor  BD-rate %   " + "".join(f"{b:>8}" for b in CURVE_BPP) + "  (mean dB gain at the target bpp)")
        for factor in factors:
            tests = [curve(image, with_factor(base, factor)) for image in images]
            found = bd_rates(anchors, tests)
            gains = np.mean([np.array(t["psnr"]) - np.array(a["psnr"]) for a, t in zip(anchors, tests)], axis=0)
            print(
                f"{factor:<7} {np.mean(found):+8.2f}   "
                + "".join(f"{g:+8.3f}" for g in gains)
                + f"  per image {np.round(found, 2).tolist()}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
