"""The conformance engine end to end: real pytest subprocesses over deliberately broken plug-ins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).parent / "plugins"


def run_conformance(*args: str, tmp_path: Path) -> tuple[int, str, list[dict]]:
    out = tmp_path / "records.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "rope_suite.conformance", "-q", "-p", "no:cacheprovider",
                           "--rope-json", str(out), *args], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    records = json.loads(out.read_text()) if out.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, records


def test_sign_flip_is_caught_with_a_pinpointing_message(tmp_path: Path) -> None:
    code, output, records = run_conformance("--impl", str(PLUGINS / "sign_flipped.py"), "-k", "agreement/llama2-7b/float32",
                                            tmp_path=tmp_path)
    assert code == 1, output
    message = output[output.index("agreement with the float64 reference"):]
    for needle in ("on llama2-7b, float32, x[2, 6, 3, 128]", '"head_dim": 128', "mismatched elements:",
                   "worst: x[", "position ", "got ", "wanted ", "vs allowed", "max abs err", "max rel err",
                   "rerun: pytest --pyargs rope_suite.conformance --impl"):
        assert needle in message, f"{needle!r} missing from the failure message:\n{message}"
    failed = [r for r in records if r["status"] == "failed"]
    assert failed and all(r["max_abs_err"] > r["bound"] for r in failed)


def test_rerun_command_reruns_exactly_that_case(tmp_path: Path) -> None:
    _, output, _ = run_conformance("--impl", str(PLUGINS / "sign_flipped.py"), "-k", "agreement/gpt-j-6b/float32/per_row",
                                   tmp_path=tmp_path)
    rerun = next(line for line in output.splitlines() if "rerun: pytest --pyargs rope_suite.conformance" in line)
    k_expr = rerun.split("-k ", 1)[1].strip().strip("'")
    code, output, records = run_conformance("--impl", str(PLUGINS / "sign_flipped.py"), "-k", k_expr, tmp_path=tmp_path)
    assert code == 1 and len(records) == 1 and records[0]["id"] == "agreement/gpt-j-6b/float32/per_row", output


def test_unsupported_dtypes_are_skipped_with_the_reason(tmp_path: Path) -> None:
    code, output, records = run_conformance("--impl", str(PLUGINS / "sign_flipped.py"), "-k", "tail_passthrough",
                                            tmp_path=tmp_path)
    skipped = [r for r in records if r["status"] == "skipped"]
    assert {r["dtype"] for r in skipped} == {"float16", "bfloat16"}
    assert all("does not support" in r["reason"] for r in skipped)
    assert "skipped" in output and "does not support this spec in bfloat16" in output


def test_dtype_upcast_is_a_contract_violation(tmp_path: Path) -> None:
    code, output, _ = run_conformance("--impl", str(PLUGINS / "wrong_dtype.py"), "-k", "agreement/llama2-7b/bfloat16/per_row",
                                      tmp_path=tmp_path)
    assert code == 1
    assert "rope() returned dtype float64, but x is bfloat16" in output


@pytest.mark.parametrize("target, message", [
    ("no_such_module_xyz", "module not found: no_such_module_xyz"),
    ("rope_suite.conformance.reference:nothing", "attribute missing: rope_suite.conformance.reference has no 'nothing'"),
    ("rope_suite.conformance.reference", "rope missing: has no callable rope(x, positions, spec)"),
])
def test_unloadable_targets_are_diagnosed(tmp_path: Path, target: str, message: str) -> None:
    code, output, _ = run_conformance("--impl", target, "-k", "agreement/llama2-7b/float32/per_row", tmp_path=tmp_path)
    assert code == 1 and message in output, output
