"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

# In CI every optional dependency is installed on purpose, so a missing one is a failure,
# not a skip that would hide an oracle test that never ran.
STRICT = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str) -> ModuleType:
    """Import ``module``; skip the test with the reason if it is absent (fail under CI=true)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if STRICT:
            pytest.fail(f"{module} is required in CI but cannot be imported: {err}")
        pytest.skip(f"{module} is not installed ({err}); install the 'test' extra")


def _hypothesis_profiles() -> None:
    from hypothesis import settings

    # CI replays the same examples on every run, so a landing never depends on luck; locally
    # hypothesis explores (and prints the seed of any failure).
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None, print_blob=True)
    settings.load_profile("ci" if STRICT else "dev")


_hypothesis_profiles()
