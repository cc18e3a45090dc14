"""Measure every inference backend on the test sets; write docs/results/backends.{json,md}.

    python -m export.evaluate            # after python -m export

Per image of kodak/ and aerials/ (luma, as Pillow's convert('L') gives it), each
backend encodes with rate control at 0.15 bpp, the normal (float) decoder decodes, and
PSNR is taken against the luma original. Images where the seed profile cannot reach
0.15 bpp (its coarsest quality needs more bytes) are listed and left out of the means.
It also counts, over every 8x8 luma block of the test images and for both models, the
int8 latents on which each int8 runtime differs from numba-int8. The test-set PSNR is
written into each artifact's ``quality`` in models/manifest.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from firmware_py import datasets, imageio, metrics
from firmware_py.codec import blocking, decode, encoder, models
from firmware_py.codec.backends import BACKENDS, DEFAULT_BACKEND, INT8_BACKENDS, create_backend
from firmware_py.codec.backends.base import load_int8_layer
from firmware_py.codec.backends.int8 import quantize_input
from firmware_py.codec.errors import RateControlError
from firmware_py.codec.profiles import get_profile
from firmware_py.fsutil import write_atomically

from .__main__ import ARTIFACT_BACKENDS
from .manifest import read_manifest, write_manifest

PROFILE = "seed"
SETS = ("kodak", "aerials")
TARGET_BPP = 0.15
REFERENCE_INT8 = "numba-int8"
NO_XNNPACK = "tflite, XNNPACK off"
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def litert_without_delegates(name: str, x: np.ndarray) -> np.ndarray:
    """TFLite-int8 on LiteRT's built-in optimized kernels, the default XNNPACK delegate off."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_path=str(models.export_artifact(name, "tflite-int8")),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def rate_controlled(image: np.ndarray, backend: str) -> dict | None:
    """PSNR and bpp of the stream rate control makes at TARGET_BPP; None if none fits."""
    analysis = encoder.analyse_frame(image, get_profile(PROFILE), backend)
    try:
        stream = encoder.fit_budget(analysis, int(TARGET_BPP * image.size / 8))
    except RateControlError:
        return None
    return {"psnr_db": metrics.psnr(image, decode(stream)), "bpp": len(stream) * 8 / image.size}


def int8_mismatches(image: np.ndarray, runners: dict) -> dict[str, list[int]]:
    """Per int8 runtime: [latents differing from numba-int8, latents compared]."""
    blocks = blocking.plane_to_blocks(image.astype(np.float64))
    counts = {name: [0, 0] for name in (*INT8_BACKENDS, NO_XNNPACK) if name != REFERENCE_INT8}
    for model in get_profile(PROFILE).models:
        expected = runners[REFERENCE_INT8].latents_int8(blocks, model)
        for name in counts:
            if name == NO_XNNPACK:
                x = quantize_input(blocks, load_int8_layer(model.name))
                got = litert_without_delegates(model.name, x)
            else:
                got = runners[name].latents_int8(blocks, model)
            counts[name][0] += int(np.count_nonzero(got != expected))
            counts[name][1] += int(expected.size)
    return counts


def evaluate_set(name: str, runners: dict, log) -> dict:
    images, mismatches = [], {}
    for path in datasets.image_set(name):
        image = imageio.load_image(path, gray=True)
        row = {"image": path.name, "results": {b: rate_controlled(image, b) for b in BACKENDS}}
        for runtime, (diff, total) in int8_mismatches(image, runners).items():
            mismatches.setdefault(runtime, [0, 0])
            mismatches[runtime][0] += diff
            mismatches[runtime][1] += total
        images.append(row)
        log(f"{name}/{path.name}: " + ", ".join(f"{b} {r['psnr_db']:.3f}" if r else f"{b} -" for b, r in row["results"].items()))
    fitting = [r for r in images if all(r["results"].values())]
    summary = {}
    for backend in BACKENDS:
        psnr = np.array([r["results"][backend]["psnr_db"] for r in fitting])
        reference = np.array([r["results"][DEFAULT_BACKEND]["psnr_db"] for r in fitting])
        summary[backend] = {
            "mean_psnr_db": float(psnr.mean()),
            "mean_bpp": float(np.mean([r["results"][backend]["bpp"] for r in fitting])),
            "mean_delta_db": float(np.mean(psnr - reference)),
            "max_abs_delta_db": float(np.max(np.abs(psnr - reference))),
        }
    return {
        "images": images,
        "fitting": [r["image"] for r in fitting],
        "not_fitting": [r["image"] for r in images if not all(r["results"].values())],
        "summary": summary,
        "int8_mismatches": {k: {"differing": d, "latents": t, "rate": d / t} for k, (d, t) in mismatches.items()},
    }


def markdown(results: dict) -> str:
    lines = [
        "# Inference backends: quality at 0.15 bpp",
        "",
        "Made by `python -m export.evaluate` (see docs/MODELS.md). Luma only: each image is",
        "converted with Pillow's `convert('L')`, encoded with the `seed` profile at 0.15 bpp",
        "(rate control) with the backend named, decoded by the normal float decoder, and",
        "compared on luma. Only the encoder's analysis transform changes per backend.",
        "ΔPSNR is against the default float backend `numba`, image by image.",
        "",
    ]
    for name in SETS:
        result = results["sets"][name]
        total = len(result["images"])
        lines += [
            f"## {name}/ ({len(result['fitting'])} of {total} images reach 0.15 bpp)",
            "",
        ]
        if result["not_fitting"]:
            lines += [
                "Left out (the seed profile's coarsest quality needs more than 0.15 bpp): "
                + ", ".join(result["not_fitting"]),
                "",
            ]
        lines += ["| backend | mean PSNR (dB) | mean bpp | mean ΔPSNR (dB) | max abs ΔPSNR (dB) |", "|---|---|---|---|---|"]
        for backend, s in result["summary"].items():
            lines.append(
                f"| {backend} | {s['mean_psnr_db']:.3f} | {s['mean_bpp']:.4f} | {s['mean_delta_db']:+.4f} | {s['max_abs_delta_db']:.4f} |"
            )
        lines += ["", "int8 latents differing from `numba-int8` (all 8x8 luma blocks of the set, G1 and G2):", ""]
        lines += ["| runtime | differing | latents | rate |", "|---|---|---|---|"]
        for runtime, m in result["int8_mismatches"].items():
            lines.append(f"| {runtime} | {m['differing']} | {m['latents']} | {m['rate']:.2e} |")
        lines.append("")
    lines += [f"Tools: {json.dumps(results['tools'])}", ""]
    return "\n".join(lines)


def record_in_manifest(results: dict) -> None:
    """Test-set PSNR of the seed profile's models and their artifacts (its backend running both)."""
    directory = models.models_dir()
    manifest = read_manifest(directory)
    for model in get_profile(PROFILE).models:
        entry = manifest["models"][model.name]
        targets = [(entry, DEFAULT_BACKEND)] + [(a, ARTIFACT_BACKENDS[k]) for k, a in entry.get("exports", {}).items()]
        for target, backend in targets:
            target.setdefault("quality", {})["test_psnr_db"] = {
                "bpp": TARGET_BPP,
                "measure": "seed profile, luma, mean over the images that reach the rate (docs/results/backends.md)",
                **{name: round(results["sets"][name]["summary"][backend]["mean_psnr_db"], 4) for name in SETS},
            }
    write_manifest(directory, manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for backends.json and backends.md")
    args = parser.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    from .__main__ import tool_versions

    runners = {name: create_backend(name) for name in INT8_BACKENDS}
    results = {
        "target_bpp": TARGET_BPP,
        "profile": PROFILE,
        "plane": "luma",
        "tools": tool_versions(),
        "sets": {name: evaluate_set(name, runners, log) for name in SETS},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out / "backends.json", (json.dumps(results, indent=1) + "\n").encode())
    write_atomically(args.out / "backends.md", markdown(results).encode())
    record_in_manifest(results)
    log(f"wrote {args.out / 'backends.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
