"""Transform profiles (format version 2): one learned orthonormal basis, dead-zone steps,
and a decoder-side restoration model, bound from the model manifest.

A manifest profile with ``"format": 2`` is one of these; ``klt`` is the default. Its
entry names the basis (``class_models[0]``, a 64-latent linear autoencoder whose
encoder is the transpose of its decoder), the restoration model, the base step and the
dead-zone rounding offset, all chosen offline on the training split (export/train_v2.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .blocking import BLOCK_PIXELS
from .errors import ModelError, QpvError
from .models import LinearAutoencoder, load_autoencoder, load_manifest
from .profiles import MAX_QUALITY, MIN_QUALITY
from .restoration import RestorationModel, load_restoration

FORMAT_VERSION = 2


@dataclass(frozen=True)
class TransformProfile:
    name: str
    profile_id: int
    basis: LinearAutoencoder  # 64 -> 64, orthonormal: latent 0 is the block DC
    restoration: RestorationModel
    base_step: float
    rounding: float  # dead-zone rounding offset of AC levels, in (0, 1/2]

    @property
    def fingerprint(self) -> bytes:
        """4 bytes naming the basis and restoration weights, checked on decode."""
        return hashlib.sha256((self.basis.sha256 + self.restoration.sha256).encode("ascii")).digest()[:4]

    def step(self, quality: float) -> float:
        if not MIN_QUALITY <= quality <= MAX_QUALITY:
            raise QpvError(f"quality {quality} is outside {MIN_QUALITY}..{MAX_QUALITY}")
        return self.base_step * quality


def _entries() -> dict:
    return {name: e for name, e in load_manifest()["profiles"].items() if int(e.get("format", 1)) == FORMAT_VERSION}


def is_transform_profile(name: str) -> bool:
    return name in _entries()


def get_transform_profile(name: str) -> TransformProfile:
    entries = _entries()
    if name not in entries:
        raise ModelError(f"'{name}' is not a format {FORMAT_VERSION} profile")
    return _bind(name, entries[name])


def transform_profile_by_id(profile_id: int) -> TransformProfile | None:
    for name, entry in _entries().items():
        if int(entry["id"]) == profile_id:
            return _bind(name, entry)
    return None


def _bind(name: str, entry: dict) -> TransformProfile:
    basis = load_autoencoder(entry["class_models"][0])
    if basis.latents != BLOCK_PIXELS:
        raise ModelError(f"profile '{name}': basis '{basis.name}' has {basis.latents} latents, not {BLOCK_PIXELS}")
    base_step, rounding = float(entry["base_steps"][0]), float(entry["rounding"])
    if not (0 < base_step and 0 < rounding <= 0.5):
        raise ModelError(f"profile '{name}': invalid base step {base_step} or rounding {rounding}")
    return TransformProfile(name, int(entry["id"]), basis, load_restoration(entry["restoration"]), base_step, rounding)
