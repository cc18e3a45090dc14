"""Codec profiles: a named choice of block classes, their models and quantizer defaults.

A profile's tuned numbers come from the model manifest (written by ``export/train.py``
from the training split); this module binds them to loaded models and checks them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .errors import ModelError, QpvError
from .huffman import BlockLayout
from .models import LinearAutoencoder, load_autoencoder, profile_specs

DEFAULT_PROFILE = "klt"
MIN_QUALITY = 1.0 / 16.0
MAX_QUALITY = 16.0
MAX_CLASSES = 8


@dataclass(frozen=True)
class Profile:
    """A loaded profile. Class ``c`` of a block means: code it with ``models[c]``."""

    name: str
    profile_id: int
    models: tuple[LinearAutoencoder, ...]
    threshold: float
    base_steps: tuple[float, ...]

    @property
    def class_count(self) -> int:
        return len(self.models)

    @property
    def class_bits(self) -> int:
        return max(1, (self.class_count - 1).bit_length())

    @property
    def layout(self) -> BlockLayout:
        """Latents per class and class-index bits, as the entropy coders need them."""
        return BlockLayout(tuple(m.latents for m in self.models), self.class_bits)

    @property
    def fingerprint(self) -> bytes:
        """4 bytes naming the exact weights, written in every stream and checked on decode."""
        digest = hashlib.sha256("".join(m.sha256 for m in self.models).encode("ascii"))
        return digest.digest()[:4]

    def steps(self, quality: float) -> tuple[float, ...]:
        """Quantizer step of each class at a step scale ``quality`` (1.0 = profile default)."""
        if not MIN_QUALITY <= quality <= MAX_QUALITY:
            raise QpvError(f"quality {quality} is outside {MIN_QUALITY}..{MAX_QUALITY}")
        return tuple(step * quality for step in self.base_steps)


def available_profiles() -> list[str]:
    return sorted(profile_specs())


def get_profile(name: str | None = None) -> Profile:
    name = name or DEFAULT_PROFILE
    specs = profile_specs()
    if name not in specs:
        raise ModelError(f"unknown profile '{name}'; available: {', '.join(sorted(specs))}")
    return _bind(specs[name])


def profile_by_id(profile_id: int) -> Profile | None:
    for spec in profile_specs().values():
        if spec.profile_id == profile_id:
            return _bind(spec)
    return None


def _bind(spec) -> Profile:
    models = tuple(load_autoencoder(name) for name in spec.class_models)
    if not 1 <= len(models) <= MAX_CLASSES or len(spec.base_steps) != len(models):
        raise ModelError(f"profile '{spec.name}': class models and base steps do not match")
    return Profile(spec.name, spec.profile_id, models, spec.threshold, spec.base_steps)
