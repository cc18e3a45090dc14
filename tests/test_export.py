"""The export round trip on a small calibration set: npz -> ONNX / TFLite / int8 npz ->
manifest -> every backend loads the new artifacts and agrees with the reference.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from firmware_py import datasets
from firmware_py.codec import blocking, models, transform
from firmware_py.codec.backends import INT8_BACKENDS, create_backend
from firmware_py.codec.backends.base import load_int8_layer

from conftest import REPO, clear_model_caches
from optional_packages import require

CALIBRATION_BLOCKS = 256
SEED_MODELS = ("seed-g1", "seed-g2")
KINDS = {"onnx-float", "onnx-int8", "tflite-int8", "int8-params"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The seed models without their exports, re-exported with 256 calibration blocks."""
    for module, extra in (("tensorflow", "export"), ("onnx", "export"), ("onnxruntime", "onnx"), ("ai_edge_litert", "tflite")):
        require(module, extra)
    from export.__main__ import export_all
    from export.calibration import calibration_set

    target = tmp_path_factory.mktemp("export") / "models"
    target.mkdir()
    committed = json.loads((REPO / "models" / "manifest.json").read_text())
    manifest = {"format": committed["format"], "models": {}, "profiles": {"seed": committed["profiles"]["seed"]}}
    for name in SEED_MODELS:
        entry = {k: v for k, v in committed["models"][name].items() if k != "exports"}
        shutil.copy(REPO / "models" / entry["file"], target / entry["file"])
        manifest["models"][name] = entry
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(models.MODELS_DIR_ENV, str(target))
        clear_model_caches()
        calibration = calibration_set(CALIBRATION_BLOCKS)
        result = export_all(target, calibration, "test", lambda message: None)
        yield target, result, calibration
    clear_model_caches()


@pytest.fixture
def runtime_dir(exported, monkeypatch):
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(exported[0]))
    clear_model_caches()
    yield exported[0]
    clear_model_caches()


def test_calibration_uses_only_training_blocks(exported):
    _, _, calibration = exported
    assert calibration.blocks.shape == (CALIBRATION_BLOCKS, blocking.BLOCK_PIXELS)
    assert list(calibration.images) == [p.name for p in datasets.training_images()]
    assert not any(name.startswith(datasets.PAPER_TEST_PREFIXES) for name in calibration.images)


def test_manifest_records_every_artifact(exported):
    target, manifest, _ = exported
    on_disk = json.loads((target / "manifest.json").read_text())
    assert on_disk["export"]["calibration"]["blocks"] == CALIBRATION_BLOCKS
    for name, entry in on_disk["models"].items():
        assert set(entry["exports"]) == KINDS
        for kind, artifact in entry["exports"].items():
            assert models.file_sha256(target / artifact["file"]) == artifact["sha256"]
            assert artifact["source_sha256"] == entry["sha256"]
            assert artifact["input"]["shape"] == [None, 64] and artifact["output"]["shape"] == [None, entry["latents"]]
            assert artifact["quality"]["training_block_mse"] >= entry["quality"]["linear_optimum_block_mse"] - 1e-3
            if kind != "onnx-float":
                assert artifact["quantization"]["input"] == {"dtype": "int8", "scale": 1.0, "zero_point": -128}


def test_tflite_params_are_the_int8_definition(exported, runtime_dir):
    from export.tflite_export import int8_layer

    for name in SEED_MODELS:
        flatbuffer = models.export_artifact(name, "tflite-int8").read_bytes()
        inside, saved = int8_layer(flatbuffer), load_int8_layer(name)
        for field in ("weights", "bias", "weight_scales"):
            assert np.array_equal(getattr(inside, field), getattr(saved, field))
        assert (inside.input_scale, inside.input_zero_point, inside.output_scale, inside.output_zero_point) == (
            saved.input_scale,
            saved.input_zero_point,
            saved.output_scale,
            saved.output_zero_point,
        )


def test_float_onnx_holds_the_npz_weights(runtime_dir):
    import onnx
    from onnx import numpy_helper

    for name in SEED_MODELS:
        model = models.load_autoencoder(name)
        graph = onnx.load(str(models.export_artifact(name, "onnx-float"))).graph
        arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        assert [n.op_type for n in graph.node] == ["Gemm"]
        assert np.array_equal(arrays["weight"].T, model.encoder_weight)
        assert np.array_equal(arrays["bias"], model.encoder_bias)


def test_every_backend_runs_the_new_artifacts(runtime_dir, lena2):
    blocks = blocking.plane_to_blocks(lena2)
    for name in SEED_MODELS:
        model = models.load_autoencoder(name)
        reference = transform.analyse(blocks, model)
        assert np.max(np.abs(create_backend("onnxruntime").analyse(blocks, model) - reference)) < 1e-4
        int8 = [create_backend(b).latents_int8(blocks, model) for b in INT8_BACKENDS]
        assert all(np.array_equal(latents, int8[0]) for latents in int8[1:])
