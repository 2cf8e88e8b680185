"""Results schema, pytest-benchmark conversion, merging, escaping, compare: on synthetic results
(fast; the real benchmark run is in test_bench_run.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rope_suite.benchmarks.cases import SHAPES, BenchCase
from rope_suite.reports import machine as fingerprint
from rope_suite.reports import schema
from rope_suite.reports.model import Figure
from rope_suite.reports.render import html_text, markdown_text, write
from rope_suite.reports.report import build, headline
from rope_suite.reports.results import (Inputs, ResultsError, cuts_determine_work, derive, document, empty_row,
                             load_inputs, rows_from_benchmark, work_uncertainty,
                             rows_from_pytest_benchmark, write_atomic)

from conftest import rope_suite

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>|**bold**|[link](http://example.com)'


def machine(mid: str, cpu: str = "Test CPU") -> dict[str, Any]:
    return {"machine_id": mid, "cpu_model": cpu, "cpu_cores": 2, "cpu_cores_usable": 2, "memory_bytes": 2**34,
            "os": "Linux", "gpus": [], "gpu_driver": None, "versions": {"torch": EVIL}, "rope_suite_version": "0.1.0",
            "git_commit": "abc123", "git_dirty": False}


def benchmark_entry(impl: str, kind: str, framework: str, case: BenchCase, median: float, copy_median: float,
                    run_id: str = "run1", mid: str = "m1", first_call: float = 0.5,
                    timings: list | None = None, in_cache: dict | None = None) -> dict[str, Any]:
    """One entry of pytest-benchmark's "benchmarks" list, as the benchmark test leaves it."""
    base = {"run_id": run_id, "machine_id": mid, "implementation": impl, "kind": kind, "framework": framework,
            "device": "cpu", **case.to_dict()}
    return {"group": case.id, "name": f"test_rope[{impl}-{case.id}]", "fullname": "x", "params": {},
            "param": "x", "options": {},
            "stats": {"min": median * 0.9, "max": median * 1.2, "mean": median, "stddev": median * 0.05,
                      "median": median, "iqr": median * 0.1, "q1": median * 0.95, "q3": median * 1.05,
                      "rounds": 10, "iterations": 1, "ops": 1 / median, "total": 10 * median},
            "extra_info": {"row": base, "bytes_moved": case.bytes_moved(), "tensor_bytes": case.tensor_bytes(),
                           "first_call_s": first_call, "copy": {"median": copy_median},
                           "peak_memory_bytes": 1 << 20, "peak_memory_method": "test", "timings": timings or [],
                           **({"in_cache": in_cache} if in_cache else {})}}


CASES = [BenchCase(SHAPES[name], "float32") for name in ("decode-b32", "prefill-512", "prefill-2048")]


def results_doc(mid: str = "m1", run_id: str = "run1", slow: float = 1.0, evil: bool = False) -> dict[str, Any]:
    entries = []
    for case in CASES:
        n = case.tensor_bytes()
        copy = 2 * n / 10e9  # a 10 GB/s copy
        impls = [("torch-eager", "first-party", 5 * copy), ("torch-compile", "first-party", 2 * copy * slow),
                 ("numpy", "first-party", 3 * copy), ("hf-llama", "third-party", 8 * copy),
                 ("noop-torch", "noop", 1e-6)]
        if evil:
            impls.append((EVIL, "plug-in", 4 * copy))
        entries += [benchmark_entry(i, k, "torch", case, m, copy, run_id, mid) for i, k, m in impls]
    rows = rows_from_pytest_benchmark({"benchmarks": entries})
    skip_base = {key: value for key, value in rows[0].items() if key in schema.ROW["required"]}
    rows.append(empty_row({**skip_base, "implementation": "triton", "kind": "first-party"}, "skipped",
                          EVIL if evil else "runs under the Triton interpreter"))
    run = {"run_id": run_id, "machine_id": mid, "created": "2026-01-01T00:00:00+00:00", "profile": "quick",
           "command": EVIL if evil else "rope-suite bench"}
    return document([run], {mid: machine(mid)}, derive(rows), ["x.json"])


def check_report(target: str) -> dict[str, Any]:
    spec = {"head_dim": 128, "rotary_dim": 128, "base": 10000.0, "convention": "half"}
    return {"target": target, "framework": "torch", "verdict": "non-conformant",
            "summary": {"passed": 1, "failed": 1, "skipped": 1},
            "checks": [{"check": "agreement", "id": "a", "spec": spec, "dtype": "float32", "shape": [1, 2, 3, 128],
                        "status": "passed", "reason": None},
                       {"check": "agreement", "id": "b", "spec": spec, "dtype": "float16", "shape": [1, 2, 3, 128],
                        "status": "failed", "reason": f"error 2.0 vs allowed 0.1 {EVIL}"},
                       {"check": "precision_horizon", "id": "h", "spec": spec, "dtype": "float32",
                        "shape": [1, 2, 3, 128], "status": "passed", "value": 524289.0, "reason": "ok"}]}


def dump(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# --- conversion and derived figures --------------------------------------------------------------

def test_pytest_benchmark_entry_converts_to_schema_rows_with_roofline_figures() -> None:
    case = CASES[2]
    copy = 2 * case.tensor_bytes() / 10e9
    timings = [{"timing": "cuda-events", "status": "ok", "stats": {"median": copy, "rounds": 5, "iterations": 1}},
               {"timing": "cuda-graph", "status": "error", "reason": "capture failed"}]
    rows = rows_from_benchmark(benchmark_entry("numpy", "first-party", "numpy", case, 2 * copy, copy, timings=timings))
    for row in rows:
        schema.validate(row, schema.ROW, "row")
    wall, events, graph = rows
    assert wall["timing"] == "wall" and wall["median_s"] == 2 * copy
    assert wall["bytes_moved"] == 2 * case.tensor_bytes() + 2048 * 8  # x in, out, positions
    assert wall["gbps"] == pytest.approx(case.bytes_moved() / (2 * copy) / 1e9)
    assert wall["copy_gbps"] == pytest.approx(10.0)
    assert wall["fraction_of_copy"] == pytest.approx(0.5, rel=1e-3)
    assert wall["compile_s"] == pytest.approx(0.5 - 2 * copy)
    assert events["timing"] == "cuda-events" and events["fraction_of_copy"] == pytest.approx(1.0, rel=1e-3)
    assert graph["status"] == "error" and graph["reason"] == "capture failed" and graph["median_s"] is None


def test_derived_speedup_over_torch_eager_and_machine_copy() -> None:
    doc = results_doc()
    by = {(r["implementation"], r["case"]): r for r in doc["rows"]}
    case = CASES[1].id
    assert by[("torch-eager", case)]["speedup_vs_torch_eager"] == pytest.approx(1.0)
    assert by[("torch-compile", case)]["speedup_vs_torch_eager"] == pytest.approx(2.5)
    assert by[("numpy", case)]["fraction_of_machine_copy"] == pytest.approx(1 / 3, rel=1e-3)
    noop = by[("noop-torch", case)]
    assert noop["fraction_of_copy"] is None and noop["speedup_vs_torch_eager"] is None


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["rows"][0].update(median_s=-1.0), "rows[0].median_s: -1.0 is less than the minimum of 0"),
    (lambda d: d["rows"][1].pop("case"), "rows[1]: 'case' is a required property"),
    (lambda d: d["rows"][2].update(direction="sideways"), "rows[2].direction: 'sideways' is not one of"),
    (lambda d: d["rows"][0].update(gbps=None), "rows[0].gbps: None is not of type 'number'"),
    (lambda d: d["machines"]["m1"].pop("cpu_model"), "machines.m1: 'cpu_model' is a required property"),
    (lambda d: d.update(schema_version=99), "schema_version: 99 is not supported"),
])
def test_invalid_results_name_the_file_and_the_field(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = results_doc()
    mutate(doc)
    path = dump(tmp_path, "bad.json", doc)
    with pytest.raises(ResultsError) as err:
        load_inputs([path])
    assert f"{path}: " in str(err.value) and message in str(err.value), str(err.value)


def test_report_command_rejects_bad_input_with_exit_2(tmp_path: Path) -> None:
    doc = results_doc()
    doc["rows"][3]["seq"] = "long"
    bad = dump(tmp_path, "bad.json", doc)
    other = dump(tmp_path, "other.json", {"hello": 1})
    proc = rope_suite("report", str(bad), "-o", str(tmp_path / "r"))
    assert proc.returncode == 2 and f"{bad}: rows[3].seq: 'long' is not of type 'integer'" in proc.stderr
    proc = rope_suite("report", str(other), "-o", str(tmp_path / "r"))
    assert proc.returncode == 2 and "neither a rope-suite benchmark results file" in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_stream_cut_short_is_still_readable(tmp_path: Path) -> None:
    doc = results_doc()
    header = {"schema": schema.STREAM, "schema_version": schema.SCHEMA_VERSION, "run": doc["runs"][0],
              "machine": doc["machines"]["m1"]}
    lines = [json.dumps(header)] + [json.dumps(r) for r in doc["rows"][:4]]
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(lines) + "\n" + json.dumps(doc["rows"][4])[:40])  # killed mid-line
    inputs = load_inputs([path])
    assert len(inputs.rows) == 4 and list(inputs.machines) == ["m1"]


# --- the report -----------------------------------------------------------------------------------

def test_every_string_from_the_inputs_is_escaped(tmp_path: Path) -> None:
    results = dump(tmp_path, "results.json", results_doc(evil=True))
    checks = dump(tmp_path, "check.json", [check_report(EVIL), check_report("torch-eager")])
    report = build(load_inputs([results, checks]))
    page = html_text(report)
    assert "<script>alert" not in page and "onerror=alert(1)>" not in page
    assert page.count("<script>") == 1  # the page's own render check, allowed by its CSP hash
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "default-src 'none'" in page and "http://example.com" not in page.split("<body", 1)[0]
    text = markdown_text(report, "plots")
    assert "<script>" not in text and "<img" not in text.replace("![", "")
    assert "\\|\\*\\*bold\\*\\*\\|\\[link\\]\\(http://example.com\\)" in text  # no table break, no link


def test_report_merges_machines_and_conformance_with_every_section(tmp_path: Path) -> None:
    first = dump(tmp_path, "a.json", results_doc("m1", "run1"))
    second = dump(tmp_path, "b.json", results_doc("m2", "run2", slow=3.0))
    checks = dump(tmp_path, "check.json", [check_report("torch-eager"), check_report("hf-llama")])
    html_path, md_path = write(build(load_inputs([first, second, checks])), tmp_path / "out" / "report")
    page, text = html_path.read_text(), md_path.read_text()
    for title in ("Headline figures", "Conformance matrix", "Findings in third-party code",
                  "Throughput versus sequence length",
                  "Fraction of the copy roofline", "Precision horizon", "Compile time", "Harness floor",
                  "Every measured case", "Skipped and failed cases", "Machines and runs"):
        assert title in page and title in text
    assert "run1" in page and "run2" in page and page.count("Test CPU x2 [m1]") >= 1 and "[m2]" in page
    assert 'class="bad" title="' in page and "The cause of each non-conformant cell" in page
    figures = [line for line in text.splitlines() if line.startswith("![")]
    # per machine: one throughput series, one roofline chart per phase (decode, prefill); one horizon chart
    assert len(figures) == 2 * (1 + 2) + 1 == page.count('<img src="data:image/png;base64,')
    for line in figures:
        assert (md_path.parent / line.split("](", 1)[1].rstrip(")")).is_file()
    assert "CPU: the targets per dtype" in page and "not met" in page  # 2 x copy time is 50% of copy bandwidth


ZEN3 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
        "stepping\t: 1\nflags\t\t: fpu sse4_2 fma avx f16c avx2 bmi2\n\n"
        "processor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nflags\t\t: avx512f avx512_bf16\n")
ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 atomics\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n"


def test_the_fingerprint_tells_microarchitectures_with_one_model_name_apart(tmp_path: Path) -> None:
    zen3 = fingerprint.cpuinfo(ZEN3)  # the first processor's fields, not the last one's
    assert fingerprint.cpu_id(zen3) == "AuthenticAMD family 25 model 1 stepping 1"
    assert fingerprint.cpu_simd(zen3) == ["avx2", "fma", "f16c"]
    arm = fingerprint.cpuinfo(ARM)
    assert fingerprint.cpu_id(arm) == "implementer 0x41 part 0xd40"
    assert fingerprint.cpu_simd(arm) == ["asimd", "bf16", "sve"]
    assert fingerprint.cpu_id({}) is None and fingerprint.cpu_simd({}) == []
    here = fingerprint.fingerprint()  # this machine's, valid against the schema
    doc = results_doc()
    doc["machines"]["m1"].update(cpu_id=here["cpu_id"], cpu_simd=here["cpu_simd"])
    page = build(load_inputs([dump(tmp_path, "a.json", doc)]))
    html_path, _ = write(page, tmp_path / "report")
    shown = "; ".join(filter(None, [here["cpu_id"], " ".join(here["cpu_simd"])]))
    assert not shown or f"Test CPU ({shown})" in html_path.read_text()


def headline_tables(inputs: Inputs) -> dict[str, list[list[str]]]:
    """The headline's tables by the start of their subtitle ("CPU: the targets", "CPU: every case",
    "JAX and TensorFlow"), as text."""
    return {title.split(" per ")[0].split(",")[0]: [[c.text for c in row] for row in table.rows]
            for title, table in headline(inputs).blocks}


def test_headline_judges_the_first_party_closest_to_its_copy_and_says_where_the_bytes_fit(tmp_path: Path) -> None:
    doc = results_doc(slow=0.45)  # torch-compile: 0.9 x the copy's time, the fastest first-party: met
    doc["machines"]["m1"]["llc_bytes"] = 32 * 2**20
    tables = headline_tables(load_inputs([dump(tmp_path, "a.json", doc)]))
    rows = {row[1]: row for row in tables["CPU: every case"]}
    assert set(rows) == {"decode-b32/float32/forward/q", "prefill-512/float32/forward/q",
                         "prefill-2048/float32/forward/q"}
    small, large = rows["prefill-512/float32/forward/q"], rows["prefill-2048/float32/forward/q"]
    assert small[2] == "16 MiB (fits in 32 MiB LLC)" and large[2] == "64 MiB (exceeds 32 MiB LLC)"
    assert small[3] == large[3] == "torch-compile" and small[-1] == large[-1] == "met"
    assert (small[-2], large[-2]) == ("60%", "80%")  # the in-cache and the out-of-cache target
    assert large[8].startswith("torch-compile: ")  # also the least median time
    # One line per dtype, direction, mode and side of the cache, decided by its lowest case.
    assert [(row[0], row[1], row[2], row[-1]) for row in tables["CPU: the targets"]] == [
        ("float32 forward q", "exceed the LLC (or unknown)", "1", "met"), ("float32 forward q", "fit in the LLC", "2", "met")]
    # Drift: numpy measured in a faster minute of the machine (less time, a faster copy beside it):
    # the least median, but further from its roofline; the headline judges the fraction.
    numpy = next(r for r in doc["rows"] if r["implementation"] == "numpy" and r["case"] == "prefill-2048/float32/forward/q")
    compiled = next(r for r in doc["rows"] if r["implementation"] == "torch-compile" and r["case"] == numpy["case"])
    numpy.update(median_s=compiled["median_s"] / 2, fraction_of_copy=0.5)
    row = headline_tables(load_inputs([dump(tmp_path, "drift.json", doc)]))["CPU: every case"][2]
    assert row[3] == "torch-compile" and row[8].startswith("numpy: ") and row[8].endswith("50% of copy")
    del doc["machines"]["m1"]["llc_bytes"]
    doc["rows"] = [r for r in doc["rows"] if r["implementation"] != "torch-compile"]  # numpy: 3 x copy time
    tables = headline_tables(load_inputs([dump(tmp_path, "b.json", doc)]))
    assert [(row[2], row[3], row[-2], row[-1]) for row in tables["CPU: every case"]] == [
        ("1 MiB", "numpy", "80%", "not met"), ("16 MiB", "numpy", "80%", "not met"),
        ("64 MiB", "numpy", "80%", "not met")]  # cache size unknown: every case is judged out of the cache
    assert [(row[0], row[3], row[-1]) for row in tables["CPU: the targets"]] == [
        ("float32 forward q", "decode-b32/float32/forward/q (run run1)", "not met")]


def test_headline_holds_jax_and_tensorflow_to_their_own_copy(tmp_path: Path) -> None:
    case = BenchCase(SHAPES["prefill-2048"], "bfloat16")
    copy = 2 * case.tensor_bytes() / 10e9
    entries = [benchmark_entry("jax-jit", "first-party", "jax", case, 1.5 * copy, copy),  # 67% of its copy
               benchmark_entry("tensorflow-xla", "first-party", "tensorflow", case, 2.5 * copy, copy),  # 40%
               benchmark_entry("numpy", "first-party", "numpy", case, 10 * copy, copy)]  # not JAX or TF: not judged
    run = {"run_id": "run1", "machine_id": "m1", "created": "2026-01-01T00:00:00+00:00", "profile": "quick"}
    doc = document([run], {"m1": machine("m1")}, derive(rows_from_pytest_benchmark({"benchmarks": entries})), [])
    table = headline_tables(load_inputs([dump(tmp_path, "f.json", doc)]))["JAX and TensorFlow first-party against"
                                                                           " their own framework's copy (target 50%)"]
    assert [(row[0], row[1], row[4], row[-1]) for row in table] == [
        ("jax-jit", "bfloat16 forward q", "67%", "met"), ("tensorflow-xla", "bfloat16 forward q", "40%", "not met")]


def work(case: BenchCase, fixed: float, per_element: float, copy_fixed: float = 1e-6,
         copy_per_element: float = 1e-11) -> dict[str, Any]:
    """timing.work_in_cache's figures for ``case``: four cuts on the line they give."""
    elements = [65536, 131072, 262144, 524288]
    return {"case_elements": case.elements(), "elements": elements,
            "op_s": [fixed + per_element * e for e in elements],
            "copy_s": [copy_fixed + copy_per_element * e for e in elements],
            "fixed_s": fixed, "per_element_s": per_element, "copy_fixed_s": copy_fixed,
            "copy_per_element_s": copy_per_element}


@pytest.mark.parametrize(("median", "fixed", "per_element", "ceiling", "says"), [
    # work alone 16.5 ms against the copy's 10 ms: at most 61% whatever the memory does
    (20e-3, 1e-3, 15.5e-3, "61%", ["its work per element: in the cache its work takes 16.500 ms (1.000 ms a call + ",
                                   "the copy 10.002 ms for the case's bytes, which caps it at 61%"]),
    # work 8 ms: 56% if none of it is hidden, 125% if all is; measured 71%, between the two
    (14e-3, 1e-3, 7e-3, "125%", ["its work not hidden behind the memory traffic", "; 56% if none of it were "
                                 "hidden, 100% if all"]),
    # work 2 ms: 83% even with none hidden; measured 25%: not the work
    (40e-3, 0.5e-3, 1.5e-3, "500%", ["not its work: ", "for the case's bytes, 83% even with none of it hidden; the "
                                     "memory side: less all its work the case takes 38.000 ms, 3.8 times the copy's "
                                     "time for its bytes"]),
    # the cuts predict 16 ms for a case that takes 5: they do not stand for it, no bound is drawn
    (5e-3, 1e-3, 15e-3, "–", ["met; no bound from the work in the cache: ", "more than the case's own 5.000 ms "
                              "(0.60 ns an element, all in)"]),
    (13e-3, 1e-3, 19e-3, "–", ["no bound from the work in the cache: ", "more than the case's own 13.000 ms"]),
    # the cost of a call is most of the work
    (20e-3, 14e-3, 2.5e-3, "61%", ["its cost per call: in the cache its work takes 16.500 ms (14.000 ms a call"]),
    (8e-3, 1e-3, 7e-3, "125%", ["met; in the cache its work takes 8.000 ms", "ceiling 125%"]),
])
def test_headline_says_what_bounds_each_case(tmp_path: Path, median: float, fixed: float, per_element: float,
                                             ceiling: str, says: list[str]) -> None:
    case = BenchCase(SHAPES["prefill-2048"], "float32")  # 64 MiB: out of the 32 MiB cache
    entry = benchmark_entry("torch-cpp", "first-party", "torch", case, median, 10e-3,
                            in_cache=work(case, fixed, per_element / case.elements()))
    row = rows_from_benchmark(entry)[0]
    assert row["work_s"] == pytest.approx(fixed + per_element) and row["elements"] == case.elements()
    if ceiling != "–":
        assert row["work_ceiling"] == pytest.approx(10e-3 / (fixed + per_element), rel=1e-3)  # positions: +0.02%
    else:
        assert row["work_ceiling"] is None
    run = {"run_id": "run1", "machine_id": "m1", "created": "2026-01-01T00:00:00+00:00", "profile": "full"}
    machines = {"m1": {**machine("m1"), "llc_bytes": 32 << 20}}
    doc = document([run], machines, derive([row]), [])
    tables = headline_tables(load_inputs([dump(tmp_path, "w.json", doc)]))
    for table in ("CPU: every case", "CPU: the targets"):
        (cells,) = tables[table]
        assert cells[-4] == ceiling and all(part in cells[-3] for part in says), cells[-3]


FLAT = [1.010e-3, 1.009e-3, 0.983e-3, 1.021e-3]  # jax-jit's forward+backward cuts in one run, 0.5 to 4 MiB
CUT_ELEMENTS = [65536, 131072, 262144, 524288]


def cut_row(times: list[float], fixed: float, per_element: float, elements: int) -> dict[str, Any]:
    return {"work_cut_elements": CUT_ELEMENTS, "work_cut_s": times, "work_fixed_s": fixed,
            "work_per_element_s": per_element, "elements": elements, "work_s": fixed + per_element * elements}


def test_the_cuts_determine_a_case_s_work_only_where_their_scatter_extrapolated_stays_small() -> None:
    large = 2048 * 32 * 128  # prefill-2048: 16 times the largest cut
    flat = cut_row(FLAT, 1.005e-3, 0.0, large)
    assert not cuts_determine_work(flat) and work_uncertainty(flat) > 0.25 * flat["work_s"]
    # the same cuts for a case the size of their mean: the scatter is not multiplied, the line stands
    assert cuts_determine_work(cut_row(FLAT, 1.005e-3, 0.0, int(sum(CUT_ELEMENTS) / 4)))
    # the further the case from the cuts, the larger the uncertainty, in proportion
    far = [work_uncertainty(cut_row(FLAT, 1.005e-3, 0.0, n)) for n in (10 * large, 20 * large)]
    assert far[1] / far[0] == pytest.approx(2, rel=0.01)
    rising = [0.85e-3 + 0.58e-9 * e for e in CUT_ELEMENTS]
    assert work_uncertainty(cut_row(rising, 0.85e-3, 0.58e-9, large)) == pytest.approx(0, abs=1e-12)
    noisy = [t * f for t, f in zip(rising, (1.02, 0.98, 1.02, 0.98))]  # 2% either way: 5.7 ms +- 1 ms
    assert cuts_determine_work(cut_row(noisy, 0.85e-3, 0.58e-9, large))
    late = [t * (2 if i == 1 else 1) for i, t in enumerate(rising)]  # one cut off: the line stands
    assert cuts_determine_work(cut_row(late, 0.85e-3, 0.58e-9, large))
    older = {"work_fixed_s": 1e-3, "work_per_element_s": 0.0, "elements": large, "work_s": 1e-3}
    assert work_uncertainty(older) is None and cuts_determine_work(older)  # results without cut times


@pytest.mark.parametrize(("shape", "times", "cached"), [
    ("prefill-2048", FLAT, False),
    ("prefill-512", [1.05e-3, 0.95e-3, 1.10e-3, 0.92e-3], True)])  # 16 MiB: in the cache, 8 times the cuts' size
def test_cuts_that_do_not_determine_the_work_draw_no_ceiling_and_say_so(
        tmp_path: Path, shape: str, times: list[float], cached: bool) -> None:
    case = BenchCase(SHAPES[shape], "float32")
    copy = 2 * case.tensor_bytes() / 10e9
    figures = {**work(case, 1.005e-3, 0.0), "op_s": times}
    row = rows_from_benchmark(benchmark_entry("jax-jit", "first-party", "jax", case, 2 * copy, copy,
                                              in_cache=figures))[0]
    assert row["work_cut_s"] == times and row["work_ceiling"] is None
    run = {"run_id": "run1", "machine_id": "m1", "created": "2026-01-01T00:00:00+00:00", "profile": "full"}
    doc = document([run], {"m1": {**machine("m1"), "llc_bytes": 32 << 20}}, derive([row]), [])
    (cells,) = headline_tables(load_inputs([dump(tmp_path, "f.json", doc)]))["CPU: the targets"]
    said = (f"its 4 cuts (65,536 to 524,288 elements) took {', '.join(f'{t * 1e3:.3f} ms' for t in times[:3])} and "
            f"{times[3] * 1e3:.3f} ms, whose line (1.005 ms a call + 0.00 ns an element) gives the case's "
            f"{case.elements():,} elements 1.005 ms of work +- ")
    assert said in cells[-3] and "their scatter, extrapolated, is more than 25% of it" in cells[-3], cells[-3]
    if cached:  # its own time is its work
        assert cells[-4] == "50%" and cells[-3].startswith("its own time: the case runs in the cache")
    else:
        assert cells[-4] == "–" and cells[-3].startswith(f"no bound from the work in the cache: {said}")
        assert f"25% of it (the case took {2 * copy * 1e3:.3f} ms, the copy " in cells[-3]


@pytest.mark.parametrize(("fixed", "per_element", "larger"), [
    (0.5e-3, 1.1e-3, "its work per element"), (1.3e-3, 0.3e-3, "its cost per call")])
def test_a_case_in_the_cache_is_bounded_by_its_own_time_where_the_cuts_overshoot(
        tmp_path: Path, fixed: float, per_element: float, larger: str) -> None:
    case = BenchCase(SHAPES["decode-b64"], "float32")  # 2 MiB: in the 32 MiB cache
    median, copy = 1.2e-3, 0.3e-3  # the cuts put 1.6 ms on a case that takes 1.2: more than FIT allows
    entry = benchmark_entry("jax-jit", "first-party", "jax", case, median, copy,
                            in_cache=work(case, fixed, per_element / case.elements()))
    row = rows_from_benchmark(entry)[0]
    assert row["work_ceiling"] is None  # the cuts' own ceiling is not drawn
    run = {"run_id": "run1", "machine_id": "m1", "created": "2026-01-01T00:00:00+00:00", "profile": "full"}
    doc = document([run], {"m1": {**machine("m1"), "llc_bytes": 32 << 20}}, derive([row]), [])
    (cells,) = headline_tables(load_inputs([dump(tmp_path, "c.json", doc)]))["CPU: the targets"]
    assert cells[1] == "fit in the LLC" and cells[5] == "25%"
    assert cells[-4] == "25%"  # its own fraction: in the cache its time is its work
    assert cells[-3].startswith(f"{larger}: the case runs in the cache, so its own 1.200 ms is its work, which caps "
                                "it at 25%; the cuts put more on it (in the cache its work takes 1.600 ms"), cells[-3]


@pytest.mark.parametrize(("again", "says"), [
    (None, "; the gap is how the case runs at full size (not measured further)"),
    (0.45e-3, "; timed in turns with its cuts the whole case took 0.450 ms, against 1.200 ms in its own rounds: "
              "those rounds ran slower than the same calls do in turns (the machine while they ran)"),
    (1.1e-3, "; timed in turns with its cuts the whole case took 1.100 ms, against 1.200 ms in its own rounds: "
             "it is that slow at full size, where its cuts' line is not (its own shape and positions)"),
])
def test_a_case_in_the_cache_slower_than_its_work_says_whether_its_rounds_or_the_case_were_slow(
        tmp_path: Path, again: float | None, says: str) -> None:
    case = BenchCase(SHAPES["decode-b64"], "float32")  # 2 MiB: in the 32 MiB cache
    median, copy = 1.2e-3, 0.3e-3  # 25% of its copy, where the line's 0.4 ms of work would allow 75%
    figures = {**work(case, 0.2e-3, 0.2e-3 / case.elements()), "case_s": again}
    row = rows_from_benchmark(benchmark_entry("torch-cpp", "first-party", "torch", case, median, copy,
                                              in_cache=figures))[0]
    assert row["work_case_s"] == again
    run = {"run_id": "run1", "machine_id": "m1", "created": "2026-01-01T00:00:00+00:00", "profile": "full"}
    doc = document([run], {"m1": {**machine("m1"), "llc_bytes": 32 << 20}}, derive([row]), [])
    (cells,) = headline_tables(load_inputs([dump(tmp_path, "t.json", doc)]))["CPU: the targets"]
    assert cells[5] == "25%" and cells[-4] == "75%"
    assert cells[-3].startswith("not its work: in the cache its work takes 0.400 ms") and cells[-3].endswith(
        f"which would allow 75%{says}"), cells[-3]


def test_work_ceiling_counts_the_bytes_of_both_passes_of_forward_backward() -> None:
    case = BenchCase(SHAPES["prefill-2048"], "float32", "forward+backward")
    # the copy moves q once in 10 ms; forward+backward moves it twice: 20 ms of copy for its bytes
    entry = benchmark_entry("torch-cpp", "first-party", "torch", case, 30e-3, 10e-3,
                            in_cache=work(case, 1e-3, 24e-3 / case.elements()))
    row = rows_from_benchmark(entry)[0]
    assert row["fraction_of_copy"] == pytest.approx(2 * 10 / 30, rel=1e-3)
    assert row["work_ceiling"] == pytest.approx(20 / 25, rel=1e-3)


def test_headline_says_why_a_bound_is_missing(tmp_path: Path) -> None:
    case = BenchCase(SHAPES["prefill-2048"], "bfloat16")
    old = benchmark_entry("torch-cpp", "first-party", "torch", case, 2e-3, 1e-3)  # a file from before the figures
    failed = benchmark_entry("torch-eager", "first-party", "torch", case, 4e-3, 1e-3,
                             in_cache={"reason": "RuntimeError: out of memory"})
    rows = derive(rows_from_pytest_benchmark({"benchmarks": [old, failed]}))
    assert rows[0]["work_s"] is None and rows[0]["work_reason"] is None
    assert rows[1]["work_reason"] == "the work in the cache was not measured: RuntimeError: out of memory"
    run = {"run_id": "run1", "machine_id": "m1", "created": "2026-01-01T00:00:00+00:00", "profile": "full"}
    doc = document([run], {"m1": machine("m1")}, rows, [])
    (cells,) = headline_tables(load_inputs([dump(tmp_path, "o.json", doc)]))["CPU: every case"]
    assert cells[-4] == "–" and cells[-3] == "not measured (no in-cache work figures in these results)"
    rows[0]["median_s"] = 8e-3  # torch-eager is now the closest first-party: its reason is shown
    rows[0]["fraction_of_copy"] = 0.1
    doc = document([run], {"m1": machine("m1")}, rows, [])
    (cells,) = headline_tables(load_inputs([dump(tmp_path, "p.json", doc)]))["CPU: every case"]
    assert cells[3] == "torch-eager" and cells[-3].endswith("RuntimeError: out of memory")


def test_write_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_atomic(target, "old")
    with pytest.raises(TypeError):
        write_atomic(target, object())  # fails while writing
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_figures_are_png_with_titles() -> None:
    inputs = Inputs()
    inputs.add_results(results_doc())
    figures = [b for s in build(inputs).sections for _, b in s.blocks if isinstance(b, Figure)]
    assert figures and all(f.png.startswith(b"\x89PNG") and f.alt for f in figures)


# --- compare --------------------------------------------------------------------------------------

def test_compare_flags_regressions_beyond_the_threshold(tmp_path: Path) -> None:
    old = dump(tmp_path, "old.json", results_doc())
    same = dump(tmp_path, "same.json", results_doc(run_id="run2"))
    slower = dump(tmp_path, "slower.json", results_doc(run_id="run3", slow=1.3))
    assert rope_suite("compare", str(old), str(same)).returncode == 0
    proc = rope_suite("compare", str(old), str(slower))
    assert proc.returncode == 1, proc.stdout
    assert "3 regression(s) beyond 10%" in proc.stdout and "torch-compile" in proc.stdout and "30% slower" in proc.stdout
    assert rope_suite("compare", str(old), str(slower), "--threshold", "0.5").returncode == 0
    failing = results_doc(run_id="run4")
    for row in failing["rows"]:
        if row["implementation"] == "numpy":
            row.update(status="error", reason="boom")
    proc = rope_suite("compare", str(old), str(dump(tmp_path, "failing.json", failing)))
    assert proc.returncode == 1 and "measured before, fails now" in proc.stdout
