"""The ground-side post-filter (firmware_py/codec/postfilter.py): the NumPy network against
an explicit-loop reference, any plane size, load validation, and that the shipped model
brings decoded training images closer to their originals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from codec_helpers import crop

from firmware_py import datasets, imageio, metrics
from firmware_py.codec import ModelError, decode, decoder_v2, encode, models, postfilter
from firmware_py.codec.blocking import BLOCK
from firmware_py.codec.profile_v2 import get_transform_profile
from firmware_py.codec.resample import FULL, HALF


def random_filter(seed: int = 0) -> postfilter.PostFilter:
    rng = np.random.default_rng(seed)
    arrays = {key: rng.standard_normal(postfilter.SHAPES[key]).astype(np.float32) * 0.3 for key in postfilter.TRAINED}
    arrays["step_range"] = np.array([[5.0, 500.0], [20.0, 400.0]], dtype=np.float32)  # full, half scale
    return postfilter.PostFilter("random", arrays, "")


def reference_apply(plane: np.ndarray, step: float, model: postfilter.PostFilter) -> np.ndarray:
    """The network by explicit loops over pixels and taps, in float64."""
    w = {k: v.astype(np.float64) for k, v in model.arrays.items()}
    s = np.log(step / postfilter.STEP_REFERENCE)
    r = postfilter.RADIUS
    height, width = plane.shape
    x = (np.pad(plane, r, mode="edge") - postfilter.CENTRE) / postfilter.SCALE

    def layer(inputs: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        k = kernel.shape[0]
        rows, cols = inputs.shape[0] - k + 1, inputs.shape[1] - k + 1
        out = np.zeros((rows, cols, kernel.shape[3]))
        for i in range(rows):
            for j in range(cols):
                for dy in range(k):
                    for dx in range(k):
                        out[i, j] += inputs[i + dy, j + dx] @ kernel[dy, dx]
        return out

    margin = r - postfilter.KERNELS[0] // 2
    hidden = layer(x[:, :, None], w["conv1"]) + w["bias1"] + s * w["step1"]
    for i in range(hidden.shape[0]):
        for j in range(hidden.shape[1]):
            hidden[i, j] += w["phase_rows"][(i - margin) % BLOCK] + w["phase_cols"][(j - margin) % BLOCK]
    hidden = layer(np.maximum(hidden, 0), w["conv2"]) + w["bias2"] + s * w["step2"]
    correction = layer(np.maximum(hidden, 0), w["conv3"])[:, :, 0] + w["bias3"][0]
    assert correction.shape == (height, width)
    return plane + postfilter.SCALE * correction


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (9, 13), (2 * postfilter.STRIP_ROWS + 5, 11)])
def test_filter_matches_the_loop_reference_at_any_size(shape):
    """Planes smaller than the receptive field, edge pixels, and several strips."""
    plane = np.random.default_rng(1).uniform(0, 255, shape)
    model = random_filter()
    got = postfilter.apply(plane, 37.5, model, FULL)
    expected = reference_apply(plane, 37.5, model)
    assert got.shape == shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)
    assert np.max(np.abs(got - plane)) > 1  # the random filter does change the plane


def test_step_and_block_phase_change_the_output():
    plane = np.random.default_rng(2).uniform(0, 255, (16, 16))
    model = random_filter()
    at_10 = postfilter.apply(plane, 10.0, model, FULL)
    assert not np.allclose(at_10, postfilter.apply(plane, 200.0, model, FULL))
    shifted = postfilter.apply(plane[:, 1:], 10.0, model, FULL)[4:-4, 4:-4]
    assert not np.allclose(shifted, at_10[4:-4, 5:-4])


def test_no_model_leaves_the_plane_and_bad_input_is_refused():
    plane = np.zeros((8, 8))
    assert postfilter.apply(plane, 10.0, None, FULL) is plane
    for bad_plane, step, scale in ((np.zeros((0, 8)), 10.0, FULL), (plane, 0.0, FULL), (plane, 10.0, 3)):
        with pytest.raises(ValueError):
            postfilter.apply(bad_plane, step, random_filter(), scale)


def test_steps_outside_the_trained_range_of_their_scale_leave_the_plane():
    """The filter extrapolates badly below its smallest training step, which differs
    between full and half resolution (docs/MODELS.md)."""
    plane = np.random.default_rng(3).uniform(0, 255, (16, 16))
    model = random_filter()
    assert postfilter.covers(model, 5.0, FULL) and postfilter.covers(model, 500.0, FULL)
    assert postfilter.covers(model, 20.0, HALF) and not postfilter.covers(model, 19.9, HALF)
    for step, scale in ((4.9, FULL), (501.0, FULL), (10.0, HALF), (401.0, HALF)):
        assert not postfilter.covers(model, step, scale)
        assert postfilter.apply(plane, step, model, scale) is plane
    assert not np.allclose(postfilter.apply(plane, 6.0, model, FULL), plane)
    assert not np.allclose(postfilter.apply(plane, 21.0, model, HALF), plane)


def write_model(directory, arrays: dict[str, np.ndarray], sha256: str | None = None) -> None:
    np.savez(directory / "pf.npz", **arrays)
    entry = {"file": "pf.npz", "sha256": sha256 or models.file_sha256(directory / "pf.npz"), "kind": postfilter.KIND}
    (directory / "manifest.json").write_text(json.dumps({"models": {"pf": entry}, "profiles": {}}))


def test_load_accepts_a_valid_file(tmp_path):
    write_model(tmp_path, random_filter().arrays)
    loaded = postfilter.load_postfilter("pf", tmp_path)
    assert loaded.sha256 == models.file_sha256(tmp_path / "pf.npz")
    np.testing.assert_array_equal(loaded.arrays["conv2"], random_filter().arrays["conv2"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(conv2=np.zeros((3, 3, 16, 8), np.float32)), "conv2"),
        (lambda a: a["bias1"].__setitem__(0, np.nan), "not finite"),
        (lambda a: a.pop("phase_rows"), "arrays are"),
        (lambda a: a.update(extra=np.zeros(1)), "arrays are"),
        (lambda a: a.update(bias3=np.array(["x"])), "bias3"),
        (lambda a: a.update(step_range=np.array([[5.0, 10.0], [50.0, 10.0]], np.float32)), "step_range"),
        (lambda a: a.update(step_range=np.array([[0.0, 10.0], [5.0, 10.0]], np.float32)), "step_range"),
        (lambda a: a.update(step_range=np.array([5.0, 10.0], np.float32)), "step_range"),
    ],
)
def test_load_refuses_bad_arrays(tmp_path, change, message):
    arrays = dict(random_filter().arrays)
    change(arrays)
    write_model(tmp_path, arrays)
    with pytest.raises(ModelError, match=message):
        postfilter.load_postfilter("pf", tmp_path)


def test_load_refuses_a_modified_file_and_a_missing_entry(tmp_path):
    write_model(tmp_path, random_filter().arrays, sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        postfilter.load_postfilter("pf", tmp_path)
    with pytest.raises(ModelError, match="not in the manifest"):
        postfilter.load_postfilter("other", tmp_path)


@pytest.mark.parametrize("name, bpp", [("zelda.png", 0.1), ("monarch.png", 0.06)])
def test_shipped_filter_brings_training_decodes_closer(name, bpp):
    """Training images (the model may fit them; the held-out figures are in docs/MODELS.md),
    one gray at full resolution, one colour at a rate the encoder codes at half resolution.
    (Not barb: on its fine texture the filter gains least, 0.02 dB at 0.1 bpp.)"""
    image = crop(imageio.load_image(datasets.data_dir() / "waterloo" / name), 256, 320)
    profile = get_transform_profile("klt")
    assert profile.postfilter is not None and profile.postfilter.name == "klt-postfilter"
    data = encode(image, bpp=bpp)
    stream, read_profile = decoder_v2.read(data)
    planes = decoder_v2.reconstruct_planes(stream, read_profile)
    filtered = decode(data)
    unfiltered = decoder_v2.render(stream, replace(read_profile, postfilter=None), planes)
    np.testing.assert_array_equal(filtered, decoder_v2.render(stream, read_profile, planes))
    assert metrics.psnr(image, filtered) > metrics.psnr(image, unfiltered) + 0.05


def test_trained_step_range_is_measured_per_coded_scale():
    from export.train_postfilter import trained_step_range

    steps = np.log(np.array([8.0, 30.0, 12.0, 200.0]) / postfilter.STEP_REFERENCE)
    scales = np.array([FULL, HALF, FULL, HALF])
    np.testing.assert_allclose(trained_step_range(steps, scales), [[8.0, 12.0], [30.0, 200.0]])
    with pytest.raises(ValueError, match="scale 2"):
        trained_step_range(steps, np.full(4, FULL))


def test_smooth_training_frames_keep_the_size_and_are_smoother():
    from export.train_postfilter import smooth_frame

    image = imageio.load_image(datasets.data_dir() / "waterloo" / "barb.png")
    smooth, smoother = smooth_frame(image, 4), smooth_frame(image, 8)
    assert smooth.shape == smoother.shape == image.shape and smooth.dtype == smoother.dtype == np.uint8

    def roughness(frame: np.ndarray) -> float:
        return float(np.mean(np.abs(np.diff(frame.astype(np.float64), axis=1))))

    assert roughness(smoother) < roughness(smooth) / 1.5 < roughness(image) / 3
