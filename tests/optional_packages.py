"""Optional runtime packages of the backend and export tests.

Locally a missing package skips its tests; under ``QPV_REQUIRE_BACKENDS=1`` (set by
``make test``, so in CI) it fails them: CI must never pass by skipping them.
"""

from __future__ import annotations

import importlib
import os

import pytest

REQUIRE_ENV = "QPV_REQUIRE_BACKENDS"


def require(module: str, extra: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        try:
            return importlib.import_module(module)
        except ImportError:
            pytest.fail(f"{module} is missing but {REQUIRE_ENV}=1: pip install -e '.[{extra}]'")
    return pytest.importorskip(module, reason=f"needs qpv[{extra}]")
