"""Test vectors for implementations that are not Python (``rope-suite vectors``): the export holds
every one-call case and says why the other checks are not there; verify judges outputs as check
judges a plug-in (a missing output fails, named); and the C example in examples/c passes, while
a copy with one sign flipped fails naming its worst element."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from rope_suite.conformance import cli
from rope_suite.conformance.cases import SPECS
from rope_suite.conformance.checks import CHECKS
from rope_suite.conformance.plan import plan
from rope_suite.conformance.vectors import FORMAT_VERSION, NOT_EXPORTED, export, features

from conftest import ROOT, STRICT, rope_suite

EXAMPLE = ROOT / "examples" / "c"
C_SUPPORTS = ["--supports", "interleaved,partial", "--dtype", "float32", "--dtype", "float64"]


def write_reference_outputs(vectors: Path, outputs: Path) -> None:
    """Every case's reference, stored as its output would be: a perfect implementation."""
    for case_id in json.loads((vectors / "index.json").read_text())["cases"]:
        manifest = json.loads((vectors / case_id / "case.json").read_text())
        want = np.load(vectors / case_id / "reference.npy")
        held = want.astype(ml_dtypes.bfloat16) if manifest["dtype"] == "bfloat16" else want
        (outputs / case_id).mkdir(parents=True)
        np.save(outputs / case_id / "output.npy", held.astype(manifest["output"]["dtype"]))


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vectors")
    export(directory, "quick")
    return directory


def test_export_holds_every_one_call_case_and_says_why_the_rest_are_not(vectors: Path) -> None:
    index = json.loads((vectors / "index.json").read_text())
    assert index["format_version"] == FORMAT_VERSION and index["rope_suite_version"]
    assert index["cases"] == [p.id for p in plan("quick") if CHECKS[p.check].one_call]
    assert set(index["exported_checks"]) == {"agreement", "identity_at_zero"}
    assert set(index["not_exported"]) == set(CHECKS) - set(index["exported_checks"]) == set(NOT_EXPORTED)
    assert (vectors / "index.txt").read_text().split() == index["cases"]
    bf16 = json.loads((vectors / "agreement/llama2-7b/bfloat16/per_row/case.json").read_text())
    assert (bf16["dtype"], bf16["storage_dtype"]) == ("bfloat16", "float32")
    x = np.load(vectors / bf16["id"] / "x.npy")
    assert x.dtype == np.float32 and np.array_equal(x.astype(ml_dtypes.bfloat16).astype(np.float32), x)
    for dtype, stored in (("float16", "<f2"), ("float64", "<f8")):
        assert np.load(vectors / f"agreement/llama2-7b/{dtype}/per_row/x.npy").dtype.str == stored
    assert np.load(vectors / "agreement/llama2-7b/float32/per_row/int32/positions.npy").dtype.str == "<i4"
    zero = vectors / "identity_at_zero/llama2-7b/float32/per_row"
    assert not np.load(zero / "positions.npy").any()
    assert "rotary_dim 128\n" in (zero / "case.txt").read_text()


def test_features_are_the_departures_from_the_plain_spec() -> None:
    assert features(SPECS["llama2-7b"]) == []
    assert features(SPECS["gpt-j-6b"]) == ["interleaved", "partial"]
    assert features(SPECS["llama3.1-8b"]) == ["llama3"]
    assert features(SPECS["qwen2-vl"]) == ["mrope"]


def test_verify_passes_exact_outputs_and_fails_a_missing_or_wrong_one(vectors: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    outputs = tmp_path / "outputs"
    write_reference_outputs(vectors, outputs)
    assert cli.main(["vectors", "verify", str(vectors), str(outputs)]) == 0
    assert "conformant (91 passed, 0 failed)" in capsys.readouterr().out
    (outputs / "agreement/gpt-j-6b/float32/per_row/output.npy").unlink()
    flipped = outputs / "agreement/llama2-7b/float32/per_row/output.npy"
    y = np.load(flipped)
    y[1, 2, 0, 5] *= -1
    np.save(flipped, y)
    report = tmp_path / "report.json"
    assert cli.main(["vectors", "verify", str(vectors), str(outputs), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "missing: no output" in out and "[agreement/gpt-j-6b/float32/per_row]" in out
    assert "agreement: x[1, 2, 0, 5] got " in out and "(1/4608 elements over)" in out
    data = json.loads(report.read_text())
    assert data["verdict"] == "non-conformant" and data["summary"]["failed"] == 2
    failed = {r["id"]: r for r in data["checks"] if r["status"] == "failed"}
    assert failed["agreement/llama2-7b/float32/per_row"]["mismatch"]["index"] == [1, 2, 0, 5]
    assert failed["agreement/gpt-j-6b/float32/per_row"]["problem"] == "missing"


def test_usage_errors_exit_2(vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["vectors", "verify", str(tmp_path), str(tmp_path)]) == 2
    assert "is not an export of test vectors" in capsys.readouterr().err
    old = tmp_path / "old"
    shutil.copytree(vectors, old)
    index = json.loads((old / "index.json").read_text())
    (old / "index.json").write_text(json.dumps({**index, "format_version": FORMAT_VERSION + 1}))
    assert cli.main(["vectors", "verify", str(old), str(tmp_path)]) == 2
    assert f"this rope-suite reads version {FORMAT_VERSION}" in capsys.readouterr().err
    assert cli.main(["vectors", "export", str(old), "--check", "gradient"]) == 2
    assert "cannot be exported: needs a backward call" in capsys.readouterr().err
    (tmp_path / "mine.txt").write_text("not an export")
    assert cli.main(["vectors", "export", str(tmp_path), "--check", "identity_at_zero"]) == 2
    assert "not overwriting it" in capsys.readouterr().err


def compiler() -> str:
    """gcc (or cc); skip without one, but fail under CI=true."""
    found = shutil.which("gcc") or shutil.which("cc")
    if found is None:
        if STRICT:
            pytest.fail("no C compiler (gcc or cc) on PATH, which CI requires for the test-vector example")
        pytest.skip("no C compiler (gcc or cc) on PATH: the C example of the test vectors cannot be built")
    return found


def build_and_run(source: str, vectors: Path, outputs: Path, work: Path) -> None:
    """Compile rope.c (given as text) with the example's npy.c, and run it over the vectors."""
    for name in ("npy.c", "npy.h"):
        shutil.copy(EXAMPLE / name, work / name)
    (work / "rope.c").write_text(source)
    subprocess.run([compiler(), "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", str(work / "rope"),
                    str(work / "rope.c"), str(work / "npy.c"), "-lm"], check=True, capture_output=True, text=True)
    subprocess.run([str(work / "rope"), str(vectors), str(outputs)], check=True, capture_output=True, text=True)


def test_c_example_passes_and_a_flipped_sign_fails(tmp_path: Path) -> None:
    vectors = tmp_path / "vectors"
    done = rope_suite("vectors", "export", str(vectors), *C_SUPPORTS)
    assert done.returncode == 0, done.stderr
    source = (EXAMPLE / "rope.c").read_text()
    (tmp_path / "good").mkdir()
    build_and_run(source, vectors, tmp_path / "outputs", tmp_path / "good")
    done = rope_suite("vectors", "verify", str(vectors), str(tmp_path / "outputs"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "conformant (20 passed, 0 failed)" in done.stdout

    assert source.count("b * c + a * sn") == 1
    (tmp_path / "broken").mkdir()
    build_and_run(source.replace("b * c + a * sn", "b * c - a * sn"), vectors, tmp_path / "broken-outputs",
                  tmp_path / "broken")
    done = rope_suite("vectors", "verify", str(vectors), str(tmp_path / "broken-outputs"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "agreement: x[" in done.stdout and " vs allowed " in done.stdout
    assert "[agreement/llama2-7b/float32/per_row]" in done.stdout
