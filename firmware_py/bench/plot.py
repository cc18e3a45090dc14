"""The PNG plot of ``qpv bench rd``, made from its JSON alone (matplotlib, no display)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..codec.errors import QpvError
from ..fsutil import write_atomically
from .curves import interpolate_at

# Points per mean curve, log-spaced across the plotted rates.
CURVE_POINTS = 64
STYLES = {"jpeg": ("tab:red", "s"), "jpeg2000": ("tab:green", "^"), "webp": ("tab:purple", "D")}
OURS_STYLE = ("tab:blue", "o")


def mean_curve(doc: dict, key: str, metric: str, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the images whose curve reaches each rate (NaN where none does), and how many do.

    The plot draws the mean only where every image contributes: a mean over a shrinking
    subset jumps as images drop out. The table gives those partial means with their counts.
    """
    per_image = [interpolate_at(e["curves"][key]["bpp"], e["curves"][key][metric], rates) for e in doc["images"]]
    values = np.array([[np.nan if v is None else v for v in curve] for curve in per_image], dtype=np.float64)
    covered = np.sum(~np.isnan(values), axis=0)
    sums = np.nansum(values, axis=0)
    return np.where(covered > 0, sums / np.maximum(covered, 1), np.nan), covered


def plot_rd(doc: dict, path: Path) -> None:
    """PSNR and SSIM against bpp for every codec, over the swept rates, written as a PNG."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise QpvError("the RD plot needs matplotlib: pip install 'qpv[bench]'") from None
    low, high = doc["sweep_window_bpp"]
    rates = np.geomspace(low, high, CURVE_POINTS)
    targets = np.asarray(doc["targets_bpp"])
    count = len(doc["images"])
    figure = Figure(figsize=(11, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, (metric, title) in zip(axes, (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))):
        for codec in doc["codecs"]:
            key = codec["key"]
            colour, marker = OURS_STYLE if key == doc["test_codec"] else STYLES.get(key, ("tab:gray", "x"))
            width = 2.4 if key == doc["test_codec"] else 1.4
            mean, covered = mean_curve(doc, key, metric, rates)
            axis.plot(
                rates, np.where(covered == count, mean, np.nan), color=colour, linewidth=width, label=codec["label"]
            )
            at_targets, reached = mean_curve(doc, key, metric, targets)
            axis.plot(
                targets, np.where(reached == count, at_targets, np.nan), color=colour, marker=marker, linestyle="none"
            )
        axis.set_xlabel("bits per pixel (whole file)")
        axis.set_ylabel(title)
        axis.set_xlim(low, high)
        axis.grid(True, alpha=0.3)
    axes[0].legend(loc="lower right")
    measure = "luma" if doc["color"] == "luma" else "RGB"
    figure.suptitle(
        f"{doc['name']}: mean of {count} image{'s' if count != 1 else ''}, measured on {measure}\n"
        "drawn where every image's own curve reaches the rate; markers at the table's rates"
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_atomically(path, buffer.getvalue())
