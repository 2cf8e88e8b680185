"""The conformance matrix: implementation x feature, from ``rope-suite check --json`` reports.

A verdict is a public statement about someone else's code, so a cell says what the library's
own code did with that feature, and a cause is named once:

* **Features as departures.** A case departs from the plain spec (rotate-half pairs, whole head,
  no scaling, one position axis, float32, the forward call) by its features: ``interleaved``,
  ``partial``, a scaling type, ``m-rope`` / ``2d-axial``, a dtype, ``gradient``, ``fused q+k``.
  The plain cases are the ``rotate-half`` column; every other column holds the cases with that
  feature, among them the isolated ones, where it is the only departure.
* **One root cause, one cell.** A failing case is charged to a feature only if the failure does
  not also occur without it (no failing case of the same cause, the adapter's diagnosis or the
  kind of problem, has a subset of its features without that one): keras-hub's
  dynamic scaling fails in float16 too, but float16 is not charged, since its dynamic float32
  case fails as well. A column whose cases fail only through another column's cause is
  ``masked`` (or green, when its isolated cases pass). Each distinct cause gets one footnote.
* **Who computed what.** A feature resting on a part of RoPE the library leaves to its caller
  (its plug-in's ``supplied``: cos/sin tables fed by HF or by the suite) is ``not tested
  (supplied)``, never green.
* **Precision classes.** Float64 is judged against float32 angles, standard practice; the
  float64 cell states the angle accuracy reached (see conformance/accuracy.py). Observed
  properties (writes its input in place, call-order dependent) have their own column.
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
from rope_suite.conformance.records import FAILING, precision_classes
from rope_suite.conformance.spec import SCALING_TYPES

# A column per scaling type, from its record: a new rope_type gets its column without an edit here.
OTHER_DTYPES: tuple[str, ...] = tuple(d for d in FLOAT_DTYPES if d != "float32")
PLAIN = "rotate-half"
FEATURES: tuple[str, ...] = (PLAIN, "interleaved", "partial", *(t.column for t in SCALING_TYPES.values()),
                             "m-rope", "2d-axial", *OTHER_DTYPES, "gradient", "fused q+k")
# The part of RoPE (conformance.spec.PARTS) each feature rests on beyond the rotation itself.
FEATURE_PARTS: dict[str, str] = {**{t.column: "scaling" for t in SCALING_TYPES.values()},
                                 "m-rope": "positions", "2d-axial": "positions"}
START, END = "<!-- conformance-table:start -->", "<!-- conformance-table:end -->"
JUDGED_OUT = ("precision_horizon",)  # reported, not judged


def features_of(case: dict[str, Any]) -> frozenset[str] | None:
    """The features by which one case record departs from the plain spec (empty: a plain case),
    or None for a record without a spec (it is in the counts, not in a column)."""
    spec = case.get("spec")
    if not spec:
        return None
    out = set()
    if spec.get("convention") == "interleaved":
        out.add("interleaved")
    if spec.get("rotary_dim", 0) < spec.get("head_dim", 0):
        out.add("partial")
    scaling = (spec.get("scaling") or {}).get("rope_type")
    if scaling:
        if scaling not in SCALING_TYPES:
            raise ValueError(f"a case has scaling rope_type {scaling!r}, which this version of rope-suite does not "
                             f"know (known: {', '.join(SCALING_TYPES)}): the report comes from another version")
        out.add(SCALING_TYPES[scaling].column)
    axis = (spec.get("multi_axis") or {}).get("kind")
    if axis:
        out.add({"mrope": "m-rope", "axial2d": "2d-axial"}.get(axis, axis))
    if case.get("dtype") in OTHER_DTYPES:
        out.add(case["dtype"])
    out.update({"gradient": ["gradient"], "fused_qk": ["fused q+k"]}.get(case.get("check"), []))
    return frozenset(out)


def columns_of(features: frozenset[str]) -> frozenset[str]:
    """The columns a case with these features is filed under (a plain case: rotate-half)."""
    return features or frozenset({PLAIN})


def charged(features: frozenset[str], failing: set[frozenset[str]]) -> frozenset[str]:
    """The columns a failing case with ``features`` is charged to: each feature without which no
    case fails (``failing``: the feature sets of the failing cases; a failing case whose features
    are a subset of the others is the same failure without that feature). A plain case is charged
    to rotate-half; a case that fails without each of its features is charged to none (its
    cause is charged where the smaller failing cases are)."""
    if not features:
        return frozenset({PLAIN})
    return frozenset(f for f in features if not any(other <= features - {f} for other in failing))


@dataclass(frozen=True)
class Cell:
    """status: conformant | non-conformant | masked | supplied | unsupported | not installed |
    unavailable | -.
    detail: the short text shown in the cell (the precision class, the supplier, a count);
    cause: for non-conformant, the cause the table's footnote names (one per distinct cause)."""

    status: str
    detail: str = ""
    cause: str = ""

    def markdown(self, note: str = "") -> str:
        text = MARKS.get(self.status, "–")
        text = f"{text}: {self.detail}" if self.detail else text
        return f"{text} {note}" if note else text


MARKS = {"conformant": "✅ conformant", "non-conformant": "❌ non-conformant", "unsupported": "➖ unsupported",
         "masked": "➖ masked", "supplied": "⬜ not tested (supplied)", "not installed": "⬜ not installed",
         "unavailable": "⬜ unavailable"}


def cause_of(case: dict[str, Any]) -> str:
    """The footnote text for a failing case: its adapter's diagnosis when one matched (kind,
    summary, the library's code), else the check and its one-line headline."""
    found = case.get("deviation")
    if found:
        return f"{found['kind']}: {found['summary']} (`{found['where']}`)"
    parts = (case.get("id") or "").split("/")
    spec_name = parts[1] if len(parts) > 1 else "a drawn spec"
    return f"{case.get('check')} ({spec_name}, {case.get('dtype')}): {headline(case)}"


def cause_key(case: dict[str, Any]) -> str:
    """What tells one cause from another: the adapter's diagnosis, else the kind of problem (a
    wrong number, an exception, a contract violation, a crash). Charging compares a failure only
    with failures of the same cause, so one bug never masks another."""
    found = case.get("deviation")
    return f"deviation:{found['name']}" if found else f"problem:{case.get('problem') or 'wrong numbers'}"


def failing_by_cause(cases: Iterable[dict[str, Any]]) -> dict[str, set[frozenset[str]]]:
    """cause -> the feature sets of the failing cases of that cause (what :func:`charge` compares with)."""
    out: dict[str, set[frozenset[str]]] = defaultdict(set)
    for case in cases:
        features = features_of(case)
        if case["status"] in FAILING and features is not None:
            out[cause_key(case)].add(features)
    return out


def charge(case: dict[str, Any], failing: dict[str, set[frozenset[str]]]) -> frozenset[str]:
    """The columns a failing case (with a spec) is charged to, against failures of its own cause."""
    return charged(features_of(case), failing[cause_key(case)])


def cells(report: dict[str, Any]) -> dict[str, Cell]:
    """feature -> Cell for one target's report."""
    if report.get("verdict") in ("not installed", "unavailable"):
        return {feature: Cell(report["verdict"]) for feature in FEATURES}
    judged = [(c, features_of(c)) for c in report.get("checks", []) if c.get("check") not in JUDGED_OUT]
    judged = [(c, f) for c, f in judged if f is not None]
    failing = failing_by_cause(c for c, _ in judged)
    supplied = report.get("supplied") or {}
    by_column: dict[str, list[tuple[dict[str, Any], frozenset[str]]]] = defaultdict(list)
    for case, features in judged:
        for column in columns_of(features):
            by_column[column].append((case, features))
    out = {}
    for column in FEATURES:
        under = by_column.get(column, [])
        ran = [(c, f) for c, f in under if c["status"] != "skipped"]
        bad = [c for c, _ in ran if c["status"] in FAILING and column in charge(c, failing)]
        isolated = [c for c, f in ran if columns_of(f) == {column}]
        part = FEATURE_PARTS.get(column)
        if not ran:
            out[column] = Cell("unsupported") if under else Cell("-")
        elif bad:  # a failure is shown even where a part is supplied: the library's share may be the cause
            given = f" ({part} supplied by {supplied[part]})" if part in supplied else ""
            out[column] = Cell("non-conformant", f"{len(bad)}/{len(under)} cases{given}", cause_of(bad[0]))
        elif part in supplied:
            out[column] = Cell("supplied", f"{part} by {supplied[part]}")
        elif any(c["status"] in FAILING for c, _ in ran) and not any(c["status"] not in FAILING for c in isolated):
            out[column] = Cell("masked", "every case also fails without this feature")
        else:
            out[column] = Cell("conformant", _precision(report, column))
    return out


def _precision(report: dict[str, Any], column: str) -> str:
    """For the float64 column, the angle accuracy reached (its precision class)."""
    if column != "float64":
        return ""
    found = precision_classes(report.get("checks", [])).get("float64")
    return f"{found['angles']} angles, max error {found['max_abs_err']:.2g}" if found else ""


def headline(case: dict[str, Any]) -> str:
    """One line for a failed case: from its mismatch fields (a wrong number: the cause, or the
    worst element's error against the bound), else the first line of its diagnosis (a contract
    violation, an exception, a crash or a hang, which the runner states in one line)."""
    found = case.get("mismatch")
    if found:
        return Mismatch(**found).headline()
    lines = [line.strip() for line in (case.get("reason") or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def short(text: str, limit: int = 110) -> str:
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
    """One line saying which run(s) the table shows: date, profile, suite version, and the commit
    each row ran at, with how many rows (rows rerun or added later name their own commit; empty
    for reports written before check recorded its run)."""
    runs: dict[str, dict[str, int]] = {}  # date, command, version -> commit -> rows
    for report in reports:
        run = report.get("run")
        if not run:
            continue
        what = (f"{run.get('created', '?')[:10]}, `rope-suite check --profile {run.get('profile', '?')}` "
                f"(rope-suite {run.get('rope_suite_version') or '?'})")
        commit = (run.get("git_commit") or "?")[:10] + (" with local changes" if run.get("git_dirty") else "")
        commits = runs.setdefault(what, {})
        commits[commit] = commits.get(commit, 0) + 1
    parts = []
    for what, commits in sorted(runs.items()):  # by date: each key starts with it
        if len(runs) == 1 and len(commits) == 1:
            parts.append(f"{what}, commit {next(iter(commits))}")
        else:
            parts.append(f"{what}, " + ", ".join(f"{n} row{'s' if n > 1 else ''} at commit {c}"
                                                  for c, n in commits.items()))
    return ("Recorded " + "; ".join(parts) + ".") if parts else ""


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """The run's provenance, then one row per implementation: what it ran on (library versions),
    verdict, pass/fail/skip counts, the properties observed, then one column per feature; each
    distinct cause of a red cell once, as a numbered footnote under the table."""
    header = ["implementation", "versions", "verdict", "passed / failed / skipped", "properties", *FEATURES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: dict[str, int] = {}
    for report in reports:
        s = report["summary"]
        versions = ", ".join(f"{k} {v}" for k, v in (report.get("versions") or {}).items()) or "–"
        verdict = report["verdict"]
        if verdict == "not installed" and report.get("not_installed"):
            verdict = f"not installed (`{report['not_installed']['install']}`)"
        row = [f"`{report['target']}`", versions, verdict, f"{s['passed']} / {s['failed']} / {s['skipped']}",
               "; ".join(report.get("properties") or []) or "–"]
        for cell in cells(report).values():
            note = ""
            if cell.cause:
                key = f"`{report['target']}`: {short(cell.cause, 400)}"
                note = f"[{notes.setdefault(key, len(notes) + 1)}]"
            row.append(cell.markdown(note))
        lines.append("| " + " | ".join(row) + " |")
    caption = provenance(reports)
    footnotes = [f"[{n}] {text}  " for text, n in notes.items()]
    return "\n".join(([caption, ""] if caption else []) + lines + ([""] + footnotes if footnotes else []))


def update_readme(readme: Path, text: str, markers: tuple[str, str] = (START, END)) -> None:
    """Replace the text between ``markers`` (the table's, by default) in ``readme``; they must be there."""
    start, end = markers
    content = readme.read_text()
    if start not in content or end not in content:
        raise ValueError(f"{readme}: no {start} ... {end} markers to put the generated text between")
    before, rest = content.split(start, 1)
    _, after = rest.split(end, 1)
    readme.write_text(f"{before}{start}\n{text}\n{end}{after}")
