"""Shared fixtures: real test images (loaded once per session), crops of them, and a
models directory that tests may point the runtime at.

Images come from ../shared/data (or $QPV_DATA_DIR). Only test images are used here
(lena2, kodim23), never to train or tune anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from firmware_py import datasets, imageio
from firmware_py.codec import encode, models

from codec_helpers import REPO, crop

# numba kernels load from their cache on first use, which can take longer than
# hypothesis's default 200 ms deadline; the runtime limit that matters is per file.
settings.register_profile("qpv", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("qpv")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs for tens of seconds (still part of the default run)")


def _load(relative: str) -> np.ndarray:
    path = datasets.data_dir() / relative
    if not path.is_file():
        pytest.fail(f"test image {path} is missing: the suite needs ../shared/data (or ${datasets.DATA_DIR_ENV})")
    image = imageio.load_image(path)
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def lena2() -> np.ndarray:
    """The paper's 512x512 grayscale test image."""
    return _load("waterloo/lena2.png")


@pytest.fixture(scope="session")
def kodim23() -> np.ndarray:
    """A 512x768 RGB Kodak image (saturated colours: exercises the chroma planes)."""
    return _load("kodak/kodim23.png")


@pytest.fixture(scope="session")
def gray_crop(lena2) -> np.ndarray:
    """64x96 of lena2: big enough for both block classes, small enough to code in ~1 ms."""
    return crop(lena2, 64, 96)


@pytest.fixture(scope="session")
def colour_crop(kodim23) -> np.ndarray:
    """48x80 of kodim23, with odd chroma plane sizes nowhere (see test_roundtrip for those)."""
    return crop(kodim23, 48, 80)


@pytest.fixture(scope="session")
def gray_stream(gray_crop) -> bytes:
    """A seed-profile (format version 1) gray stream."""
    return encode(gray_crop, profile="seed")


@pytest.fixture(scope="session")
def colour_stream(kodim23) -> bytes:
    """A seed-profile colour stream, odd-sized (21x35: odd luma and chroma sizes, partial blocks)."""
    return encode(crop(kodim23, 21, 35), profile="seed")


def clear_model_caches() -> None:
    models.clear_caches()


@pytest.fixture
def models_copy(tmp_path, monkeypatch) -> Path:
    """A private copy of models/ that the runtime uses for the duration of one test."""
    target = tmp_path / "models"
    shutil.copytree(REPO / "models", target)
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(target))
    clear_model_caches()
    yield target
    monkeypatch.delenv(models.MODELS_DIR_ENV)
    clear_model_caches()
