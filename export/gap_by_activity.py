"""Where klt's squared error exceeds JPEG 2000's at the same size, by block activity.

    python -m export.gap_by_activity IMAGE [IMAGE ...] --bpp 0.25

Each image (as gray) is coded by klt at ``--bpp`` (rate control, as ``qpv encode``) and
by JPEG 2000 (OpenJPEG through Pillow, the bench's settings) at the largest size not over
klt's stream, found by bisection on the compression ratio. Its 8x8 blocks are then
grouped by the standard deviation of their original pixels, and for each group the
tool prints its share of blocks, each codec's mean squared error there, and the group's
share of the whole difference in squared error between the two. It says which content a
change to the codec has to win on; it measures, and tunes nothing (a test image may be
given).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from firmware_py import imageio, metrics
from firmware_py.bench.codecs import Jpeg2000Codec
from firmware_py.codec import decode, encode
from firmware_py.codec.blocking import BLOCK

ACTIVITY_EDGES = (0.0, 2.0, 5.0, 10.0, 20.0, np.inf)  # block standard deviation, grey levels
BISECTION_STEPS = 24


def jpeg2000_within(image: np.ndarray, max_bytes: int) -> bytes:
    """The JPEG 2000 stream of ``image`` closest under ``max_bytes`` (compression-ratio bisection)."""
    codec = Jpeg2000Codec()
    encoder = codec.encoder(image)
    low, high = 2.0, 8.0 * image.size / max(8, max_bytes // 4)  # ratios: too large a stream, surely small enough
    best = encoder(high)
    for _ in range(BISECTION_STEPS):
        middle = float(np.sqrt(low * high))
        data = encoder(middle)
        if len(data) <= max_bytes:
            high, best = middle, data
        else:
            low = middle
    return best


def block_sums(values: np.ndarray) -> np.ndarray:
    """Per whole 8x8 block, the sum of ``values`` (raster order; partial edge blocks left out)."""
    rows, cols = values.shape[0] // BLOCK, values.shape[1] // BLOCK
    blocks = values[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK)
    return blocks.sum(axis=(1, 3)).ravel()


def block_activity(image: np.ndarray) -> np.ndarray:
    pixels = image.astype(np.float64)
    mean = block_sums(pixels) / BLOCK**2
    return np.sqrt(np.maximum(block_sums(pixels**2) / BLOCK**2 - mean**2, 0.0))


def report(path: Path, bpp: float) -> str:
    image = imageio.load_image(path, gray=True)
    klt = encode(image, bpp=bpp, profile="klt")
    j2k = jpeg2000_within(image, len(klt))
    decoded = {"klt": decode(klt), "jpeg2000": Jpeg2000Codec().decode(j2k, image)}
    errors = {k: block_sums((v.astype(np.float64) - image) ** 2) for k, v in decoded.items()}
    activity = block_activity(image)
    gap = errors["klt"].sum() - errors["jpeg2000"].sum()
    pixels = image.size
    summary = (
        f"{path.name}: klt {len(klt) * 8 / pixels:.4f} bpp {metrics.psnr(image, decoded['klt']):.2f} dB, "
        f"JPEG 2000 {len(j2k) * 8 / pixels:.4f} bpp {metrics.psnr(image, decoded['jpeg2000']):.2f} dB"
    )
    lines = [summary, "block std     blocks   MSE klt  MSE J2K  share of the squared-error gap"]
    for low, high in itertools.pairwise(ACTIVITY_EDGES):
        group = (activity >= low) & (activity < high)
        if not group.any():
            continue
        mse = {k: e[group].mean() / BLOCK**2 for k, e in errors.items()}
        share = (errors["klt"][group].sum() - errors["jpeg2000"][group].sum()) / gap if gap else float("nan")
        lines.append(
            f"{low:>4g}-{high:<6g}  {group.mean():6.1%}  {mse['klt']:8.1f} {mse['jpeg2000']:8.1f}  {share:7.1%}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--bpp", type=float, default=0.25)
    args = parser.parse_args(argv)
    for path in args.images:
        print(report(path, args.bpp), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
