"""Fit the latent statistics behind packet mode's static Huffman tables.

    python -m export.packet_tables --out models [--profile seed]

Runs the real encoder analysis (classification and transform, no quantization) of
the profile on every image of the Waterloo training split (never lena*, boat*,
goldhill*) and histograms each latent per plane kind (luma / chroma), block class and
latent position, in bins of BIN_WIDTH. The result is the artifact
``models/<profile>-packet-stats.npz`` and its manifest entry under ``packet_stats``
(sha256, and the model fingerprint it was fitted for; kept apart from ``models``,
which lists block autoencoders only). ``firmware_py.codec.packet_tables`` derives the
Huffman tables of any quantizer step from it. The output is byte-for-byte
reproducible: the histograms are integer counts and the npz is written with fixed
zip timestamps.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from firmware_py import datasets, imageio
from firmware_py.codec import encoder, models, packet_tables, profiles

from .manifest import update_manifest

# Latents of 8x8 blocks of 0..255 pixels stay within about +-1150 for the seed models;
# anything beyond the histogram's span is counted in its end bins.
ORIGIN = -1536.0
BIN_WIDTH = 1.0
BINS = 3072
COMMAND = "python -m export.packet_tables --out models"


def latent_histograms(profile: profiles.Profile, paths: list[Path]) -> dict[str, np.ndarray]:
    """Counts of every latent of every training image, keyed as the artifact stores them."""
    latents_per_class = [m.latents for m in profile.models]
    histograms = {
        packet_tables.histogram_key(kind, c): np.zeros((k, BINS), dtype=np.int64)
        for kind in packet_tables.PLANE_KINDS
        for c, k in enumerate(latents_per_class)
    }
    for path in paths:
        analysis = encoder.analyse_frame(imageio.load_image(path), profile)
        for index, plane in enumerate(analysis.planes):
            kind = packet_tables.plane_kind(index)
            for c, values in enumerate(plane.latents):
                bins = np.clip(np.floor((values - ORIGIN) / BIN_WIDTH), 0, BINS - 1).astype(np.int64)
                for j in range(values.shape[1]):
                    histograms[packet_tables.histogram_key(kind, c)][j] += np.bincount(bins[:, j], minlength=BINS)
    return histograms


def save_npz_reproducibly(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez, but with fixed zip timestamps so that the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def fit_profile(out: Path, profile_name: str, log) -> dict:
    """Write one profile's statistics artifact; return its manifest entry."""
    profile = profiles.get_profile(profile_name)
    paths = datasets.training_images()
    histograms = latent_histograms(profile, paths)
    name = packet_tables.stats_name(profile_name)
    path = out / f"{name}.npz"
    save_npz_reproducibly(path, {"origin": np.float64(ORIGIN), "bin_width": np.float64(BIN_WIDTH), **histograms})
    for key, counts in histograms.items():
        log(f"{name}: {key}: {int(counts[0].sum())} latents per position")
    return {
        "file": path.name,
        "sha256": models.file_sha256(path),
        "kind": packet_tables.STATS_KIND,
        "profile": profile_name,
        "fitted_for": profile.fingerprint.hex(),
        "training": {
            "data": "waterloo training split (all but lena*, boat*, goldhill*), every plane of every image",
            "images": [p.name for p in paths],
            "command": COMMAND,
            "bins": {"origin": ORIGIN, "width": BIN_WIDTH, "count": BINS},
        },
    }


def _record_statistics(manifest: dict, *, profile: str, entry: dict) -> None:
    manifest.setdefault(packet_tables.MANIFEST_SECTION, {})[profile] = entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=models.models_dir(), help="models directory (with its manifest)")
    parser.add_argument("--profile", action="append", help="profile to fit (default: seed); repeatable")
    args = parser.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    # Fit with the models in --out, the ones the manifest entry will vouch for.
    os.environ[models.MODELS_DIR_ENV] = str(args.out.resolve())
    models.clear_caches()
    for profile_name in args.profile or ["seed"]:
        entry = fit_profile(args.out, profile_name, log)
        update_manifest(args.out, functools.partial(_record_statistics, profile=profile_name, entry=entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
