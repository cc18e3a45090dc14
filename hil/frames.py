"""Test frames of camera sizes made from real photographs: never random noise.

A frame is a mosaic of TILE x TILE crops of the given images, laid out in raster order
and cycled as often as the frame needs. Tiling (rather than resizing) keeps the
detail density of a real camera frame at every size: an upscaled 768x512 photo would
be unnaturally smooth at 4056x3040 and flatter the codec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_py import datasets, imageio

TILE = 512
DEFAULT_SETS = ("kodak", "aerials")
_SIZE = re.compile(r"^(\d+)x(\d+)$")


@dataclass(frozen=True)
class FrameSize:
    width: int
    height: int

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def pixels(self) -> int:
        return self.width * self.height


def parse_sizes(text: str) -> list[FrameSize]:
    """'640x480,1280x720' -> FrameSizes; ValueError names the bad entry."""
    sizes = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        match = _SIZE.match(entry)
        if not match or int(match.group(1)) < 8 or int(match.group(2)) < 8:
            raise ValueError(f"frame size '{entry}' is not WIDTHxHEIGHT with both sides >= 8")
        sizes.append(FrameSize(int(match.group(1)), int(match.group(2))))
    if not sizes:
        raise ValueError("no frame sizes given")
    return sizes


def resolve_images(entries: list[str] | None) -> list[Path]:
    """Image files from paths or set names (kodak, aerials, paper); default: the test sets."""
    paths: list[Path] = []
    for entry in entries or list(DEFAULT_SETS):
        if Path(entry).suffix:
            paths.append(Path(entry))
        else:
            found = datasets.image_set(entry)
            if not found:
                raise ValueError(f"image set '{entry}' is empty or missing under {datasets.data_dir()}")
            paths.extend(found)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"images not found: {', '.join(missing)}")
    return paths


def tiles_needed(size: FrameSize) -> int:
    return -(-size.width // TILE) * -(-size.height // TILE)


def load_tile(path: Path, gray: bool) -> np.ndarray:
    """A TILE x TILE centre crop (edge-replicated if the image is smaller), gray or RGB."""
    image = imageio.load_image(path, gray=gray)
    if not gray and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    top = max(0, (image.shape[0] - TILE) // 2)
    left = max(0, (image.shape[1] - TILE) // 2)
    crop = image[top : top + TILE, left : left + TILE]
    pad = ((0, TILE - crop.shape[0]), (0, TILE - crop.shape[1])) + ((0, 0),) * (crop.ndim - 2)
    return np.pad(crop, pad, mode="edge")


def build_frame(size: FrameSize, images: list[Path], gray: bool = False) -> np.ndarray:
    """The mosaic frame of ``size``: tiles of ``images`` in raster order, cycled."""
    tiles = [load_tile(path, gray) for path in images[: tiles_needed(size)]]
    columns, rows = -(-size.width // TILE), -(-size.height // TILE)
    mosaic = np.concatenate(
        [np.concatenate([tiles[(r * columns + c) % len(tiles)] for c in range(columns)], axis=1) for r in range(rows)],
        axis=0,
    )
    return np.ascontiguousarray(mosaic[: size.height, : size.width])


def images_used(size: FrameSize, images: list[Path]) -> list[str]:
    """Names of the images a frame of ``size`` is made of (for the report)."""
    return [path.name for path in images[: tiles_needed(size)]]
