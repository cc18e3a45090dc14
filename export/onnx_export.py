"""ONNX export of a dense layer: the float graph, and its int8 version made by
onnxruntime's static quantization (QDQ format, per-channel int8 weights).

The graph is one Gemm (x @ W + b), built directly with ``onnx.helper`` from the npz
weights. The float graph is float64, the codec's reference precision: in float32 the
largest latents (~2000) would carry rounding errors of ~5e-4.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from firmware_py.codec.backends.int8 import Int8Layer

from .calibration import batches
from .tflite_export import ExportError

OPSET = 13
IR_VERSION = 8  # readable by every onnxruntime since 1.10
INPUT, OUTPUT = "blocks", "latents"


def gemm_model(weight: np.ndarray, bias: np.ndarray, dtype: type):
    """One Gemm node, (n, 64) -> (n, k), weights stored (k, 64) like TFLite's filter."""
    import onnx
    from onnx import helper, numpy_helper

    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        [helper.make_node("Gemm", [INPUT, "weight", "bias"], [OUTPUT], transB=1)],
        "block_encoder",
        [helper.make_tensor_value_info(INPUT, elem, ["n", weight.shape[0]])],
        [helper.make_tensor_value_info(OUTPUT, elem, ["n", weight.shape[1]])],
        [
            numpy_helper.from_array(np.ascontiguousarray(weight.T, dtype=dtype), "weight"),
            numpy_helper.from_array(np.asarray(bias, dtype=dtype), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qpv-export")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_float(path: Path, weight: np.ndarray, bias: np.ndarray) -> None:
    import onnx

    onnx.save(gemm_model(weight, bias, np.float64), str(path))


def _overrides(layer: Int8Layer) -> dict:
    """Pin the activation quantization to TFLite's, so both int8 graphs compute the same."""
    return {
        INPUT: [{"scale": np.array(layer.input_scale, np.float32), "zero_point": np.array(layer.input_zero_point, np.int8)}],
        OUTPUT: [
            {"scale": np.array(layer.output_scale, np.float32), "zero_point": np.array(layer.output_zero_point, np.int8)}
        ],
    }


def write_int8(path: Path, weight: np.ndarray, bias: np.ndarray, calibration: np.ndarray, layer: Int8Layer) -> None:
    """quantize_static of the float32 graph, calibrated on the same blocks as TFLite."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = ({INPUT: batch} for batch in batches(calibration))

        def get_next(self):
            return next(self._batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "float32.onnx"
        onnx.save(gemm_model(weight, bias, np.float32), str(source))
        quantize_static(
            str(source),
            str(path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            extra_options={"TensorQuantOverrides": _overrides(layer)},
        )
    check_int8(onnx.load(str(path)), layer)


def check_int8(model, layer: Int8Layer) -> None:
    """The quantized graph must hold exactly TFLite's integer weights, bias and scales."""
    from onnx import numpy_helper

    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    expected = {
        "weight_quantized": layer.weights,
        "bias_quantized": layer.bias,
        "weight_scale": layer.weight_scales,
    }
    for name, value in expected.items():
        if name not in arrays or not np.array_equal(arrays[name], value):
            raise ExportError(f"onnxruntime's quantized '{name}' differs from TFLite's; the int8 paths would diverge")
