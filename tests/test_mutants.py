"""The mutation catalogue: the conformance suite must fail every planted bug.

Each mutant (implementations/mutants/, one real bug each, cited) runs through the suite in a
subprocess, as a user would run it, with -x: the run must exit 1 with a failed case record,
and the first failing check must be one the catalogue says catches that bug. A mutant that
no case catches yet is a strict xfail naming the gap, so adding the missing case turns it
into a failure that asks for the record to be updated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from implementations.mutants import CATALOGUE, MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[1]


def run_suite(mutant: Mutant, tmp_path: Path) -> tuple[int, str, list[dict]]:
    out = tmp_path / "records.json"
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance", "--impl", mutant.target,
               "--profile", mutant.profile, "-x", "-q", "-p", "no:cacheprovider", "--rope-json", str(out)]
    # Two runs may share the machine (pytest -n 2); one thread each keeps them from fighting.
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    records = json.loads(out.read_text()) if out.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, records


def test_catalogue_is_consistent() -> None:
    assert len(MUTANTS) == len(CATALOGUE) >= 17, "mutant names must be unique"
    for m in CATALOGUE:
        assert m.name == m.name.lower() and " " not in m.name and "_" not in m.name, f"{m.name}: not kebab-case"
        assert m.bug and m.source, f"{m.name}: needs a one-line bug and a citation"
        assert m.profile in ("quick", "full"), f"{m.name}: profile {m.profile!r}"
        assert m.caught_by or m.gap, f"{m.name}: an uncaught mutant must name the suite's gap"
        assert m.profile == "quick" or m.gap, f"{m.name}: say why the quick profile misses it"


def _param(m: Mutant) -> object:
    marks = () if m.caught_by else pytest.mark.xfail(reason=f"suite gap: {m.gap}", strict=True)
    return pytest.param(m, id=m.name, marks=marks)


@pytest.mark.parametrize("mutant", [_param(m) for m in CATALOGUE])
def test_mutant_is_caught(mutant: Mutant, tmp_path: Path) -> None:
    code, output, records = run_suite(mutant, tmp_path)
    failed = [r for r in records if r["status"] == "failed"]
    tail = output[-3000:]
    assert code == 1, f"{mutant.name} ({mutant.bug}; {mutant.source}) was not caught: exit {code}\n{tail}"
    assert failed, f"{mutant.name}: the run failed but no case record did\n{tail}"
    assert failed[0]["check"] in mutant.caught_by, (
        f"{mutant.name}: first caught by {failed[0]['check']} ({failed[0]['id']}), "
        f"not one of caught_by={mutant.caught_by}; update the record if the plan changed\n{tail}")
