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
from .container_v2 import CONTEXT_VERSION, JOINT_VERSION, SCALED_VERSION, STATIC_TABLE_VERSION
from .errors import ModelError, QpvError
from .models import LinearAutoencoder, load_autoencoder, load_manifest
from .profiles import MAX_QUALITY, MIN_QUALITY
from .resample import HalfResolution, load_half_resolution
from .postfilter import PostFilter, load_postfilter
from .restoration import RestorationModel, load_restoration
from .statictables import VERSION_5_KINDS, VERSION_6_KINDS, StaticTables, load_static_tables

FORMAT_VERSION = 2
# Stream versions these profiles read: 2 (earlier encoders) and 3 (format 2 plus one step
# per plane kind and a coded scale; resample.py), 4 (3 with compact or static Huffman
# tables; tablecoding.py), 5 (4 with joint DC symbols; jointdc.py) and 6 (5 with other-AC
# tables by start context), the only one their encoder writes.
STREAM_VERSIONS = (FORMAT_VERSION, SCALED_VERSION, STATIC_TABLE_VERSION, JOINT_VERSION, CONTEXT_VERSION)
# What the fingerprint of a version that names a static table set hashes with the set.
_SET_NAMES = {STATIC_TABLE_VERSION: b"static:", JOINT_VERSION: b"joint-static:", CONTEXT_VERSION: b"context-static:"}


@dataclass(frozen=True)
class TransformProfile:
    name: str
    profile_id: int
    basis: LinearAutoencoder  # 64 -> 64, orthonormal: latent 0 is the block DC
    restoration: RestorationModel
    base_step: float
    rounding: float  # dead-zone rounding offset of AC levels, in (0, 1/2]
    half: HalfResolution | None = None  # upsampler and rule of version 3 streams, if any
    static_tables: StaticTables | None = None  # static Huffman tables of version 4 streams
    # The ground's post-filter of decoded planes, if any: the decoder's own choice, like
    # restoration, so no fingerprint names it.
    postfilter: PostFilter | None = None
    joint_tables: StaticTables | None = None  # static Huffman tables of version 5 streams
    context_tables: StaticTables | None = None  # and of version 6 streams

    @property
    def fingerprint(self) -> bytes:
        """4 bytes naming what the encoder used, checked on decode: the basis.

        The restoration model is the decoder's own choice (it only estimates what the
        levels leave open), so retraining it keeps every stream of this basis decodable.
        """
        return hashlib.sha256(self.basis.sha256.encode("ascii")).digest()[:4]

    def static_set(self, version: int) -> StaticTables | None:
        """The static table set planes of a ``version`` stream may reference."""
        sets = {JOINT_VERSION: self.joint_tables, CONTEXT_VERSION: self.context_tables}
        return sets.get(version, self.static_tables)

    def stream_fingerprint(self, version: int) -> bytes:
        """The header's fingerprint: version 3 streams name the upsampler too, if any, and
        version 4 to 6 streams also their static table set (always hashed, with a
        version's own prefix, so that the fingerprints of versions 3 to 6 differ)."""
        if version in _SET_NAMES:
            tables = self.static_set(version)
            sha256 = tables.sha256 if tables is not None else ""
            named = self.stream_fingerprint(SCALED_VERSION) + _SET_NAMES[version] + sha256.encode("ascii")
            return hashlib.sha256(named).digest()[:4]
        if version == FORMAT_VERSION or self.half is None:
            return self.fingerprint
        return hashlib.sha256(self.fingerprint + self.half.sha256.encode("ascii")).digest()[:4]

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
    half = load_half_resolution(entry["half_resolution"]) if "half_resolution" in entry else None
    restoration = load_restoration(entry["restoration"])
    static = load_static_tables(entry["static_tables"]) if "static_tables" in entry else None
    filtering = load_postfilter(entry["postfilter"]) if "postfilter" in entry else None
    joint = load_static_tables(entry["joint_tables"], None, VERSION_5_KINDS) if "joint_tables" in entry else None
    context = load_static_tables(entry["context_tables"], None, VERSION_6_KINDS) if "context_tables" in entry else None
    return TransformProfile(
        name, int(entry["id"]), basis, restoration, base_step, rounding, half, static, filtering, joint, context
    )

