"""The conformance matrix: filing rules on synthetic records, and the README table is current."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rope_suite.implementations.registry import REGISTRY, THIRD_PARTY
from rope_suite.conformance.mismatch import Mismatch
from rope_suite.reports.conformance_table import (END, START, cells, features_of, load_reports, markdown_table,
                                                 provenance)

ROOT = Path(__file__).resolve().parents[1]
LLAMA3 = {"head_dim": 8, "rotary_dim": 8, "convention": "half", "scaling": {"rope_type": "llama3"}}
GPTJ = {"head_dim": 8, "rotary_dim": 4, "convention": "interleaved"}
PLAIN = {"head_dim": 8, "rotary_dim": 8, "convention": "half"}
DYNAMIC = {**PLAIN, "scaling": {"rope_type": "dynamic"}}
MISMATCH = Mismatch("agreement", "agreement with the float64 reference", "x", "agreement/llama3/float32/per_row",
                    "llama3", LLAMA3, "float32", [2, 6, 3, 8], "per_row", "int64", index=[0, 1, 2, 3], got=1.5,
                    wanted=1.0, error=0.5, bound=1e-6, over=3, total=288).fields()


def test_features_are_departures_from_the_plain_spec() -> None:
    assert features_of({"spec": LLAMA3, "dtype": "float32", "check": "agreement"}) == {"llama3"}
    assert features_of({"spec": GPTJ, "dtype": "float32", "check": "gradient"}) == {"interleaved", "partial", "gradient"}
    assert features_of({"spec": GPTJ, "dtype": "bfloat16", "check": "agreement"}) == {"interleaved", "partial", "bfloat16"}
    assert features_of({"spec": PLAIN, "dtype": "float32", "check": "agreement"}) == set()
    assert features_of({"dtype": "float32", "check": "random_specs"}) is None


def test_cells_distinguish_conformant_failing_and_unsupported() -> None:
    report = {"target": "x", "verdict": "non-conformant", "summary": {"passed": 1, "failed": 1, "skipped": 1},
              "checks": [
                  {"spec": GPTJ, "dtype": "float32", "check": "agreement", "status": "passed"},
                  {"spec": LLAMA3, "dtype": "float32", "check": "agreement", "status": "failed",
                   "reason": "the message text, which the table does not read", "mismatch": MISMATCH},
                  {"spec": GPTJ, "dtype": "float16", "check": "agreement", "status": "skipped"},
              ]}
    got = cells(report)
    assert got["interleaved"].status == "conformant"
    assert got["llama3"].status == "non-conformant"
    assert "agreement: x[0, 1, 2, 3] got 1.5, wanted 1, error 0.5 vs allowed 1e-06" in got["llama3"].cause
    assert got["float16"].status == "unsupported"
    assert got["yarn"].status == "-"
    table = markdown_table([report])
    assert table.count("[1]") == 2 and "[2]" not in table  # the cell points at the footnote naming the cause


def test_a_cause_is_charged_where_it_does_not_also_fail_without_the_feature() -> None:
    """keras-hub's case: dynamic fails in float32 and float16, plain float16 passes: only the
    dynamic column is red; a library failing everything is red in rotate-half, masked elsewhere."""
    case = lambda spec, dtype, status: {"spec": spec, "dtype": dtype, "check": "agreement", "status": status,
                                        "id": f"agreement/s/{dtype}/per_row"}
    report = {"target": "x", "verdict": "non-conformant", "summary": {"passed": 2, "failed": 2, "skipped": 0},
              "checks": [case(DYNAMIC, "float32", "failed"), case(DYNAMIC, "float16", "failed"),
                         case(PLAIN, "float32", "passed"), case(PLAIN, "float16", "passed")]}
    got = cells(report)
    assert got["dynamic"].status == "non-conformant" and got["float16"].status == "conformant"
    broken = {**report, "checks": [case(PLAIN, "float32", "failed"), case(GPTJ, "float32", "failed"),
                                   case(DYNAMIC, "float16", "failed")]}
    got = cells(broken)
    assert got["rotate-half"].status == "non-conformant"
    assert {got[f].status for f in ("interleaved", "partial", "dynamic", "float16")} == {"masked"}


@pytest.mark.parametrize("status", ["crashed", "timed out"])
def test_crashed_and_timed_out_cases_are_not_conformant(status: str) -> None:
    report = {"target": "x", "verdict": "non-conformant", "summary": {"passed": 0, "failed": 1, "skipped": 0},
              "checks": [{"spec": LLAMA3, "dtype": "float32", "check": "agreement", "status": status,
                          "reason": "rope() was killed by SIGSEGV (signal 11)"}]}
    assert cells(report)["llama3"].status == "non-conformant"


def test_provenance_lists_the_runs_by_date_with_their_rows() -> None:
    def report(created: str, commit: str) -> dict:
        return {"run": {"created": created, "profile": "quick", "rope_suite_version": "0.1.0", "git_commit": commit}}

    one = [report("2026-11-30T10:00:00", "aaaa"), report("2026-11-30T11:00:00", "aaaa")]
    assert provenance(one) == "Recorded 2026-11-30, `rope-suite check --profile quick` (rope-suite 0.1.0), commit aaaa."
    later_first = [report("2026-12-07T06:00:00", "cccc"), *one, report("2026-12-01T00:00:00", "bbbb")]
    assert provenance(later_first) == (
        "Recorded 2026-11-30, `rope-suite check --profile quick` (rope-suite 0.1.0), 2 rows at commit aaaa; "
        "2026-12-01, `rope-suite check --profile quick` (rope-suite 0.1.0), 1 row at commit bbbb; "
        "2026-12-07, `rope-suite check --profile quick` (rope-suite 0.1.0), 1 row at commit cccc.")


def test_reports_that_are_not_check_reports_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"target": "x"}))
    with pytest.raises(ValueError, match=r"bad.json: report 0 lacks target/verdict/checks"):
        load_reports([bad])
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad.json: not a readable rope-suite check report"):
        load_reports([bad])


RECORDED = ROOT / "reports" / "published" / "check-all-cpu.json"
# A few agreement cases, of which every adapter supports at least one: it loads, runs, and gives
# the recorded answers on them. (The recorded run itself is the whole quick profile.)
SMOKE = "agreement and float32/per_row and not int32 and not b2s4h4"


def test_readme_table_is_generated_from_the_recorded_run() -> None:
    """README shows exactly what ``rope-suite table`` makes of the committed check --all report."""
    readme = (ROOT / "README.md").read_text()
    shown = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == markdown_table(load_reports([RECORDED])).strip(), (
        f"README's conformance table is not the table of {RECORDED.relative_to(ROOT)}: regenerate it with "
        f"`rope-suite table {RECORDED.relative_to(ROOT)} --readme README.md`")
    recorded = {r["target"] for r in load_reports([RECORDED])}
    assert {impl.name for impl in THIRD_PARTY} <= recorded, "a registered adapter has no row in the recorded run"


SMOKE_TEST = "test_every_adapter_runs_and_agrees_with_the_recorded_run"


@pytest.fixture(scope="module")
def smoke_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """``rope-suite check NAMES -k SMOKE --json``: the adapters whose smoke test runs in this
    session (all of them, but those of another environment), each in its own process."""
    names = sorted({item.callspec.params["name"] for item in request.session.items
                    if getattr(item, "originalname", "") == SMOKE_TEST} - {n for n in REGISTRY if REGISTRY[n].elsewhere()})
    out = tmp_path_factory.mktemp("check") / "third-party.json"
    proc = subprocess.run([sys.executable, "-m", "rope_suite.conformance.cli", "check", *names, "-k", SMOKE,
                           "--json", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=2300)
    assert proc.returncode in (0, 1), proc.stdout[-4000:] + proc.stderr[-2000:]
    reports = json.loads(out.read_text())
    return reports if isinstance(reports, list) else [reports]


# the first of these tests also waits for the smoke run of every adapter (a process each, about 15 min)
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("name", [impl.name for impl in THIRD_PARTY])
def test_every_adapter_runs_and_agrees_with_the_recorded_run(request: pytest.FixtureRequest, name: str) -> None:
    if reason := REGISTRY[name].elsewhere():  # its nox session runs it, with the library installed
        pytest.skip(reason)
    report = next(r for r in request.getfixturevalue("smoke_run") if r["target"] == name)
    assert report["summary"]["passed"] > 0, f"{name} ran no passing case: {report['summary']}"
    recorded = {c["id"]: c["status"] for r in load_reports([RECORDED]) if r["target"] == name for c in r["checks"]}
    now = {c["id"]: c["status"] for c in report["checks"]}
    changed = {i: (recorded.get(i), s) for i, s in now.items() if recorded.get(i) != s}
    assert not changed, (f"{name} answers differently from the recorded run on {len(changed)} case(s) "
                         f"(recorded, now): {changed}; rerun `rope-suite check --all` and regenerate the table")


def test_a_failure_shows_even_where_a_part_is_supplied() -> None:
    """Supplied tables and a failure: the library's own share (its rotation, its angles) may be
    the cause, so the cell is red and says what was supplied; without a failure it is not tested."""
    linear = {**PLAIN, "scaling": {"rope_type": "linear"}}
    case = lambda spec, status: {"spec": spec, "dtype": "float32", "check": "agreement", "status": status,
                                 "id": "agreement/s/float32/per_row"}
    report = {"target": "x", "verdict": "non-conformant", "summary": {"passed": 1, "failed": 1, "skipped": 0},
              "supplied": {"scaling": "the caller"}, "checks": [case(PLAIN, "passed"), case(linear, "failed")]}
    got = cells(report)
    assert got["linear"].status == "non-conformant" and "scaling supplied by the caller" in got["linear"].detail
    report["checks"][1]["status"] = "passed"
    assert cells(report)["linear"].status == "supplied"
