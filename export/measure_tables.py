"""Held-out check of format versions 5 and 6's coding and tables: bytes and BD-rate against version 3.

    python -m export.measure_tables [--tables 4]

Static tables are trained (export/train_tables.py's procedure) on the fit subset of the
Waterloo training split and measured on its held-out subset (export.train_v2.
split_training); no test image is read. Every held-out image, as gray (luma) and, if it
is colour, as RGB, is rate-controlled to each bpp of CURVE_BPP four ways, each with the
encoder's half-resolution rule and exact sizes:

- ``v3``: version 1 table format and blocks coded as runlength.py does (what the klt
  encoder wrote before version 4);
- ``compact``: version 6 (joint DC symbols, other AC tables by start context,
  jointdc.py), explicit compact tables only;
- ``v5``: version 5 (one other AC table) with the fit subset's static version 5 tables;
- ``v6``: version 6 with the fit subset's static version 6 tables (the encoder's way).

(Version 4, static tables without joint DC symbols, measured -4.32 % luma and -5.43 %
RGB BD-rate against v3 with this command before version 5; version 5 with EOBs and one
AC table, before the last flag and the first-symbol table, -8.17 % and -6.81 %.)

The table choice never changes the levels, so each point's image is the decode of its
stream rewritten as version 3. Rate control spends what the tables save on finer steps,
so bytes are compared on the same levels (the v3 point's quality) and quality at the
same rate: prints the mean stream bytes of the four ways at each bpp, and the mean
BD-rate (firmware_py/bench/bdrate.py, 0.05-0.25 bpp) of each way against v3 and of v6
against v5.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from export import train_tables, train_v2
from firmware_py import datasets, imageio, metrics
from firmware_py.bench.bdrate import bjontegaard
from firmware_py.codec import container_v2, decode, encoder_v2, ratecontrol, runlength, statictables
from firmware_py.codec.container_v2 import SCALED_VERSION
from firmware_py.codec.encoder import budget_bytes
from firmware_py.codec.profile_v2 import TransformProfile

CURVE_BPP = (0.04, 0.05, 0.07, 0.1, 0.13, 0.15, 0.2, 0.25, 0.3)
WAYS = ("v3", "compact", "v5", "v6")
# The stream version each way's frames code (v3 recounts the levels of version 6 planes).
VERSIONS = {"v3": container_v2.CONTEXT_VERSION, "compact": container_v2.CONTEXT_VERSION, "v5": 5, "v6": 6}


def version_3_header(frame: encoder_v2.TransformedFrame, steps: tuple[float, ...]) -> container_v2.StreamHeader:
    p = frame.profile
    fingerprint = p.stream_fingerprint(SCALED_VERSION)
    return container_v2.StreamHeader(
        p.profile_id, frame.colour, frame.width, frame.height, fingerprint, steps, SCALED_VERSION
    )


def version_3_coding(plane: encoder_v2.QuantizedPlane) -> tuple[runlength.PlaneTables, tuple]:
    """(optimal tables, symbol counts) of a quantized plane's levels coded as runlength.py does."""
    counts = runlength.symbol_counts(plane.dc_residuals, plane.levels)
    return runlength.tables_for(*counts[:2]), counts


def version_3_stream(frame: encoder_v2.TransformedFrame, steps, planes) -> bytes:
    """The planes as a version 3 stream (version 1 table format) of the installed models."""
    profile = frame.profile
    header = version_3_header(frame, steps)
    codings = [(q, *version_3_coding(q)) for q in planes]
    segments = tuple(
        container_v2.PlaneSegmentV2(tables, runlength.pack(q.dc_residuals, q.levels, tables, counts, q.last_nonzero))
        for q, tables, counts in codings
    )
    units = container_v2.rounding_units(profile.rounding)
    return container_v2.write_stream(container_v2.StreamV2(header, units, segments, frame.scale))


def version_3_size(frame: encoder_v2.TransformedFrame, steps, planes) -> int:
    size = container_v2.overhead_size(version_3_header(frame, steps))
    for q in planes:
        tables, counts = version_3_coding(q)
        size += container_v2.segment_size(tables, (runlength.payload_bits(*counts, tables) + 7) // 8)
    return size


def fitted(
    image: np.ndarray, bpp: float, profile: TransformProfile, way: str
) -> tuple[encoder_v2.TransformedFrame, float, int]:
    """(frame, quality, stream bytes) of ``image`` rate-controlled to ``bpp`` the ``way`` given."""
    scale = encoder_v2.chosen_scale(profile, image, bpp, None)
    frame = replace(encoder_v2.transform_frame(image, profile, None, scale), version=VERSIONS[way])
    encoder_v2.retain_coefficients(frame)
    size_of = version_3_size if way == "v3" else encoder_v2.coded_size
    quality, size = ratecontrol.fit_quality(
        lambda q: size_of(frame, *encoder_v2.quantize_frame(frame, q)),
        budget_bytes(image.shape[0] * image.shape[1], bpp, None),
    )
    return frame, quality, size


def point(image: np.ndarray, bpp: float, profile: TransformProfile, way: str) -> tuple[int, float]:
    """(stream bytes, PSNR) of ``image`` rate-controlled to ``bpp`` the ``way`` given."""
    frame, quality, size = fitted(image, bpp, profile, way)
    decoded = decode(version_3_stream(frame, *encoder_v2.quantize_frame(frame, quality)))
    return size, metrics.psnr(image, decoded)


def same_level_sizes(image: np.ndarray, bpp: float, profiles: dict[str, TransformProfile]) -> list[int]:
    """Stream bytes of the four ways for the levels of the v3 point at ``bpp``."""
    frame, quality, v3 = fitted(image, bpp, profiles["v3"], "v3")
    sizes = [v3]
    for way in WAYS[1:]:
        other = replace(frame, profile=profiles[way], version=VERSIONS[way])
        sizes.append(encoder_v2.coded_size(other, *encoder_v2.quantize_frame(other, quality)))
    return sizes


def held_out_frames(paths) -> dict[str, list[np.ndarray]]:
    frames: dict[str, list[np.ndarray]] = {"luma": [], "rgb": []}
    for path in paths:
        image = imageio.load_image(path)
        frames["luma"].append(imageio.load_image(path, gray=True))
        if image.ndim == 3:
            frames["rgb"].append(image)
    return frames


def point_curve(image: np.ndarray, profile: TransformProfile, way: str) -> dict:
    points = [point(image, bpp, profile, way) for bpp in CURVE_BPP]
    pixels = image.shape[0] * image.shape[1]
    return {"bpp": [size * 8 / pixels for size, _ in points], "psnr": [psnr for _, psnr in points]}


def _saved(before: float, after: float) -> str:
    return f"   {before - after:6.1f} ({100 * (1 - after / before):5.2f} %)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=train_tables.DEFAULT_TABLES)
    args = parser.parse_args(argv)
    fit, held = train_v2.split_training(datasets.training_images())
    fit_sets = {
        version: statictables.static_tables_from_arrays(
            "fit", train_tables.train(fit, args.tables, lambda message: None, version), "fit-subset", kinds
        )
        for version, kinds in ((5, statictables.VERSION_5_KINDS), (6, statictables.VERSION_6_KINDS))
    }
    explicit = train_tables.explicit_profile()
    profiles = {
        "v3": explicit,
        "compact": explicit,
        "v5": replace(explicit, joint_tables=fit_sets[5]),
        "v6": replace(explicit, context_tables=fit_sets[6]),
    }
    print(f"held out: {', '.join(p.name for p in held)}; {args.tables} tables per kind")
    for mode, images in held_out_frames(held).items():
        print(f"\n{mode} ({len(images)} images): mean bytes per stream, same levels")
        print("bpp     " + "".join(f"{way:>10}" for way in WAYS) + "   saved v5 vs v3     saved v6 vs v5")
        for bpp in CURVE_BPP:
            means = np.mean([same_level_sizes(image, bpp, profiles) for image in images], axis=0)
            sizes = "".join(f"{m:10.1f}" for m in means)
            print(f"{bpp:<8}{sizes}" + _saved(means[0], means[2]) + _saved(means[2], means[3]))
        curves = {way: [point_curve(image, profiles[way], way) for image in images] for way in WAYS}
        for way, anchor in [(way, "v3") for way in WAYS[1:]] + [("v6", "v5")]:
            pairs = zip(curves[anchor], curves[way])
            values = [bjontegaard(a["bpp"], a["psnr"], t["bpp"], t["psnr"]).percent for a, t in pairs]
            found = [v for v in values if v is not None]
            per_image = np.round(found, 2).tolist()
            print(f"BD-rate {way} vs {anchor}: {np.mean(found):+.2f} % ({len(found)} images; per image {per_image})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
