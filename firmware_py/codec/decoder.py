"""Decoder controller: bitstream parsing, Huffman decoding, dequantization, the
transform's decoder half, block reassembly and colour conversion.

Everything in the stream is validated (CRC, header, tables, payload sizes, model
fingerprint) before the first numba kernel runs.
"""

from __future__ import annotations

import numpy as np

from . import blocking, color, decoder_v2, huffman, levels
from . import profile_v2 as transform_format
from .bitstream import PlaneSegment, StreamHeader, check_fingerprint, read_header, read_stream
from .errors import CorruptStreamError
from .profiles import Profile, profile_by_id


def profile_for(header: StreamHeader) -> Profile:
    """The installed profile that can decode a stream, or a clear error why none can."""
    profile = profile_by_id(header.profile_id)
    if profile is None:
        raise CorruptStreamError(f"stream uses profile id {header.profile_id}, which no installed model defines")
    if transform_format.is_transform_profile(profile.name):
        raise CorruptStreamError(f"a version {header.version} stream cannot use transform profile '{profile.name}'")
    if profile.class_count != header.class_count:
        raise CorruptStreamError(
            f"stream has {header.class_count} block classes, profile '{profile.name}' has {profile.class_count}"
        )
    check_fingerprint(header, profile.name, profile.fingerprint)
    return profile


def decode_plane(segment: PlaneSegment, height: int, width: int, profile: Profile, steps: tuple[float, ...]) -> np.ndarray:
    rows, cols = blocking.block_grid(height, width)
    classes, symbols = huffman.unpack(segment.payload, rows * cols, profile.layout, list(segment.tables))
    return blocking.blocks_to_plane(levels.synthesise_blocks(classes, symbols, profile, steps), height, width)


def decode(data: bytes) -> np.ndarray:
    """Decompress a qpv stream to an HxW (gray) or HxWx3 (RGB) uint8 image.

    Raises CorruptStreamError for any damaged or invalid stream and ModelError when the
    installed models are not the ones the stream was encoded with.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("decode takes bytes")
    data = bytes(data)
    first = read_header(data)
    if first.version in transform_format.STREAM_VERSIONS:
        return decoder_v2.decode(data)
    # The profile is checked first so that a class count or model mismatch is reported
    # as such, not as whatever the body misparses into under the wrong class count.
    profile = profile_for(first)
    header, segments = read_stream(data)
    shapes = header.colour.plane_shapes(header.height, header.width)
    planes = [decode_plane(seg, h, w, profile, header.steps) for seg, (h, w) in zip(segments, shapes)]
    return color.planes_to_image(planes, header.height, header.width)
