"""``qpv bench rd``: rate-distortion curves of qpv against JPEG, JPEG 2000 and WebP.

One evaluation run writes ``rd.json`` (everything measured, and the figures derived
from it); the markdown table (``report.markdown_report``) and the plot
(``plot.plot_rd``) are made from that JSON alone, so either can be remade from a
stored result without re-running the codecs.

Per image and codec the knob is swept into a curve of (bpp, PSNR, SSIM) points; the
values at each target bpp are interpolated on that image's own curve (never
extrapolated), then averaged over the images that reach the target.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import imageio
from ..codec import DEFAULT_PROFILE, ImageError, ModelError, available_profiles
from ..fsutil import write_atomically
from .bdrate import BD_WINDOW_BPP, bjontegaard
from .codecs import QpvCodec, RDCodec, library_versions, reference_codecs
from .curves import interpolate_at
from .plot import plot_rd
from .report import markdown_report
from .sweep import sweep

SCHEMA = "qpv-bench-rd/1"
DEFAULT_TARGETS = "0.05,0.1,0.15,0.2,0.25"
# SSIM's 11x11 window and JPEG 2000's wavelet levels need some room.
MIN_SIDE = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="image files, or directories whose .png files are all used",
    )
    source.add_argument(
        "--from-json",
        type=Path,
        metavar="RD_JSON",
        help="measure nothing: recompute a stored rd.json's derived figures and rewrite it, rd.md and rd.png in --out",
    )
    parser.add_argument(
        "--bpp", default=DEFAULT_TARGETS, help="comma-separated target bits per pixel (default: %(default)s)"
    )
    parser.add_argument(
        "--color",
        choices=("luma", "rgb"),
        default="luma",
        help="luma: code Pillow's convert('L'); rgb: code colour images as colour (default: %(default)s)",
    )
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help="qpv profile (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("rd"), help="output directory for rd.json, rd.md, rd.png")
    parser.add_argument("--name", help="title of the table and plot (default: made from the images)")


def parse_targets(text: str) -> list[float]:
    """The ``--bpp`` list: positive numbers, returned sorted and without repeats."""
    try:
        targets = sorted({float(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise ValueError(f"--bpp takes comma-separated numbers, got '{text}'") from None
    if not targets or any(not (0 < t < 64) for t in targets):
        raise ValueError(f"--bpp targets must be between 0 and 64 bits per pixel, got '{text}'")
    return targets


def list_images(paths: list[Path]) -> list[Path]:
    """Each path as given if it is a file, or the sorted .png files of a directory."""
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file())
            if not found:
                raise ImageError(f"{path}: no .png files in this directory")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise ImageError(f"{path}: no such file or directory")
    return images


def load_for_bench(path: Path, color: str) -> np.ndarray:
    image = imageio.load_image(path, gray=(color == "luma"))
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]} is too small, RD needs {MIN_SIDE}x{MIN_SIDE}")
    return image


def sweep_window(targets: list[float]) -> tuple[float, float]:
    """Rates the sweeps must cover: every target and the BD-rate window."""
    return min(targets[0], BD_WINDOW_BPP[0]), max(targets[-1], BD_WINDOW_BPP[1])


def measure_image(path: Path, image: np.ndarray, codecs: list[RDCodec], window: tuple[float, float]) -> dict:
    """One image's entry in the JSON: its size and every codec's swept curve."""
    curves = {}
    for codec in codecs:
        points = sweep(codec, image, window)
        curves[codec.key] = {
            "setting": [round(p.setting, 6) for p in points],
            "bytes": [p.size for p in points],
            "bpp": [round(p.bpp, 6) for p in points],
            "psnr": [round(p.psnr, 4) for p in points],
            "ssim": [round(p.ssim, 5) for p in points],
        }
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    return {
        "name": path.name,
        "path": str(path),
        "width": width,
        "height": height,
        "channels": channels,
        "curves": curves,
    }


def add_interpolated(entry: dict, targets: list[float]) -> None:
    entry["at_targets"] = {
        key: {metric: interpolate_at(curve["bpp"], curve[metric], targets) for metric in ("psnr", "ssim")}
        for key, curve in entry["curves"].items()
    }


def add_bd_rates(entry: dict, test_key: str, reference_keys: list[str]) -> None:
    test = entry["curves"][test_key]
    entry["bd_rate"] = {}
    for key in reference_keys:
        anchor = entry["curves"][key]
        if not anchor["bpp"] or not test["bpp"]:
            result = {"percent": None, "reason": "a curve has no points", "psnr_range": None}
        else:
            bd = bjontegaard(anchor["bpp"], anchor["psnr"], test["bpp"], test["psnr"], names=(key, test_key))
            result = {
                "percent": bd.percent,
                "reason": bd.reason,
                "psnr_range": list(bd.psnr_range) if bd.psnr_range else None,
            }
        entry["bd_rate"][key] = result


def mean_over_images(images: list[dict], keys: list[str], count: int) -> dict:
    """Per codec and target: the mean over the images that reach it, and how many do."""
    means = {}
    for key in keys:
        means[key] = {"images": [], "psnr": [], "ssim": []}
        for index in range(count):
            for metric in ("psnr", "ssim"):
                values = [e["at_targets"][key][metric][index] for e in images]
                values = [v for v in values if v is not None]
                means[key][metric].append(float(np.mean(values)) if values else None)
            means[key]["images"].append(sum(e["at_targets"][key]["psnr"][index] is not None for e in images))
    return means


def mean_bd_rates(images: list[dict], reference_keys: list[str]) -> dict:
    summary = {}
    for key in reference_keys:
        values = [e["bd_rate"][key]["percent"] for e in images if e["bd_rate"][key]["percent"] is not None]
        reasons = {e["name"]: e["bd_rate"][key]["reason"] for e in images if e["bd_rate"][key]["percent"] is None}
        summary[key] = {
            "mean_percent": float(np.mean(values)) if values else None,
            "images": len(values),
            "of": len(images),
            "reasons": reasons,
        }
    return summary


def summarise(doc: dict) -> None:
    """Add everything derived from the curves: values at the targets, means, BD-rates."""
    keys = [c["key"] for c in doc["codecs"]]
    references = [k for k in keys if k != doc["test_codec"]]
    for entry in doc["images"]:
        add_interpolated(entry, doc["targets_bpp"])
        add_bd_rates(entry, doc["test_codec"], references)
    doc["mean"] = mean_over_images(doc["images"], keys, len(doc["targets_bpp"]))
    doc["bd_rate"] = mean_bd_rates(doc["images"], references)


def canonical_command(args: argparse.Namespace, targets: list[float], name: str) -> str:
    """The command line that reproduces this run (every option spelled out)."""
    words = [
        "qpv",
        "bench",
        "rd",
        "--images",
        *map(str, args.images),
        "--bpp",
        ",".join(f"{t:g}" for t in targets),
        "--color",
        args.color,
        "--profile",
        args.profile,
        "--out",
        str(args.out),
        "--name",
        name,
    ]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    if args.from_json is not None:
        return remake_reports(args.from_json, args.out)
    started = time.monotonic()
    targets = parse_targets(args.bpp)
    if args.profile not in available_profiles():
        raise ModelError(f"unknown profile '{args.profile}'; available: {', '.join(available_profiles())}")
    paths = list_images(args.images)
    name = args.name or f"{len(paths)} image{'s' if len(paths) != 1 else ''}, {args.color}"
    ours = QpvCodec(args.profile)
    codecs: list[RDCodec] = [ours, *reference_codecs()]
    window = sweep_window(targets)
    images = []
    for number, path in enumerate(paths, 1):
        image = load_for_bench(path, args.color)
        images.append(measure_image(path, image, codecs, window))
        print(f"[{number}/{len(paths)}] {path.name} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    doc = {
        "schema": SCHEMA,
        "name": name,
        "command": canonical_command(args, targets, name),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "color": args.color,
        "profile": args.profile,
        "targets_bpp": targets,
        "sweep_window_bpp": list(window),
        "bd_window_bpp": list(BD_WINDOW_BPP),
        "test_codec": ours.key,
        "versions": library_versions(),
        "codecs": [{"key": c.key, "label": c.label, "knob": c.knob} for c in codecs],
        "images": images,
    }
    summarise(doc)
    doc["seconds"] = round(time.monotonic() - started, 1)
    write_outputs(doc, args.out)
    print(markdown_report(doc, per_image=False))
    return 0


def write_outputs(doc: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "rd.json", (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode())
    write_atomically(out / "rd.md", markdown_report(doc, per_image=True).encode())
    plot_rd(doc, out / "rd.png")


def remake_reports(stored: Path, out: Path) -> int:
    """Recompute what derives from a stored rd.json's curves (values at the targets,
    means, BD-rates) and write rd.json, rd.md and rd.png again; the measurements and
    the command that made them are kept as they were."""
    try:
        doc = json.loads(stored.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{stored}: not a readable rd.json ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{stored}: not a {SCHEMA} result")
    summarise(doc)
    write_outputs(doc, out)
    print(markdown_report(doc, per_image=False))
    return 0
