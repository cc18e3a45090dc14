"""Cutting planes into 8x8 blocks and putting them back.

Edge blocks are padded by replicating the last row/column, which costs almost no bits
(a flat extension is cheap for every class) and is cropped away on decode.
"""

import numpy as np

BLOCK = 8
BLOCK_PIXELS = BLOCK * BLOCK


def block_grid(height: int, width: int) -> tuple[int, int]:
    """Number of block rows and block columns covering a plane."""
    return -(-height // BLOCK), -(-width // BLOCK)


def plane_to_blocks(plane: np.ndarray) -> np.ndarray:
    """HxW plane -> (rows*cols, 64) float64 blocks in raster order, edges replicated."""
    h, w = plane.shape
    rows, cols = block_grid(h, w)
    padded = np.pad(plane.astype(np.float64), ((0, rows * BLOCK - h), (0, cols * BLOCK - w)), mode="edge")
    blocks = padded.reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2)
    return np.ascontiguousarray(blocks.reshape(rows * cols, BLOCK_PIXELS))


def blocks_to_plane(blocks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`plane_to_blocks`: reassemble and crop to HxW."""
    rows, cols = block_grid(height, width)
    tiled = blocks.reshape(rows, cols, BLOCK, BLOCK).swapaxes(1, 2)
    return tiled.reshape(rows * BLOCK, cols * BLOCK)[:height, :width]
