"""The side-by-side reference: libjpeg-turbo through Pillow, and finding the setting of a
codec that lands nearest a target bit rate.

Only Pillow is imported here, so that the reference's cold start (process start to a
first JPEG) is not charged with the import of our own codec. The JPEG options are the
ones ``qpv bench rd`` uses: optimized Huffman tables (as our codec builds per-frame
tables) and Pillow's default 4:2:0 chroma for colour. Both codecs are timed from a
uint8 array to bytes and back, so the array <-> Pillow conversions count for JPEG too.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

JPEG_QUALITIES = tuple(range(1, 96))


def jpeg_encode(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality), optimize=True)
    return buffer.getvalue()


def jpeg_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        return np.asarray(picture)


def closest_setting(size_at: Callable[[float], int], settings: Sequence[float], target_bytes: int) -> float:
    """The setting whose output size is nearest ``target_bytes``.

    ``settings`` must be ordered by increasing rate; sizes are taken as monotonic in
    them (true of JPEG quality and of our quantizer scale up to a few bytes), so a
    bisection finds the last setting at or under the target and compares it with the
    next one: about log2(len(settings)) + 1 encodes.
    """
    size_at = functools.cache(size_at)
    low, high = 0, len(settings) - 1
    if size_at(settings[low]) > target_bytes:
        return settings[low]
    while low < high:
        middle = (low + high + 1) // 2
        if size_at(settings[middle]) <= target_bytes:
            low = middle
        else:
            high = middle - 1
    if low + 1 < len(settings):
        under, over = size_at(settings[low]), size_at(settings[low + 1])
        if over - target_bytes < target_bytes - under:
            return settings[low + 1]
    return settings[low]
