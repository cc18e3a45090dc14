"""TFLite's int8 arithmetic for a fully connected layer, in numba and in NumPy.

The int8 backends must give the same latents for the same frame, so the int8 path is
defined once, as TFLite defines it (``reference_integer_ops::FullyConnectedPerChannel``
with LiteRT's single-rounding ``MultiplyByQuantizedMultiplier``):

    q_in   = clamp(round_half_even(x / s_in) + z_in, -128, 127)          (this module)
    acc    = sum_p (q_in[p] - z_in) * w_q[c, p] + bias_q[c]              (int32)
    out[c] = clamp(((acc * M[c] + 2^(t-1)) >> t) + z_out, -128, 127)     t = 31 - shift[c]

where ``M[c] * 2^shift[c]`` is the Q31 fixed-point form of ``s_in * s_w[c] / s_out``
(``QuantizeMultiplier``). Measured against ai-edge-litert 2.3: identical to its
reference kernels and to its default XNNPACK delegate; see docs/MODELS.md.

Input quantization (the float -> int8 step) happens here, once, for every int8
backend, so all of them see the same int8 blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..blocking import BLOCK_PIXELS
from ..errors import ModelError

INT8_MIN, INT8_MAX = -128, 127
# TFLite's single-rounding requantization supports shifts in this range only.
MIN_SHIFT, MAX_SHIFT = -31, 30


@dataclass(frozen=True)
class Int8Layer:
    """A full-integer FULLY_CONNECTED layer: per-channel int8 weights, per-tensor int8 activations."""

    weights: np.ndarray  # (k, 64) int8, TFLite's (out, in) layout
    bias: np.ndarray  # (k,) int32, in units of input_scale * weight_scales
    weight_scales: np.ndarray  # (k,) float32
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int

    def __post_init__(self) -> None:
        problems = _layer_problems(self)
        if problems:
            raise ModelError("int8 layer: " + "; ".join(problems))

    @property
    def latents(self) -> int:
        return self.bias.shape[0]

    def requantization(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (multiplier, shift) as TFLite computes them when it prepares the op."""
        real = np.float64(np.float32(self.input_scale)) * self.weight_scales.astype(np.float64)
        return quantize_multiplier(real / np.float64(np.float32(self.output_scale)))


def _layer_problems(layer: Int8Layer) -> list[str]:
    """What makes a layer unsafe or inexact for the integer kernel (which trusts its arrays)."""
    k = layer.bias.shape[0] if layer.bias.ndim == 1 else -1
    problems = []
    if layer.weights.dtype != np.int8 or layer.weights.shape != (k, BLOCK_PIXELS):
        problems.append(f"weights are {layer.weights.dtype} {layer.weights.shape}, expected int8 ({k}, {BLOCK_PIXELS})")
    if layer.bias.dtype != np.int32 or k < 1:
        problems.append(f"bias is {layer.bias.dtype} {layer.bias.shape}, expected int32 (k,)")
    scales = np.append(np.asarray(layer.weight_scales, dtype=np.float64), [layer.input_scale, layer.output_scale])
    if layer.weight_scales.shape != (k,) or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        problems.append("scales must be finite and positive, one weight scale per output channel")
    for what, zero in (("input", layer.input_zero_point), ("output", layer.output_zero_point)):
        if not INT8_MIN <= zero <= INT8_MAX:
            problems.append(f"{what} zero point {zero} is outside int8")
    if not problems:
        _, shifts = layer.requantization()
        if np.any(shifts < MIN_SHIFT) or np.any(shifts > MAX_SHIFT):
            problems.append(f"requantization shifts {shifts.tolist()} are outside {MIN_SHIFT}..{MAX_SHIFT}")
    return problems


def quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's ``QuantizeMultiplier``: real = M * 2^(shift - 31), M in [2^30, 2^31)."""
    mantissa, shift = np.frexp(np.asarray(real, dtype=np.float64))
    fixed = np.floor(mantissa * 2.0**31 + 0.5).astype(np.int64)  # TfLiteRound; mantissa > 0
    carry = fixed == 1 << 31
    fixed[carry] //= 2
    shift = shift + carry
    return fixed.astype(np.int32), shift.astype(np.int32)


def quantize_input(blocks: np.ndarray, layer: Int8Layer) -> np.ndarray:
    """(n, 64) float pixel blocks -> int8, as ONNX QuantizeLinear does (round half to even)."""
    q = np.rint(np.asarray(blocks, dtype=np.float64) / np.float64(np.float32(layer.input_scale)))
    return np.clip(q + layer.input_zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize_output(levels: np.ndarray, layer: Int8Layer) -> np.ndarray:
    """int8 latents -> float64 latents in the float model's units."""
    return (levels.astype(np.float64) - layer.output_zero_point) * np.float64(np.float32(layer.output_scale))


@numba.njit(cache=True)
def _fully_connected_kernel(x, input_offset, weights, bias, multipliers, shifts, output_zero_point, out):
    n = x.shape[0]
    k, d = weights.shape
    for b in range(n):
        for c in range(k):
            acc = np.int64(bias[c])
            for p in range(d):
                acc += (np.int64(x[b, p]) + input_offset) * np.int64(weights[c, p])
            total = np.int64(31 - shifts[c])
            scaled = (acc * np.int64(multipliers[c]) + (np.int64(1) << (total - 1))) >> total
            value = scaled + output_zero_point
            out[b, c] = min(max(value, INT8_MIN), INT8_MAX)


def _check_input(x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.int8 or x.ndim != 2 or x.shape[1] != BLOCK_PIXELS:
        raise ValueError(f"int8 input must be an int8 (n, {BLOCK_PIXELS}) array")
    return np.ascontiguousarray(x)


def fully_connected(x: np.ndarray, layer: Int8Layer) -> np.ndarray:
    """int8 (n, 64) -> int8 (n, k): the layer in TFLite's integer arithmetic (numba).

    The accumulator is int64 here; with 64 int8 products and an int32 bias it cannot
    leave int32's range either, so it equals TFLite's int32 accumulator.
    """
    x = _check_input(x)
    multipliers, shifts = layer.requantization()
    out = np.empty((x.shape[0], layer.latents), dtype=np.int8)
    _fully_connected_kernel(
        x,
        -int(layer.input_zero_point),
        np.ascontiguousarray(layer.weights),
        np.ascontiguousarray(layer.bias),
        multipliers,
        shifts,
        int(layer.output_zero_point),
        out,
    )
    return out


def fully_connected_reference(x: np.ndarray, layer: Int8Layer) -> np.ndarray:
    """NumPy reference of :func:`fully_connected`, for tests."""
    x = _check_input(x)
    multipliers, shifts = layer.requantization()
    acc = (x.astype(np.int64) - layer.input_zero_point) @ layer.weights.astype(np.int64).T + layer.bias
    total = 31 - shifts.astype(np.int64)
    scaled = (acc * multipliers.astype(np.int64) + (np.int64(1) << (total - 1))) >> total
    return np.clip(scaled + layer.output_zero_point, INT8_MIN, INT8_MAX).astype(np.int8)
