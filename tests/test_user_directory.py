"""rope-suite run where its users run it: from their own repository, which often has folders
named like the suite's (``conformance/``, ``benchmarks/``, ``reports/``, ``implementations/``).
Everything the suite imports lives under ``rope_suite``, so such folders change nothing: the
plug-in's verdict is the same as from anywhere else, and the benchmark measures the same cases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rope_suite.benchmarks.cases import QUICK

from conftest import PLUGINS, ROOT, readme_plugin, rope_suite

CLASHING = ("conformance", "benchmarks", "reports", "implementations")

NOTHING_SUPPORTED = """
framework = "numpy"

def supports(spec, dtype):
    return False

def rope(x, positions, spec):
    raise AssertionError("never called: nothing is supported")
"""


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A directory with its own packages named like the suite's folders (importing any of them
    raises, so a suite that picked one up cannot pass) and README's plug-in."""
    for name in CLASHING:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise RuntimeError('the user\\'s own {name} package was imported instead of rope_suite.{name}')\n")
        (tmp_path / name / "conftest.py").write_text("")
    (tmp_path / "my_rope.py").write_text(readme_plugin())
    return tmp_path


def test_check_gives_the_same_verdict_in_a_directory_with_clashing_packages(user_repo: Path) -> None:
    proc = rope_suite("check", "my_rope.py", "--json", "report.json", cwd=user_repo)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = json.loads((user_repo / "report.json").read_text())
    assert report["verdict"] == "conformant" and report["summary"]["passed"] > 20, report["summary"]
    broken = rope_suite("check", str(PLUGINS / "sign_flipped.py"), "-k", "agreement/gpt-j-6b", cwd=user_repo)
    assert broken.returncode == 1 and "sign_flipped.py: non-conformant" in broken.stdout, broken.stdout[-3000:]


def test_plain_pytest_route_works_in_a_directory_with_clashing_packages(user_repo: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "rope_suite.conformance", "--impl", "my_rope.py",
                           "-k", "agreement and float32", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=user_repo, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"^\d+ passed, \d+ skipped, \d+ deselected", proc.stdout, re.MULTILINE), proc.stdout[-2000:]


def test_bench_measures_the_same_cases_from_any_directory(user_repo: Path) -> None:
    outcomes = {}
    for where in (user_repo, ROOT):
        results = user_repo / "out" / f"{where.name}.json"
        proc = rope_suite("bench", "numpy", "--quick", "--results", str(results), cwd=where, timeout=900)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        rows = json.loads(results.read_text())["rows"]
        outcomes[where] = {(r["case"], r["status"], r["reason"]) for r in rows if r["timing"] == "wall"}
    assert outcomes[user_repo] == outcomes[ROOT]
    measured = {case for case, status, _ in outcomes[user_repo] if status == "ok"}
    assert len(measured) >= len(QUICK) - 1, outcomes[user_repo]  # numpy has no backward: one case skipped


def test_bench_that_measures_nothing_fails_loudly(user_repo: Path) -> None:
    (user_repo / "nothing.py").write_text(NOTHING_SUPPORTED)
    proc = rope_suite("bench", "nothing.py", "--quick", "--results", "out/bench.json", cwd=user_repo, timeout=600)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "no case was measured" in proc.stdout, proc.stdout[-3000:]
