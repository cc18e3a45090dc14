"""Rate-distortion optimized choice of a block's AC levels (encoder only; no format change).

Why: dead-zone rounding (deadzone.py) decides each level alone, by its coefficient. Some
levels cost more bits than the distortion they save: a lone level of magnitude 1 at the
end of a block, which makes the block non-empty or moves its last flag; a level of 2
whose size category (one extra bit, a longer symbol) 1 would avoid. With an orthonormal
basis the distortion is exact in the coefficient domain, so the encoder can weigh each
change by ``D + lambda * R``, ``lambda = factor * step^2``, ``R`` the bits of the block's
version 6 symbols (jointdc.py), before counting them.

Decisions, in this order, on a block with AC levels (raster order, greedy):

1. from its last level back to its first, a level is lowered by one step towards zero
   where that lowers its size category (2 -> 1, 4 -> 3, ...) or turns a 1 to 0 (a
   trailing 1 dropped, or a run merged), when the cost falls;
2. then all its AC levels are dropped (the block becomes empty) when that costs less.

The AC rate model is a profile's static version 6 tables (statictables.py), each kind
mixed over the set's tables (:func:`rate_model`), a symbol after a block's first charged
under the tables of the start context of its run: the plane's own tables are only known
after counting, and the mixture codes a symbol at about what the table the plane will
use does. The joint DC symbol's "empty" flag is charged what the blocks decided so far
in the block's context say (:func:`not_empty_bits`, jointdc's contexts): the static
joint tables are chosen per context only after counting. The contexts an empty block
changes for later blocks are not charged.

The levels the decoder receives are ordinary ones; only the encoder's choice changes.
``factor`` 0 keeps dead-zone levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .bitio import MAX_CODE_LENGTH
from .blocking import BLOCK_PIXELS
from .errors import ModelError
from .jointdc import LAST, LAST_ALPHABET, start_contexts
from .models import artifact_cache
from .runlength import MAX_RUN, ZRL, size_category
from .statictables import VERSION_6_KINDS, StaticTables, load_static_tables
from .tablecoding import REST_KINDS, PlaneStatic

# Bits charged for a symbol no static table codes: more than any code.
_UNCODED_BITS = MAX_CODE_LENGTH + 4.0


@dataclass(frozen=True)
class RateModel:
    """Bits of the AC symbols of a plane kind (codes only; the extra bits are the sizes):
    ``ac[0]`` of a block's first AC symbol, ``ac[1 + s]`` of its others whose run starts at
    coefficient s (the version 6 table of s's start context; one row per index, so the
    kernel needs no context lookup)."""

    ac: np.ndarray  # (1 + BLOCK_PIXELS, LAST_ALPHABET) float64


@dataclass(frozen=True)
class RdChoice:
    """What the quantizer weighs levels with: lambda = factor * step^2, and the rate
    model of each plane kind."""

    factor: float
    luma: RateModel
    chroma: RateModel

    def for_plane(self, plane_index: int) -> RateModel:
        return self.luma if plane_index == 0 else self.chroma


NO_RATE_MODEL = RateModel(np.zeros((1 + BLOCK_PIXELS, LAST_ALPHABET)))


def check_rate(factor: float, rate: RateModel) -> None:
    """ValueError unless ``factor`` and ``rate`` can go to the quantizing kernel."""
    if not (np.isfinite(factor) and factor >= 0):
        raise ValueError(f"the rate-distortion factor must be a finite number >= 0, got {factor}")
    bits = rate.ac
    if bits.shape != (1 + BLOCK_PIXELS, LAST_ALPHABET) or bits.dtype != np.float64 or not np.all(np.isfinite(bits)):
        raise ValueError(f"a rate model has {1 + BLOCK_PIXELS} rows of {LAST_ALPHABET} finite float64 bit counts")


def mixed_bits(lengths: np.ndarray) -> np.ndarray:
    """(alphabet,) bits of the equal mixture of tables of code ``lengths`` (k, alphabet):
    -log2 of the mean of 2^-length, a symbol a table lacks counting as _UNCODED_BITS there."""
    bits = np.where(lengths > 0, lengths, _UNCODED_BITS).astype(np.float64)
    return -np.log2(np.mean(np.exp2(-bits), axis=0))


def rate_model(plane: PlaneStatic) -> RateModel:
    """The rate model of a plane kind's static version 6 AC tables."""
    kinds = REST_KINDS[4]
    if not len(plane.first) or not all(len(getattr(plane, kind)) for kind in kinds):
        raise ModelError("rate-distortion quantization needs the profile's static version 6 AC tables")
    rest = np.stack([mixed_bits(getattr(plane, kind)) for kind in kinds])
    return RateModel(np.concatenate([mixed_bits(plane.first)[None], rest[start_contexts(len(kinds))]]))


def rd_choice(factor: float, tables: StaticTables | None) -> RdChoice | None:
    """The choice of a profile of rate-distortion ``factor`` (0: None, dead-zone levels
    only) and static version 6 ``tables``; ModelError if they cannot make one."""
    if not (np.isfinite(factor) and factor >= 0):
        raise ModelError(f"the rate-distortion factor must be a finite number >= 0, got {factor}")
    if factor == 0:
        return None
    if tables is None:
        raise ModelError("rate-distortion quantization needs the profile's static version 6 tables")
    return RdChoice(float(factor), rate_model(tables.luma), rate_model(tables.chroma))


@artifact_cache(maxsize=4)
def load_rd_choice(factor: float, tables_name: str | None) -> RdChoice | None:
    """:func:`rd_choice` of a manifest's factor and static version 6 set, built once."""
    tables = load_static_tables(tables_name, None, VERSION_6_KINDS) if tables_name is not None else None
    return rd_choice(factor, tables)


@numba.njit(cache=True, inline="always")
def not_empty_bits(seen, context):
    """Bits of a block's joint DC symbol saying "not empty" rather than "empty" in
    ``context``, estimated from the blocks decided so far, ``seen[context, 0]`` empty
    and ``seen[context, 1]`` not (each count plus one)."""
    return np.log2((seen[context, 0] + 1.0) / (seen[context, 1] + 1.0))


@numba.njit(cache=True, inline="always")
def symbol_bits(start, j, size, first, last, ac_bits):
    """Bits of the AC symbol of a level of ``size`` at coefficient ``j`` whose run starts
    at ``start`` (the ZRLs it needs included) and of its extra bits; ``first``/``last``:
    the block's first/last."""
    bits = 0.0
    row = 0 if first else 1 + start
    while j - start > MAX_RUN:
        bits += ac_bits[row, ZRL]
        start += MAX_RUN + 1
        row = 1 + start
    return bits + ac_bits[row, (j - start) * 16 + size + (LAST if last else 0)] + size


@numba.njit(cache=True, inline="always")
def _lowered_bits(levels, b, positions, m, i, ac_bits):
    """Change of block b's AC bits when its i-th of ``m`` non-zero levels (at
    ``positions``) is lowered by one towards zero (m > 1 if it is a 1)."""
    j = positions[i]
    start = (positions[i - 1] if i > 0 else 0) + 1
    magnitude = abs(np.int64(levels[b, j]))
    size = size_category(magnitude)
    first, last = i == 0, i == m - 1
    if magnitude > 1:
        return symbol_bits(start, j, size - 1, first, last, ac_bits) - symbol_bits(start, j, size, first, last, ac_bits)
    old = symbol_bits(start, j, 1, first, last, ac_bits)
    if not last:  # the next level's run takes this one's: it may become the first
        after = positions[i + 1]
        after_size = size_category(levels[b, after])
        after_last = i + 1 == m - 1
        old += symbol_bits(j + 1, after, after_size, False, after_last, ac_bits)
        return symbol_bits(start, after, after_size, first, after_last, ac_bits) - old
    # The previous level becomes the last.
    previous = positions[i - 1]
    previous_start = (positions[i - 2] if i > 1 else 0) + 1
    previous_size = size_category(levels[b, previous])
    old += symbol_bits(previous_start, previous, previous_size, i == 1, False, ac_bits)
    return symbol_bits(previous_start, previous, previous_size, i == 1, True, ac_bits) - old


@numba.njit(cache=True, inline="always")
def _lowers_size(magnitude):
    """Whether lowering a level of ``magnitude`` by one lowers its size category (1 -> 0 too)."""
    return (magnitude & (magnitude - 1)) == 0


@numba.njit(cache=True, inline="always")
def choose_block_levels(values, levels, b, last, step, lam, ac_bits, not_empty, positions):
    """Lower block b's AC levels (``values`` its coefficients, ``last`` its last non-zero
    AC index > 0) where ``D + lam * R`` falls, as the module says; its new last index.
    ``ac_bits``: RateModel.ac; ``not_empty``: the bits of the joint DC symbol's "not empty"; ``positions``: (64,)
    scratch. Each candidate's rate change is computed from the symbols it touches."""
    m = 0
    for j in range(1, last + 1):
        if levels[b, j] != 0:
            positions[m] = j
            m += 1
    rate = 0.0
    start = 1
    for i in range(m):
        j = positions[i]
        rate += symbol_bits(start, j, size_category(levels[b, j]), i == 0, i == m - 1, ac_bits)
        start = j + 1
    for i in range(m - 1, -1, -1):
        j = positions[i]
        level = np.int64(levels[b, j])
        if not _lowers_size(abs(level)) or (abs(level) == 1 and m == 1):
            continue  # emptying the block is weighed below
        lower = level - 1 if level > 0 else level + 1
        c = values[j]
        gained = (c - lower * step) ** 2 - (c - level * step) ** 2
        delta = _lowered_bits(levels, b, positions, m, i, ac_bits)
        if gained + lam * delta < 0.0:
            levels[b, j] = lower
            rate += delta
            if lower == 0:
                for k in range(i, m - 1):
                    positions[k] = positions[k + 1]
                m -= 1
    emptied = 0.0
    for i in range(m):
        c = values[positions[i]]
        emptied += c * c - (c - levels[b, positions[i]] * step) ** 2
    if emptied < lam * (rate + not_empty):
        for i in range(m):
            levels[b, positions[i]] = 0
        return 0
    return positions[m - 1]


def choose_levels_reference(
    coefficients: np.ndarray, levels: np.ndarray, cols: int, step: float, factor: float, rate: RateModel
) -> np.ndarray:
    """NumPy reference of the kernel's choice on a plane of ``cols`` blocks a row: (n, 64)
    levels from dead-zone ``levels`` and complete (n, 64) ``coefficients``, for tests."""
    levels = np.array(levels, dtype=np.int64)
    lam = factor * step * step
    seen = np.zeros((3, 2))
    filled = np.zeros(len(levels), dtype=bool)

    def ac_bits(row: np.ndarray) -> float:
        nonzero = np.flatnonzero(row[1:]) + 1
        bits, previous = 0.0, 0
        for i, j in enumerate(nonzero):
            zrl, run = divmod(j - previous - 1, MAX_RUN + 1)
            starts = [previous + 1 + k * (MAX_RUN + 1) for k in range(zrl + 1)]
            tables = [rate.ac[0] if i == 0 and k == 0 else rate.ac[1 + start] for k, start in enumerate(starts)]
            bits += sum(t[ZRL] for t in tables[:-1])
            symbol = run * 16 + size_category(row[j]) + (LAST if j == nonzero[-1] else 0)
            bits += tables[-1][symbol] + size_category(row[j])
            previous = j
        return bits

    for b, (row, c) in enumerate(zip(levels, coefficients)):
        context = int(b % cols > 0 and filled[b - 1]) + int(b >= cols and filled[b - cols])
        if row[1:].any():
            for j in range(63, 0, -1):
                level = row[j]
                if level == 0 or not (abs(level) == 1 or abs(level) & (abs(level) - 1) == 0):
                    continue
                trial = row.copy()
                trial[j] -= np.sign(level)
                if not trial[1:].any():
                    continue
                gained = (c[j] - trial[j] * step) ** 2 - (c[j] - level * step) ** 2
                if gained + lam * (ac_bits(trial) - ac_bits(row)) < 0:
                    row[:] = trial
            emptied = np.sum(c[1:] ** 2 - (c[1:] - row[1:] * step) ** 2)
            if emptied < lam * (ac_bits(row) + np.log2((seen[context, 0] + 1) / (seen[context, 1] + 1))):
                row[1:] = 0
        filled[b] = row[1:].any()
        seen[context, int(filled[b])] += 1
    return levels
