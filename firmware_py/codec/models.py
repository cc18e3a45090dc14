"""The model registry: trained artifacts in ``models/``, described by ``models/manifest.json``.

The manifest is the single source of truth for which weights a profile uses. Every
artifact (the float weights and each exported ONNX / TFLite / int8 file) is checked
against its sha256 before use, so a corrupted or swapped file on a
board is refused instead of silently producing wrong latents.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blocking import BLOCK_PIXELS
from .errors import ModelError

MODELS_DIR_ENV = "QPV_MODELS_DIR"
MANIFEST_NAME = "manifest.json"


_ARTIFACT_CACHES: list = []


def artifact_cache(maxsize: int):
    """``functools.lru_cache`` for anything derived from the models directory.

    Every such cache is registered, so that :func:`clear_caches` makes the runtime forget
    all of them at once when the manifest or an artifact changes (retraining, tests).
    """

    def register(function):
        cached = functools.lru_cache(maxsize=maxsize)(function)
        _ARTIFACT_CACHES.append(cached)
        return cached

    return register


def clear_caches() -> None:
    """Forget every manifest, model and table loaded so far."""
    for cache in _ARTIFACT_CACHES:
        cache.cache_clear()


def models_dir() -> Path:
    """Directory of the model artifacts: ``$QPV_MODELS_DIR`` or the repository's ``models/``."""
    override = os.environ.get(MODELS_DIR_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class LinearAutoencoder:
    """A block autoencoder 64 -> k -> 64 with no activation: latents = x @ W_e + b_e."""

    name: str
    encoder_weight: np.ndarray  # (64, k)
    encoder_bias: np.ndarray  # (k,)
    decoder_weight: np.ndarray  # (k, 64)
    decoder_bias: np.ndarray  # (64,)
    sha256: str

    @property
    def latents(self) -> int:
        return self.encoder_bias.shape[0]


@dataclass(frozen=True)
class ProfileSpec:
    """Offline-tuned parameters of a codec profile, as the manifest records them."""

    name: str
    profile_id: int
    class_models: tuple[str, ...]
    threshold: float
    base_steps: tuple[float, ...]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


@artifact_cache(maxsize=4)
def load_manifest(directory: Path | None = None) -> dict:
    path = (directory or models_dir()) / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise ModelError(f"model manifest not found: {path} (set {MODELS_DIR_ENV})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model manifest {path} is unreadable: {exc}") from None
    if not isinstance(manifest.get("models"), dict) or not isinstance(manifest.get("profiles"), dict):
        raise ModelError(f"model manifest {path} lacks the 'models' or 'profiles' table")
    return manifest


def _require_array(arrays, key: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    if key not in arrays:
        raise ModelError(f"model {name}: artifact lacks array '{key}'")
    value = np.asarray(arrays[key], dtype=np.float64)
    if value.shape != shape:
        raise ModelError(f"model {name}: '{key}' has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise ModelError(f"model {name}: '{key}' holds non-finite values")
    return value


def _model_entry(name: str, directory: Path) -> dict:
    entry = load_manifest(directory)["models"].get(name)
    if entry is None:
        raise ModelError(f"model '{name}' is not in {directory / MANIFEST_NAME}")
    return entry


def verified_artifact(directory: Path, entry: dict, what: str) -> tuple[Path, str]:
    """Path and sha256 of a manifest artifact, refused unless it exists and matches its hash."""
    path = directory / entry["file"]
    if not path.is_file():
        raise ModelError(f"{what}: artifact {path} is missing")
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise ModelError(
            f"{what}: {path} has sha256 {actual[:16]}..., manifest says "
            f"{entry['sha256'][:16]}...; refusing a modified artifact"
        )
    return path, actual


def manifest_artifact(name: str, kind: str, what: str, directory: Path | None = None) -> tuple[Path, str]:
    """Path and sha256 of model ``name``'s artifact, refused unless the manifest lists it
    as ``kind`` and the file matches its hash (``what`` names the model in errors)."""
    directory = directory or models_dir()
    entry = load_manifest(directory)["models"].get(name)
    if entry is None or entry.get("kind") != kind:
        raise ModelError(f"{what} '{name}' is not in the manifest of {directory}")
    return verified_artifact(directory, entry, f"model '{name}'")


def export_artifact(name: str, kind: str, directory: Path | None = None) -> Path:
    """A hash-checked exported artifact of model ``name``, e.g. kind ``onnx-int8``.

    The kinds and how they are made are in docs/MODELS.md (``python -m export``).
    """
    directory = directory or models_dir()
    entry = _model_entry(name, directory)
    exported = entry.get("exports", {}).get(kind)
    if exported is None:
        raise ModelError(
            f"model '{name}' has no '{kind}' artifact in {directory / MANIFEST_NAME}; run `python -m export`"
        )
    if exported.get("source_sha256") != entry["sha256"]:
        raise ModelError(
            f"model '{name}' ({kind}) was exported from other weights than {entry['file']}; re-run `python -m export`"
        )
    path, _ = verified_artifact(directory, exported, f"model '{name}' ({kind})")
    return path


@artifact_cache(maxsize=32)
def load_autoencoder(name: str, directory: Path | None = None) -> LinearAutoencoder:
    """Load a block autoencoder by manifest name, refusing any hash or shape mismatch."""
    directory = directory or models_dir()
    entry = _model_entry(name, directory)
    path, actual = verified_artifact(directory, entry, f"model '{name}'")
    k = int(entry["latents"])
    with np.load(path, allow_pickle=False) as arrays:
        return LinearAutoencoder(
            name=name,
            encoder_weight=_require_array(arrays, "encoder_weight", (BLOCK_PIXELS, k), name),
            encoder_bias=_require_array(arrays, "encoder_bias", (k,), name),
            decoder_weight=_require_array(arrays, "decoder_weight", (k, BLOCK_PIXELS), name),
            decoder_bias=_require_array(arrays, "decoder_bias", (BLOCK_PIXELS,), name),
            sha256=actual,
        )


def profile_specs(directory: Path | None = None) -> dict[str, ProfileSpec]:
    """All profiles the manifest defines, by name."""
    specs = {}
    for name, entry in load_manifest(directory or models_dir())["profiles"].items():
        specs[name] = ProfileSpec(
            name=name,
            profile_id=int(entry["id"]),
            class_models=tuple(entry["class_models"]),
            threshold=float(entry["threshold"]),
            base_steps=tuple(float(s) for s in entry["base_steps"]),
        )
    return specs
