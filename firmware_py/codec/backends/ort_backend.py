"""onnxruntime backends: the exported float ONNX graph and the statically quantized one."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import models
from ..errors import ModelError
from ..models import LinearAutoencoder
from .base import Backend, Int8Backend, import_runtime
from .int8 import Int8Layer

EXTRA = "onnx"


def open_session(name: str, kind: str, backend: str) -> Any:
    ort = import_runtime(backend, ("onnxruntime",), EXTRA)
    path = models.export_artifact(name, kind)
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unloadable graphs
        raise ModelError(f"model '{name}': onnxruntime cannot load {path}: {exc}") from None


class OnnxRuntimeBackend(Backend):
    """The float64 ONNX graph (Gemm), so its latents match the float reference to ~1e-12."""

    name = "onnxruntime"

    def load(self, model: LinearAutoencoder) -> Any:
        return open_session(model.name, "onnx-float", self.name)

    def _analyse(self, blocks: np.ndarray, model: LinearAutoencoder, artifacts: Any) -> np.ndarray:
        session = artifacts
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(blocks, dtype=np.float64)}
        return session.run(None, feed)[0].astype(np.float64)


class OnnxRuntimeInt8Backend(Int8Backend):
    """The QDQ graph of onnxruntime's static quantization, fed the shared int8 blocks.

    The graph takes float input and quantizes it itself; it is fed the int8 blocks'
    exact float values, so its QuantizeLinear gives back the very same int8 blocks, and
    its dequantized output is turned back into the int8 levels it came from.
    """

    name = "onnxruntime-int8"

    def load_int8(self, name: str, layer: Int8Layer) -> Any:
        return open_session(name, "onnx-int8", self.name)

    def run_int8(self, x: np.ndarray, layer: Int8Layer, runner: Any) -> np.ndarray:
        scale_in, scale_out = np.float32(layer.input_scale), np.float32(layer.output_scale)
        feed = {runner.get_inputs()[0].name: (x.astype(np.float32) - np.float32(layer.input_zero_point)) * scale_in}
        out = runner.run(None, feed)[0]
        return (np.rint(out / scale_out) + layer.output_zero_point).astype(np.int8)
