"""Encoder controller of transform profiles (format version 2).

Per plane: 8x8 blocks -> learned orthonormal transform (one 64x64 product) -> dead-zone
quantization -> MED prediction of the DC level -> (zero-run, size) Huffman symbols with
per-plane optimal tables. The transform runs once per frame; rate control only
re-quantizes and re-counts symbols (no packing) until the size is within 3% under the
budget, then packs once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import blocking, container_v2, deadzone, prediction, ratecontrol, runlength
from .backends import get_backend
from .bitstream import ColourMode, StreamHeader
from .encoder import budget_bytes, image_planes
from .profile_v2 import FORMAT_VERSION, TransformProfile, get_transform_profile


@dataclass(frozen=True)
class PlaneCoefficients:
    rows: int
    cols: int
    coefficients: np.ndarray  # (rows*cols, 64), raster order


@dataclass(frozen=True)
class TransformedFrame:
    profile: TransformProfile
    colour: ColourMode
    height: int
    width: int
    planes: tuple[PlaneCoefficients, ...]


@dataclass(frozen=True)
class QuantizedPlane:
    dc_residuals: np.ndarray
    levels: np.ndarray
    tables: runlength.PlaneTables
    payload_bits: int


def transform_frame(image: np.ndarray, profile: TransformProfile, backend: str | None = None) -> TransformedFrame:
    """Validate the image and transform every plane once (``backend``: the transform's runner)."""
    mode, planes = image_planes(image)
    runner = get_backend(backend)
    coded = []
    for plane in planes:
        rows, cols = blocking.block_grid(*plane.shape)
        coded.append(PlaneCoefficients(rows, cols, runner.analyse(blocking.plane_to_blocks(plane), profile.basis)))
    return TransformedFrame(profile, mode, image.shape[0], image.shape[1], tuple(coded))


def quantize_plane(plane: PlaneCoefficients, step: float, rounding: float) -> QuantizedPlane:
    levels = deadzone.quantize(plane.coefficients, np.full(blocking.BLOCK_PIXELS, step), rounding)
    dc_residuals = prediction.dc_residuals(levels[:, 0], plane.rows, plane.cols)
    dc_hist, ac_hist, extra = runlength.symbol_counts(dc_residuals, levels)
    tables = runlength.tables_for(dc_hist, ac_hist)
    return QuantizedPlane(dc_residuals, levels, tables, runlength.payload_bits(dc_hist, ac_hist, extra, tables))


def stream_step(profile: TransformProfile, quality: float) -> float:
    """The step as the stream stores it (float32), so both ends use the same."""
    return float(np.float32(profile.step(quality)))


def _header(frame: TransformedFrame, step: float) -> StreamHeader:
    p = frame.profile
    return StreamHeader(p.profile_id, frame.colour, frame.width, frame.height, p.fingerprint, (step,), FORMAT_VERSION)


def quantize_frame(frame: TransformedFrame, quality: float) -> tuple[float, list[QuantizedPlane]]:
    step = stream_step(frame.profile, quality)
    return step, [quantize_plane(p, step, frame.profile.rounding) for p in frame.planes]


def stream_size(frame: TransformedFrame, quality: float) -> int:
    """Exact size in bytes of the stream at ``quality``, without packing it."""
    step, planes = quantize_frame(frame, quality)
    size = container_v2.overhead_size(_header(frame, step))
    return size + sum(container_v2.segment_size(q.tables, (q.payload_bits + 7) // 8) for q in planes)


def code_frame(frame: TransformedFrame, quality: float) -> bytes:
    step, planes = quantize_frame(frame, quality)
    segments = tuple(
        container_v2.PlaneSegmentV2(q.tables, runlength.pack(q.dc_residuals, q.levels, q.tables)) for q in planes
    )
    units = container_v2.rounding_units(frame.profile.rounding)
    return container_v2.write_stream(container_v2.StreamV2(_header(frame, step), units, segments))


def fit_budget(frame: TransformedFrame, max_bytes: int) -> bytes:
    """The stream of the finest quality that fits ``max_bytes`` (within 3% under it)."""
    quality, _ = ratecontrol.fit_quality(lambda q: stream_size(frame, q), max_bytes)
    return code_frame(frame, quality)


def encode(
    image: np.ndarray,
    *,
    quality: float | None = None,
    bpp: float | None = None,
    max_bytes: int | None = None,
    profile: str,
    backend: str | None = None,
) -> bytes:
    """Compress an image with transform profile ``profile`` (see :func:`encoder.encode`)."""
    if quality is not None and (bpp is not None or max_bytes is not None):
        raise ValueError("give quality or a byte budget (bpp / max_bytes), not both")
    frame = transform_frame(image, get_transform_profile(profile), backend)
    budget = budget_bytes(frame.height * frame.width, bpp, max_bytes)
    if budget is not None:
        return fit_budget(frame, budget)
    return code_frame(frame, 1.0 if quality is None else quality)
