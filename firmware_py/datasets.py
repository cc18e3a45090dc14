"""Where the shared image sets live and which images each rule allows.

The training/test split of ../shared/data/README.md is enforced here, in one place:
anything that trains or tunes asks :func:`training_images`, which never returns a
test image.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "QPV_DATA_DIR"
# The paper's test images, and the only Waterloo images never trained on.
PAPER_TEST_PREFIXES = ("lena", "boat", "goldhill")
PAPER_TEST_IMAGES = ("lena2.png", "boat.png", "goldhill2.png")


def data_dir() -> Path:
    """``$QPV_DATA_DIR``, else ``../shared/data`` beside the repository."""
    override = os.environ.get(DATA_DIR_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def training_images() -> list[Path]:
    """The Waterloo training split: every image except lena*, boat*, goldhill*."""
    folder = data_dir() / "waterloo"
    images = sorted(p for p in folder.glob("*.png") if not p.name.startswith(PAPER_TEST_PREFIXES))
    if not images:
        raise FileNotFoundError(f"no training images in {folder} (set {DATA_DIR_ENV})")
    return images


def paper_test_images() -> list[Path]:
    return [data_dir() / "waterloo" / name for name in PAPER_TEST_IMAGES]


def image_set(name: str) -> list[Path]:
    """A test set by folder name (``kodak``, ``aerials``) or ``paper`` for the paper's three."""
    if name == "paper":
        return paper_test_images()
    return sorted((data_dir() / name).glob("*.png"))
