"""The calibration set of the int8 exports: real 8x8 blocks of the training split.

Only ``datasets.training_images()`` is read (never lena*, boat*, goldhill*, kodak/ or
aerials/): calibration fixes the int8 activation ranges, which is tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_py import datasets

from .train import training_blocks

CALIBRATION_SEED = 20251122


@dataclass(frozen=True)
class Calibration:
    blocks: np.ndarray  # (n, 64) float32 luma blocks in 0..255
    images: tuple[str, ...]
    seed: int | None  # None: every block of the split, in file order

    def describe(self) -> dict:
        """What the manifest records about the calibration set."""
        return {
            "data": "waterloo training split (all but lena*, boat*, goldhill*), 8x8 luma blocks",
            "images": list(self.images),
            "blocks": int(len(self.blocks)),
            "sample_seed": self.seed,
        }


def calibration_set(count: int | None = None, seed: int = CALIBRATION_SEED) -> Calibration:
    """Every training block, or a seeded uniform sample of ``count`` of them."""
    paths = datasets.training_images()
    blocks = training_blocks(paths).astype(np.float32)
    if count is not None:
        if count < 1:
            raise ValueError(f"calibration needs at least one block, got {count}")
        if count < len(blocks):
            chosen = np.random.default_rng(seed).choice(len(blocks), size=count, replace=False)
            return Calibration(blocks[np.sort(chosen)], tuple(p.name for p in paths), seed)
    return Calibration(blocks, tuple(p.name for p in paths), None)


def batches(blocks: np.ndarray, size: int = 1024):
    """The calibration blocks in fixed-size batches (both quantizers take batches)."""
    for start in range(0, len(blocks), size):
        yield blocks[start : start + size]
