"""Decoder controller of format version 2 to 6 streams.

Container validation -> run-length Huffman decoding (versions 5 and 6: with joint DC
symbols, jointdc.py) -> DC levels from their MED
predictions -> restoration (learned, cell-consistent estimate of each block's
coefficients) -> inverse transform -> reassembly -> learned deblocking of the block
edges -> learned post-filter of each plane (postfilter.py) -> colour conversion ->
(half-resolution streams) learned upsampling.
"""

from __future__ import annotations

import numpy as np

from . import blocking, color, container_v2, jointdc, postfilter, prediction, resample, restoration, runlength, transform
from .bitstream import StreamHeader, check_fingerprint, read_header
from .errors import CorruptStreamError
from .profile_v2 import STREAM_VERSIONS, TransformProfile, transform_profile_by_id


def profile_for(header: StreamHeader) -> TransformProfile:
    profile = transform_profile_by_id(header.profile_id)
    if profile is None:
        raise CorruptStreamError(f"stream uses profile id {header.profile_id}, which no installed format 2 profile defines")
    check_version_against_fingerprint(header, profile)
    check_fingerprint(header, profile.name, profile.stream_fingerprint(header.version))
    return profile


def check_version_against_fingerprint(header: StreamHeader, profile: TransformProfile) -> None:
    """Fingerprints of the same models differ between versions (2 and 3 only with an
    upsampler), so a stream whose version byte disagrees with its own (installed)
    fingerprint is damaged, not from other models."""
    own = profile.stream_fingerprint(header.version)
    for other in STREAM_VERSIONS:
        theirs = profile.stream_fingerprint(other)
        if other != header.version and theirs != own and header.model_fingerprint == theirs:
            raise CorruptStreamError(f"version {header.version} stream carries the fingerprint of version {other} streams")


def decode_levels(segment: container_v2.PlaneSegmentV2, rows: int, cols: int) -> np.ndarray:
    """(rows*cols, 64) quantized levels of a plane, DC levels restored from residuals."""
    if isinstance(segment.tables, jointdc.JointTables):
        dc_residuals, levels = jointdc.unpack(segment.payload, rows, cols, segment.tables)
    else:
        dc_residuals, levels = runlength.unpack(segment.payload, rows * cols, segment.tables)
    levels[:, 0] = prediction.dc_levels(dc_residuals, rows, cols)
    return levels


def decode(data: bytes) -> np.ndarray:
    """Decompress a version 2 to 6 stream to an HxW (gray) or HxWx3 (RGB) uint8 image.

    A version 3 stream at coded scale 2 decodes at half size, then the profile's learned
    upsampler brings it to the header's size (resample.py).
    """
    stream, profile = read(data)
    return render(stream, profile, reconstruct_planes(stream, profile))


def read(data: bytes) -> tuple[container_v2.StreamV2, TransformProfile]:
    """The validated stream and the installed profile that decodes it."""
    data = bytes(data)
    header = read_header(data)
    profile = profile_for(header)
    stream = container_v2.read_stream(data, profile.static_set(header.version))
    if stream.scale == resample.HALF and profile.half is None:
        raise CorruptStreamError(f"half-resolution stream, but profile '{profile.name}' has no upsampler")
    return stream, profile


def reconstruct_planes(stream: container_v2.StreamV2, profile: TransformProfile) -> list[tuple[np.ndarray, float]]:
    """Every plane at its coded size, restored and deblocked (not post-filtered), with its step."""
    header = stream.header
    shapes = header.colour.plane_shapes(*resample.coded_size(header.height, header.width, stream.scale))
    # Decode every plane's levels first: nothing is reconstructed from a damaged stream.
    grids = [blocking.block_grid(h, w) for h, w in shapes]
    all_levels = [decode_levels(seg, rows, cols) for seg, (rows, cols) in zip(stream.planes, grids)]
    planes = []
    for index, (levels, (rows, cols), (h, w)) in enumerate(zip(all_levels, grids, shapes)):
        step = container_v2.plane_step(header.steps, index)
        coefficients = restoration.restore(levels, step, stream.rounding, rows, cols, profile.restoration)
        plane = blocking.blocks_to_plane(transform.synthesise(coefficients, profile.basis), h, w)
        planes.append((restoration.deblock(plane, step, profile.restoration), step))
    return planes


def render(
    stream: container_v2.StreamV2, profile: TransformProfile, planes: list[tuple[np.ndarray, float]]
) -> np.ndarray:
    """The output image of reconstructed planes: post-filtered (postfilter.py), converted
    to RGB and, for a half-resolution stream, upsampled to the header's size."""
    header = stream.header
    filtered = [postfilter.apply(plane, step, profile.postfilter, stream.scale) for plane, step in planes]
    image = color.planes_to_image(filtered, *resample.coded_size(header.height, header.width, stream.scale))
    if stream.scale == resample.HALF:
        return resample.upsample(image, profile.half, header.height, header.width)
    return image
