"""Rate control by secant search: the finest quality whose stream fits a byte budget.

A stream's size falls roughly as a power of the step, so log(size) is close to linear
in log(quality); a secant on those logs, aimed at the middle of the accepted band
[(1 - TOLERANCE) x budget, budget], lands in it within a few codings. Sizes are exact
(measured on the coded histograms), and the answer is always a measured quality whose
size fits, so the budget is never exceeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .errors import RateControlError
from .profiles import MAX_QUALITY, MIN_QUALITY

TOLERANCE = 0.03
MAX_PASSES = 12
_AIM = 1.0 - TOLERANCE / 2
_FIRST_SLOPE = -1.2  # d log(size) / d log(quality), typical at quick-preview rates


def fit_quality(size_at: Callable[[float], int], max_bytes: int) -> tuple[float, int]:
    """(quality, size) of the finest measured quality with size <= max_bytes."""
    if max_bytes < 1:
        raise RateControlError(f"a budget of {max_bytes} bytes fits no stream")
    lo_q, hi_q = math.log(MIN_QUALITY), math.log(MAX_QUALITY)
    fits: tuple[float, int] | None = None  # finest (smallest log q) that fits
    over: float | None = None  # coarsest log q measured over the budget
    points: list[tuple[float, float]] = []
    log_q = 0.0
    for _ in range(MAX_PASSES):
        size = size_at(math.exp(log_q))
        points.append((log_q, math.log(size)))
        if size <= max_bytes:
            if fits is None or log_q < fits[0]:
                fits = (log_q, size)
            if size >= (1 - TOLERANCE) * max_bytes or log_q <= lo_q:
                break
        else:
            over = log_q if over is None else max(over, log_q)
            if log_q >= hi_q:
                raise RateControlError(f"even the coarsest quality needs {size} bytes, over the budget of {max_bytes}")
        log_q = _next_guess(points, math.log(_AIM * max_bytes), fits, over, lo_q, hi_q)
    if fits is None:
        size = size_at(MAX_QUALITY)
        if size > max_bytes:
            raise RateControlError(f"even the coarsest quality needs {size} bytes, over the budget of {max_bytes}")
        return MAX_QUALITY, size
    return math.exp(fits[0]), fits[1]


def _next_guess(points, target: float, fits, over, lo_q: float, hi_q: float) -> float:
    """Secant step on (log q, log size), kept strictly inside the bracket measured so far."""
    (q1, s1) = points[-1]
    slope = _FIRST_SLOPE
    if len(points) >= 2:
        q0, s0 = points[-2]
        if q1 != q0 and s1 != s0:
            slope = min((s1 - s0) / (q1 - q0), -0.1)
    guess = q1 + (target - s1) / slope
    if over is None and guess <= lo_q:
        return lo_q  # even the finest quality may fit: measure it
    if fits is None and guess >= hi_q:
        return hi_q
    low = over if over is not None else lo_q
    high = fits[0] if fits is not None else hi_q
    return guess if low < guess < high else 0.5 * (low + high)
