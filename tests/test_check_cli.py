"""``rope-suite check`` as other projects' CI runs it: real subprocesses, exit codes, JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PLUGINS, readme_plugin, rope_suite


def test_plugin_from_the_readme_in_a_fresh_directory_is_conformant(tmp_path: Path) -> None:
    (tmp_path / "my_rope.py").write_text(readme_plugin())
    proc = rope_suite("check", "my_rope.py", "--json", "report.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["target"] == "my_rope.py" and report["framework"] == "numpy"
    assert report["verdict"] == "conformant" and report["summary"]["failed"] == 0
    assert report["summary"]["passed"] > 20
    for key in ("check", "spec", "dtype", "shape", "status", "max_abs_err", "max_rel_err", "bound", "reason"):
        assert all(key in case for case in report["checks"]), key
    assert "my_rope.py: conformant" in proc.stdout
    # the module form of the same target works too
    assert rope_suite("check", "my_rope", "-k", "agreement", cwd=tmp_path).returncode == 0


def test_broken_plugin_is_non_conformant_with_message_and_snippet(tmp_path: Path) -> None:
    target = str(PLUGINS / "sign_flipped.py")
    proc = rope_suite("check", target, "--json", "r.json", "-k", "agreement/gpt-j-6b", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    out = proc.stdout
    assert "agreement" in out and " failed" in out
    assert "worst: x[" in out and "vs allowed" in out
    assert "reproduce:" in out and "case = Case(spec_name='gpt-j-6b'" in out and "case.inputs()" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "non-conformant" and report["summary"]["failed"] >= 1
    failed = [c for c in report["checks"] if c["status"] == "failed"]
    assert all(c["max_abs_err"] > c["bound"] for c in failed)


def test_reproduction_snippet_runs_and_shows_the_failure(tmp_path: Path) -> None:
    proc = rope_suite("check", str(PLUGINS / "sign_flipped.py"), "-k", "agreement/llama2-7b/float32/per_row", cwd=tmp_path)
    lines = proc.stdout.splitlines()
    start = lines.index("  reproduce:") + 1
    body = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        body.append(line[4:])
    run = subprocess.run([sys.executable, "-c", "\n".join(body)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "over=" in run.stdout and "over=0," not in run.stdout


@pytest.mark.parametrize("target, diagnosis", [
    ("no_such_module_abc", "module not found: no_such_module_abc"),
    ("json:no_such_object", "attribute missing: json has no 'no_such_object'"),
    ("json", "has no callable rope(x, positions, spec)"),
    (str(PLUGINS / "unknown_framework.py"), "framework='mxnet' is invalid: allowed numpy, torch, jax, tensorflow"),
])
def test_unloadable_target_exits_2_with_one_line_diagnosis(tmp_path: Path, target: str, diagnosis: str) -> None:
    proc = rope_suite("check", target, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert diagnosis in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_xfails_file_turns_known_deviations_into_expected_failures(tmp_path: Path) -> None:
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("# known deviations\nagreement/gpt-j-6b\nstateless/nothing-matches\n")
    proc = rope_suite("check", str(PLUGINS / "sign_flipped.py"), "--xfails-file", str(xfails), "-k", "agreement/gpt-j-6b",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "xfailed" in proc.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert rope_suite("check", cwd=tmp_path).returncode == 2
    proc = rope_suite("check", "numpy", "--xfails-file", "missing.txt", cwd=tmp_path)
    assert proc.returncode == 2 and "--xfails-file missing.txt: no such file" in proc.stderr


def test_list_shows_registered_implementations(tmp_path: Path) -> None:
    proc = rope_suite("list", cwd=tmp_path)
    assert proc.returncode == 0
    for name in ("numpy", "torch-eager", "triton", "hf-llama", "onnxruntime"):
        assert name in proc.stdout
