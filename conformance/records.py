"""A conformance case's JSON record: what the case is, then what became of it.

The ``rope_record`` fixture starts a record (:func:`case_record`) and the test adds what it
measured; :func:`records_of` turns a finished test's report into its record (status and
reason; a pytest-timeout failure becomes ``timed out``); :class:`Tally` keeps them and appends
each to a JSON-lines stream as it finishes, so a killed run keeps what it ran, and
:func:`read_records` reads such a stream back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import IO, Any

import pytest

from .plan import Planned

RECORD = "rope_record"  # the user_properties key a test's record travels under (also from xdist workers)
RANDOM_ID = "random_specs"
NOT_RUN = "not run"  # a case a hung target never reached (conformance.hangs)
OBSERVED = "observed"  # a passed case that found a labelled property (checks.PropertyObserved), not a failure
FAILING = ("failed", "crashed", "timed out", NOT_RUN)  # statuses that make a target or a cell non-conformant
PROBLEM_STATUS = {"crashed": "crashed", "out of memory": "crashed", "timed out": "timed out"}
PYTEST_TIMEOUT = "from pytest-timeout"


def case_record(implementation: str, planned: Planned | None) -> dict[str, Any]:
    """A case's record before it runs: what it is (the test adds what it measured)."""
    rec: dict[str, Any] = {"implementation": implementation}
    if planned is None:
        return {**rec, "check": RANDOM_ID, "id": RANDOM_ID, "dtype": "float32"}
    c = planned.case
    rec.update(check=planned.check, id=planned.id, spec_name=c.spec_name, spec=c.spec.to_dict(), dtype=c.dtype,
               shape=list(c.shape), pattern=c.pattern,
               case={"spec_name": c.spec_name, "dtype": c.dtype, "pattern": c.pattern, "batch": c.batch,
                     "seq": c.seq, "heads": c.heads, "pos_dtype": c.pos_dtype})
    return rec


def records_of(report: pytest.TestReport) -> list[dict[str, Any]]:
    """The finished records a test report carries: from its call, or from a setup that failed
    or skipped (xdist reports a crashed case with when="???")."""
    if not (report.when == "call" or (report.when != "teardown" and not report.passed)):
        return []
    out = []
    for key, rec in report.user_properties:
        if key != RECORD:
            continue
        rec = dict(rec)
        status = "passed" if report.passed else ("skipped" if report.skipped else "failed")
        if hasattr(report, "wasxfail"):
            status = "xfailed" if report.skipped else "xpassed"
        elif status == "passed" and rec.get("property"):
            status = OBSERVED
        reason = rec.pop("reason", None) or (_reason(report) if status != "passed" else rec.get("note", ""))
        if status == "failed" and PYTEST_TIMEOUT in reason:  # pytest-timeout's signal method
            seconds = _seconds(reason)
            rec = {**rec, "problem": "timed out", "timeout_s": seconds}
            reason = (f"{rec['implementation']}: timed out: {rec.get('id')} still running after "
                      f"{'?' if seconds is None else f'{seconds:g}'} s{_where(report)}")
        status = PROBLEM_STATUS.get(rec.get("problem"), status) if status == "failed" else status
        out.append({**rec, "status": status, "reason": reason})
    return out


def _seconds(message: str) -> float | None:
    match = re.search(r"Timeout \(>([0-9.]+)s\)", message)
    return float(match[1]) if match else None


def _where(report: pytest.TestReport) -> str:
    """', at hangs.py:17': the innermost frame of the interrupted test outside pytest-timeout."""
    frames = re.findall(r"^(\S+\.py):(\d+): ", getattr(report, "longreprtext", ""), re.MULTILINE)
    frames = [f for f in frames if "pytest_timeout" not in f[0]]
    return f", at {Path(frames[-1][0]).name}:{frames[-1][1]}" if frames else ""


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    text = getattr(report, "longreprtext", "") or ""
    text = re.sub(r"^\[gw\d+\] .*\n", "", text)  # the xdist worker's header line
    failed = [line for line in text.splitlines() if line.startswith("E ")]
    # pytest.fail(..., pytrace=False) gives the message alone; a traceback has it on its E lines
    return "\n".join(line[2:].rstrip() for line in failed) if failed else text.strip()


class Tally:
    """The records of finished cases (on the controller, also under xdist), each appended to the
    JSON-lines stream (if one is open) as soon as its case finishes."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._stream: IO[str] | None = None

    def open(self, path: str) -> None:
        self._stream = open(path, "a", buffering=1)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def add(self, report: pytest.TestReport) -> None:
        new = records_of(report)
        self.records.extend(new)
        if self._stream is not None and new:
            self._stream.write("".join(json.dumps(rec) + "\n" for rec in new))
            self._stream.flush()


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a line cut short by a kill is ignored."""
    records = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def precision_classes(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """dtype -> {"angles": the least accurate angle precision its passing cases reached
    (accuracy.ANGLES), "max_abs_err": the largest error among them}: the precision class an
    implementation reaches per dtype (agreement cases, which compare with the reference)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("check") != "agreement" or not r.get("angles"):
            continue
        seen = out.setdefault(r["dtype"], {"angles": r["angles"], "max_abs_err": 0.0})
        if r["angles"] == "float32":
            seen["angles"] = "float32"
        seen["max_abs_err"] = max(seen["max_abs_err"], r.get("max_abs_err") or 0.0)
    return out


def describe_precision(classes: dict[str, dict[str, Any]]) -> str:
    """``float64: float32 angles, max error 5.8e-05; float32: ...`` (dtypes in the order given)."""
    return "; ".join(f"{dtype}: {c['angles']} angles, max error {c['max_abs_err']:.2g}" for dtype, c in classes.items())
