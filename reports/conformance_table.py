"""The conformance matrix: implementation x feature, from ``rope-suite check --json`` reports.

Float32 cases are filed under the features their spec exercises (a Llama 3.1 case under
``llama3``, an unscaled GPT-J case under ``interleaved`` and ``partial``); cases in another dtype under that dtype alone, so a library
whose float64 path has float32 accuracy shows it in the float64 column and nowhere else. A cell is ``conformant`` when every
case under it ran and passed, ``non-conformant`` with the first failing check and the reason
when any failed, and ``unsupported`` when every case was skipped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rope_suite.conformance.frameworks import FLOAT_DTYPES
from rope_suite.conformance.mismatch import Mismatch
from rope_suite.conformance.records import FAILING
from rope_suite.conformance.spec import SCALING_TYPES

# A column per scaling type, from its record: a new rope_type gets its column without an edit here.
# The dtypes other than float32 get a column each; float32 cases are filed under their features.
OTHER_DTYPES: tuple[str, ...] = tuple(d for d in FLOAT_DTYPES if d != "float32")
FEATURES: tuple[str, ...] = ("rotate-half", "interleaved", "partial", *(t.column for t in SCALING_TYPES.values()),
                             "m-rope", "2d-axial", *OTHER_DTYPES, "gradient", "fused q+k")
START, END = "<!-- conformance-table:start -->", "<!-- conformance-table:end -->"


def features_of(case: dict[str, Any]) -> list[str]:
    """The features one case record is judged under."""
    if case.get("dtype") in OTHER_DTYPES:
        return [case["dtype"]]
    spec = case.get("spec") or {}
    out = []
    axis = (spec.get("multi_axis") or {}).get("kind")
    scaling = (spec.get("scaling") or {}).get("rope_type")
    if axis == "mrope":
        out.append("m-rope")
    elif axis == "axial2d":
        out.append("2d-axial")
    if scaling:
        if scaling not in SCALING_TYPES:
            raise ValueError(f"a case has scaling rope_type {scaling!r}, which this version of rope-suite does not "
                             f"know (known: {', '.join(SCALING_TYPES)}): the report comes from another version")
        out.append(SCALING_TYPES[scaling].column)
    if spec and not (axis or scaling):  # a scaling or axis failure belongs to its own column
        out.append("rotate-half" if spec.get("convention") == "half" else "interleaved")
        if spec.get("rotary_dim", 0) < spec.get("head_dim", 0):
            out.append("partial")
    if case.get("check") == "gradient":
        out.append("gradient")
    if case.get("check") == "fused_qk":
        out.append("fused q+k")
    return out


@dataclass(frozen=True)
class Cell:
    status: str  # conformant | non-conformant | unsupported | -
    detail: str = ""

    def markdown(self) -> str:
        mark = {"conformant": "✅ conformant", "non-conformant": "❌ non-conformant", "unsupported": "➖ unsupported"}
        text = mark.get(self.status, "–")
        return f"{text}: {self.detail}" if self.detail else text


def cells(report: dict[str, Any]) -> dict[str, Cell]:
    """feature -> Cell for one target's report."""
    by_feature: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case in report.get("checks", []):
        if case.get("check") == "precision_horizon":
            continue  # reported, not judged
        for feature in features_of(case):
            by_feature[feature].append(case)
    out = {}
    for feature in FEATURES:
        cases = by_feature.get(feature, [])
        failed = [c for c in cases if c["status"] in FAILING]
        ran = [c for c in cases if c["status"] != "skipped"]
        if failed:
            first = failed[0]
            out[feature] = Cell("non-conformant", f"{len(failed)}/{len(cases)} cases fail, e.g. {first.get('check')} "
                                                  f"({first.get('dtype')}): {_short(headline(first))}")
        elif ran:
            out[feature] = Cell("conformant")
        elif cases:
            out[feature] = Cell("unsupported")
        else:
            out[feature] = Cell("-")
    return out


def headline(case: dict[str, Any]) -> str:
    """One line for a failed case: from its mismatch fields (a wrong number: the cause, or the
    worst element's error against the bound), else the first line of its diagnosis (a contract
    violation, an exception, a crash or a hang, which the runner states in one line)."""
    found = case.get("mismatch")
    if found:
        return Mismatch(**found).headline()
    lines = [line.strip() for line in (case.get("reason") or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def _short(text: str, limit: int = 110) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_reports(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Reports from ``rope-suite check --json`` files (one object, or a list of them)."""
    reports: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a readable rope-suite check report: {err}") from None
        items = data if isinstance(data, list) else [data]
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not {"target", "verdict", "checks"} <= set(item):
                raise ValueError(f"{path}: report {i} lacks target/verdict/checks: not from rope-suite check --json")
        reports.extend(items)
    return reports


def provenance(reports: list[dict[str, Any]]) -> str:
    """One line saying which run(s) the table shows: date, profile, suite version and commit
    (empty for reports written before check recorded its run)."""
    runs = {json.dumps(r["run"], sort_keys=True): r["run"] for r in reports if r.get("run")}
    parts = []
    for run in runs.values():
        commit = (run.get("git_commit") or "")[:10] + (" with local changes" if run.get("git_dirty") else "")
        parts.append(f"{run.get('created', '?')[:10]}, `rope-suite check --profile {run.get('profile', '?')}` "
                     f"(rope-suite {run.get('rope_suite_version') or '?'}" + (f", commit {commit}" if commit else "") + ")")
    return ("Recorded " + "; ".join(parts) + ".") if parts else ""


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """The run's provenance, then one row per implementation: what it ran on (library versions),
    verdict, pass/fail/skip counts, then one column per feature."""
    header = ["implementation", "versions", "verdict", "passed / failed / skipped", *FEATURES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for report in reports:
        s = report["summary"]
        versions = ", ".join(f"{k} {v}" for k, v in (report.get("versions") or {}).items()) or "–"
        row = [f"`{report['target']}`", versions, report["verdict"],
               f"{s['passed']} / {s['failed']} / {s['skipped']}", *(c.markdown() for c in cells(report).values())]
        lines.append("| " + " | ".join(row) + " |")
    caption = provenance(reports)
    return "\n".join(([caption, ""] if caption else []) + lines)


def update_readme(readme: Path, table: str) -> None:
    """Replace the text between the table markers in ``readme`` (they must be there)."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme}: no {START} ... {END} markers to put the table between")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{table}\n{END}{after}")
