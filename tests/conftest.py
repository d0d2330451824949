"""Shared test fixtures.

``require_package(name, pip_name)``: real-model tests need data packages from requirements-data.txt. Locally a
missing package skips the test; under CI (CI=true) it fails, so a broken install step cannot pass silently.

Tiers: ``@pytest.mark.slow`` (registered in pyproject.toml) marks real-model runs and wheel builds. pyproject's
``addopts`` deselects them (``-m "not slow"``); a command-line ``-m`` replaces that, so ``-m "slow or not slow"``
runs everything (as .ci/run does) and ``-m slow`` only the slow tier.

``--fuzz-long`` switches the hypothesis fuzz suite in ``tests/fuzz`` from its quick CI profile to the long one.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SCALESIM_REF = SHARED / "reference" / "scalesim"


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="tests/fuzz: the long profile (>= 10^4 CLI cases and >= 10^4 API cases; see tests/fuzz)")


def require_package(module: str, pip_name: str | None = None) -> None:
    if importlib.util.find_spec(module) is not None:
        return
    msg = f"{module} not installed: pip install --no-deps {pip_name or module} (see requirements-data.txt)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


def require_shared(path: Path) -> Path:
    if path.exists():
        return path
    msg = f"{path} missing: the shared/ reference folder must sit beside the repo"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)
