"""Updating models/manifest.json from the offline tools.

Several tools own parts of the manifest: ``export.train`` the seed models and profile,
``export.train_v2`` the klt models and profile, ``python -m export`` each model's
``exports``, ``export.packet_tables`` the ``packet_stats`` section, ``export.evaluate``
the test-set quality figures. Each re-reads the file and replaces only its own keys, so
they can run in any order without dropping each other's entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from firmware_py.codec import models
from firmware_py.fsutil import write_atomically

REPLACE_FROZEN_FLAG = "--replace-frozen"


class FrozenArtifactError(Exception):
    """A retrained artifact that stream fingerprints name would replace a different one."""


def read_manifest(directory: Path) -> dict:
    """The manifest in ``directory``, or an empty one if there is none yet."""
    path = directory / models.MANIFEST_NAME
    if not path.exists():
        return {"format": 1, "models": {}, "profiles": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(directory: Path, manifest: dict) -> None:
    """Write the manifest and forget every artifact the runtime loaded under the old one."""
    with open(directory / models.MANIFEST_NAME, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
    models.clear_caches()


def update_manifest(directory: Path, change: Callable[[dict], None]) -> dict:
    """Re-read the manifest, apply ``change`` to it in place, write it back; return it."""
    manifest = read_manifest(directory)
    change(manifest)
    write_manifest(directory, manifest)
    return manifest


def record_profile_model(directory: Path, profile: str, key: str, model: str, entry: dict) -> None:
    """Store ``entry`` as model ``model`` and name it as profile ``profile``'s ``key``
    (how each klt training step records its artifact)."""

    def record(manifest: dict) -> None:
        manifest["models"][model] = entry
        manifest["profiles"][profile][key] = model

    update_manifest(directory, record)


def write_frozen_artifact(path: Path, data: bytes, replace: bool) -> None:
    """Write an artifact that stream fingerprints name (the klt upsampler, the static
    Huffman sets), refusing to change an existing one unless ``replace``: a new hash makes
    every stream written with the old file undecodable (docs/MODELS.md, "Frozen
    artifacts"). Rewriting identical bytes is allowed, so a reproducing run passes."""
    if path.exists() and not replace:
        old, new = hashlib.sha256(path.read_bytes()).hexdigest(), hashlib.sha256(data).hexdigest()
        if old != new:
            raise FrozenArtifactError(
                f"{path} would change (sha256 {old[:16]}... -> {new[:16]}...): stream fingerprints name it, "
                f"so every stream written with it would become undecodable; nothing was written. Pass "
                f'{REPLACE_FROZEN_FLAG} to write it anyway (docs/MODELS.md, "Frozen artifacts")'
            )
    write_atomically(path, data)
