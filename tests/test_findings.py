"""``rope-suite findings``: one entry per distinct deviation, each with a script that calls the
library directly and prints the deviation on its own (a real subprocess, no rope-suite import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, rope_suite
from rope_suite.reports.conformance_table import load_reports
from rope_suite.implementations.registry import REGISTRY
from rope_suite.reports.findings import findings, write_scripts

LIBRARIES = ROOT / "tests" / "libraries"
RECORDED = ROOT / "reports" / "published" / "check-all-cpu.json"


@pytest.mark.parametrize("library, selection, kind", [
    ("linear_ignored.py", "agreement and linear-x4", "value"),
    ("stateful.py", "stateless/dynamic-above", "stateless"),
    ("in_place.py", "output_contract/llama2-7b/float32", "in place"),
])
def test_each_finding_has_a_reproduction_that_shows_it(tmp_path: Path, library: str, selection: str,
                                                       kind: str) -> None:
    proc = rope_suite("check", str(LIBRARIES / library), "-k", selection, "--json", "r.json", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stdout[-3000:]
    found = findings(load_reports([tmp_path / "r.json"]))
    assert len(found) == 1, [f.summary for f in found]  # every failing case, one distinct deviation
    assert len(found[0].cases) >= 1 and found[0].kind == "not yet diagnosed"
    scripts = write_scripts(found, tmp_path / "findings")
    (script,) = scripts.values()
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.rstrip().endswith("reproduced"), result.stdout + result.stderr
    assert "rope_suite" not in script.read_text().split("# --- the library", 1)[1]


def test_the_command_writes_the_list_and_the_scripts(tmp_path: Path) -> None:
    proc = rope_suite("check", str(LIBRARIES / "linear_ignored.py"), "-k", "agreement/linear-x4/float32",
                      "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 1
    proc = rope_suite("findings", "r.json", "--scripts", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 findings from r.json" in proc.stdout and "wrong numbers in linear" in proc.stdout
    assert len(list((tmp_path / "out").glob("*.py"))) == 1


def recorded_findings() -> list:
    return findings(load_reports([RECORDED])) if RECORDED.exists() else []


@pytest.mark.parametrize("finding", recorded_findings(), ids=lambda f: f.slug)
def test_every_published_finding_reproduces_on_its_own(tmp_path: Path, finding) -> None:
    """Each reproduction of the recorded run (README's findings) prints its deviation when run
    alone; a finding without a script says why."""
    if (impl := REGISTRY.get(finding.target)) is not None and (reason := impl.elsewhere()):
        pytest.skip(reason)  # its nox session runs this test, with the library installed
    scripts = write_scripts([finding], tmp_path)
    if not scripts:
        assert finding.example.get("reproduction") is None or finding.example.get("check") not in ("agreement",), \
            f"{finding.slug}: a replayable case got no script"
        pytest.skip(f"{finding.slug}: no standalone script for a {finding.example.get('check')} case")
    (script,) = scripts.values()
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.rstrip().endswith("reproduced"), result.stdout + result.stderr[-3000:]
