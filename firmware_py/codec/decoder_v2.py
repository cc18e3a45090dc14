"""Decoder controller of format version 2 streams.

Container validation -> run-length Huffman decoding -> DC levels from their MED
predictions -> restoration (learned, cell-consistent estimate of each block's
coefficients) -> inverse transform -> reassembly and colour conversion.
"""

from __future__ import annotations

import numpy as np

from . import blocking, color, container_v2, prediction, restoration, runlength, transform
from .bitstream import check_fingerprint
from .errors import CorruptStreamError
from .profile_v2 import TransformProfile, transform_profile_by_id


def profile_for(stream: container_v2.StreamV2) -> TransformProfile:
    header = stream.header
    profile = transform_profile_by_id(header.profile_id)
    if profile is None:
        raise CorruptStreamError(f"stream uses profile id {header.profile_id}, which no installed format 2 profile defines")
    check_fingerprint(header, profile.name, profile.fingerprint)
    return profile


def decode_levels(segment: container_v2.PlaneSegmentV2, rows: int, cols: int) -> np.ndarray:
    """(rows*cols, 64) quantized levels of a plane, DC levels restored from residuals."""
    dc_residuals, levels = runlength.unpack(segment.payload, rows * cols, segment.tables)
    levels[:, 0] = prediction.dc_levels(dc_residuals, rows, cols)
    return levels


def decode(data: bytes) -> np.ndarray:
    """Decompress a version 2 stream to an HxW (gray) or HxWx3 (RGB) uint8 image."""
    stream = container_v2.read_stream(bytes(data))
    profile = profile_for(stream)
    header, step = stream.header, stream.header.steps[0]
    shapes = header.colour.plane_shapes(header.height, header.width)
    # Decode every plane's levels first: nothing is reconstructed from a damaged stream.
    grids = [blocking.block_grid(h, w) for h, w in shapes]
    all_levels = [decode_levels(seg, rows, cols) for seg, (rows, cols) in zip(stream.planes, grids)]
    planes = []
    for levels, (rows, cols), (h, w) in zip(all_levels, grids, shapes):
        coefficients = restoration.restore(levels, step, stream.rounding, rows, cols, profile.restoration)
        planes.append(blocking.blocks_to_plane(transform.synthesise(coefficients, profile.basis), h, w))
    return color.planes_to_image(planes, header.height, header.width)
