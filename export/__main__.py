"""Export every block model of ``models/`` for the onboard inference backends.

    python -m export --models models            # after `python -m export.train --out models`

Per model in the manifest, from its float npz (the single source of the weights), the
encoder half is written as:

    <name>-encoder.onnx        float64 ONNX Gemm                     backend onnxruntime
    <name>-encoder.int8.tflite full-integer TFLite (TensorFlow PTQ)  backend tflite
    <name>-encoder.int8.npz    the TFLite file's int8 parameters     backend numba-int8
    <name>-encoder.int8.onnx   onnxruntime static quantization (QDQ) backend onnxruntime-int8

and recorded in the model's ``exports`` in models/manifest.json (sha256, shapes,
quantization parameters, the npz it came from, and its block MSE on the training
split measured through its backend). ``python -m export.evaluate`` adds test-set PSNR.
Needs the ``export`` extra (TensorFlow, onnx, onnxruntime, LiteRT).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import sys
from pathlib import Path

import numpy as np

from firmware_py import datasets
from firmware_py.codec import models, transform
from firmware_py.codec.backends import create_backend
from firmware_py.codec.backends.int8 import Int8Layer
from firmware_py.fsutil import write_atomically

from . import onnx_export, tflite_export
from .calibration import Calibration, calibration_set
from .manifest import write_manifest
from .train import training_blocks

# Which backend runs which artifact kind (models.export_artifact names them).
ARTIFACT_BACKENDS = {
    "onnx-float": "onnxruntime",
    "onnx-int8": "onnxruntime-int8",
    "tflite-int8": "tflite",
    "int8-params": "numba-int8",
}
# Model kinds whose encoder half export_model can write (a dense layer).
EXPORTABLE_KINDS = ("linear-autoencoder",)
TOOLS = ("tensorflow", "tensorflow-cpu", "onnx", "onnxruntime", "ai-edge-litert")


def save_int8_params(path: Path, layer: Int8Layer) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        weights=layer.weights,
        bias=layer.bias,
        weight_scales=layer.weight_scales,
        input_scale=np.float32(layer.input_scale),
        input_zero_point=np.int32(layer.input_zero_point),
        output_scale=np.float32(layer.output_scale),
        output_zero_point=np.int32(layer.output_zero_point),
    )
    write_atomically(path, buffer.getvalue())


def describe_quantization(layer: Int8Layer) -> dict:
    return {
        "input": {"dtype": "int8", "scale": layer.input_scale, "zero_point": layer.input_zero_point},
        "output": {"dtype": "int8", "scale": layer.output_scale, "zero_point": layer.output_zero_point},
        "weights": {"scheme": "int8 symmetric per output channel", "scales": layer.weight_scales.tolist()},
        "bias": "int32, scale = input scale * weight scale",
    }


def _tensor(dtype: str, width: int) -> dict:
    return {"dtype": dtype, "shape": [None, width]}


def export_model(model: models.LinearAutoencoder, out: Path, calibration: Calibration) -> dict:
    """Write the four artifacts of one model's encoder half; return their manifest entries."""
    stem = f"{model.name}-encoder"
    weight, bias, k = model.encoder_weight, model.encoder_bias, model.latents
    flatbuffer = tflite_export.convert_int8(weight, bias, calibration.blocks)
    layer = tflite_export.int8_layer(flatbuffer)
    files = {
        "onnx-float": out / f"{stem}.onnx",
        "onnx-int8": out / f"{stem}.int8.onnx",
        "tflite-int8": out / f"{stem}.int8.tflite",
        "int8-params": out / f"{stem}.int8.npz",
    }
    write_atomically(files["tflite-int8"], flatbuffer)
    save_int8_params(files["int8-params"], layer)
    onnx_export.write_float(files["onnx-float"], weight, bias)
    onnx_export.write_int8(files["onnx-int8"], weight, bias, calibration.blocks, layer)
    io_types = {
        "onnx-float": ("float64", "float64"),
        "onnx-int8": ("float32", "float32"),
        "tflite-int8": ("int8", "int8"),
        "int8-params": ("int8", "int8"),
    }
    entries = {}
    for kind, path in files.items():
        entry = {
            "file": path.name,
            "sha256": models.file_sha256(path),
            "source_sha256": model.sha256,
            "backend": ARTIFACT_BACKENDS[kind],
            "input": _tensor(io_types[kind][0], weight.shape[0]),
            "output": _tensor(io_types[kind][1], k),
        }
        if kind != "onnx-float":
            entry["quantization"] = describe_quantization(layer)
        entries[kind] = entry
    return entries


def measure_quality(manifest: dict, blocks: np.ndarray) -> None:
    """Block MSE on the training split of each artifact, run through its own backend."""
    for name, entry in manifest["models"].items():
        if "exports" not in entry:
            continue
        model = models.load_autoencoder(name)
        reference = transform.analyse(blocks, model)
        for kind, artifact in entry["exports"].items():
            latents = create_backend(artifact["backend"]).analyse(blocks, model)
            mse = float(np.mean((transform.synthesise(latents, model) - blocks) ** 2))
            artifact["quality"] = {
                "training_block_mse": round(mse, 4),
                "max_abs_latent_error_vs_float": float(np.max(np.abs(latents - reference))),
            }


def tool_versions() -> dict:
    versions = {}
    for tool in TOOLS:
        try:
            versions[tool] = importlib.metadata.version(tool)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def export_all(out: Path, calibration: Calibration, command: str, log) -> dict:
    """Export every model of the manifest in ``out`` and rewrite the manifest."""
    os.environ[models.MODELS_DIR_ENV] = str(out.resolve())
    models.clear_caches()
    manifest = models.load_manifest(out)
    for name, entry in manifest["models"].items():
        if entry.get("kind") not in EXPORTABLE_KINDS:
            log(f"{name}: no exporter for kind '{entry.get('kind')}', left as it is")
            continue
        log(f"{name}: exporting with {len(calibration.blocks)} calibration blocks")
        entry["exports"] = export_model(models.load_autoencoder(name), out, calibration)
    manifest["export"] = {"command": command, "calibration": calibration.describe(), "tools": tool_versions()}
    write_manifest(out, manifest)
    measure_quality(manifest, training_blocks(datasets.training_images()))
    write_manifest(out, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=Path, default=models.models_dir(), help="models directory (read and written)")
    parser.add_argument(
        "--calibration-blocks", type=int, help="calibrate on a seeded sample of N training blocks (default: all)"
    )
    args = parser.parse_args(argv)
    command = "python -m export --models models" + (
        f" --calibration-blocks {args.calibration_blocks}" if args.calibration_blocks else ""
    )
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    export_all(args.models, calibration_set(args.calibration_blocks), command, log)
    log(f"wrote the exports and {args.models / models.MANIFEST_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
