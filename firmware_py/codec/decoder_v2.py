"""Decoder controller of format version 2 and 3 streams.

Container validation -> run-length Huffman decoding -> DC levels from their MED
predictions -> restoration (learned, cell-consistent estimate of each block's
coefficients) -> inverse transform -> reassembly -> learned deblocking of the block
edges -> colour conversion -> (half-resolution streams) learned upsampling.
"""

from __future__ import annotations

import numpy as np

from . import blocking, color, container_v2, prediction, resample, restoration, runlength, transform
from .bitstream import StreamHeader, check_fingerprint
from .errors import CorruptStreamError
from .profile_v2 import STREAM_VERSIONS, TransformProfile, transform_profile_by_id


def profile_for(stream: container_v2.StreamV2) -> TransformProfile:
    header = stream.header
    profile = transform_profile_by_id(header.profile_id)
    if profile is None:
        raise CorruptStreamError(f"stream uses profile id {header.profile_id}, which no installed format 2 profile defines")
    if not profile.decodes_earlier(header):
        check_version_against_fingerprint(header, profile)
        check_fingerprint(header, profile.name, profile.stream_fingerprint(header.version))
    return profile


def check_version_against_fingerprint(header: StreamHeader, profile: TransformProfile) -> None:
    """Version 2 and 3 fingerprints of the same models differ, so a stream whose version
    byte disagrees with its own (installed) fingerprint is damaged, not from other models."""
    if profile.half is None:
        return
    for other in STREAM_VERSIONS:
        if other != header.version and header.model_fingerprint == profile.stream_fingerprint(other):
            raise CorruptStreamError(f"version {header.version} stream carries the fingerprint of version {other} streams")


def decode_levels(segment: container_v2.PlaneSegmentV2, rows: int, cols: int) -> np.ndarray:
    """(rows*cols, 64) quantized levels of a plane, DC levels restored from residuals."""
    dc_residuals, levels = runlength.unpack(segment.payload, rows * cols, segment.tables)
    levels[:, 0] = prediction.dc_levels(dc_residuals, rows, cols)
    return levels


def decode(data: bytes) -> np.ndarray:
    """Decompress a version 2 or 3 stream to an HxW (gray) or HxWx3 (RGB) uint8 image.

    A version 3 stream at coded scale 2 decodes at half size, then the profile's learned
    upsampler brings it to the header's size (resample.py).
    """
    stream = container_v2.read_stream(bytes(data))
    profile = profile_for(stream)
    header = stream.header
    if stream.scale == resample.HALF and profile.half is None:
        raise CorruptStreamError(f"half-resolution stream, but profile '{profile.name}' has no upsampler")
    height, width = resample.coded_size(header.height, header.width, stream.scale)
    shapes = header.colour.plane_shapes(height, width)
    # Decode every plane's levels first: nothing is reconstructed from a damaged stream.
    grids = [blocking.block_grid(h, w) for h, w in shapes]
    all_levels = [decode_levels(seg, rows, cols) for seg, (rows, cols) in zip(stream.planes, grids)]
    planes = []
    for index, (levels, (rows, cols), (h, w)) in enumerate(zip(all_levels, grids, shapes)):
        step = container_v2.plane_step(header.steps, index)
        coefficients = restoration.restore(levels, step, stream.rounding, rows, cols, profile.restoration)
        plane = blocking.blocks_to_plane(transform.synthesise(coefficients, profile.basis), h, w)
        planes.append(restoration.deblock(plane, step, profile.restoration))
    image = color.planes_to_image(planes, height, width)
    if stream.scale == resample.HALF:
        return resample.upsample(image, profile.half, header.height, header.width)
    return image
