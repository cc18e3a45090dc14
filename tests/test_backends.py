"""Inference backends: numba-int8 against its NumPy reference, every backend against the
float reference and the int8 backends against each other, on real test images; hash
and missing-package refusals; streams of every backend decode with the normal decoder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from firmware_py import metrics
from firmware_py.codec import ModelError, blocking, color, decode, encode, encoder, models, transform
from firmware_py.codec.backends import (
    BACKENDS,
    DEFAULT_BACKEND,
    BackendUnavailableError,
    create_backend,
    get_backend,
)
from firmware_py.codec.backends.base import load_int8_layer
from firmware_py.codec.backends.int8 import (
    Int8Layer,
    fully_connected,
    fully_connected_reference,
    quantize_input,
    quantize_multiplier,
)
from firmware_py.codec.profiles import get_profile

from conftest import REPO, clear_model_caches
from optional_packages import require

# The exported models: the seed profile's (the klt profile's basis is not exported yet).
PROFILE = "seed"
MODELS = ("seed-g1", "seed-g2")
# The ONNX float graph is float64, like the reference: 1e-4 leaves 8 orders of margin.
FLOAT_TOLERANCE = 1e-4
MAX_MISMATCH_RATE = 1e-3


@pytest.fixture(scope="module")
def test_blocks(lena2, kodim23) -> np.ndarray:
    """Every block of lena2 and of kodim23's three coded planes (non-integer chroma too)."""
    ycbcr = color.rgb_to_ycbcr(kodim23)
    planes = [lena2.astype(np.float64), ycbcr[..., 0], color.downsample_420(ycbcr[..., 1]), color.downsample_420(ycbcr[..., 2])]
    return np.concatenate([blocking.plane_to_blocks(p) for p in planes])


@pytest.fixture(scope="module")
def runtimes():
    require("onnxruntime", "onnx")
    require("ai_edge_litert.interpreter", "tflite")


def random_layer(rng: np.random.Generator, k: int = 8, output_scale: float | None = None) -> Int8Layer:
    return Int8Layer(
        weights=rng.integers(-127, 128, (k, 64)).astype(np.int8),
        bias=rng.integers(-(1 << 20), 1 << 20, k).astype(np.int32),
        weight_scales=rng.uniform(1e-4, 5e-3, k).astype(np.float32),
        input_scale=float(np.float32(rng.uniform(0.5, 2.0))),
        input_zero_point=int(rng.integers(-128, 128)),
        output_scale=float(np.float32(output_scale or rng.uniform(1.0, 10.0))),
        output_zero_point=int(rng.integers(-128, 128)),
    )


@pytest.mark.parametrize("seed", range(5))
def test_int8_kernel_equals_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng)
    x = rng.integers(-128, 128, (3000, 64)).astype(np.int8)
    x[:4] = [[-128], [127], [0], [-1]]
    out = fully_connected(x, layer)
    assert out.dtype == np.int8
    assert np.array_equal(out, fully_connected_reference(x, layer))


def test_int8_kernel_saturates_like_the_reference():
    rng = np.random.default_rng(7)
    layer = random_layer(rng, output_scale=0.02)
    x = rng.integers(-128, 128, (3000, 64)).astype(np.int8)
    out = fully_connected(x, layer)
    assert np.array_equal(out, fully_connected_reference(x, layer))
    assert {-128, 127} <= set(np.unique(out).tolist())


def test_int8_kernel_on_the_exported_layers(test_blocks):
    for name in MODELS:
        layer = load_int8_layer(name)
        x = quantize_input(test_blocks, layer)
        assert np.array_equal(fully_connected(x, layer), fully_connected_reference(x, layer))


def test_quantize_multiplier_is_tflites_q31_form():
    real = np.geomspace(1e-9, 0.999, 500)
    multiplier, shift = quantize_multiplier(real)
    assert np.all((multiplier >= 1 << 30) & (multiplier.astype(np.int64) < 1 << 31))
    approx = multiplier.astype(np.float64) * 2.0 ** (shift.astype(np.float64) - 31)
    assert np.all(np.abs(approx - real) <= 2.0 ** (shift.astype(np.float64) - 32))


def test_quantize_input_rounds_half_to_even_and_saturates():
    layer = random_layer(np.random.default_rng(0))
    layer = Int8Layer(layer.weights, layer.bias, layer.weight_scales, 1.0, -128, 1.0, 0)
    blocks = np.zeros((1, 64))
    blocks[0, :5] = [0.5, 1.5, 255.0, 300.0, -7.0]
    assert quantize_input(blocks, layer)[0, :5].tolist() == [-128, -126, 127, 127, -128]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"weights": np.zeros((8, 64), np.int16)}, "weights"),
        ({"bias": np.zeros(8, np.int64)}, "bias"),
        ({"weight_scales": np.zeros(8, np.float32)}, "scales"),
        ({"output_zero_point": 200}, "zero point"),
        ({"output_scale": 1e-12}, "shifts"),
    ],
)
def test_int8_layer_refuses_parameters_the_kernel_cannot_run(change, message):
    fields = random_layer(np.random.default_rng(1)).__dict__ | change
    with pytest.raises(ModelError, match=message):
        Int8Layer(**fields)


def test_default_backend_is_todays_float_transform(test_blocks):
    backend = get_backend()
    assert backend.name == DEFAULT_BACKEND == "numba"
    for model in get_profile(PROFILE).models:
        assert np.array_equal(backend.analyse(test_blocks, model), transform.analyse(test_blocks, model))


def test_default_stream_is_unchanged_by_naming_the_backend(kodim23):
    assert encode(kodim23, quality=1.0) == encode(kodim23, quality=1.0, backend="numba")


def exported_models() -> list:
    """Every model that python -m export has exported (seed's pair and klt's basis)."""
    entries = models.load_manifest()["models"]
    return [models.load_autoencoder(name) for name, entry in entries.items() if entry.get("exports")]


def test_every_linear_model_is_exported():
    assert {m.name for m in exported_models()} == {"seed-g1", "seed-g2", "klt-basis"}


def test_float_onnx_agrees_with_the_reference(runtimes, test_blocks):
    for model in exported_models():
        latents = get_backend("onnxruntime").analyse(test_blocks, model)
        assert np.max(np.abs(latents - transform.analyse(test_blocks, model))) < FLOAT_TOLERANCE


def int8_mismatch_rates(model, blocks: np.ndarray) -> dict[str, float]:
    """Share of int8 latents on which each runtime differs from numba-int8."""
    expected = get_backend("numba-int8").latents_int8(blocks, model)
    return {
        runtime: np.count_nonzero(get_backend(runtime).latents_int8(blocks, model) != expected) / expected.size
        for runtime in ("tflite", "onnxruntime-int8")
    }


def test_int8_backends_agree_within_the_bound(runtimes, test_blocks):
    # klt-basis's DC latent differs by one on ~1.2e-4 of blocks (docs/MODELS.md).
    for model in exported_models():
        rates = int8_mismatch_rates(model, test_blocks)
        assert max(rates.values()) <= MAX_MISMATCH_RATE, f"{model.name}: {rates}"


def test_seed_int8_latents_are_identical_on_every_runtime(runtimes, test_blocks):
    for model in get_profile(PROFILE).models:
        assert int8_mismatch_rates(model, test_blocks) == {"tflite": 0.0, "onnxruntime-int8": 0.0}


def test_int8_latents_stay_close_to_float(test_blocks):
    for model in exported_models():
        layer = load_int8_layer(model.name)
        error = get_backend("numba-int8").analyse(test_blocks, model) - transform.analyse(test_blocks, model)
        # Half an output step of rounding plus the int8 weights' share.
        assert np.max(np.abs(error)) < layer.output_scale


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backends_stream_decodes_within_a_tenth_of_a_db(runtimes, kodim23, backend):
    luma = np.asarray(color.rgb_to_ycbcr(kodim23)[..., 0].round(), dtype=np.uint8)
    reference = metrics.psnr(luma, decode(encode(luma, bpp=0.15, profile=PROFILE)))
    stream = encode(luma, bpp=0.15, profile=PROFILE, backend=backend)
    assert len(stream) <= int(0.15 * luma.size / 8)
    assert abs(metrics.psnr(luma, decode(stream)) - reference) < 0.1


def test_manifest_hashes_match_every_artifact():
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    for name in MODELS:
        assert set(manifest["models"][name]["exports"]) == {"onnx-float", "onnx-int8", "tflite-int8", "int8-params"}
    for entry in manifest["models"].values():
        assert models.file_sha256(REPO / "models" / entry["file"]) == entry["sha256"]
        for artifact in entry.get("exports", {}).values():
            assert models.file_sha256(REPO / "models" / artifact["file"]) == artifact["sha256"]
            assert artifact["source_sha256"] == entry["sha256"]


@pytest.fixture
def models_copy(tmp_path, monkeypatch):
    """A writable copy of models/ that the runtime is pointed at."""
    target = tmp_path / "models"
    shutil.copytree(REPO / "models", target)
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(target))
    clear_model_caches()
    yield target
    clear_model_caches()


@pytest.mark.parametrize(
    "backend, kind",
    [("numba-int8", "int8-params"), ("onnxruntime", "onnx-float"), ("onnxruntime-int8", "onnx-int8"), ("tflite", "tflite-int8")],
)
def test_a_modified_artifact_is_refused(runtimes, models_copy, backend, kind):
    entry = json.loads((models_copy / "manifest.json").read_text())["models"]["seed-g2"]["exports"][kind]
    path = models_copy / entry["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        create_backend(backend).analyse(np.zeros((1, 64)), models.load_autoencoder("seed-g2"))


def test_exports_of_other_weights_are_refused(models_copy):
    manifest = json.loads((models_copy / "manifest.json").read_text())
    manifest["models"]["seed-g1"]["exports"]["int8-params"]["source_sha256"] = "0" * 64
    (models_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="other weights"):
        create_backend("numba-int8").analyse(np.zeros((1, 64)), models.load_autoencoder("seed-g1"))


@pytest.mark.parametrize("backend, module, extra", [("onnxruntime", "onnxruntime", "onnx"), ("tflite", "ai_edge_litert.interpreter", "tflite")])
def test_a_missing_runtime_names_the_extra(monkeypatch, backend, module, extra):
    for name in (module, "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import raise ImportError
    with pytest.raises(BackendUnavailableError, match=rf"pip install qpv\[{extra}\]") as info:
        create_backend(backend).analyse(np.zeros((1, 64)), models.load_autoencoder("seed-g1"))
    assert "\n" not in str(info.value)


def test_an_unknown_backend_is_a_clear_error(gray_crop):
    with pytest.raises(BackendUnavailableError, match="unknown backend 'gpu'"):
        encoder.encode(gray_crop, backend="gpu")


def test_cli_encodes_with_a_backend(runtimes, tmp_path):
    source = REPO.parent / "shared" / "data" / "waterloo" / "lena2.png"
    out = tmp_path / "lena2.qpv"
    run = subprocess.run(
        [sys.executable, "-m", "firmware_py.cli", "encode", str(source), "-o", str(out), "--bpp", "0.2", "--profile", PROFILE, "--backend", "tflite"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    assert "backend tflite" in run.stdout
    assert decode(out.read_bytes()).shape == (512, 512)
    bad = subprocess.run(
        [sys.executable, "-m", "firmware_py.cli", "encode", str(source), "-o", str(out), "--backend", "gpu"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert bad.returncode == 2 and "invalid choice: 'gpu'" in bad.stderr
