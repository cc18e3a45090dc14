"""The LiteRT backend: runs the full-integer TFLite flatbuffer with the TFLite interpreter.

``ai_edge_litert`` is the maintained TFLite interpreter; ``tflite_runtime`` (last
release 2.14, NumPy < 2 only) is accepted where it is the only one a board has.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import models
from ..errors import ModelError
from .base import Int8Backend, import_runtime
from .int8 import Int8Layer

EXTRA = "tflite"
INTERPRETERS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def _quantization(detail: dict) -> tuple[float, int]:
    scale, zero_point = detail["quantization"]
    return float(scale), int(zero_point)


class LiteRTBackend(Int8Backend):
    """TFLite-int8 with the interpreter's default kernels (XNNPACK where available)."""

    name = "tflite"

    def load_int8(self, name: str, layer: Int8Layer) -> Any:
        runtime = import_runtime(self.name, INTERPRETERS, EXTRA)
        path = models.export_artifact(name, "tflite-int8")
        try:
            interpreter = runtime.Interpreter(model_path=str(path), num_threads=1)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model '{name}': LiteRT cannot load {path}: {exc}") from None
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        expected = ((layer.input_scale, layer.input_zero_point), (layer.output_scale, layer.output_zero_point))
        if inp["dtype"] != np.int8 or out["dtype"] != np.int8 or (_quantization(inp), _quantization(out)) != expected:
            raise ModelError(f"model '{name}': {path} does not use the quantization of its int8 parameters")
        return interpreter

    def run_int8(self, x: np.ndarray, layer: Int8Layer, runner: Any) -> np.ndarray:
        inp, out = runner.get_input_details()[0], runner.get_output_details()[0]
        runner.resize_tensor_input(inp["index"], list(x.shape))
        runner.allocate_tensors()
        runner.set_tensor(inp["index"], x)
        runner.invoke()
        return runner.get_tensor(out["index"]).copy()
