"""The in-process backends: the default float transform and TFLite-exact int8 in numba."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import transform
from ..models import LinearAutoencoder
from .base import Backend, Int8Backend
from .int8 import Int8Layer, fully_connected


class NumbaBackend(Backend):
    """The float reference (today's transform): float64 products of the npz weights."""

    name = "numba"

    def load(self, model: LinearAutoencoder) -> Any:
        return None  # the weights are the model's own, loaded and hash-checked from its npz

    def _analyse(self, blocks: np.ndarray, model: LinearAutoencoder, artifacts: Any) -> np.ndarray:
        return transform.analyse(blocks, model)


class NumbaInt8Backend(Int8Backend):
    """TFLite's integer arithmetic without TFLite: same int8 latents as the LiteRT backend."""

    name = "numba-int8"

    def load_int8(self, name: str, layer: Int8Layer) -> Any:
        return None

    def run_int8(self, x: np.ndarray, layer: Int8Layer, runner: Any) -> np.ndarray:
        return fully_connected(x, layer)
