"""Reading values off one image's rate-distortion curve at chosen rates.

A swept curve is a handful of (bpp, value) points. Comparing codecs at the same rate
needs the value *at* a target bpp, so each curve is interpolated, never extrapolated:
a target outside the rates an image's sweep reached is reported as missing for that
image rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def monotone_envelope(bpps: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by rate, each value raised to the best value seen at that rate or below.

    A codec's knob is not always monotone in quality (a larger file can decode slightly
    worse); with a rate budget one would pick the better, cheaper setting, so the
    envelope is what a rate buys. Points of equal rate keep the best value.
    """
    if len(bpps) != len(values):
        raise ValueError(f"{len(bpps)} rates but {len(values)} values")
    order = np.argsort(np.asarray(bpps, dtype=np.float64), kind="stable")
    rates = np.asarray(bpps, dtype=np.float64)[order]
    best = np.maximum.accumulate(np.asarray(values, dtype=np.float64)[order])
    unique_rates, last_of_each = np.unique(rates[::-1], return_index=True)
    return unique_rates, best[::-1][last_of_each]


def interpolate_at(bpps: Sequence[float], values: Sequence[float], targets: Sequence[float]) -> list[float | None]:
    """The envelope's value at each target bpp, linear in log(bpp); None outside the curve."""
    if any(not (math.isfinite(b) and b > 0) for b in bpps):
        raise ValueError("rates must be finite and positive")
    if len(bpps) == 0:
        return [None for _ in targets]
    rates, envelope = monotone_envelope(bpps, values)
    log_rates = np.log(rates)
    result: list[float | None] = []
    for target in targets:
        if not rates[0] <= target <= rates[-1]:
            result.append(None)
        else:
            result.append(float(np.interp(math.log(target), log_rates, envelope)))
    return result
