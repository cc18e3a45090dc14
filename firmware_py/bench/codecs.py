"""The codecs ``qpv bench rd`` compares: qpv itself and three references through Pillow.

Each one is an :class:`RDCodec`: the knob settings to sweep (ordered by increasing
rate), a per-image encoder for one setting, and a decoder back to the input's shape.
Streams are measured as whole files (every header included); nothing is estimated.

The references, with the options that make each one a fair opponent at low rates:

- JPEG: libjpeg-turbo, ``quality`` 1..95, ``optimize=True`` (optimal Huffman tables),
  Pillow's default 4:2:0 chroma for colour.
- JPEG 2000: OpenJPEG, ``irreversible=True`` (9/7 wavelet), ``quality_mode="rates"`` with
  one layer at compression ratio r (raw bits / coded bits), ``mct=1`` on colour images
  (Pillow's default, 0, codes R, G and B separately and costs ~2 dB at 0.2 bpp on
  Kodak), written as a raw J2K codestream (``no_jp2=True``: the JP2 file boxes would
  only add bytes).
- WebP: libwebp lossy, ``quality`` 0..100 (fractional values are honoured, and the
  low end needs them), ``method=6`` (slowest, best).
"""

from __future__ import annotations

import io
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import PIL
from PIL import Image, features

from .. import __version__
from ..codec import RateControlError
from ..codec import decode as qpv_decode
from ..codec import encode as qpv_encode
from ..codec.encoder import analyse_frame, code_frame
from ..codec.profile_v2 import is_transform_profile
from ..codec.profiles import MAX_QUALITY, MIN_QUALITY, get_profile

# Our quality knob is a step scale over MIN_QUALITY..MAX_QUALITY (a factor 256):
# 33 geometric steps of 2^(1/4) each, fine enough for ~5 % rate steps.
QPV_QUALITY_STEPS = 33
# Transform profiles are swept by byte budget, like JPEG 2000 below: 10 % steps give
# about 17 points across 0.05-0.25 bpp (sweep.MIN_RATE_RATIO).
QPV_BUDGET_STEP = 1.1
QPV_BUDGET_MARGIN = 1.5
# JPEG 2000 is swept by target rate directly (OpenJPEG lands close to it): from the
# window's low end / J2K_RATE_MARGIN to its high end x J2K_RATE_MARGIN, in 15 % steps.
J2K_RATE_STEP = 1.15
J2K_RATE_MARGIN = 1.5
# libwebp takes a fractional quality, and on busy images its rate jumps by up to 80 %
# from quality 0 to 1: sweep 0, then a geometric grid from 1/8 to 100 (25 % steps).
WEBP_LOWEST_NONZERO_QUALITY = 0.125
WEBP_QUALITY_STEPS = 31
# OpenJPEG's default number of resolution levels; fewer on images too small for it.
J2K_RESOLUTIONS = 6


class RDCodec(Protocol):
    key: str  # identifier in the JSON
    label: str  # name in tables and plots
    knob: str  # what the swept setting means

    def settings(self, image: np.ndarray, window: tuple[float, float]) -> Sequence[float]:
        """Knob values to try, in order of increasing rate."""

    def encoder(self, image: np.ndarray) -> Callable[[float], bytes]:
        """A function coding ``image`` at one knob value (per-image set-up done once)."""

    def decode(self, data: bytes, image: np.ndarray) -> np.ndarray:
        """The decoded image, gray or RGB like ``image``, for comparing with it."""


@dataclass(frozen=True)
class QpvCodec:
    """This project's codec at one profile.

    Format 1 profiles are swept over their ``quality`` step scale. Transform profiles are
    swept over a byte budget, as an operator runs them (``--bpp``): their encoder chooses
    tools from the budget (half resolution at the lowest rates), which a fixed quality
    never reaches.
    """

    profile: str

    @property
    def key(self) -> str:
        return f"qpv-{self.profile}"

    @property
    def label(self) -> str:
        return f"qpv {self.profile}"

    @property
    def budgeted(self) -> bool:
        return is_transform_profile(self.profile)

    @property
    def knob(self) -> str:
        if self.budgeted:
            return (
                f"byte budget in bpp (rate control, as --bpp), window / {QPV_BUDGET_MARGIN:g} to window x "
                f"{QPV_BUDGET_MARGIN:g} in {round(100 * (QPV_BUDGET_STEP - 1))} % steps"
            )
        return f"quality {MAX_QUALITY:g}..{MIN_QUALITY:g} (quantizer step scale), {QPV_QUALITY_STEPS} geometric steps"

    def settings(self, image: np.ndarray, window: tuple[float, float]) -> Sequence[float]:
        if self.budgeted:
            low, high = window[0] / QPV_BUDGET_MARGIN, window[1] * QPV_BUDGET_MARGIN
            count = math.ceil(math.log(high / low) / math.log(QPV_BUDGET_STEP)) + 1
            return [float(bpp) for bpp in np.geomspace(low, high, count)]
        return [float(q) for q in np.geomspace(MAX_QUALITY, MIN_QUALITY, QPV_QUALITY_STEPS)]

    def encoder(self, image: np.ndarray) -> Callable[[float], bytes]:
        """Format 1 profiles: analyse once, re-code per quality (the same bytes as
        ``encode``, 5-10x faster: classes and latents do not depend on the quantizer).
        Transform profiles: ``encode`` with the budget; a budget below the profile's
        smallest stream gives that smallest stream."""
        if not self.budgeted:
            analysis = analyse_frame(image, get_profile(self.profile))
            return lambda quality: code_frame(analysis, quality)

        def encode_within(bpp: float) -> bytes:
            try:
                return qpv_encode(image, bpp=bpp, profile=self.profile)
            except RateControlError:
                return qpv_encode(image, quality=MAX_QUALITY, profile=self.profile)

        return encode_within

    def decode(self, data: bytes, image: np.ndarray) -> np.ndarray:
        return qpv_decode(data)


class PillowCodec(ABC):
    """A reference codec reached through Pillow's ``Image.save`` / ``Image.open``."""

    key: str
    label: str
    knob: str
    image_format: str

    @abstractmethod
    def settings(self, image: np.ndarray, window: tuple[float, float]) -> Sequence[float]:
        """Knob values to try, in order of increasing rate."""

    @abstractmethod
    def options(self, setting: float, image: np.ndarray) -> dict:
        """Pillow save options for one knob value."""

    def encoder(self, image: np.ndarray) -> Callable[[float], bytes]:
        picture = Image.fromarray(image)

        def encode(setting: float) -> bytes:
            buffer = io.BytesIO()
            picture.save(buffer, format=self.image_format, **self.options(setting, image))
            return buffer.getvalue()

        return encode

    def decode(self, data: bytes, image: np.ndarray) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as decoded:
            return np.asarray(decoded.convert("L" if image.ndim == 2 else "RGB"))


class JpegCodec(PillowCodec):
    key, label, image_format = "jpeg", "JPEG", "JPEG"
    knob = "Pillow quality 1..95, optimize=True"

    def settings(self, image: np.ndarray, window: tuple[float, float]) -> Sequence[float]:
        return list(range(1, 96))

    def options(self, setting: float, image: np.ndarray) -> dict:
        return {"quality": int(setting), "optimize": True}


class WebpCodec(PillowCodec):
    key, label, image_format = "webp", "WebP", "WEBP"
    knob = (
        f"Pillow quality 0, then {WEBP_LOWEST_NONZERO_QUALITY:g}..100 in {WEBP_QUALITY_STEPS} geometric steps, method=6"
    )

    def settings(self, image: np.ndarray, window: tuple[float, float]) -> Sequence[float]:
        grid = np.geomspace(WEBP_LOWEST_NONZERO_QUALITY, 100.0, WEBP_QUALITY_STEPS)
        return [0.0, *(float(q) for q in grid)]

    def options(self, setting: float, image: np.ndarray) -> dict:
        return {"quality": float(setting), "method": 6}


class Jpeg2000Codec(PillowCodec):
    key, label, image_format = "jpeg2000", "JPEG 2000", "JPEG2000"
    knob = "compression ratio r: quality_mode='rates', quality_layers=[r], irreversible=True, mct=1 on colour"

    def settings(self, image: np.ndarray, window: tuple[float, float]) -> Sequence[float]:
        raw_bits = 8 * (1 if image.ndim == 2 else image.shape[2])
        low, high = window[0] / J2K_RATE_MARGIN, window[1] * J2K_RATE_MARGIN
        count = math.ceil(math.log(high / low) / math.log(J2K_RATE_STEP)) + 1
        return [raw_bits / bpp for bpp in np.geomspace(low, high, count)]

    def options(self, setting: float, image: np.ndarray) -> dict:
        # OpenJPEG refuses more resolution levels than the smaller side can be halved.
        resolutions = min(J2K_RESOLUTIONS, 1 + int(math.log2(min(image.shape[:2]))))
        return {
            "quality_mode": "rates",
            "quality_layers": [float(setting)],
            "irreversible": True,
            "mct": 1 if image.ndim == 3 else 0,  # colour: the ICT (YCbCr), as JPEG and WebP decorrelate
            "no_jp2": True,
            "num_resolutions": resolutions,
        }


def reference_codecs() -> list[RDCodec]:
    return [JpegCodec(), Jpeg2000Codec(), WebpCodec()]


def library_versions() -> dict[str, str | None]:
    """Versions that decide the numbers: ours, Pillow's, and the libraries behind it."""
    return {
        "qpv": __version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "libjpeg-turbo": features.version("libjpeg_turbo"),
        "openjpeg": features.version("jpg_2000"),
        "libwebp": features.version("webp"),
    }
