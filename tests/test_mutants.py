"""The mutation catalogue: the conformance suite must fail every planted bug.

``rope-suite mutants`` runs every mutant (implementations/mutants/, one real bug each, cited)
through the suite in a subprocess, as a user would run it; every mutant must be caught, by at
least the checks its catalogue record names, and the score must be 100%.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rope_suite.implementations.mutants import CATALOGUE, MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutation_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``rope-suite mutants --json`` run once, as a user runs it (a real subprocess)."""
    out = tmp_path_factory.mktemp("mutants") / "mutants.json"
    proc = subprocess.run([sys.executable, "-m", "rope_suite.conformance.cli", "mutants", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert out.exists(), f"rope-suite mutants wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    report["exit"], report["output"] = proc.returncode, proc.stdout
    return report


def test_mutation_score_is_100_percent(mutation_report: dict) -> None:
    assert mutation_report["score"] == 100.0 and mutation_report["exit"] == 0, mutation_report["output"][-3000:]
    assert f"mutation score: {len(CATALOGUE)}/{len(CATALOGUE)} caught (100%)" in mutation_report["output"]


def test_catalogue_is_consistent() -> None:
    assert len(MUTANTS) == len(CATALOGUE) >= 17, "mutant names must be unique"
    for m in CATALOGUE:
        assert m.name == m.name.lower() and " " not in m.name and "_" not in m.name, f"{m.name}: not kebab-case"
        assert m.bug and m.source, f"{m.name}: needs a one-line bug and a citation"
        assert m.profile in ("quick", "full"), f"{m.name}: profile {m.profile!r}"
        assert m.caught_by or m.gap, f"{m.name}: an uncaught mutant must name the suite's gap"
        assert m.profile == "quick" or m.gap, f"{m.name}: say why the quick profile misses it"


@pytest.mark.parametrize("mutant", CATALOGUE, ids=[m.name for m in CATALOGUE])
def test_mutant_is_caught_by_the_checks_it_targets(mutant: Mutant, mutation_report: dict) -> None:
    row = next(r for r in mutation_report["mutants"] if r["mutant"] == mutant.name)
    assert row["caught"], f"{mutant.name} ({mutant.bug}; {mutant.source}) was not caught: {row}"
    missing = set(mutant.caught_by) - set(row["caught_by"])
    assert not missing, (f"{mutant.name}: expected {sorted(missing)} among the catching checks, got "
                         f"{row['caught_by']}; update the record if the plan changed")
