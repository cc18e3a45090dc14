"""Decoder controller: bitstream parsing, Huffman decoding, dequantization, the
transform's decoder half, block reassembly and colour conversion.

Everything in the stream is validated (CRC, header, tables, payload sizes, model
fingerprint) before the first numba kernel runs.
"""

from __future__ import annotations

import numpy as np

from . import blocking, color, huffman, quantize, transform
from .bitstream import ColourMode, PlaneSegment, StreamHeader, read_stream
from .errors import CorruptStreamError, ModelError
from .profiles import Profile, profile_by_id


def profile_for(header: StreamHeader) -> Profile:
    """The installed profile that can decode a stream, or a clear error why none can."""
    profile = profile_by_id(header.profile_id)
    if profile is None:
        raise CorruptStreamError(f"stream uses profile id {header.profile_id}, which no installed model defines")
    if profile.class_count != header.class_count:
        raise CorruptStreamError(
            f"stream has {header.class_count} block classes, profile '{profile.name}' has {profile.class_count}"
        )
    if profile.fingerprint != header.model_fingerprint:
        raise ModelError(
            f"stream was encoded with models {header.model_fingerprint.hex()}, installed '{profile.name}' "
            f"models are {profile.fingerprint.hex()}"
        )
    return profile


def decode_plane(segment: PlaneSegment, height: int, width: int, profile: Profile, steps: tuple[float, ...]) -> np.ndarray:
    rows, cols = blocking.block_grid(height, width)
    layout = huffman.BlockLayout(tuple(m.latents for m in profile.models), profile.class_bits)
    classes, symbols = huffman.unpack(segment.payload, rows * cols, layout, list(segment.tables))
    blocks = np.empty((rows * cols, blocking.BLOCK_PIXELS))
    for c, model in enumerate(profile.models):
        chosen = classes == c
        latents = quantize.dequantize(symbols[chosen, : model.latents], steps[c])
        blocks[chosen] = transform.synthesise(latents, model)
    return blocking.blocks_to_plane(blocks, height, width)


def decode(data: bytes) -> np.ndarray:
    """Decompress a qpv stream to an HxW (gray) or HxWx3 (RGB) uint8 image.

    Raises CorruptStreamError for any damaged or invalid stream and ModelError when the
    installed models are not the ones the stream was encoded with.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("decode takes bytes")
    header, segments = read_stream(bytes(data))
    profile = profile_for(header)
    shapes = header.colour.plane_shapes(header.height, header.width)
    planes = [decode_plane(seg, h, w, profile, header.steps) for seg, (h, w) in zip(segments, shapes)]
    if header.colour is ColourMode.GRAY:
        return np.clip(np.rint(planes[0]), 0, 255).astype(np.uint8)
    chroma = [color.upsample_420(p, header.height, header.width) for p in planes[1:]]
    return color.ycbcr_to_rgb(np.stack([planes[0], *chroma], axis=-1))
