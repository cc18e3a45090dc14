"""The model registry: artifacts are used only when they match the manifest, and a stream
is decoded only with the exact models it was encoded with."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from firmware_py.cli import EXIT_BAD_INPUT, main
from firmware_py.codec import ModelError, available_profiles, decode, encode, models
from firmware_py.codec.profiles import get_profile

from codec_helpers import REPO


def manifest_of(folder):
    return json.loads((folder / models.MANIFEST_NAME).read_text())


def write_manifest(folder, manifest) -> None:
    (folder / models.MANIFEST_NAME).write_text(json.dumps(manifest))


def test_committed_artifacts_match_the_manifest():
    manifest = manifest_of(REPO / "models")
    for name, entry in manifest["models"].items():
        assert models.file_sha256(REPO / "models" / entry["file"]) == entry["sha256"], name
    assert "seed" in available_profiles()


def test_seed_profile_is_the_papers_method():
    seed = get_profile("seed")
    assert [m.latents for m in seed.models] == [1, 8]
    assert seed.class_count == 2 and seed.class_bits == 1
    digest = hashlib.sha256("".join(m.sha256 for m in seed.models).encode("ascii")).digest()
    assert seed.fingerprint == digest[:4]


def test_modified_artifact_is_refused(models_copy, gray_crop):
    path = models_copy / "seed-g2.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="refusing a modified artifact"):
        get_profile("seed")
    with pytest.raises(ModelError, match="seed-g2"):
        encode(gray_crop, profile="seed")


def test_modified_artifact_fails_decode_and_cli(models_copy, gray_stream, tmp_path, capsys):
    path = models_copy / "seed-g1.npz"
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(ModelError, match="sha256"):
        decode(gray_stream)
    stream = tmp_path / "s.qpv"
    stream.write_bytes(gray_stream)
    assert main(["decode", str(stream), "-o", str(tmp_path / "s.png")]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith("qpv: error: model 'seed-g1'")
    assert not (tmp_path / "s.png").exists()


def retrain(folder, name: str, change) -> None:
    """Replace an artifact by a different valid one and record it in the manifest."""
    path = folder / f"{name}.npz"
    with np.load(path) as arrays:
        weights = {key: arrays[key] for key in arrays.files}
    change(weights)
    np.savez(path, **weights)
    manifest = manifest_of(folder)
    manifest["models"][name]["sha256"] = models.file_sha256(path)
    write_manifest(folder, manifest)


def test_stream_from_other_models_raises_model_error(gray_stream, models_copy):
    def nudge(weights):
        weights["decoder_bias"] = weights["decoder_bias"] + np.float32(1.0)

    retrain(models_copy, "seed-g2", nudge)
    assert get_profile("seed").fingerprint != gray_stream[12:16]
    with pytest.raises(ModelError, match="encoded with models"):
        decode(gray_stream)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.update(encoder_weight=w["encoder_weight"][:, :0]), "has shape"),
        (lambda w: w.pop("decoder_bias"), "lacks array 'decoder_bias'"),
        (lambda w: w["decoder_weight"].__setitem__((0, 0), np.nan), "non-finite"),
    ],
    ids=["wrong-shape", "missing-array", "nan-weight"],
)
def test_invalid_artifact_contents_are_refused(models_copy, change, message):
    retrain(models_copy, "seed-g1", change)
    with pytest.raises(ModelError, match=message):
        get_profile("seed")


def test_missing_manifest_artifact_and_profile(models_copy):
    (models_copy / "seed-g1.npz").unlink()
    with pytest.raises(ModelError, match="missing"):
        get_profile("seed")
    with pytest.raises(ModelError, match="unknown profile 'fast'"):
        get_profile("fast")
    (models_copy / models.MANIFEST_NAME).unlink()
    models.clear_caches()
    with pytest.raises(ModelError, match="manifest not found"):
        get_profile("seed")


def test_unreadable_manifest(models_copy):
    (models_copy / models.MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        available_profiles()
