"""``pip install rope-suite`` with no extra, as a user's CI installs it: the wheel built from this
checkout, into a fresh virtual environment that sees nothing of this one, then README's plug-in
checked from a directory with clashing folder names. Only the core dependencies are there, so
a module that ``rope-suite check`` imports but the core does not declare fails this test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import ROOT, STRICT, readme_plugin

TOP_LEVEL_NAMES = ("conformance", "implementations", "benchmarks", "reports")


def run(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the wheel and its core dependencies (from the package index)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools' build/ directory is never cleaned, and a stale one in the
    # checkout would put modules that no longer exist into the wheel
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "results", ".nox", ".tox",
                                                                 "*.egg-info", "__pycache__", "published"))
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp),
                str(source), cwd=tmp)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheel = next(tmp.glob("rope_suite-*.whl"))
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    proc = run(str(python), "-m", "pip", "install", "-q", str(wheel), cwd=tmp)
    if proc.returncode != 0:
        message = f"pip could not install the wheel and its core dependencies:\n{proc.stderr[-3000:]}"
        pytest.fail(message) if STRICT else pytest.skip(message)
    return env_dir


def test_the_wheel_installs_one_namespace(installed: Path) -> None:
    site = next(installed.glob("lib/python*/site-packages"))
    assert (site / "rope_suite" / "conformance" / "reference.py").is_file()
    assert (site / "rope_suite" / "reports" / "templates").is_dir()
    assert (site / "rope_suite" / "implementations" / "rope_cpu.cpp").is_file()
    assert not [name for name in TOP_LEVEL_NAMES if (site / name).exists()]


def test_check_works_with_the_core_install_alone(installed: Path, tmp_path: Path) -> None:
    for name in TOP_LEVEL_NAMES:  # the user's own packages of the same names
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise RuntimeError('the user\\'s package was imported')\n")
    (tmp_path / "my_rope.py").write_text(readme_plugin())
    proc = run(str(installed / "bin" / "rope-suite"), "check", "my_rope.py", "--json", "report.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "conformant" and report["summary"]["passed"] > 20, report["summary"]
    pytest_route = run(str(installed / "bin" / "python"), "-m", "pytest", "--pyargs", "rope_suite.conformance",
                       "--impl", "my_rope.py", "-k", "agreement and float64", "-q", "-p", "no:cacheprovider",
                       cwd=tmp_path)
    assert pytest_route.returncode == 0, pytest_route.stdout[-4000:] + pytest_route.stderr[-2000:]
