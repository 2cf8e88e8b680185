"""The benchmark as CI runs it: ``nox -s bench -- --quick`` then ``nox -s report`` (on this
interpreter: ``--no-venv --no-install``), the results checked against the schema, the
pytest-benchmark files converted, the report holding every plot and rendering in headless
Chromium; and a run interrupted half-way keeping what it measured."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rope_suite.benchmarks.cases import QUICK
from rope_suite.benchmarks.timing import alternate_copy
from rope_suite.benchmarks.targets import bench_targets
from rope_suite.reports import schema
from rope_suite.reports.results import FIT, load_inputs

from conftest import STRICT, sigint_as_in_a_terminal
from test_report_browser import assert_renders

# The quick bench times every registered implementation (and may build torch-cpp's kernel first):
# minutes on a busy 2-core machine, past the suite's default per-test limit.
pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[1]
CASES = {case.id: case for case in QUICK}
CHECK_REPORTS = (ROOT / "results" / "check-all.json", ROOT / "reports" / "published" / "check-all-cpu.json")


def nox(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    if shutil.which("rope-suite") is None:
        message = "rope-suite is not on PATH: install the project (pip install -e '.[all]')"
        pytest.fail(message) if STRICT else pytest.skip(message)
    return subprocess.run([sys.executable, "-m", "nox", "--no-venv", "--no-install", "-f", str(ROOT / "noxfile.py"),
                           *args], capture_output=True, text=True, cwd=cwd, timeout=1800)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    proc = nox("-s", "bench", "--", "--quick", "--results", str(out / "bench.json"))
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    check = next((p for p in CHECK_REPORTS if p.is_file()), None)
    inputs = [str(out / "bench.json")] + ([str(check)] if check else [])
    report = nox("-s", "report", "--", *inputs, "--output", str(out / "report"))
    assert report.returncode == 0, report.stdout[-5000:] + report.stderr[-5000:]
    return {"dir": out, "doc": json.loads((out / "bench.json").read_text()), "check": check}


def test_results_are_valid_and_cover_every_target_and_case(quick_run: dict[str, Any]) -> None:
    doc = quick_run["doc"]
    schema.validate(doc, schema.RESULTS_SCHEMA, "bench.json")
    rows = [r for r in doc["rows"] if r["timing"] == "wall"]
    names = {t.name for t in bench_targets(None)}
    for name in names:  # every implementation accounted for, every case measured or skipped with a reason
        mine = [r for r in rows if r["implementation"] == name]
        assert {r["case"] for r in mine} == {c.id for c in QUICK}, name
        assert all(r["status"] == "ok" or r["reason"] for r in mine), name
    first_party = [r for r in rows if r["kind"] in ("first-party", "noop")]
    assert not [r for r in first_party if r["status"] == "error"]
    measured = {r["implementation"] for r in rows if r["status"] == "ok"}
    assert {"numpy", "torch-eager", "torch-compile", "noop-numpy", "noop-torch"} <= measured
    machine = doc["machines"][doc["runs"][0]["machine_id"]]
    assert machine["cpu_cores"] and machine["versions"]["numpy"] and "git_commit" in machine
    assert "llc_bytes" in machine
    assert doc["runs"][0]["allocator"].startswith("steady: MALLOC_MMAP_MAX_=0"), doc["runs"][0]
    assert doc["runs"][0]["threads"] == "bound: OMP_PROC_BIND=true", doc["runs"][0]
    eager = next(r for r in rows if r["implementation"] == "torch-compile" and r["status"] == "ok")
    assert eager["speedup_vs_torch_eager"] and eager["fraction_of_copy"] and eager["first_call_s"] is not None
    # What bounds a case: first-party rows carry their work in the cache, others say why they do not.
    ok = [r for r in rows if r["status"] == "ok" and r["kind"] != "noop"]
    timed = [r for r in ok if r["kind"] == "first-party"]
    assert timed and all(r["work_s"] and r["elements"] for r in timed), \
        [(r["implementation"], r["case"], r["work_reason"]) for r in timed if not r["work_s"]]
    # a ceiling wherever the cuts predict the case (their work within FIT of its own time), none elsewhere
    assert all((r["work_ceiling"] is not None) == (r["work_s"] <= FIT * r["median_s"]) for r in timed)
    assert all("first-party implementations only" in r["work_reason"] for r in ok if r["kind"] == "third-party")


def test_pytest_benchmark_json_is_kept_and_converted(quick_run: dict[str, Any]) -> None:
    doc, out = quick_run["doc"], quick_run["dir"]
    alternated = 0
    assert doc["pytest_benchmark"]
    for name in doc["pytest_benchmark"]:
        data = json.loads((out / name).read_text())
        assert "machine_info" in data and data["benchmarks"]
        impl = data["benchmarks"][0]["extra_info"]["row"]["implementation"]
        ok = [r for r in doc["rows"] if r["implementation"] == impl and r["status"] == "ok" and r["timing"] == "wall"]
        assert sorted(r["median_s"] for r in ok) == sorted(b["stats"]["median"] for b in data["benchmarks"])
        llc = doc["machines"][doc["runs"][0]["machine_id"]]["llc_bytes"]
        for b in data["benchmarks"]:  # out of the cache, a round of one call alternates with one timed copy
            if alternate_copy(CASES[b["extra_info"]["row"]["case"]], b["stats"]["iterations"], llc):
                assert b["extra_info"]["copy"]["rounds"] == b["stats"]["rounds"], b["name"]
                alternated += 1
    if llc is None or llc < CASES["prefill-2048/float32/forward/q"].bytes_moved():  # 64 MiB
        assert alternated


def test_stream_holds_every_row(quick_run: dict[str, Any]) -> None:
    stream = load_inputs([quick_run["dir"] / "bench.jsonl"])
    assert len(stream.rows) == len(quick_run["doc"]["rows"])


def test_report_has_every_plot_and_renders(quick_run: dict[str, Any], tmp_path: Path) -> None:
    out = quick_run["dir"]
    page, text = (out / "report.html").read_text(), (out / "report.md").read_text()
    figures = [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    names = " ".join(figures)
    assert "throughput-" in names and "roofline-" in names
    for phase in ("decode", "prefill", "gqa", "vision"):
        assert f"-{phase}-" in names, phase
    if quick_run["check"]:
        assert "precision-horizons" in names and "The cause of each non-conformant cell" in page
    assert page.count('<img src="data:image/png;base64,') == len(figures)
    assert all((out / f).is_file() for f in figures)
    assert "noop-numpy" in page and "CPU: the targets per dtype" in page and "Compile time" in text
    assert_renders(out / "report.html", tmp_path)


def test_compare_of_a_run_with_itself_passes(quick_run: dict[str, Any]) -> None:
    results = str(quick_run["dir"] / "bench.json")
    proc = subprocess.run([sys.executable, "-m", "rope_suite.conformance.cli", "compare", results, results],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0 and "0 regression(s)" in proc.stdout, proc.stdout + proc.stderr


SLOW_PLUGIN = """
import time
framework = "numpy"

def rope(x, positions, spec):
    if x.shape[1] == 2048:  # the third quick case: hang until interrupted
        time.sleep(600)
    return x.copy()
"""


def test_interrupted_run_keeps_what_it_measured(tmp_path: Path) -> None:
    plugin = tmp_path / "slow_rope.py"
    plugin.write_text(SLOW_PLUGIN)
    results = tmp_path / "out" / "bench.json"
    proc = subprocess.Popen([sys.executable, "-m", "rope_suite.conformance.cli", "bench", str(plugin), "--quick", "--results",
                             str(results)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=sigint_as_in_a_terminal)
    stream = results.with_suffix(".jsonl")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if stream.is_file() and stream.read_text().count("\n") >= 3:  # header + two finished cases
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "interrupted" in output
    doc = json.loads(results.read_text())
    schema.validate(doc, schema.RESULTS_SCHEMA, str(results))
    done = [r["case"] for r in doc["rows"] if r["status"] == "ok"]
    assert done == ["decode-b32/float32/forward/q", "prefill-512/float32/forward/q"], doc["rows"]
    assert len(load_inputs([stream]).rows) == 2
    assert not [p for p in os.listdir(results.parent) if p.endswith(".tmp")]
