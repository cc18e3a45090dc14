"""Concealment of lost blocks: interpolate them from the pixels around them.

A lost 8x8 block is filled from the boundary lines of its decoded 4-neighbours (the
last row of the block above, the first row of the block below, the last column of the
block on the left, the first column of the block on the right). Each neighbour gives
an estimate of pixel (y, x), and the estimates are averaged with weights that fall
linearly with the distance to that neighbour's line (the spatial concealment of the
H.264 reference decoder): a ramp is restored exactly, and an edge crossing the block
is blurred, not broken. Because packets carry interleaved blocks (see
``firmware_py.codec.slices``), a lost block nearly always has all four neighbours.
Blocks without any decoded neighbour are filled in later passes from the blocks
concealed before them; a plane with nothing decoded is filled with a neutral value.
"""

from __future__ import annotations

import numpy as np

from firmware_py.codec.blocking import BLOCK

NEUTRAL = 128.0
# Weight of a neighbour's line for a pixel at distance d (1..BLOCK) from it.
_WEIGHTS = BLOCK + 1 - np.arange(1, BLOCK + 1, dtype=np.float64)


def tile_blocks(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows*cols, 64) blocks in raster order -> (rows*8, cols*8) plane, uncropped."""
    return blocks.reshape(rows, cols, BLOCK, BLOCK).swapaxes(1, 2).reshape(rows * BLOCK, cols * BLOCK)


def conceal(plane: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown blocks of a (rows*8, cols*8) plane; ``known`` is (rows, cols) bool.

    Returns a new plane; known blocks are unchanged.
    """
    rows, cols = known.shape
    if plane.shape != (rows * BLOCK, cols * BLOCK):
        raise ValueError(f"plane of shape {plane.shape} does not match a {rows}x{cols} block grid")
    filled = np.array(plane, dtype=np.float64)
    done = known.copy()
    if not done.any():
        filled[:] = NEUTRAL
        return filled
    while not done.all():
        _conceal_pass(filled, done)
    return filled


def _neighbour_mask(done: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """For each block, whether its neighbour at (dr, dc) exists and is decoded."""
    rows, cols = done.shape
    shifted = np.zeros_like(done)
    src = done[max(dr, 0) : rows + min(dr, 0), max(dc, 0) : cols + min(dc, 0)]
    shifted[max(-dr, 0) : rows + min(-dr, 0), max(-dc, 0) : cols + min(-dc, 0)] = src
    return shifted


def _conceal_pass(filled: np.ndarray, done: np.ndarray) -> None:
    """Conceal every unknown block that has at least one decoded neighbour, in place."""
    has = {side: _neighbour_mask(done, dr, dc) for side, (dr, dc) in
           {"top": (-1, 0), "bottom": (1, 0), "left": (0, -1), "right": (0, 1)}.items()}
    todo = ~done & (has["top"] | has["bottom"] | has["left"] | has["right"])
    r, c = np.nonzero(todo)
    y0, x0 = r * BLOCK, c * BLOCK
    span = np.arange(BLOCK)
    total = np.zeros((len(r), BLOCK, BLOCK))
    weight = np.zeros((len(r), BLOCK, BLOCK))
    # Each side: the neighbour's line as (n, 8), and the pixel's distance to that line.
    sides = {
        "top": (filled[(y0 - 1)[:, None], x0[:, None] + span][:, None, :], (span + 1)[:, None]),
        "bottom": (filled[np.minimum(y0 + BLOCK, filled.shape[0] - 1)[:, None], x0[:, None] + span][:, None, :],
                   (BLOCK - span)[:, None]),
        "left": (filled[y0[:, None] + span, (x0 - 1)[:, None]][:, :, None], (span + 1)[None, :]),
        "right": (filled[y0[:, None] + span, np.minimum(x0 + BLOCK, filled.shape[1] - 1)[:, None]][:, :, None],
                  (BLOCK - span)[None, :]),
    }
    for side, (line, distance) in sides.items():
        present = has[side][r, c][:, None, None]
        w = np.where(present, _WEIGHTS[distance - 1], 0.0)
        total += w * line
        weight += w
    rows, cols = done.shape
    filled.reshape(rows, BLOCK, cols, BLOCK)[r, :, c, :] = total / weight
    done[r, c] = True
