"""The one interface every inference backend implements, and the int8 path they share.

A backend computes the encoder's analysis transform (blocks -> latents) of a block
model. Only that stage changes per backend: classification and the decoder's
synthesis stay on the float weights, so every stream decodes with the normal decoder.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from .. import models
from ..blocking import BLOCK_PIXELS
from ..errors import ModelError
from ..models import LinearAutoencoder
from .int8 import Int8Layer, dequantize_output, quantize_input

INT8_PARAMS = "int8-params"


class BackendUnavailableError(ModelError):
    """The backend's runtime package is not installed (the message names the extra)."""


def import_runtime(backend: str, candidates: tuple[str, ...], extra: str) -> ModuleType:
    """The first importable module of ``candidates``, or a one-line error naming the extra."""
    for module in candidates:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise BackendUnavailableError(f"backend '{backend}' needs {candidates[0]}: pip install qpv[{extra}]")


class Backend(ABC):
    """Runs the analysis half of block models; loaded artifacts are cached per model."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, str, str], Any] = {}

    def analyse(self, blocks: np.ndarray, model: LinearAutoencoder) -> np.ndarray:
        """(n, 64) float pixel blocks -> (n, k) float64 latents of ``model``."""
        if blocks.ndim != 2 or blocks.shape[1] != BLOCK_PIXELS:
            raise ValueError(f"blocks must be (n, {BLOCK_PIXELS}), got {blocks.shape}")
        if blocks.shape[0] == 0:
            return np.zeros((0, model.latents))
        return self._analyse(blocks, model, self._artifacts(model))

    def _artifacts(self, model: LinearAutoencoder) -> Any:
        # Keyed by the weights' hash too: a retrained model never meets stale exports.
        key = (models.models_dir(), model.name, model.sha256)
        if key not in self._loaded:
            self._loaded[key] = self.load(model)
        return self._loaded[key]

    @abstractmethod
    def load(self, model: LinearAutoencoder) -> Any:
        """Load (hash-checked) whatever this backend runs for ``model``."""

    @abstractmethod
    def _analyse(self, blocks: np.ndarray, model: LinearAutoencoder, artifacts: Any) -> np.ndarray:
        """The transform on validated, non-empty blocks."""


def load_int8_layer(name: str) -> Int8Layer:
    """The int8 parameters of a model, from its hash-checked ``int8-params`` artifact."""
    path = models.export_artifact(name, INT8_PARAMS)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return Int8Layer(
                weights=arrays["weights"],
                bias=arrays["bias"],
                weight_scales=arrays["weight_scales"],
                input_scale=float(arrays["input_scale"]),
                input_zero_point=int(arrays["input_zero_point"]),
                output_scale=float(arrays["output_scale"]),
                output_zero_point=int(arrays["output_zero_point"]),
            )
    except (KeyError, ValueError, OSError) as exc:
        raise ModelError(f"model '{name}': int8 parameters in {path} are unreadable: {exc}") from None


class Int8Backend(Backend):
    """An int8 backend: the shared input quantization, an integer layer, the shared dequantization."""

    def load(self, model: LinearAutoencoder) -> Any:
        layer = load_int8_layer(model.name)
        return layer, self.load_int8(model.name, layer)

    def _analyse(self, blocks: np.ndarray, model: LinearAutoencoder, artifacts: Any) -> np.ndarray:
        layer, runner = artifacts
        return dequantize_output(self.run_int8(quantize_input(blocks, layer), layer, runner), layer)

    def latents_int8(self, blocks: np.ndarray, model: LinearAutoencoder) -> np.ndarray:
        """The integer latents themselves, for agreement tests and reports."""
        layer, runner = self._artifacts(model)
        return self.run_int8(quantize_input(blocks, layer), layer, runner)

    @abstractmethod
    def load_int8(self, name: str, layer: Int8Layer) -> Any:
        """Load the runtime object for a model, checking it uses ``layer``'s quantization."""

    @abstractmethod
    def run_int8(self, x: np.ndarray, layer: Int8Layer, runner: Any) -> np.ndarray:
        """int8 (n, 64) -> int8 (n, k)."""
