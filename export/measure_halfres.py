"""Half-resolution coding of the ``klt`` profile on the held-out training images.

    python -m export.measure_halfres --json halfres.json    # prints markdown tables

On the held-out part of the Waterloo training split (export/train_upsampler.split: never
lena*, boat*, goldhill*, kodak or aerials; the shipped upsampler and rule are fitted on
the other part), luma and RGB, at each target of train_upsampler.BPP_GRID:

- ``full``: klt at full resolution (format version 2), as before this stage;
- ``half+learned`` / ``half+bicubic`` / ``half+lanczos``: the frame box-downsampled,
  coded in the same byte budget, decoded and upsampled by the shipped learned filter
  or by Pillow's bicubic / Lanczos;
- ``switched``: the codec as it ships (``encode(img, bpp=b, profile='klt')``), whose
  rule picks one of ``full`` and ``half+learned``.

Then the BD-rate (firmware_py/bench/bdrate.py, 0.05-0.25 bpp, mean of per-image values)
of ``switched`` and of the per-point better of full and half (oracle) against ``full``
and against JPEG 2000 (firmware_py/bench/codecs.py). Images that full resolution codes
near-losslessly at some rate (flat synthetic ones, PSNR >= 50 dB) are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from export.train_upsampler import BPP_GRID, PROFILE, coded_half, split
from firmware_py import imageio, metrics
from firmware_py.bench.bdrate import bjontegaard
from firmware_py.bench.codecs import Jpeg2000Codec
from firmware_py.codec import decode, decoder_v2, encode, encoder_v2, resample
from firmware_py.codec.errors import RateControlError
from firmware_py.codec.profile_v2 import get_transform_profile

NEAR_LOSSLESS_DB = 50.0
CURVES = ("full", "half+learned", "half+bicubic", "half+lanczos", "switched")
_PIL = {"half+bicubic": Image.BICUBIC, "half+lanczos": Image.LANCZOS}


def pil_upsample(half: np.ndarray, how: str, height: int, width: int) -> np.ndarray:
    planes = [half] if half.ndim == 2 else [half[..., c] for c in range(3)]
    up = []
    for plane in planes:
        big = Image.fromarray(plane.astype(np.float32)).resize((2 * plane.shape[1], 2 * plane.shape[0]), _PIL[how])
        up.append(np.clip(np.rint(np.asarray(big)[:height, :width]), 0, 255).astype(np.uint8))
    return up[0] if len(up) == 1 else np.stack(up, axis=-1)


def point(image: np.ndarray, stream: bytes, target: float) -> dict:
    rate = len(stream) * 8 / (image.shape[0] * image.shape[1])
    return {"target": target, "bpp": rate, "psnr": metrics.psnr(image, decode(stream))}


def measure_image(image: np.ndarray) -> dict[str, list]:
    height, width = image.shape[:2]
    half_model = get_transform_profile(PROFILE).half
    curves: dict[str, list] = {name: [] for name in CURVES}
    for bpp in BPP_GRID:
        try:
            curves["full"].append(
                point(image, encoder_v2.encode(image, bpp=bpp, profile=PROFILE, scale=resample.FULL), bpp)
            )
        except RateControlError:
            pass
        try:
            stream = encode(image, bpp=bpp, profile=PROFILE)
            curves["switched"].append({**point(image, stream, bpp), "scale": decoder_v2.read(stream)[0].scale})
        except RateControlError:
            pass
        half = coded_half(image, bpp)
        if half is None:
            continue
        size = len(encoder_v2.encode(image, bpp=bpp, profile=PROFILE, scale=resample.HALF))
        rate = size * 8 / (height * width)
        ups = {"half+learned": resample.upsample(half, half_model, height, width)}
        ups.update({how: pil_upsample(half, how, height, width) for how in _PIL})
        for name, up in ups.items():
            curves[name].append({"target": bpp, "bpp": rate, "psnr": metrics.psnr(image, up)})
    return curves


def j2k_curve(image: np.ndarray) -> list[dict]:
    codec = Jpeg2000Codec()
    coder = codec.encoder(image)
    points = []
    for setting in codec.settings(image, (0.05, 0.25)):
        data = coder(setting)
        points.append(
            {
                "bpp": len(data) * 8 / (image.shape[0] * image.shape[1]),
                "psnr": metrics.psnr(image, codec.decode(data, image)),
            }
        )
    return points


def measure(log) -> dict:
    _, held_out = split()
    results: dict = {"bpp_grid": BPP_GRID, "held_out": [p.name for p in held_out], "images": {}}
    for path in held_out:
        for kind in ("luma", "rgb"):
            image = imageio.load_image(path, gray=kind == "luma")
            if kind == "rgb" and image.ndim == 2:
                continue
            curves = measure_image(image)
            curves["jpeg2000"] = j2k_curve(image)
            results["images"][f"{path.name}:{kind}"] = curves
            log(f"{path.name} {kind}")
    return results


def usable(curves: dict) -> bool:
    """False for flat synthetic images that full resolution codes (nearly) losslessly: their
    PSNR (infinite, or above NEAR_LOSSLESS_DB) would swamp every mean."""
    return all(p["psnr"] < NEAR_LOSSLESS_DB for p in curves["full"])


def at_target(curve: list[dict], target: float) -> float | None:
    """PSNR of the point coded for ``target`` (None where that rate could not be coded)."""
    return next((p["psnr"] for p in curve if p["target"] == target), None)


def bd(anchor: list[dict], test: list[dict]) -> float | None:
    if not anchor or not test:
        return None
    return bjontegaard(
        [p["bpp"] for p in anchor], [p["psnr"] for p in anchor], [p["bpp"] for p in test], [p["psnr"] for p in test]
    ).percent


def oracle(curves: dict) -> list[dict]:
    best = []
    for target in BPP_GRID:
        options = [p for p in curves["full"] + curves["half+learned"] if p["target"] == target]
        if options:
            best.append(max(options, key=lambda p: p["psnr"]))
    return best


def report(results: dict) -> str:
    lines = []
    for kind in ("luma", "rgb"):
        entries = {k: v for k, v in results["images"].items() if k.endswith(kind) and usable(v)}
        left_out = [k for k in results["images"] if k.endswith(kind) and k not in entries]
        lines += [
            f"\n### Held-out {kind}: {len(entries)} images"
            + (f" (left out, near-lossless: {', '.join(left_out)})" if left_out else "")
        ]
        lines += [
            "",
            "| target bpp | " + " | ".join(CURVES) + " | half chosen |",
            "| ---: |" + " ---: |" * (len(CURVES) + 1),
        ]
        for target in BPP_GRID:
            cells = []
            for name in CURVES:
                values = [v for v in (at_target(c[name], target) for c in entries.values()) if v is not None]
                cells.append(f"{np.mean(values):.2f} ({len(values)})" if values else "–")
            chosen = sum(
                1 for c in entries.values() for p in c["switched"] if p["target"] == target and p["scale"] == resample.HALF
            )
            lines.append(f"| {target:g} | " + " | ".join(cells) + f" | {chosen}/{len(entries)} |")
        lines += [
            "",
            "| BD-rate, 0.05-0.25 bpp | vs klt full | vs JPEG 2000 | images |",
            "| :--- | ---: | ---: | ---: |",
        ]
        for name, pick in (
            ("klt full", lambda c: c["full"]),
            ("switched (as shipped)", lambda c: c["switched"]),
            ("oracle", oracle),
        ):
            vs_full = [bd(c["full"], pick(c)) for c in entries.values()]
            vs_j2k = [bd(c["jpeg2000"], pick(c)) for c in entries.values()]
            ok_full, ok_j2k = [v for v in vs_full if v is not None], [v for v in vs_j2k if v is not None]
            lines.append(
                f"| {name} | {np.mean(ok_full):+.2f} % | {np.mean(ok_j2k):+.2f} % | {len(ok_full)}/{len(ok_j2k)} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="measurements (re-used if the file exists)")
    args = parser.parse_args(argv)
    if args.json.exists():
        results = json.loads(args.json.read_text())
    else:
        results = measure(lambda m: print(m, file=sys.stderr, flush=True))
        args.json.write_text(json.dumps(results))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
