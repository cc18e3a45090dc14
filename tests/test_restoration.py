"""The klt profile's decoder-side restoration: the coefficient and edge maps do what they
claim, a model file the decoder cannot use is refused, and since the restoration is the
decoder's own choice, retraining it keeps every stream of the same basis decodable."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from export import train_v2
from firmware_py import metrics
from firmware_py.codec import ModelError, blocking, deadzone, decode, encode, models, restoration, transform
from firmware_py.codec.profile_v2 import get_transform_profile

from codec_helpers import crop

PROFILE = "klt"


def edge_model(bias: float) -> restoration.RestorationModel:
    """A model whose edge maps add ``bias`` to every pixel they correct."""
    edge_weights = np.zeros((1, restoration.EDGE_FEATURES, 2 * restoration.EDGE_OUTPUT))
    edge_weights[0, -1] = bias
    return restoration.RestorationModel(
        "t", np.array([10.0]), np.zeros((1, restoration.FEATURES, 64)), edge_weights, ""
    )


@pytest.mark.parametrize(("height", "width"), [(8, 8), (13, 21), (40, 36)])
def test_deblocking_corrects_exactly_the_pixels_beside_block_edges(height, width):
    plane = np.arange(height * width, dtype=np.float64).reshape(height, width)
    assert np.array_equal(restoration.deblock(plane, 10.0, edge_model(0.0)), plane)
    touched = np.zeros((height, width))
    for axis, size in ((1, width), (0, height)):
        for edge in range(8, size - restoration.EDGE_INPUT + 1, 8):
            near = slice(edge - restoration.EDGE_OUTPUT, edge + restoration.EDGE_OUTPUT)
            touched[(slice(None), near) if axis == 1 else (near, slice(None))] += 1
    np.testing.assert_allclose(restoration.deblock(plane, 10.0, edge_model(1.0)) - plane, touched)


def test_each_stage_lowers_the_error_of_a_real_image(lena2):
    image = crop(lena2, 256, 256)
    profile = get_transform_profile(PROFILE)
    plane = train_v2.plane_coefficients(image, profile.basis)
    step = profile.step(0.5)
    levels = train_v2.levels_at(plane, step, profile.rounding)
    restored = restoration.restore(levels, step, profile.rounding, plane.rows, plane.cols, profile.restoration)
    low, high = deadzone.cell_bounds(levels, np.full(64, step), profile.rounding)
    assert np.all(restored - levels * step >= low - 1e-9) and np.all(restored - levels * step <= high + 1e-9)

    def psnr(coefficients, deblocked):
        pixels = blocking.blocks_to_plane(transform.synthesise(coefficients, profile.basis), *image.shape)
        if deblocked:
            pixels = restoration.deblock(pixels, step, profile.restoration)
        return metrics.psnr(image, np.clip(np.rint(pixels), 0, 255).astype(np.uint8))

    assert psnr(levels * step, False) < psnr(restored, False) < psnr(restored, True)


# --- model files the decoder cannot use -----------------------------------------------


def rewrite_restoration(folder, change, record_hash: bool = True) -> None:
    path = folder / "klt-restore.npz"
    with np.load(path) as arrays:
        saved = {key: arrays[key] for key in arrays.files}
    change(saved)
    with open(path, "wb") as handle:
        np.savez(handle, **saved)
    if record_hash:
        manifest = json.loads((folder / models.MANIFEST_NAME).read_text())
        manifest["models"]["klt-restore"]["sha256"] = models.file_sha256(path)
        (folder / models.MANIFEST_NAME).write_text(json.dumps(manifest))
    models.clear_caches()


BAD_MODELS = {
    "weights shape": lambda a: a.update(weights=a["weights"][:, :-1]),
    "edge weights shape": lambda a: a.update(edge_weights=a["edge_weights"][:, :, :3]),
    "one bin short": lambda a: a.update(edge_weights=a["edge_weights"][:-1]),
    "missing edge weights": lambda a: a.pop("edge_weights"),
    "non-finite weight": lambda a: a["weights"].__setitem__((0, 0, 0), np.nan),
    "non-finite edge weight": lambda a: a["edge_weights"].__setitem__((3, 1, 1), np.inf),
    "steps not increasing": lambda a: a.update(steps=a["steps"][::-1].copy()),
    "zero step": lambda a: a["steps"].__setitem__(0, 0.0),
}


@pytest.mark.parametrize("defect", sorted(BAD_MODELS))
def test_unusable_restoration_model_is_refused(models_copy, defect):
    rewrite_restoration(models_copy, BAD_MODELS[defect])
    with pytest.raises(ModelError, match="klt-restore"):
        get_transform_profile(PROFILE)


def test_restoration_file_not_matching_its_hash_is_refused(models_copy):
    rewrite_restoration(models_copy, lambda a: a["edge_weights"].__setitem__((0, 0, 0), 1.0), record_hash=False)
    with pytest.raises(ModelError, match="sha256"):
        get_transform_profile(PROFILE)


# --- fingerprints: what the encoder used -------------------------


def test_fingerprint_names_the_basis_not_the_restoration():
    profile = get_transform_profile(PROFILE)
    other = dataclasses.replace(profile.restoration, sha256="0" * 64)
    assert dataclasses.replace(profile, restoration=other).fingerprint == profile.fingerprint
    assert profile.fingerprint == hashlib.sha256(profile.basis.sha256.encode("ascii")).digest()[:4]
    other_basis = dataclasses.replace(profile.basis, sha256="0" * 64)
    assert dataclasses.replace(profile, basis=other_basis).fingerprint != profile.fingerprint


def test_retrained_restoration_still_decodes_existing_streams(models_copy, gray_crop):
    stream = encode(gray_crop, quality=1.0, profile=PROFILE)
    before = decode(stream)
    rewrite_restoration(models_copy, lambda a: a.update(edge_weights=np.zeros_like(a["edge_weights"])))
    after = decode(stream)
    assert after.shape == before.shape and not np.array_equal(after, before)
