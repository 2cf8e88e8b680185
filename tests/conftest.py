"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

# In CI every optional dependency is installed on purpose, so a missing one is a failure,
# not a skip that would hide an oracle test that never ran.
STRICT = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "tests" / "plugins"


def pytest_configure(config: pytest.Config) -> None:
    """The tests exercise the installed ``rope_suite`` (its CLI runs in subprocesses): it must be
    this checkout, not another clone that an editable install points at."""
    import rope_suite.conformance

    where = Path(rope_suite.conformance.__file__).resolve().parent
    if where != ROOT / "conformance":
        raise pytest.UsageError(f"rope_suite.conformance is imported from {where}, not from this checkout "
                                f"({ROOT}): run `pip install --no-deps -e {ROOT}` first")


def readme_plugin() -> str:
    """The plug-in example exactly as README's "Writing a plug-in" shows it."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```python\n# my_rope.py\n", 1)[1].split("```", 1)[0]
    assert "import conformance" not in block and "from conformance" not in block
    return block


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a run a test stops with SIGINT: SIGINT's default action, as a terminal's
    shell gives it. A test process started with SIGINT ignored (a background job of a
    non-interactive shell) would otherwise pass that on, and the run would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def rope_suite(*args: str, cwd: Path = ROOT, timeout: float = 900, env: dict[str, str] | None = None,
               executable: str = sys.executable) -> subprocess.CompletedProcess:
    """``rope-suite ARGS`` as a user runs it: a real subprocess, from ``cwd``."""
    return subprocess.run([executable, "-m", "rope_suite.conformance.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


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
