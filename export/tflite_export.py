"""Full-integer TFLite export of a dense layer (TensorFlow's post-training quantization).

The converter calibrates the int8 activation ranges on a representative dataset of
real training blocks and quantizes the weights per output channel (symmetric int8).
Its int8 parameters are then read back out of the flatbuffer: they are the int8
definition every other int8 backend reproduces.
"""

from __future__ import annotations

import os

import numpy as np

from firmware_py.codec.backends.int8 import Int8Layer

from .calibration import batches

# TensorFlow's C++ start-up chatter is not an error; keep the export's stderr readable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class ExportError(RuntimeError):
    """An exporter produced something other than the graph the runtime expects."""


def convert_int8(weight: np.ndarray, bias: np.ndarray, calibration: np.ndarray) -> bytes:
    """(64, k) weight and (k,) bias -> int8-in, int8-out FULLY_CONNECTED flatbuffer."""
    import keras
    import tensorflow as tf

    blocks = keras.Input((weight.shape[0],), name="blocks")
    dense = keras.layers.Dense(weight.shape[1], name="latents")
    model = keras.Model(blocks, dense(blocks))
    dense.set_weights([weight.astype(np.float32), bias.astype(np.float32)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([batch] for batch in batches(calibration))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _quantization(detail: dict) -> tuple[np.ndarray, np.ndarray]:
    params = detail["quantization_parameters"]
    return params["scales"], params["zero_points"]


def int8_layer(flatbuffer: bytes) -> Int8Layer:
    """The int8 parameters inside a converted flatbuffer (one FULLY_CONNECTED op)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    details = interpreter.get_tensor_details()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    k = int(out["shape"][-1])
    constants = [d for d in details if d["index"] not in (inp["index"], out["index"])]
    filters = [d for d in constants if d["dtype"] == np.int8 and tuple(d["shape"]) == (k, int(inp["shape"][-1]))]
    biases = [d for d in constants if d["dtype"] == np.int32 and tuple(d["shape"]) == (k,)]
    if len(details) != 4 or len(filters) != 1 or len(biases) != 1:
        raise ExportError(f"expected one int8 FULLY_CONNECTED op, got tensors {[d['name'] for d in details]}")
    (in_scale,), (in_zero,) = _quantization(inp)
    (out_scale,), (out_zero,) = _quantization(out)
    weight_scales, weight_zeros = _quantization(filters[0])
    if np.any(weight_zeros != 0) or filters[0]["quantization_parameters"]["quantized_dimension"] != 0:
        raise ExportError("expected symmetric per-output-channel weight quantization")
    return Int8Layer(
        weights=interpreter.get_tensor(filters[0]["index"]).copy(),
        bias=interpreter.get_tensor(biases[0]["index"]).copy(),
        weight_scales=weight_scales.astype(np.float32),
        input_scale=float(in_scale),
        input_zero_point=int(in_zero),
        output_scale=float(out_scale),
        output_zero_point=int(out_zero),
    )
