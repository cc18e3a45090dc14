"""The transform profile encoder's fast path: a plane's block transform, dead-zone
quantization and AC symbol counts in one numba pass that computes only the coefficients
that can quantize to non-zero levels.

Why: transforming every block (one 64x64 product each) was most of the encode time, yet
at quick-preview rates most coefficients quantize to zero. With basis ``W`` and bias
``b``, a block's coefficients are ``c = W^T (x - v)`` where ``W^T v = -b`` (``v`` is the
flat grey block for the klt basis), so together they hold at most
``gain * |x - v|^2`` energy, ``gain`` being the largest squared singular value of ``W``
(1 for an orthonormal basis). The kernel computes a block's coefficients in basis order
(decreasing variance) and stops once the energy not yet accounted for is below the
square of an AC level's zero bin, ``((1 - rounding) * step)^2``: every coefficient after
that quantizes to zero at this step. The bound is inflated by a slack far above float
rounding, so the levels are those of the full transform (the tests compare them with
the NumPy reference path). A basis the bound does not fit (singular) just computes
every coefficient.

A single quantization (a fixed quality) stores no coefficients. Rate control, which
quantizes a plane at several steps, first asks to retain them: then each coefficient is
computed once, each block extended only as far as the finest step tried needs. The same
kernel quantizes complete coefficient arrays (another inference backend, training),
which it never extends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from . import deadzone, scratch, transform
from .blocking import BLOCK, BLOCK_PIXELS, block_grid, plane_to_blocks
from .deadzone import STATUS_NOT_FINITE, STATUS_OK, STATUS_TOO_LARGE, check_rounding, check_status, check_steps
from .models import LinearAutoencoder
from .quantize import MAX_LEVEL
from .runlength import AC_ALPHABET, EOB, MAX_RUN, ZRL, size_category

# Slack of the energy bound: relative (to gain * |x - v|^2) and absolute, both many
# orders above the float64 rounding of the sums involved.
_SLACK_RELATIVE = 1e-9
_SLACK_ABSOLUTE = 1e-6
_QUARTER = BLOCK_PIXELS // 4


@dataclass(frozen=True)
class PlaneLevels:
    """A plane quantized at one step, with what its AC Huffman table is built from."""

    dc_levels: np.ndarray  # (n,) int64, raster order
    last_nonzero: np.ndarray  # (n,) int64: each block's last non-zero AC index, 0 if none
    levels: np.ndarray  # (n, 64) int16, column 0 the DC
    ac_hist: np.ndarray  # (AC_ALPHABET,) int64
    ac_extra_bits: int


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _quantize_kernel(
    plane, weight_t, bias, centre, gain, cols, coefficients, known, bound, peak, step, rounding,
    dc_levels, last_nonzero, levels, ac_hist,
):  # fmt: skip
    """Quantize every block, extending its coefficients first as far as ``step`` needs when
    ``plane`` is given; count its AC symbols as runlength does; (status, AC extra bits).

    Computed coefficients are kept in ``coefficients[k, b]`` when it has columns; without,
    each call starts every block afresh. Stops at the first coefficient of over MAX_LEVEL
    steps or not finite, before counting it. Everything is inline: a call that passes
    arrays costs atomic reference counting per block. Reassociation only reorders sums
    (the transform's, as BLAS does too, and the energy bound's, which the slack covers),
    never a quantization decision.
    """
    h, w = plane.shape
    lazy = plane.size > 0
    keep = coefficients.shape[1] > 0
    zero_below = (1.0 - rounding) * step
    limit = zero_below * zero_below
    # Under this, |c| / step + rounding < 1 whatever the division rounds to: level 0.
    surely_zero = zero_below * (1.0 - 1e-9)
    x = np.empty(BLOCK_PIXELS)
    values = np.empty(BLOCK_PIXELS)
    extra = 0
    for b in range(known.shape[0]):
        k = known[b] if keep else 0
        stored = k
        if lazy and k < BLOCK_PIXELS and (k == 0 or not bound[b] < limit):
            # Gather the block, edges replicated as blocking.plane_to_blocks pads them.
            r0, c0 = (b // cols) * BLOCK, (b % cols) * BLOCK
            if r0 + BLOCK <= h and c0 + BLOCK <= w:
                for i in range(BLOCK):
                    for j in range(BLOCK):
                        x[i * BLOCK + j] = plane[r0 + i, c0 + j]
            else:
                for i in range(BLOCK):
                    r = min(r0 + i, h - 1)
                    for j in range(BLOCK):
                        x[i * BLOCK + j] = plane[r, min(c0 + j, w - 1)]
            rest, largest = bound[b], peak[b]
            if k == 0:
                e0, e1, e2, e3 = 0.0, 0.0, 0.0, 0.0  # four chains, as in the products below
                for p in range(_QUARTER):
                    d0 = x[p] - centre[p]
                    d1 = x[p + _QUARTER] - centre[p + _QUARTER]
                    d2 = x[p + 2 * _QUARTER] - centre[p + 2 * _QUARTER]
                    d3 = x[p + 3 * _QUARTER] - centre[p + 3 * _QUARTER]
                    e0 += d0 * d0
                    e1 += d1 * d1
                    e2 += d2 * d2
                    e3 += d3 * d3
                rest = gain * ((e0 + e1) + (e2 + e3)) * (1.0 + _SLACK_RELATIVE) + _SLACK_ABSOLUTE
                largest = 0.0
            # At least one more coefficient, until the energy left is under the zero bin
            # (a NaN energy never is: then every coefficient is computed, and refused below).
            while k < BLOCK_PIXELS:
                # Four partial sums, a quarter of the block each: independent chains of
                # vector multiply-adds instead of one chain through all 64 products.
                t0, t1, t2, t3 = 0.0, 0.0, 0.0, 0.0
                for p in range(_QUARTER):
                    t0 += x[p] * weight_t[k, p]
                    t1 += x[p + _QUARTER] * weight_t[k, p + _QUARTER]
                    t2 += x[p + 2 * _QUARTER] * weight_t[k, p + 2 * _QUARTER]
                    t3 += x[p + 3 * _QUARTER] * weight_t[k, p + 3 * _QUARTER]
                c = ((t0 + t1) + (t2 + t3)) + bias[k]
                values[k] = c
                if keep:
                    coefficients[k, b] = c
                if k > 0 and not abs(c) <= largest:
                    largest = abs(c)  # NaN too: then no block is taken for DC-only
                rest -= c * c
                k += 1
                if rest < limit:
                    break
            known[b] = k
            bound[b] = rest
            peak[b] = largest
        for j in range(BLOCK_PIXELS):
            levels[b, j] = 0
        # Every known AC coefficient under the zero bin (most blocks at preview rates):
        # only the DC level to quantize.
        count = 1 if peak[b] < surely_zero else k
        for j in range(min(stored, count)):
            values[j] = coefficients[j, b]
        run = 0
        last = 0
        for j in range(count):
            c = values[j]
            if j > 0 and abs(c) < surely_zero:
                run += 1  # an AC level of 0, without a division
                continue
            scaled = abs(c) / step
            if not scaled <= MAX_LEVEL:
                return (STATUS_TOO_LARGE if np.isfinite(c) else STATUS_NOT_FINITE), extra
            level = np.int64(scaled + (0.5 if j == 0 else rounding))
            signed = level if c >= 0 else -level
            levels[b, j] = signed
            if j == 0:
                dc_levels[b] = signed
            elif level == 0:
                run += 1
            else:
                while run > MAX_RUN:
                    ac_hist[ZRL] += 1
                    run -= MAX_RUN + 1
                size = size_category(level)  # <= 14 bits: |level| <= MAX_LEVEL
                ac_hist[run * 16 + size] += 1
                extra += size
                run = 0
                last = j
        if last < BLOCK_PIXELS - 1:
            ac_hist[EOB] += 1
        last_nonzero[b] = last
    return STATUS_OK, extra


@dataclass(frozen=True)
class _Basis:
    """The basis as the kernel reads it: rows of W^T, bias, centre v and gain."""

    weight_t: np.ndarray
    bias: np.ndarray
    centre: np.ndarray
    gain: float


def _kernel_basis(basis: LinearAutoencoder) -> _Basis:
    """The basis as the kernel reads it, prepared once per model object and kept on it
    (as HuffmanTable keeps its codes): every plane of every frame asks for it, and
    keying a cache by the 32 KB of weights cost more than a plane's table choice."""
    prepared = basis.__dict__.get("_kernel_basis")
    if prepared is None:
        weight = np.ascontiguousarray(basis.encoder_weight, dtype=np.float64)
        bias = np.ascontiguousarray(basis.encoder_bias, dtype=np.float64)
        if weight.shape != (BLOCK_PIXELS, BLOCK_PIXELS) or bias.shape != (BLOCK_PIXELS,):
            raise ValueError(f"a block basis must be {BLOCK_PIXELS}x{BLOCK_PIXELS}, got {weight.shape}")
        prepared = _prepared_basis(weight, bias)
        object.__setattr__(basis, "_kernel_basis", prepared)  # a cache, not a field
    return prepared


def _prepared_basis(weight: np.ndarray, bias: np.ndarray) -> _Basis:
    try:
        centre = np.linalg.solve(weight.T, -bias)
        gain = float(np.linalg.norm(weight, 2)) ** 2
    except np.linalg.LinAlgError:
        centre, gain = np.zeros(BLOCK_PIXELS), np.inf
    if not (np.all(np.isfinite(centre)) and np.isfinite(gain)):
        centre, gain = np.zeros(BLOCK_PIXELS), np.inf  # no usable bound: compute every coefficient
    return _Basis(np.ascontiguousarray(weight.T), bias.copy(), centre, gain)


_NO_PLANE = np.zeros((0, 0))
_NO_BASIS = _Basis(np.zeros((BLOCK_PIXELS, BLOCK_PIXELS)), np.zeros(BLOCK_PIXELS), np.zeros(BLOCK_PIXELS), np.inf)


class BlockCoefficients:
    """A plane's block grid and transform coefficients, computed as far as quantizing needs.

    Once :meth:`retain` is called, computed coefficients are kept: ``known[b]`` of block b
    in ``coefficients[:known[b], b]`` (coefficient-major: the few first coefficients of all
    blocks are dense in memory), ``bound[b]`` bounding the energy of the others. Without,
    each :meth:`quantize` computes afresh what it needs: one pass (a fixed quality) then
    costs no stores and no fresh memory for coefficients it will not see again.
    """

    def __init__(
        self, rows: int, cols: int, coefficients: np.ndarray, known: np.ndarray, plane: np.ndarray, basis: _Basis
    ):
        self.rows, self.cols = rows, cols
        self.coefficients = coefficients
        self.known = known
        self.bound = np.full(rows * cols, np.inf)
        self.peak = np.full(rows * cols, np.inf)  # largest |AC coefficient| known
        self._plane = plane
        self._basis = basis

    @classmethod
    def complete(cls, rows: int, cols: int, coefficients: np.ndarray) -> BlockCoefficients:
        """Wrap (rows*cols, 64) coefficients already computed (by another transform backend)."""
        coefficients = np.ascontiguousarray(coefficients, dtype=np.float64)
        if coefficients.shape != (rows * cols, BLOCK_PIXELS):
            raise ValueError(f"expected ({rows * cols}, {BLOCK_PIXELS}) coefficients, got {coefficients.shape}")
        # The transposed view is coefficient-major without a copy (Fortran order).
        return cls(rows, cols, coefficients.T, np.full(rows * cols, BLOCK_PIXELS, dtype=np.int64), _NO_PLANE, _NO_BASIS)

    @classmethod
    def of_plane(cls, plane: np.ndarray, basis: LinearAutoencoder) -> BlockCoefficients:
        """A plane's coefficients under ``basis`` (float64 products), none computed yet."""
        plane = np.ascontiguousarray(plane, dtype=np.float64)
        if plane.ndim != 2 or 0 in plane.shape:
            raise ValueError(f"expected a non-empty 2-D plane, got shape {plane.shape}")
        rows, cols = block_grid(*plane.shape)
        n = rows * cols
        return cls(rows, cols, np.empty((BLOCK_PIXELS, 0)), np.zeros(n, dtype=np.int64), plane, _kernel_basis(basis))

    def retain(self) -> None:
        """Keep the coefficients computed from now on: several steps will be tried (rate
        control). Their memory is scratch (reused from earlier encodes, scratch.py)."""
        if self._plane.size and self.coefficients.shape[1] == 0:
            self.coefficients = scratch.empty((BLOCK_PIXELS, self.rows * self.cols))
            self.known[:] = 0

    def quantize(self, step: float, rounding: float) -> PlaneLevels:
        """Dead-zone levels at ``step`` (as deadzone.quantize gives them) and their AC counts."""
        check_rounding(rounding)
        check_steps(step)
        n = self.rows * self.cols
        dc_levels = np.empty(n, dtype=np.int64)
        last_nonzero = np.empty(n, dtype=np.int64)
        levels = np.empty((n, BLOCK_PIXELS), dtype=np.int16)
        ac_hist = np.zeros(AC_ALPHABET, dtype=np.int64)
        basis = self._basis
        status, extra = _quantize_kernel(
            self._plane, basis.weight_t, basis.bias, basis.centre, basis.gain, self.cols, self.coefficients,
            self.known, self.bound, self.peak, float(step), float(rounding), dc_levels, last_nonzero, levels, ac_hist,
        )  # fmt: skip
        check_status(status)
        return PlaneLevels(dc_levels, last_nonzero, levels, ac_hist, int(extra))


def quantize_reference(plane: np.ndarray, basis: LinearAutoencoder, step: float, rounding: float) -> np.ndarray:
    """NumPy reference of :meth:`BlockCoefficients.quantize` on a plane: (n, 64) int64
    levels of the full transform of every block, for tests."""
    coefficients = transform.analyse(plane_to_blocks(plane), basis)
    return deadzone.quantize_reference(coefficients, np.full(BLOCK_PIXELS, step), rounding)
