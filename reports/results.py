"""Results rows: built from pytest-benchmark's own JSON, derived figures, files read and merged.

pytest-benchmark writes its JSON (``--benchmark-json``) with each benchmark's statistics and
the ``extra_info`` the benchmark attached (the case, the copy roofline, compile time, peak
memory, CUDA timings). :func:`rows_from_benchmark` converts one such benchmark into rows of
the results schema (:mod:`rope_suite.reports.schema`); the benchmark's own JSON file is kept beside the
results. Figures that need other rows of the same run (the speedup over PyTorch eager, the
machine's best copy bandwidth) are filled in by :func:`derive`.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import RESULTS, RESULTS_SCHEMA, SCHEMA_VERSION, STREAM, STREAM_HEADER_SCHEMA, ROW, ResultsError, validate

BASELINE = "torch-eager"
MEASURES: tuple[str, ...] = ("median_s", "iqr_s", "min_s", "max_s", "mean_s", "stddev_s", "rounds", "iterations",
                             "bytes_moved", "gbps", "copy_median_s", "copy_gbps", "fraction_of_copy",
                             "machine_copy_gbps", "fraction_of_machine_copy", "speedup_vs_torch_eager",
                             "first_call_s", "compile_s", "peak_memory_bytes", "peak_memory_method",
                             "elements", "work_fixed_s", "work_per_element_s", "copy_fixed_s", "copy_per_element_s",
                             "work_s", "work_case_s", "work_cut_elements", "work_cut_s", "work_ceiling",
                             "work_reason")


# The in-cache work model's shared figures (reports.bounds explains them): T, the copy's time for
# the case's bytes, and T / W, the work ceiling, drawn only where the cuts predict the case.
FIT = 1.25  # the cuts' work may exceed the case's own time by this factor (timing noise), no more


def copy_time(row: dict[str, Any]) -> float | None:
    """Seconds the same-process copy takes to move the case's bytes (T in reports.bounds)."""
    if not row.get("copy_gbps") or not row.get("bytes_moved"):
        return None
    return row["bytes_moved"] / (row["copy_gbps"] * 1e9)


UNCERTAIN = 0.25  # the cuts' line must give the case's work to within this fraction of it


def work_uncertainty(row: dict[str, Any]) -> float | None:
    """The standard error of the cuts' line at the case's elements E, sigma * sqrt(1/n +
    (E - mean e)^2 / sum (e - mean e)^2), with sigma the cuts' median distance from the line /
    0.6745 (robust, as the line is); None where the row predates the cut times. Cuts of 0.5 to
    4 MiB extrapolated to a case of 64 MiB multiply their scatter by about 30: jax-jit's
    forward+backward cuts took 1.010, 1.009, 0.983 and 1.021 ms in one run, which put 1.01 +-
    0.49 ms of work on a case that took 12 ms (0.85 ms + 0.58 ns an element in the other run)."""
    elements, times = row.get("work_cut_elements"), row.get("work_cut_s")
    if not elements or not times or row.get("work_per_element_s") is None or not row.get("elements"):
        return None
    fixed, per_element = row["work_fixed_s"], row["work_per_element_s"]
    sigma = statistics.median(abs(t - (fixed + per_element * e)) for e, t in zip(elements, times)) / 0.6745
    mean = statistics.fmean(elements)
    spread = sum((e - mean) ** 2 for e in elements)
    return sigma * math.sqrt(1 / len(elements) + (row["elements"] - mean) ** 2 / spread)


def cuts_determine_work(row: dict[str, Any]) -> bool:
    """Whether the cuts' line gives the case's work to within ``UNCERTAIN`` of it
    (:func:`work_uncertainty`); True where that cannot be checked (older results)."""
    uncertainty = work_uncertainty(row)
    return uncertainty is None or uncertainty <= UNCERTAIN * row["work_s"]


def work_ceiling(row: dict[str, Any]) -> float | None:
    """T / W: the fraction of copy the case would reach if all its work hid behind its memory
    traffic; None without in-cache figures, where the cuts do not predict the case (FIT) or do
    not determine it (:func:`cuts_determine_work`)."""
    t, work = copy_time(row), row.get("work_s")
    if t is None or not work or work > FIT * row["median_s"] or not cuts_determine_work(row):
        return None
    return t / work


def empty_row(base: dict[str, Any], status: str, reason: str | None, timing: str = "wall") -> dict[str, Any]:
    """A row with the case's coordinates from ``base`` and every measurement null."""
    return {**base, **dict.fromkeys(MEASURES), "timing": timing, "status": status, "reason": reason}


def _measured(base: dict[str, Any], timing: str, stats: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    row = empty_row(base, "ok", None, timing)
    median = stats["median"]
    row.update({"median_s": median, "iqr_s": stats.get("iqr"), "min_s": stats.get("min"),
                "max_s": stats.get("max"), "mean_s": stats.get("mean"), "stddev_s": stats.get("stddev"),
                "rounds": stats.get("rounds"), "iterations": stats.get("iterations")})
    moved = extra["bytes_moved"]
    row["bytes_moved"] = moved
    row["gbps"] = moved / median / 1e9 if median > 0 else None
    copy = extra.get("copy") or {}
    if copy.get("median") and base.get("kind") != "noop":  # a no-op moves nothing: no fraction of anything
        row["copy_median_s"] = copy["median"]
        row["copy_gbps"] = 2 * extra["tensor_bytes"] / copy["median"] / 1e9
        row["fraction_of_copy"] = row["gbps"] / row["copy_gbps"] if row["gbps"] else None
    first = extra.get("first_call_s")
    if first is not None:
        row["first_call_s"] = first
        row["compile_s"] = max(first - median, 0.0)
    row["peak_memory_bytes"] = extra.get("peak_memory_bytes")
    row["peak_memory_method"] = extra.get("peak_memory_method")
    _work(row, extra)
    return row


def _work(row: dict[str, Any], extra: dict[str, Any]) -> None:
    """The in-cache work figures of ``extra["in_cache"]`` (absent in older files: left null)."""
    work = extra.get("in_cache")
    if not work:
        return
    if "reason" in work:
        row["work_reason"] = f"the work in the cache was not measured: {work['reason']}"
        return
    elements = work["case_elements"]
    row.update({"elements": elements, "work_fixed_s": work["fixed_s"], "work_per_element_s": work["per_element_s"],
                "copy_fixed_s": work["copy_fixed_s"], "copy_per_element_s": work["copy_per_element_s"]})
    row["work_s"] = work["fixed_s"] + work["per_element_s"] * elements
    row["work_case_s"] = work.get("case_s")  # the whole case timed in turns with its cuts (cached cases only)
    row["work_cut_elements"], row["work_cut_s"] = work.get("elements"), work.get("op_s")
    row["work_ceiling"] = work_ceiling(row)


def rows_from_benchmark(bench: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for one entry of pytest-benchmark's ``benchmarks`` list: the wall-clock row from its
    statistics, and one row per extra timing (CUDA events, CUDA graph) it carries."""
    extra = bench.get("extra_info") or {}
    base = extra.get("row")
    if not isinstance(base, dict):
        raise ResultsError(f"benchmark {bench.get('fullname', bench.get('name'))!r}: extra_info.row is missing: "
                           "not a rope-suite benchmark")
    rows = [_measured(base, "wall", bench["stats"], extra)]
    for timing in extra.get("timings", []):
        if timing.get("status") == "ok":
            rows.append(_measured(base, timing["timing"], timing["stats"], extra))
        else:
            rows.append(empty_row(base, "error", timing.get("reason"), timing["timing"]))
    return rows


def rows_from_pytest_benchmark(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for every benchmark in a pytest-benchmark JSON document."""
    return [row for bench in data.get("benchmarks", []) for row in rows_from_benchmark(bench)]


def derive(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill the figures that compare rows of one run (in place; returns ``rows``):
    speedup_vs_torch_eager (torch-eager's median / this median, same case and timing) and
    machine_copy_gbps / fraction_of_machine_copy (the fastest copy of the case's tensors in
    any framework of the run, and this row's GB/s against it)."""
    eager: dict[tuple, float] = {}
    best_copy: dict[tuple, float] = defaultdict(float)
    for r in rows:
        key = (r["run_id"], r["case"], r["timing"])
        if r["status"] != "ok":
            continue
        if r["implementation"] == BASELINE and r["median_s"]:
            eager[key] = r["median_s"]
        if r.get("copy_gbps"):
            best_copy[(r["run_id"], r["shape"], r["dtype"], r["mode"])] = max(
                best_copy[(r["run_id"], r["shape"], r["dtype"], r["mode"])], r["copy_gbps"])
    for r in rows:
        if r["status"] != "ok" or r["kind"] == "noop":
            continue
        base = eager.get((r["run_id"], r["case"], r["timing"]))
        r["speedup_vs_torch_eager"] = base / r["median_s"] if base and r["median_s"] else None
        best = best_copy.get((r["run_id"], r["shape"], r["dtype"], r["mode"]))
        r["machine_copy_gbps"] = best or None
        r["fraction_of_machine_copy"] = r["gbps"] / best if best and r["gbps"] else None
    return rows


def document(runs: list[dict[str, Any]], machines: dict[str, Any], rows: list[dict[str, Any]],
             sources: list[str] = ()) -> dict[str, Any]:
    """A results document (validated)."""
    doc = {"schema": RESULTS, "schema_version": SCHEMA_VERSION, "runs": runs, "machines": machines,
           "rows": rows, "pytest_benchmark": list(sources)}
    validate(doc, RESULTS_SCHEMA, "results")
    return doc


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``path`` through a temporary file in the same directory, then rename: a reader
    never sees a half-written file, and an interrupted write leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode() if isinstance(text, str) else text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- reading inputs -----------------------------------------------------------------------------

@dataclass
class Inputs:
    """Everything a report is made of, merged from any number of files."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    machines: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)  # rope-suite check --json reports
    sources: list[str] = field(default_factory=list)

    def add_results(self, doc: dict[str, Any]) -> None:
        self.runs.extend(r for r in doc["runs"] if r not in self.runs)
        self.machines.update(doc["machines"])
        self.rows.extend(doc["rows"])


def is_check_report(data: Any) -> bool:
    items = data if isinstance(data, list) else [data]
    return bool(items) and all(isinstance(i, dict) and {"target", "verdict", "checks"} <= set(i) for i in items)


def read_stream(path: Path) -> dict[str, Any]:
    """A JSON Lines stream (header lines and rows, possibly cut short) as a results document."""
    runs, machines, rows = [], {}, []
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            if n == len(lines):  # the last line of an interrupted run may be cut short
                break
            raise ResultsError(f"{path}: line {n}: not JSON: {err}") from None
        if isinstance(item, dict) and item.get("schema") == STREAM:
            validate(item, STREAM_HEADER_SCHEMA, f"{path}: line {n}")
            runs.append(item["run"])
            machines[item["machine"]["machine_id"]] = item["machine"]
        else:
            validate(item, ROW, f"{path}: line {n}")
            rows.append(item)
    if not runs:
        raise ResultsError(f"{path}: no header line (schema {STREAM!r}): not a rope-suite benchmark stream")
    return {"schema": RESULTS, "schema_version": SCHEMA_VERSION, "runs": runs, "machines": machines,
            "rows": derive(rows)}


def load_inputs(paths: list[str | Path]) -> Inputs:
    """Read results documents, JSONL streams and ``rope-suite check --json`` reports; validate
    each (ResultsError names the file and the field)."""
    inputs = Inputs()
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise ResultsError(f"{path}: no such file")
        inputs.sources.append(str(path))
        if path.suffix == ".jsonl":
            inputs.add_results(read_stream(path))
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ResultsError(f"{path}: not readable JSON: {err}") from None
        if is_check_report(data):
            inputs.checks.extend(data if isinstance(data, list) else [data])
        elif isinstance(data, dict) and data.get("schema") == RESULTS:
            validate(data, RESULTS_SCHEMA, str(path))
            inputs.add_results(data)
        else:
            raise ResultsError(f"{path}: schema: neither a rope-suite benchmark results file (schema {RESULTS!r}) "
                               "nor a rope-suite check --json report")
    return inputs
