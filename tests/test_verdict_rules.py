"""How verdicts are formed (issue 11), each rule on a small fake library with one behaviour, run
through ``rope-suite check`` in a real subprocess: a property is labelled, not failed; a cause
is charged once; float32 angles are a precision class; supplied parts are not graded; JAX gets
real float64; an absent library is "not installed"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, rope_suite
from rope_suite.conformance.check_command import TargetRun
from rope_suite.reports.conformance_table import cells, markdown_table

LIBRARIES = ROOT / "tests" / "libraries"


def checked(tmp_path: Path, library: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = rope_suite("check", str(LIBRARIES / library), "--json", "r.json", *args, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc, json.loads((tmp_path / "r.json").read_text())


def test_a_stateful_library_is_call_order_dependent_not_wrong(tmp_path: Path) -> None:
    """The stateless check keeps one instance across long, middle, short and compares each call
    with a fresh instance: the middle call (above the original length, below the long one)
    shows the kept state. Every case on its own is right, so the verdict stays conformant."""
    proc, report = checked(tmp_path, "stateful.py", "-k", "stateless/dynamic-above or agreement/dynamic-above")
    assert report["verdict"] == "conformant" and report["properties"] == ["call-order dependent"]
    observed = [c for c in report["checks"] if c["status"] == "observed"]
    assert [c["id"] for c in observed] == ["stateless/dynamic-above/float32/per_row"]
    assert "the middle call (max position" in observed[0]["reason"] and "after the long call" in observed[0]["reason"]
    assert cells(report)["dynamic"].status == "conformant"
    assert "| call-order dependent |" in markdown_table([report])
    assert "observed: call-order dependent" in proc.stdout


def test_a_library_that_writes_in_place_is_labelled(tmp_path: Path) -> None:
    proc, report = checked(tmp_path, "in_place.py", "-k", "output_contract/llama2-7b")
    assert report["verdict"] == "conformant" and report["properties"] == ["writes its input in place"]
    assert {c["status"] for c in report["checks"]} == {"observed"}
    assert all("x was modified in place" in c["reason"] for c in report["checks"])


def test_a_failure_of_one_scaling_type_is_charged_to_its_column_only(tmp_path: Path) -> None:
    """linear_ignored fails every linear case, in every dtype; the dtype columns stay green (their
    plain cases pass) and the cause has one footnote."""
    proc, report = checked(tmp_path, "linear_ignored.py", "-k", "agreement and (linear-x4 or llama2-7b)")
    got = cells(report)
    failed_dtypes = {c["dtype"] for c in report["checks"] if c["status"] == "failed"}
    assert failed_dtypes == {"float64", "float32", "float16", "bfloat16"}
    assert got["linear"].status == "non-conformant"
    assert {f: got[f].status for f in ("rotate-half", "float64", "float16", "bfloat16")} == dict.fromkeys(
        ("rotate-half", "float64", "float16", "bfloat16"), "conformant")
    table = markdown_table([report])
    assert "[1]" in table and "[2]" not in table
    # the terminal shows the first failures with their reproduction, not all of them (the JSON has all)
    assert proc.stdout.count("reproduce:") == 3 and "1 more failing cases" in proc.stdout


def test_float32_angles_are_a_precision_class_and_fail_strict_mode(tmp_path: Path) -> None:
    _, report = checked(tmp_path, "float32_angles.py", "-k", "agreement/llama2-7b/float64")
    assert report["verdict"] == "conformant"
    assert report["precision"]["float64"]["angles"] == "float32"
    assert "float32 angles" in cells(report)["float64"].detail
    _, strict = checked(tmp_path, "float32_angles.py", "-k", "agreement/llama2-7b/float64", "--strict")
    assert strict["verdict"] == "non-conformant" and strict["run"]["strict"] is True
    assert all("strict mode requires float64 angles" in c["reason"] for c in strict["checks"])
    _, exact = checked(tmp_path, "linear_ignored.py", "-k", "agreement/llama2-7b/float64", "--strict")
    assert exact["verdict"] == "conformant" and exact["precision"]["float64"]["angles"] == "float64"


def test_a_supplied_part_is_not_tested(tmp_path: Path) -> None:
    _, report = checked(tmp_path, "supplied_scaling.py", "-k", "agreement and (linear-x4 or llama2-7b/float32/per)")
    got = cells(report)
    assert got["linear"].status == "supplied" and "the test's tables" in got["linear"].detail
    assert got["rotate-half"].status == "conformant"
    assert "not tested (supplied)" in markdown_table([report])


def test_jax_gets_real_float64_and_is_judged_on_what_it_returns(tmp_path: Path) -> None:
    """x64 is enabled in the check process: the plug-in's float64 output is judged (float32-angle
    class), never "returned dtype float32" for a conversion the suite made."""
    _, report = checked(tmp_path, "jax_float32_angles.py", "-k", "agreement/llama2-7b/float64")
    assert report["verdict"] == "conformant", [c["reason"] for c in report["checks"]]
    assert report["precision"]["float64"]["angles"] == "float32"


REGISTER_ABSENT = '''
from rope_suite.implementations.registry import REGISTRY, Implementation
REGISTRY["needs-absent"] = Implementation("needs-absent", "nowhere:IMPLEMENTATION", "numpy",
    requires=("rope_suite_absent_module",), first_party=False, install="pip install rope-suite-absent")
'''


def test_an_absent_library_is_not_installed_with_the_command_that_installs_it(tmp_path: Path) -> None:
    (tmp_path / "register_absent.py").write_text(REGISTER_ABSENT)
    out = tmp_path / "records.jsonl"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "rope_suite.conformance", "-p", "register_absent",
                           "--impl", "needs-absent", "-k", "agreement/llama2-7b/float32", "--rope-jsonl", str(out), "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["status"] == "skipped" for r in records), proc.stdout[-2000:]
    assert all(r["not_installed"] == {"module": "rope_suite_absent_module", "install": "pip install rope-suite-absent"}
               for r in records)
    run = TargetRun("needs-absent", proc.returncode, records)
    assert run.verdict == "not installed"
    report = run.report()
    assert set(c.status for c in cells(report).values()) == {"not installed"}
    assert "not installed (`pip install rope-suite-absent`)" in markdown_table([report])
