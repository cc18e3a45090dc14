"""Sweeping one codec's knob on one image into rate-distortion points.

Encoding is cheap and SSIM is not, so a sweep first encodes setting after setting in
order of increasing rate, keeps the streams that matter -- those inside the rate
window, plus the nearest one below and above it so that interpolation can reach the
window's edges -- thins them to at least ``MIN_RATE_RATIO`` apart, and only then
decodes and measures PSNR and SSIM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import metrics
from .codecs import RDCodec

# Consecutive measured points differ by at least 10 % in rate: about 17 points across
# 0.05-0.25 bpp, where interpolation in log-bpp is accurate to a few hundredths of a dB.
MIN_RATE_RATIO = 1.1


@dataclass(frozen=True)
class RDPoint:
    setting: float
    size: int  # whole stream, bytes
    bpp: float
    psnr: float
    ssim: float


def streams_in_window(codec: RDCodec, image: np.ndarray, window: tuple[float, float]) -> list[tuple[float, bytes]]:
    """(setting, stream) pairs covering the window, by increasing rate, thinned."""
    pixels = image.shape[0] * image.shape[1]
    encode = codec.encoder(image)
    below: tuple[float, bytes] | None = None
    kept: list[tuple[float, bytes]] = []
    for setting in codec.settings(image, window):
        stream = encode(setting)
        bpp = len(stream) * 8 / pixels
        if bpp < window[0]:
            below = (setting, stream)
            continue
        kept.append((setting, stream))
        if bpp > window[1]:
            break
    if below is not None:
        kept.insert(0, below)
    return thin_by_rate(kept, MIN_RATE_RATIO)


def thin_by_rate(streams: list[tuple[float, bytes]], ratio: float) -> list[tuple[float, bytes]]:
    """Keep the first and last stream and, between them, none closer than ``ratio`` in size."""
    if len(streams) <= 2:
        return list(streams)
    ordered = sorted(streams, key=lambda item: len(item[1]))
    thinned = [ordered[0]]
    for item in ordered[1:-1]:
        if len(item[1]) >= len(thinned[-1][1]) * ratio and len(ordered[-1][1]) >= len(item[1]) * ratio:
            thinned.append(item)
    thinned.append(ordered[-1])
    return thinned


def sweep(codec: RDCodec, image: np.ndarray, window: tuple[float, float]) -> list[RDPoint]:
    """The codec's RD points on ``image`` around the bpp window, by increasing rate.

    A lossless point (infinite PSNR) is left out: it has no place on a low-rate curve
    and no JSON number to be written as.
    """
    pixels = image.shape[0] * image.shape[1]
    points = []
    for setting, stream in streams_in_window(codec, image, window):
        decoded = codec.decode(stream, image)
        psnr = metrics.psnr(image, decoded)
        if math.isinf(psnr):
            continue
        points.append(RDPoint(setting, len(stream), len(stream) * 8 / pixels, psnr, metrics.ssim(image, decoded)))
    return points
