"""The qpv block codec: ``encode`` an image to a self-contained stream, ``decode`` it back.

Pipeline stages, one module each: color -> blocking -> classify -> transform ->
quantize -> huffman -> bitstream, wired by ``encoder`` and ``decoder``.
"""

from .bitstream import ColourMode, StreamHeader, read_header
from .decoder import decode
from .encoder import encode
from .errors import CorruptStreamError, ImageError, ModelError, QpvError, RateControlError
from .profiles import DEFAULT_PROFILE, available_profiles

__all__ = [
    "ColourMode",
    "CorruptStreamError",
    "DEFAULT_PROFILE",
    "ImageError",
    "ModelError",
    "QpvError",
    "RateControlError",
    "StreamHeader",
    "available_profiles",
    "decode",
    "encode",
    "read_header",
]
