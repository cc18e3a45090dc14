"""Encoder controller: wires colour conversion, blocking, classification, transform,
quantization, Huffman coding and the bitstream writer, and runs rate control.

The frame is analysed once (classes and latents do not depend on the quantizer);
rate control then only re-quantizes and re-codes, which is what makes a byte budget
affordable onboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import blocking, classify, color, huffman, levels
from .backends import Backend, get_backend
from .bitstream import MAX_DIMENSION, MAX_PIXELS, ColourMode, PlaneSegment, StreamHeader, write_stream
from .errors import ImageError, RateControlError
from .profile_v2 import is_transform_profile
from .profiles import DEFAULT_PROFILE, MAX_QUALITY, MIN_QUALITY, Profile, get_profile

# Bisection steps of rate control on log(quality): 2^-12 of the 256x range is a
# quality resolution of 0.14%, finer than one Huffman table changes the size.
RATE_CONTROL_STEPS = 12


@dataclass(frozen=True)
class PlaneAnalysis:
    classes: np.ndarray  # (n,) uint8 block classes, raster order
    latents: tuple[np.ndarray, ...]  # per class: (n_c, k_c) latents of its blocks


@dataclass(frozen=True)
class FrameAnalysis:
    profile: Profile
    colour: ColourMode
    height: int
    width: int
    planes: tuple[PlaneAnalysis, ...]


def image_planes(image: np.ndarray) -> tuple[ColourMode, list[np.ndarray]]:
    """Validate an input image and split it into the planes the stream codes."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageError("image must be a uint8 numpy array")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ImageError(f"image must be HxW (gray) or HxWx3 (RGB), got shape {image.shape}")
    height, width = image.shape[:2]
    if not (1 <= height <= MAX_DIMENSION and 1 <= width <= MAX_DIMENSION) or height * width > MAX_PIXELS:
        raise ImageError(f"image size {width}x{height} is outside 1..{MAX_DIMENSION} per side or {MAX_PIXELS} pixels")
    if image.ndim == 2:
        return ColourMode.GRAY, [image.astype(np.float64)]
    return ColourMode.YCBCR420, color.rgb_to_planes(image)


def analyse_plane(plane: np.ndarray, profile: Profile, backend: Backend) -> PlaneAnalysis:
    blocks = blocking.plane_to_blocks(plane)
    classes, _ = classify.classify(blocks, profile.models[0], profile.threshold)
    latents = tuple(backend.analyse(blocks[classes == c], model) for c, model in enumerate(profile.models))
    return PlaneAnalysis(classes, latents)


def analyse_frame(image: np.ndarray, profile: Profile, backend: str | None = None) -> FrameAnalysis:
    """Classes and latents of every plane; ``backend`` runs the transform (default: numba)."""
    mode, planes = image_planes(image)
    runner = get_backend(backend)
    return FrameAnalysis(
        profile, mode, image.shape[0], image.shape[1], tuple(analyse_plane(p, profile, runner) for p in planes)
    )


def stream_steps(profile: Profile, quality: float) -> tuple[float, ...]:
    """Per-class steps as the stream stores them (float32), so both ends use the same."""
    return tuple(float(s) for s in np.float32(profile.steps(quality)))


def code_plane(plane: PlaneAnalysis, profile: Profile, steps: tuple[float, ...]) -> PlaneSegment:
    layout = profile.layout
    symbols = levels.quantize_blocks(plane.classes, plane.latents, steps, layout.max_latents)
    tables = [
        huffman.HuffmanTable.from_symbols(symbols[plane.classes == c, :k]) for c, k in enumerate(layout.latents_per_class)
    ]
    return PlaneSegment(tuple(tables), huffman.pack(plane.classes, symbols, layout, tables))


def code_frame(analysis: FrameAnalysis, quality: float) -> bytes:
    """Quantize and entropy-code an analysed frame at one step scale."""
    profile = analysis.profile
    steps = stream_steps(profile, quality)
    header = StreamHeader(profile.profile_id, analysis.colour, analysis.width, analysis.height, profile.fingerprint, steps)
    return write_stream(header, [code_plane(p, profile, steps) for p in analysis.planes])


def fit_budget(analysis: FrameAnalysis, max_bytes: int) -> bytes:
    """The stream of the finest quality whose whole size is at most ``max_bytes``."""
    coarsest = code_frame(analysis, MAX_QUALITY)
    if len(coarsest) > max_bytes:
        raise RateControlError(
            f"even the coarsest quality needs {len(coarsest)} bytes, over the budget of {max_bytes}"
        )
    finest = code_frame(analysis, MIN_QUALITY)
    if len(finest) <= max_bytes:
        return finest
    best, low, high = coarsest, math.log(MIN_QUALITY), math.log(MAX_QUALITY)
    for _ in range(RATE_CONTROL_STEPS):
        middle = 0.5 * (low + high)
        stream = code_frame(analysis, math.exp(middle))
        if len(stream) <= max_bytes:
            best, high = stream, middle
        else:
            low = middle
    return best


def budget_bytes(pixels: int, bpp: float | None, max_bytes: int | None) -> int | None:
    """The byte budget a ``bpp`` or ``max_bytes`` request sets for a frame (None: no budget)."""
    if bpp is not None and max_bytes is not None:
        raise ValueError("give bpp or max_bytes, not both")
    if bpp is not None:
        if not (math.isfinite(bpp) and bpp > 0):
            raise ValueError(f"bpp must be positive, got {bpp}")
        return int(bpp * pixels / 8)
    if max_bytes is not None and max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    return max_bytes


def encode(
    image: np.ndarray,
    *,
    quality: float | None = None,
    bpp: float | None = None,
    max_bytes: int | None = None,
    profile: str | None = None,
    backend: str | None = None,
) -> bytes:
    """Compress an HxW (gray) or HxWx3 (RGB) uint8 image into a self-contained stream.

    ``quality`` scales the profile's quantizer steps (1.0 = default, smaller = finer).
    ``bpp`` or ``max_bytes`` instead ask rate control for the finest quality whose
    whole stream fits; RateControlError says when none does. ``backend`` names the
    inference backend of the transform (``firmware_py.codec.backends.BACKENDS``); the
    default ``numba`` is the float reference.
    """
    if quality is not None and (bpp is not None or max_bytes is not None):
        raise ValueError("give quality or a byte budget (bpp / max_bytes), not both")
    name = profile or DEFAULT_PROFILE
    if is_transform_profile(name):
        # Format version 2 profiles have their own controller (it imports this module).
        from . import encoder_v2

        return encoder_v2.encode(image, quality=quality, bpp=bpp, max_bytes=max_bytes, profile=name, backend=backend)
    analysis = analyse_frame(image, get_profile(name), backend)
    budget = budget_bytes(analysis.height * analysis.width, bpp, max_bytes)
    if budget is not None:
        return fit_budget(analysis, budget)
    return code_frame(analysis, 1.0 if quality is None else quality)
