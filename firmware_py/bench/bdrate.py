"""Bjontegaard delta rate (BD-rate): the average bit-rate difference of two RD curves
at equal PSNR (G. Bjontegaard, VCEG-M33, 2001).

What :func:`bjontegaard` does, step by step:

1. Each curve becomes its monotone envelope (``curves.monotone_envelope``), clipped to
   the bpp window (default 0.05-0.25 bpp, the product's operating range) as well as the
   data allows: points inside the window are kept, and where a curve runs past an edge
   of the window a point interpolated exactly at that edge (linear in log-bpp) is added.
   A curve that covers only part of the window is used over the part it covers.
2. Points that do not raise PSNR (flat stretches of the envelope) are dropped, so PSNR
   is strictly increasing and log-rate is a function of PSNR.
3. Each curve's log(rate) is fitted with a cubic polynomial in PSNR (least squares;
   needs at least 4 points per curve).
4. Both fits are integrated over the PSNR interval the two curves share; the mean
   difference of log-rates gives BD-rate = (exp(mean difference) - 1) x 100 %.

Negative means the test codec needs fewer bits than the anchor for the same PSNR.
When no number can be given honestly -- a curve misses the window, has fewer than
4 points in it, or the two curves share no PSNR interval (one codec is better at
every rate in the window than the other reaches at any) -- the result has no value
and a ``reason`` saying which. Nothing is extrapolated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .curves import interpolate_at, monotone_envelope

BD_WINDOW_BPP = (0.05, 0.25)
MIN_FIT_POINTS = 4


@dataclass(frozen=True)
class BDRate:
    """A BD-rate in percent, or None with the reason it cannot be computed."""

    percent: float | None
    reason: str | None = None
    psnr_range: tuple[float, float] | None = None  # the shared PSNR interval integrated over


class _NoValue(Exception):
    pass


def rate_psnr_points(
    bpps: Sequence[float], psnrs: Sequence[float], window: tuple[float, float], who: str
) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2: the curve's envelope inside the window, PSNR strictly increasing."""
    rates, envelope = monotone_envelope(bpps, psnrs)
    low, high = max(window[0], rates[0]), min(window[1], rates[-1])
    if low >= high:
        raise _NoValue(
            f"{who} curve ({rates[0]:.3f}-{rates[-1]:.3f} bpp) does not reach the "
            f"{window[0]:g}-{window[1]:g} bpp window"
        )
    inside = (rates > low) & (rates < high)
    edges = interpolate_at(rates, envelope, [low, high])
    rates = np.concatenate(([low], rates[inside], [high]))
    values = np.concatenate(([edges[0]], envelope[inside], [edges[1]]))
    rising = np.concatenate(([True], np.diff(values) > 0))
    rates, values = rates[rising], values[rising]
    if rates.size < MIN_FIT_POINTS:
        raise _NoValue(
            f"{who} curve has {rates.size} distinct points in {low:.3f}-{high:.3f} bpp, "
            f"the cubic fit needs {MIN_FIT_POINTS}"
        )
    return rates, values


def bjontegaard(
    anchor_bpp: Sequence[float],
    anchor_psnr: Sequence[float],
    test_bpp: Sequence[float],
    test_psnr: Sequence[float],
    window: tuple[float, float] = BD_WINDOW_BPP,
    names: tuple[str, str] = ("anchor", "test"),
) -> BDRate:
    """BD-rate of the test curve against the anchor curve (see the module docstring).

    ``names`` (anchor, test) only name the curves in the reason when there is no value.
    """
    if not 0 < window[0] < window[1]:
        raise ValueError(f"bpp window must be 0 < low < high, got {window}")
    try:
        anchor = rate_psnr_points(anchor_bpp, anchor_psnr, window, names[0])
        test = rate_psnr_points(test_bpp, test_psnr, window, names[1])
    except _NoValue as exc:
        return BDRate(None, str(exc))
    low = max(anchor[1][0], test[1][0])
    high = min(anchor[1][-1], test[1][-1])
    if low >= high:
        return BDRate(
            None,
            f"PSNR ranges do not overlap ({names[0]} {anchor[1][0]:.2f}-{anchor[1][-1]:.2f} dB, "
            f"{names[1]} {test[1][0]:.2f}-{test[1][-1]:.2f} dB)",
        )
    mean_log_rate = []
    for rates, psnrs in (anchor, test):
        integral = np.polyint(np.polyfit(psnrs, np.log(rates), 3))
        mean_log_rate.append((np.polyval(integral, high) - np.polyval(integral, low)) / (high - low))
    return BDRate(float((math.exp(mean_log_rate[1] - mean_log_rate[0]) - 1.0) * 100.0), None, (float(low), float(high)))
