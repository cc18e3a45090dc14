"""Reading and writing image files (Pillow), with one clear error for anything unusable."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .codec.errors import ImageError
from .fsutil import write_atomically

try:
    from PIL import Image, UnidentifiedImageError
except ImportError:  # pragma: no cover - Pillow is a core dependency
    Image = None


def _require_pillow() -> None:
    if Image is None:
        raise ImageError("reading and writing image files needs Pillow: pip install pillow")


def load_image(path: str | Path, *, gray: bool = False) -> np.ndarray:
    """An image file as uint8: HxW if ``gray`` or if it has no colour, else HxWx3 RGB.

    Luma is Pillow's ``convert('L')`` (ITU-R 601), the definition the results use.
    """
    _require_pillow()
    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    array = np.asarray(rgb)
    if array.size == 0:
        raise ImageError(f"{path}: image is empty")
    if gray or (np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2])):
        return np.asarray(rgb.convert("L"))
    return array


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 HxW or HxWx3 array atomically; the format follows the extension."""
    _require_pillow()
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ImageError(f"{path}: unknown image file extension '{path.suffix}'")
    buffer = io.BytesIO()
    try:
        Image.fromarray(image).save(buffer, format=image_format)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(f"{path}: cannot write image ({exc})") from None
    write_atomically(path, buffer.getvalue())
