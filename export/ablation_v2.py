"""Held-out design check of the ``klt`` profile: what each of its parts is worth.

    python -m export.ablation_v2 --out docs/results/klt-ablation

Everything is fitted on the fit subset of the Waterloo training split and measured on
its held-out subset (``export.train_v2.split_training``: every 4th training image is
held out); no test image (kodak/, aerials/, lena*, boat*, goldhill*) is read. The fit
is export/train_v2.py's own procedure (KLT basis, dead-zone rounding tuned at 0.15 bpp,
restoration maps), run on the fit subset only.

Each variant switches one part off and is rate-controlled (``ratecontrol.fit_quality``,
luma) to every bpp of CURVE_BPP on every held-out image:

- ``plain-dc``: DC levels coded as the difference from the previous block in raster
  order (JPEG's DC prediction) instead of MED;
- ``rounding-0.5``: AC levels rounded to nearest instead of the dead zone (restoration
  refitted for it);
- ``no-zero-runs``: every AC level up to a block's last non-zero one is its own Huffman
  symbol (its size category, 0 for a zero), then EOB: end-of-block without zero runs.
  An estimate: optimal Huffman code lengths of that alphabet, with the run-length
  tables' byte count for the table itself;
- ``no-deblocking``: the same streams as ``klt``, restored without the edge maps (the
  restoration of the committed models before this check);
- ``no-restoration``: the same streams as ``klt``, dequantized as level x step;
- ``dct``: the 8x8 DCT-II basis in zigzag order instead of the separable KLT
  (restoration refitted);
- ``full-klt``: the KLT of the whole mean-removed 64-pixel blocks (the klt basis until
  issue 5, session 4) instead of the separable KLT (restoration refitted).

Sizes are whole version 6 streams (header, tables, CRC), computed from the exact symbol
counts without packing, with explicit (compact) tables only: no static table set is fitted
here (export/measure_tables.py checks those); ``tests/test_ablation_v2.py`` checks that
they equal the encoder's.
JPEG and JPEG 2000 are swept as ``qpv bench rd`` sweeps them (firmware_py/bench). PSNR
at the targets is interpolated on each image's curve like the bench does, BD-rate is
firmware_py/bench/bdrate.py over 0.05-0.25 bpp, both averaged over the images.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from export import train_v2
from export.train import training_blocks
from firmware_py import datasets, imageio, metrics
from firmware_py.bench.bdrate import bjontegaard
from firmware_py.bench.codecs import Jpeg2000Codec, JpegCodec
from firmware_py.bench.curves import interpolate_at
from firmware_py.bench.rd import measure_image, sweep_window
from firmware_py.codec import (
    blocking,
    color,
    container_v2,
    huffman,
    jointdc,
    prediction,
    ratecontrol,
    restoration,
    runlength,
    tablecoding,
    transform,
)
from firmware_py.codec.bitstream import ColourMode, StreamHeader
from firmware_py.codec.encoder_v2 import PlaneCoefficients
from firmware_py.codec.models import LinearAutoencoder
from firmware_py.fsutil import write_atomically

TARGETS = (0.05, 0.1, 0.15, 0.25)
CURVE_BPP = (0.04, 0.05, 0.07, 0.1, 0.13, 0.15, 0.2, 0.25, 0.3)
COMMAND = "python -m export.ablation_v2 --out OUT"


@dataclass(frozen=True)
class Variant:
    key: str
    what: str
    basis: str = "klt"
    rounding: float | None = None  # None: the tuned dead-zone offset
    med: bool = True
    zero_runs: bool = True
    restore: bool = True
    deblock: bool = True


VARIANTS = (
    Variant("klt", "everything on (fitted on the fit subset)"),
    Variant("plain-dc", "DC: previous-block difference instead of MED", med=False),
    Variant("rounding-0.5", "AC rounded to nearest instead of the dead zone", rounding=0.5),
    Variant("no-zero-runs", "AC: one symbol per level up to the last non-zero, then EOB (estimate)", zero_runs=False),
    Variant("no-deblocking", "restoration without its edge maps", deblock=False),
    Variant("no-restoration", "dequantize as level x step (no restoration, no deblocking)", restore=False),
    Variant("dct", "8x8 DCT-II in zigzag order instead of the separable KLT", basis="dct"),
    Variant("full-klt", "KLT of whole 64-pixel blocks instead of the separable KLT", basis="full-klt"),
)


def dct_basis() -> np.ndarray:
    """(64, 64) orthonormal 2-D DCT-II rows in JPEG's zigzag order (row 0 = DC = sum / 8)."""
    n = blocking.BLOCK
    k, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    one = np.sqrt(np.where(k == 0, 1.0, 2.0) / n) * np.cos(np.pi * (2 * x + 1) * k / (2 * n))
    zigzag = sorted(
        ((u, v) for u in range(n) for v in range(n)), key=lambda t: (t[0] + t[1], t[0] if (t[0] + t[1]) % 2 else t[1])
    )
    return np.array([np.outer(one[u], one[v]).ravel() for u, v in zigzag])


def full_klt_basis(x: np.ndarray) -> np.ndarray:
    """(64, 64) orthonormal rows: DC, then the principal axes of the mean-removed (n, 64)
    blocks ``x`` in decreasing variance."""
    ac = x - x.mean(axis=1, keepdims=True)
    variances, vectors = np.linalg.eigh(ac.T @ ac / len(ac))
    axes = vectors[:, np.argsort(variances)[::-1][: blocking.BLOCK_PIXELS - 1]].T
    axes *= np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])[:, None]
    return np.concatenate([np.full((1, blocking.BLOCK_PIXELS), 1.0 / blocking.BLOCK), axes])


@dataclass(frozen=True)
class Fitted:
    bases: dict[str, LinearAutoencoder]
    rounding: float
    base_step: float
    restorations: dict[tuple[str, float], restoration.RestorationModel]


def fit(paths: list[Path], log: Callable[[str], None]) -> Fitted:
    """export/train_v2.py's procedure on ``paths``, plus what the variants need refitted."""
    blocks = training_blocks(paths)
    bases = {
        "klt": train_v2.basis_model(train_v2.learn_basis(blocks)),
        "dct": train_v2.basis_model(dct_basis(), "dct"),
        "full-klt": train_v2.basis_model(full_klt_basis(blocks), "full-klt"),
    }
    images = [imageio.load_image(p, gray=True) for p in paths]
    planes = {key: [train_v2.plane_coefficients(img, model) for img in images] for key, model in bases.items()}
    rounding, base_step, _ = train_v2.tune_rounding(images, planes["klt"], bases["klt"], log)
    restorations = {
        (key, r): train_v2.fit_restoration(images, planes[key], bases[key], r, log)
        for key, r in (("klt", rounding), ("klt", 0.5), ("dct", rounding), ("full-klt", rounding))
    }
    return Fitted(bases, rounding, base_step, restorations)


def previous_block_residuals(dc: np.ndarray) -> np.ndarray:
    """JPEG's DC prediction: each DC level minus the previous block's (raster order)."""
    return np.diff(dc, prepend=0)


def ac_bits_without_runs(levels: np.ndarray) -> int:
    """Huffman bits of (size category per AC level up to the last non-zero, then EOB) of
    the blocks with AC levels (the joint DC symbol says which have none)."""
    ac = np.abs(levels[:, 1:])
    sizes = np.where(ac > 0, np.floor(np.log2(np.maximum(ac, 1))).astype(np.int64) + 1, 0)
    positions = np.arange(1, blocking.BLOCK_PIXELS)
    last = np.max(np.where(ac > 0, positions, 0), axis=1)
    coded = positions[None, :] <= last[:, None]
    eob = runlength.MAX_SIZE + 1
    hist = np.bincount(
        np.concatenate([sizes[coded], np.full(int(np.sum((last > 0) & (last < blocking.BLOCK_PIXELS - 1))), eob)]),
        minlength=eob + 1,
    )
    return int(np.dot(hist, huffman.code_lengths(hist)))


def plane_segment_bytes(
    levels: np.ndarray, rows: int, cols: int, variant: Variant, static: tablecoding.PlaneStatic
) -> int:
    """Bytes of a version 6 plane segment, its tables chosen like the encoder's among the
    plane's optimal ones and ``static`` (none in the check: no static set is fitted)."""
    dc = levels[:, 0]
    residuals = prediction.dc_residuals(dc, rows, cols) if variant.med else previous_block_residuals(dc)
    counts = jointdc.symbol_counts(residuals, levels, cols, container_v2.REST_TABLES[container_v2.CONTEXT_VERSION])
    refs, tables, _ = tablecoding.choose_joint_tables(counts, static)
    if variant.zero_runs:
        bits = jointdc.payload_bits(counts, tables)
    else:
        no_ac = replace(counts, first=np.zeros_like(counts.first), rest=np.zeros_like(counts.rest))
        bits = jointdc.payload_bits(no_ac, tables) + ac_bits_without_runs(levels)
    return container_v2.segment_size(tables, (bits + 7) // 8, refs)


def stream_bytes(
    levels: np.ndarray,
    plane: PlaneCoefficients,
    shape: tuple[int, int],
    step: float,
    variant: Variant,
    static: tablecoding.PlaneStatic = tablecoding.NO_STATIC,
) -> int:
    header = StreamHeader(0, ColourMode.GRAY, shape[1], shape[0], bytes(4), (step,), container_v2.CONTEXT_VERSION)
    return container_v2.overhead_size(header) + plane_segment_bytes(levels, plane.rows, plane.cols, variant, static)


def decoded_image(
    levels, step, rounding, plane: PlaneCoefficients, shape, basis, model, deblock: bool = True
) -> np.ndarray:
    """What decoder_v2 makes of a gray plane's levels (``model`` None: no restoration),
    without the post-filter: it is fitted on every training image, so it has its own
    held-out check (``python -m export.train_postfilter --check``)."""
    if model is None:
        coefficients = levels * step
    else:
        coefficients = restoration.restore(levels, step, rounding, plane.rows, plane.cols, model)
    pixels = blocking.blocks_to_plane(transform.synthesise(coefficients, basis), *shape)
    if model is not None and deblock:
        pixels = restoration.deblock(pixels, step, model)
    return color.planes_to_image([pixels], *shape)


def stored_step(step: float) -> float:
    """The step as a stream stores it (float32), as the encoder uses it."""
    return float(np.float32(step))


def variant_curve(image: np.ndarray, fitted: Fitted, variant: Variant) -> dict:
    """(bpp, PSNR) of ``variant`` rate-controlled to each CURVE_BPP on one image."""
    basis = fitted.bases[variant.basis]
    rounding = variant.rounding or fitted.rounding
    plane = train_v2.plane_coefficients(image, basis)
    model = fitted.restorations[(variant.basis, rounding)] if variant.restore else None
    curve = {"bpp": [], "psnr": []}
    for bpp in CURVE_BPP:

        def size_at(quality: float) -> int:
            step = stored_step(fitted.base_step * quality)
            return stream_bytes(train_v2.levels_at(plane, step, rounding), plane, image.shape, step, variant)

        quality, size = ratecontrol.fit_quality(size_at, int(bpp * image.size / 8))
        step = stored_step(fitted.base_step * quality)
        levels = train_v2.levels_at(plane, step, rounding)
        decoded = decoded_image(levels, step, rounding, plane, image.shape, basis, model, variant.deblock)
        curve["bpp"].append(size * 8 / image.size)
        curve["psnr"].append(metrics.psnr(image, decoded))
    return curve


def mean_at_targets(curves: list[dict]) -> tuple[list[float | None], list[int]]:
    """Mean PSNR at each target over the images whose curve reaches it, and their count."""
    columns = [
        [v for v in col if v is not None]
        for col in zip(*(interpolate_at(c["bpp"], c["psnr"], list(TARGETS)) for c in curves))
    ]
    return [float(np.mean(col)) if col else None for col in columns], [len(col) for col in columns]


def mean_bd_rate(anchors: list[dict], tests: list[dict], names: tuple[str, str]) -> dict:
    """Mean over images of the test curve's BD-rate against the anchor's, with the count."""
    values = [
        bjontegaard(a["bpp"], a["psnr"], t["bpp"], t["psnr"], names=names).percent for a, t in zip(anchors, tests)
    ]
    found = [v for v in values if v is not None]
    return {"mean_percent": float(np.mean(found)) if found else None, "images": len(found), "per_image": values}


def measure(held_out: list[Path], fitted: Fitted, log: Callable[[str], None]) -> dict:
    """Every variant's and reference's curves on every held-out image."""
    references = [JpegCodec(), Jpeg2000Codec()]
    curves: dict[str, list[dict]] = {v.key: [] for v in VARIANTS} | {c.key: [] for c in references}
    for path in held_out:
        image = imageio.load_image(path, gray=True)
        for variant in VARIANTS:
            curves[variant.key].append(variant_curve(image, fitted, variant))
        measured = measure_image(path, image, references, sweep_window(list(TARGETS)))["curves"]
        for codec in references:
            curves[codec.key].append({"bpp": measured[codec.key]["bpp"], "psnr": measured[codec.key]["psnr"]})
        log(f"{path.name} measured")
    return curves


def summary(curves: dict[str, list[dict]]) -> dict:
    rows = {}
    for key, curve in curves.items():
        psnr, reached = mean_at_targets(curve)
        rows[key] = {"psnr_at_targets": psnr, "images_at_targets": reached}
        if key != "klt":
            rows[key]["bd_rate_vs_klt"] = mean_bd_rate(curves["klt"], curve, ("klt", key))
    for reference in ("jpeg", "jpeg2000"):
        rows["klt"][f"bd_rate_vs_{reference}"] = mean_bd_rate(curves[reference], curves["klt"], (reference, "klt"))
    return rows


def markdown(doc: dict) -> str:
    what = {v.key: v.what for v in VARIANTS} | {"jpeg": "libjpeg-turbo, optimize", "jpeg2000": "OpenJPEG 9/7"}
    lines = [
        f"# klt held-out ablation ({len(doc['held_out'])} held-out training images, luma)",
        "",
        (
            f"Fit: {', '.join(doc['fit'])}. Held out: {', '.join(doc['held_out'])}. "
            f"Tuned dead-zone rounding {doc['rounding']:g}. Command: `{doc['command']}`."
        ),
        "",
        (
            "Mean luma PSNR (dB) at each rate, over the images that reach it (their number in brackets when not "
            "all). BD-rate vs klt: extra bits the variant needs for the same PSNR (positive: the part pays)."
        ),
        "",
        "| variant | what | " + " | ".join(f"{t:g} bpp" for t in TARGETS) + " | BD-rate vs klt |",
        "|---|---|" + "---|" * (len(TARGETS) + 1),
    ]
    for key, row in doc["summary"].items():
        psnr = " | ".join(
            "-" if v is None else f"{v:.2f}" + ("" if n == len(doc["held_out"]) else f" ({n})")
            for v, n in zip(row["psnr_at_targets"], row["images_at_targets"])
        )
        bd = row.get("bd_rate_vs_klt")
        bd_text = (
            ""
            if bd is None
            else ("-" if bd["mean_percent"] is None else f"{bd['mean_percent']:+.1f} % ({bd['images']} img)")
        )
        lines.append(f"| {key} | {what[key]} | {psnr} | {bd_text} |")
    klt = doc["summary"]["klt"]
    lines += [
        "",
        "BD-rate of klt (negative: klt needs fewer bits): "
        + ", ".join(
            f"vs {r} {klt[f'bd_rate_vs_{r}']['mean_percent']:+.1f} % ({klt[f'bd_rate_vs_{r}']['images']} images)"
            for r in ("jpeg", "jpeg2000")
            if klt[f"bd_rate_vs_{r}"]["mean_percent"] is not None
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="directory for ablation.json and ablation.md")
    args = parser.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr)
    fit_paths, held_out = train_v2.split_training(datasets.training_images())
    fitted = fit(fit_paths, log)
    curves = measure(held_out, fitted, log)
    doc = {
        "command": COMMAND.replace("OUT", str(args.out)),
        "fit": [p.name for p in fit_paths],
        "held_out": [p.name for p in held_out],
        "rounding": fitted.rounding,
        "base_step": fitted.base_step,
        "targets_bpp": list(TARGETS),
        "curve_bpp": list(CURVE_BPP),
        "curves": curves,
        "summary": summary(curves),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out / "ablation.json", (json.dumps(doc, indent=1) + "\n").encode())
    write_atomically(args.out / "ablation.md", markdown(doc).encode())
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
