"""Encoder controller of transform profiles; it writes format version 6 streams.

Below the profile's budget threshold the frame is first 2x2-averaged to half
resolution (resample.py). Per plane: 8x8 blocks -> learned orthonormal transform (one
64x64 product) -> dead-zone quantization (chroma with a finer step,
color.CHROMA_STEP_RATIO) -> MED prediction of the DC level -> joint DC symbols (DC size
and "no AC level", one table per neighbour context) and (zero-run, size, last) Huffman
symbols, a block's first from its own table, the others from the table of the index
where their run starts (jointdc.py), with per-plane optimal tables, each sent in a compact coding or
replaced by the profile's static table that codes the plane in fewer bits
(tablecoding.py). With the default (numba) backend, the transform, quantization and AC
symbol counts are one kernel pass (blockcoder), which computes only coefficients that
can be non-zero and keeps them: each coefficient is computed at most once per frame.
Rate control only re-quantizes and re-counts symbols (no packing) until the size is
within 3% under the budget, then packs once, reusing the counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import (
    blockcoder,
    blocking,
    color,
    container_v2,
    jointdc,
    prediction,
    ratecontrol,
    resample,
    scratch,
    tablecoding,
)
from .backends import Backend, get_backend
from .backends.numba_backend import NumbaBackend
from .bitstream import ColourMode, StreamHeader
from .encoder import budget_bytes, image_planes
from .errors import ModelError
from .models import LinearAutoencoder
from .profile_v2 import TransformProfile, get_transform_profile
from .statictables import StaticTables


@dataclass(frozen=True)
class PlaneCoefficients:
    """Complete coefficients of a plane (e.g. for training); the encoder keeps blockcoder's."""

    rows: int
    cols: int
    coefficients: np.ndarray  # (rows*cols, 64), raster order


@dataclass(frozen=True)
class TransformedFrame:
    profile: TransformProfile
    colour: ColourMode
    height: int  # the output frame's size; the planes code it at 1/scale of it
    width: int
    planes: tuple[blockcoder.BlockCoefficients, ...]
    scale: int = resample.FULL
    # The stream version coded: 6, or 5 (the tools that measure or train version 5).
    version: int = container_v2.CONTEXT_VERSION


@dataclass(frozen=True)
class QuantizedPlane:
    dc_residuals: np.ndarray
    levels: np.ndarray  # (n, 64) int16
    last_nonzero: np.ndarray  # (n,) each block's last non-zero AC index
    cols: int  # blocks per row: the joint DC symbols' contexts need it
    tables: jointdc.JointTables
    counts: jointdc.JointCounts
    payload_bits: int
    refs: tablecoding.JointRefs  # how the stream gives ``tables``


def plane_coefficients(plane: np.ndarray, basis: LinearAutoencoder, runner: Backend) -> blockcoder.BlockCoefficients:
    """The float backend's coefficients are computed on demand, in the quantizing kernel;
    another backend runs its transform on every block up front."""
    if isinstance(runner, NumbaBackend):
        return blockcoder.BlockCoefficients.of_plane(plane, basis)
    rows, cols = blocking.block_grid(*plane.shape)
    return blockcoder.BlockCoefficients.complete(rows, cols, runner.analyse(blocking.plane_to_blocks(plane), basis))


def transform_frame(
    image: np.ndarray, profile: TransformProfile, backend: str | None = None, scale: int = resample.FULL
) -> TransformedFrame:
    """Validate the image and set up each plane's transform (``backend``: the transform's
    runner), at full resolution or, for ``scale`` 2, on the 2x2-averaged frame."""
    if scale not in container_v2.CODED_SCALES:
        raise ValueError(f"scale must be one of {container_v2.CODED_SCALES}, got {scale}")
    if scale == resample.HALF and profile.half is None:
        raise ModelError(f"profile '{profile.name}' has no half-resolution model")
    mode, planes = image_planes(image if scale == resample.FULL else resample.downsample(image))
    runner = get_backend(backend)
    coded = tuple(plane_coefficients(plane, profile.basis, runner) for plane in planes)
    return TransformedFrame(profile, mode, image.shape[0], image.shape[1], coded, scale)


def quantize_plane(
    plane: PlaneCoefficients | blockcoder.BlockCoefficients,
    step: float,
    rounding: float,
    static: tablecoding.PlaneStatic = tablecoding.NO_STATIC,
    version: int = container_v2.CONTEXT_VERSION,
) -> QuantizedPlane:
    """Levels, DC residuals, tables and exact payload size of a plane at ``step`` coded
    as ``version`` (5 or 6); the symbols are counted once, here, and the counts reused
    for packing and for choosing each table among the plane's optimal one and the
    ``static`` ones."""
    if isinstance(plane, PlaneCoefficients):
        plane = blockcoder.BlockCoefficients.complete(plane.rows, plane.cols, plane.coefficients)
    quantized = plane.quantize(step, rounding)
    dc_residuals = prediction.dc_residuals(quantized.dc_levels, plane.rows, plane.cols)
    counts = jointdc.plane_counts(
        dc_residuals,
        quantized.levels,
        quantized.last_nonzero,
        plane.cols,
        quantized.ac_hist,
        quantized.ac_extra_bits,
        container_v2.REST_TABLES[version],
    )
    refs, tables, code_bits = tablecoding.choose_joint_tables(counts, static)
    bits = counts.extra_bits + code_bits
    return QuantizedPlane(dc_residuals, quantized.levels, quantized.last_nonzero, plane.cols, tables, counts, bits, refs)


def stream_steps(frame: TransformedFrame, quality: float) -> tuple[float, ...]:
    """The luma (and, in colour, chroma) step as the stream stores them (float32), so both
    ends use the same."""
    luma = frame.profile.step(quality)
    steps = (luma,) if frame.colour is ColourMode.GRAY else (luma, luma * color.CHROMA_STEP_RATIO)
    return tuple(float(np.float32(step)) for step in steps)


def _header(frame: TransformedFrame, steps: tuple[float, ...]) -> StreamHeader:
    p = frame.profile
    version = frame.version
    return StreamHeader(p.profile_id, frame.colour, frame.width, frame.height, p.stream_fingerprint(version), steps, version)


def quantize_frame(frame: TransformedFrame, quality: float) -> tuple[tuple[float, ...], list[QuantizedPlane]]:
    steps = stream_steps(frame, quality)
    rounding, static = frame.profile.rounding, frame.profile.static_set(frame.version)
    return steps, [
        quantize_plane(p, container_v2.plane_step(steps, i), rounding, _plane_static(static, i), frame.version)
        for i, p in enumerate(frame.planes)
    ]


def _plane_static(static: StaticTables | None, plane_index: int) -> tablecoding.PlaneStatic:
    return static.for_plane(plane_index) if static is not None else tablecoding.NO_STATIC


def coded_size(frame: TransformedFrame, steps: tuple[float, ...], planes: list[QuantizedPlane]) -> int:
    """Exact size in bytes of the stream of quantized ``planes``, without packing them."""
    size = container_v2.overhead_size(_header(frame, steps))
    return size + sum(container_v2.segment_size(q.tables, (q.payload_bits + 7) // 8, q.refs) for q in planes)


def retain_coefficients(frame: TransformedFrame) -> None:
    """Keep computed coefficients: several qualities will be tried, each pass extending
    what the previous ones computed."""
    for plane in frame.planes:
        plane.retain()


def _payload(plane: QuantizedPlane) -> bytes:
    return jointdc.pack(
        plane.dc_residuals, plane.levels, plane.cols, plane.tables, plane.counts, plane.last_nonzero, plane.payload_bits
    )


def pack_frame(frame: TransformedFrame, steps: tuple[float, ...], planes: list[QuantizedPlane]) -> bytes:
    segments = tuple(
        container_v2.PlaneSegmentV2(q.tables, _payload(q), q.refs)
        for q in planes
    )
    units = container_v2.rounding_units(frame.profile.rounding)
    return container_v2.write_stream(container_v2.StreamV2(_header(frame, steps), units, segments, frame.scale))


def code_frame(frame: TransformedFrame, quality: float) -> bytes:
    return pack_frame(frame, *quantize_frame(frame, quality))


def fit_budget(frame: TransformedFrame, max_bytes: int) -> bytes:
    """The stream of the finest quality that fits ``max_bytes`` (within 3% under it).

    The finest pass that fits so far is kept whole, so that the answer is packed without
    quantizing again.
    """
    retain_coefficients(frame)
    finest: dict[float, tuple[tuple[float, ...], list[QuantizedPlane]]] = {}

    def size_at(quality: float) -> int:
        steps, planes = quantize_frame(frame, quality)
        size = coded_size(frame, steps, planes)
        if size <= max_bytes and all(quality < q for q in finest):
            finest.clear()
            finest[quality] = (steps, planes)
        return size

    quality, _ = ratecontrol.fit_quality(size_at, max_bytes)
    return pack_frame(frame, *finest[quality]) if quality in finest else code_frame(frame, quality)


def encode(
    image: np.ndarray,
    *,
    quality: float | None = None,
    bpp: float | None = None,
    max_bytes: int | None = None,
    profile: str,
    backend: str | None = None,
    scale: int | None = None,
) -> bytes:
    """Compress an image with transform profile ``profile`` (see :func:`encoder.encode`).

    ``scale`` 1 or 2 forces full or half resolution (offline tools, tests); by default the
    profile's rule (resample.HalfResolution.pays) chooses half resolution from the budget.
    The large working arrays are reused from earlier encodes (scratch.py): only bytes
    leave this function.
    """
    if quality is not None and (bpp is not None or max_bytes is not None):
        raise ValueError("give quality or a byte budget (bpp / max_bytes), not both")
    transform_profile = get_transform_profile(profile)
    if scale is None:
        scale = chosen_scale(transform_profile, image, bpp, max_bytes)
    with scratch.reusing_arrays():
        frame = transform_frame(image, transform_profile, backend, scale)
        budget = budget_bytes(frame.height * frame.width, bpp, max_bytes)
        if budget is not None:
            return fit_budget(frame, budget)
        return code_frame(frame, 1.0 if quality is None else quality)


def chosen_scale(profile: TransformProfile, image: np.ndarray, bpp: float | None, max_bytes: int | None) -> int:
    """Half resolution when the profile has it, a budget is given and its rule says it pays."""
    if profile.half is None or (bpp is None and max_bytes is None):
        return resample.FULL
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        return resample.FULL  # the full-resolution path reports what is wrong with it
    height, width = image.shape[:2]
    budget = budget_bytes(height * width, bpp, max_bytes)
    return resample.HALF if profile.half.pays(height, width, image.ndim == 3, budget) else resample.FULL
