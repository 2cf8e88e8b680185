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

FEATURES: tuple[str, ...] = ("rotate-half", "interleaved", "partial", "linear", "ntk", "dynamic", "yarn", "llama3",
                             "longrope", "m-rope", "2d-axial", "float64", "float16", "bfloat16", "gradient", "fused q+k")
START, END = "<!-- conformance-table:start -->", "<!-- conformance-table:end -->"
FAILING = ("failed", "crashed", "timed out", "not run")  # statuses that make a cell non-conformant


def features_of(case: dict[str, Any]) -> list[str]:
    """The features one case record is judged under."""
    if case.get("dtype") in ("float64", "float16", "bfloat16"):
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
        out.append(scaling)
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
    """The most telling line of a failure message: the error vs the bound, or the diagnosis."""
    lines = [line.strip() for line in (case.get("reason") or "").splitlines() if line.strip()]
    for key in ("error ", "returned ", "not deterministic", "was modified", "changed when", "tail elements changed"):
        hit = next((line for line in lines if key in line and not line.startswith("rerun:")), None)
        if hit:
            return hit
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


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """One row per implementation: verdict, pass/fail/skip counts, then one column per feature."""
    header = ["implementation", "verdict", "passed / failed / skipped", *FEATURES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for report in reports:
        s = report["summary"]
        row = [f"`{report['target']}`", report["verdict"], f"{s['passed']} / {s['failed']} / {s['skipped']}",
               *(c.markdown() for c in cells(report).values())]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def update_readme(readme: Path, table: str) -> None:
    """Replace the text between the table markers in ``readme`` (they must be there)."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme}: no {START} ... {END} markers to put the table between")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{table}\n{END}{after}")
