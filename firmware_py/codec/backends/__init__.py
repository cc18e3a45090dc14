"""Interchangeable inference backends for the encoder's block transform.

``numba`` (default) is the float reference and needs nothing beyond the core install;
``numba-int8`` runs TFLite's integer arithmetic in numba; ``onnxruntime`` /
``onnxruntime-int8`` need ``qpv[onnx]``; ``tflite`` (int8, LiteRT) needs ``qpv[tflite]``.
All int8 backends give the same integer latents for the same frame (docs/MODELS.md).
"""

from __future__ import annotations

from .base import Backend, BackendUnavailableError, Int8Backend
from .litert_backend import LiteRTBackend
from .numba_backend import NumbaBackend, NumbaInt8Backend
from .ort_backend import OnnxRuntimeBackend, OnnxRuntimeInt8Backend

DEFAULT_BACKEND = "numba"
_CLASSES: dict[str, type[Backend]] = {
    cls.name: cls for cls in (NumbaBackend, NumbaInt8Backend, OnnxRuntimeBackend, OnnxRuntimeInt8Backend, LiteRTBackend)
}
BACKENDS = tuple(_CLASSES)
INT8_BACKENDS = tuple(name for name, cls in _CLASSES.items() if issubclass(cls, Int8Backend))
_instances: dict[str, Backend] = {}


def create_backend(name: str) -> Backend:
    """A new backend instance with nothing loaded (tools that rewrite artifacts use this)."""
    if name not in _CLASSES:
        raise BackendUnavailableError(f"unknown backend '{name}'; available: {', '.join(BACKENDS)}")
    return _CLASSES[name]()


def get_backend(name: str | None = None) -> Backend:
    """The shared instance of backend ``name`` (None: the default), artifacts cached."""
    name = name or DEFAULT_BACKEND
    if name not in _instances:
        _instances[name] = create_backend(name)
    return _instances[name]


__all__ = ["BACKENDS", "Backend", "BackendUnavailableError", "DEFAULT_BACKEND", "INT8_BACKENDS", "create_backend", "get_backend"]
