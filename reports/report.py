"""The comparison report's content, independent of its format: sections of tables and figures
built from merged inputs (:class:`rope_suite.reports.results.Inputs`). :mod:`rope_suite.reports.render` writes it as
self-contained HTML and as Markdown.

Sections: the headline figures (the issue's performance targets, as measured), the
conformance matrix, the findings in third-party code, throughput versus sequence length, fraction of the copy roofline,
precision horizons, compile times, the no-op floor, every measured case, what was skipped or
failed and why, and the machines.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from rope_suite.conformance.frameworks import FLOAT_DTYPES as DTYPES

from . import plots
from .bounds import bound, ceiling
from .conformance_table import FEATURES, cells
from .findings import findings as distinct
from .model import Cell, Figure, Report, Section, Table, ms, num, ok_rows, pct, runs
from .results import Inputs

# --- sections ---------------------------------------------------------------------------------

# The CPU targets: the first-party implementation closest to its same-process copy, per case,
# at >= OUT_OF_CACHE of the copy's bandwidth where the bytes exceed the last-level cache and >=
# IN_CACHE where they fit; every first-party JAX and TensorFlow implementation at >= OWN_COPY of
# its own framework's copy on every case.
OUT_OF_CACHE, IN_CACHE, OWN_COPY = 0.8, 0.6, 0.5
PHASES = ("decode", "prefill", "long", "gqa", "vision")


def headline(inputs: Inputs) -> Section:
    s = Section("headline", "Headline figures (performance targets, as measured)")
    s.intro.append("Fraction of copy: achieved GB/s (bytes that must move / median time) over the GB/s of an "
                   "out-of-place copy of the same tensors in the same framework, timed in the same process. Of "
                   "machine copy: over the fastest such copy in any framework of the run. CPU targets, per case "
                   f"(every dtype, direction and mode): the first-party implementation closest to its copy at >= "
                   f"{OUT_OF_CACHE:.0%} of it where the bytes the case moves exceed the CPU's last-level cache, >= "
                   f"{IN_CACHE:.0%} where they fit (the copy then runs at cache bandwidth); each first-party JAX and "
                   f"TensorFlow implementation at >= {OWN_COPY:.0%} of its own framework's copy. Closest is judged "
                   "by the fraction of copy, the speed the same-process copy normalises: each implementation runs "
                   "in its own process, minutes apart, and a shared machine's memory bandwidth drifts between them "
                   "(the least median time is shown beside it). What bounds a case: its work timed with the data "
                   "in the cache (a cost per call plus one per element, from four cuts of the case) against the "
                   "copy's time for the case's bytes; the work ceiling is the fraction of copy the operation would "
                   "reach if all its work were hidden behind its memory traffic, shown where the cuts predict the "
                   "case, and for a case in the cache its own fraction where they do not: its time there is its "
                   "work (see rope_suite.reports.bounds).")
    cases, groups = cpu_cases(inputs)
    if cases.rows:
        s.blocks.append(("CPU: the targets per dtype, direction and mode (the lowest case decides)", groups))
        s.blocks.append(("CPU: every case, the first-party implementation closest to its copy", cases))
    own = framework_targets(inputs)
    if own.rows:
        s.blocks.append((f"JAX and TensorFlow first-party against their own framework's copy (target "
                         f"{OWN_COPY:.0%})", own))
    gpu = Table(["run", "case", "timing", "triton", "liger", "torch-compile", "85% target", "triton fastest"], [])
    for run_id, label in runs(inputs):
        rows = [r for r in ok_rows(inputs.rows, run_id=run_id, dtype="bfloat16", device="cuda", direction="forward")
                if r["phase"] == "prefill"]
        for case, timing in sorted({(r["case"], r["timing"]) for r in rows}):
            by = {r["implementation"]: r for r in rows if r["case"] == case and r["timing"] == timing}
            tri = by.get("triton")
            met = tri is not None and (tri["fraction_of_copy"] or 0) >= 0.85
            fastest = tri is not None and all(tri["median_s"] <= by[o]["median_s"] for o in ("liger", "torch-compile")
                                              if o in by)
            gpu.rows.append([Cell(label), Cell(case), Cell(timing),
                             *(Cell(pct(by.get(i, {}).get("fraction_of_copy")), "num")
                               for i in ("triton", "liger", "torch-compile")),
                             Cell("met" if met else "not met", "ok" if met else "bad"),
                             Cell("yes" if fastest else "no", "ok" if fastest else "bad")])
    if gpu.rows:
        s.blocks.append(("CUDA, bfloat16 prefill (target: Triton >= 85% of copy, faster than Liger and torch.compile)",
                         gpu))
    else:
        s.intro.append("No CUDA rows in these results: the GPU targets are not measured here.")
    return s


def combination(row: dict[str, Any]) -> str:
    return f"{row['dtype']} {row['direction']} {row['mode']}"


def _order(row: dict[str, Any]) -> tuple:
    return (DTYPES.index(row["dtype"]) if row["dtype"] in DTYPES else 9, row["direction"], row["mode"],
            PHASES.index(row["phase"]) if row["phase"] in PHASES else 9, row["batch"] * row["seq"], row["case"])


def in_cache(row: dict[str, Any], machines: dict[str, dict[str, Any]]) -> bool:
    """Whether the case's bytes fit in its machine's last-level cache (unknown: judged as not)."""
    llc = machines.get(row["machine_id"], {}).get("llc_bytes")
    return bool(llc) and row["bytes_moved"] <= llc


def cpu_cases(inputs: Inputs) -> tuple[Table, Table]:
    """(every CPU case with its closest first-party implementation and target, the targets per
    dtype, direction, mode and cache side with the lowest case of each)."""
    cases = Table(["run", "case", "bytes", "closest first-party", "median", "GB/s", "fraction of copy",
                   "of machine copy", "least median (first-party)", "work ceiling", "what bounds it", "target",
                   "result"], [])
    judged: dict[tuple[str, bool], list[tuple[dict[str, Any], str]]] = defaultdict(list)  # (combination, fits)
    for run_id, label in runs(inputs):
        rows = [r for r in ok_rows(inputs.rows, run_id=run_id, timing="wall", device="cpu", kind="first-party")]
        for case in sorted({r["case"] for r in rows}, key=lambda c: _order(next(r for r in rows if r["case"] == c))):
            here = [r for r in rows if r["case"] == case]
            best = max(here, key=lambda r: (r["fraction_of_copy"] or 0, -r["median_s"]))
            least = min(here, key=lambda r: r["median_s"])
            cached = in_cache(best, inputs.machines)
            target = IN_CACHE if cached else OUT_OF_CACHE
            met = (best["fraction_of_copy"] or 0) >= target
            cases.rows.append([Cell(label), Cell(case), Cell(working_set(best, inputs.machines), "num"),
                               Cell(best["implementation"]), Cell(ms(best["median_s"]), "num"),
                               Cell(num(best["gbps"]), "num"), Cell(pct(best["fraction_of_copy"]), "num"),
                               Cell(pct(best["fraction_of_machine_copy"]), "num"),
                               Cell(f"{least['implementation']}: {ms(least['median_s'])}, "
                                    f"{pct(least['fraction_of_copy'])} of copy"),
                               *_bound_cells(best, target, cached),
                               Cell(pct(target), "num"), Cell("met" if met else "not met", "ok" if met else "bad")])
            judged[(combination(best), cached)].append((best, run_id))
    groups = Table(["dtype direction mode", "bytes", "cases", "lowest: case", "closest first-party", "fraction of copy",
                    "work ceiling", "what bounds it", "target", "result"], [])
    for key in sorted(judged, key=lambda k: (_order(judged[k][0][0])[:3], k[1])):
        best, run_id = min(judged[key], key=lambda b: b[0]["fraction_of_copy"] or 0)
        target = IN_CACHE if key[1] else OUT_OF_CACHE
        met = (best["fraction_of_copy"] or 0) >= target
        groups.rows.append([Cell(key[0]), Cell("fit in the LLC" if key[1] else "exceed the LLC (or unknown)"),
                            Cell(str(len(judged[key])), "num"), Cell(f"{best['case']} (run {run_id})"),
                            Cell(best["implementation"]), Cell(pct(best["fraction_of_copy"]), "num"),
                            *_bound_cells(best, target, key[1]),
                            Cell(pct(target), "num"), Cell("met" if met else "not met", "ok" if met else "bad")])
    return cases, groups


def _bound_cells(row: dict[str, Any], target: float, cached: bool) -> list[Cell]:
    """The work ceiling and what bounds the case (:func:`rope_suite.reports.bounds.bound`)."""
    return [Cell(pct(ceiling(row, cached)), "num"), Cell(bound(row, target, cached))]


def framework_targets(inputs: Inputs) -> Table:
    """Each first-party JAX and TensorFlow implementation per dtype, direction and mode: its lowest
    fraction of its own framework's copy over the cases and runs, against OWN_COPY."""
    table = Table(["implementation", "dtype direction mode", "cases", "lowest: case", "fraction of copy",
                   "work ceiling", "what bounds it", "target", "result"], [])
    rows = [r for r in ok_rows(inputs.rows, timing="wall", device="cpu", kind="first-party")
            if r["framework"] in ("jax", "tensorflow")]
    for impl in sorted({r["implementation"] for r in rows}):
        mine = [r for r in rows if r["implementation"] == impl]
        for combo in sorted({combination(r) for r in mine},
                            key=lambda c: _order(next(r for r in mine if combination(r) == c))[:3]):
            here = [r for r in mine if combination(r) == combo]
            worst = min(here, key=lambda r: r["fraction_of_copy"] or 0)
            met = (worst["fraction_of_copy"] or 0) >= OWN_COPY
            table.rows.append([Cell(impl), Cell(combo), Cell(str(len(here)), "num"),
                               Cell(f"{worst['case']} (run {worst['run_id']})"),
                               Cell(pct(worst["fraction_of_copy"]), "num"),
                               *_bound_cells(worst, OWN_COPY, in_cache(worst, inputs.machines)),
                               Cell(pct(OWN_COPY), "num"),
                               Cell("met" if met else "not met", "ok" if met else "bad")])
    return table


def working_set(row: dict[str, Any], machines: dict[str, dict[str, Any]]) -> str:
    """The bytes a case must move, and whether they fit in the machine's last-level cache."""
    size = row["bytes_moved"] / 2**20
    llc = machines.get(row["machine_id"], {}).get("llc_bytes")
    if not llc:
        return f"{size:.0f} MiB"
    where = "fits in" if in_cache(row, machines) else "exceeds"
    return f"{size:.0f} MiB ({where} {llc / 2**20:.0f} MiB LLC)"


def floor(inputs: Inputs) -> Section:
    s = Section("floor", "Harness floor (no-op implementations)")
    s.intro.append("A no-op returns x unchanged: its time is the call, the synchronisation and the timer. "
                   "Cases near it are bound by overhead, not by memory.")
    table = Table(["run", "implementation", "timing", "fastest case", "median"], [])
    for run_id, label in runs(inputs):
        best: dict[tuple[str, str], dict[str, Any]] = {}
        for r in ok_rows(inputs.rows, run_id=run_id, kind="noop", direction="forward"):
            key = (r["implementation"], r["timing"])
            if key not in best or r["median_s"] < best[key]["median_s"]:
                best[key] = r
        for (impl, timing), r in sorted(best.items()):
            table.rows.append([Cell(label), Cell(impl), Cell(timing), Cell(r["case"]),
                               Cell(ms(r["median_s"]), "num")])
    s.blocks.append(("", table))
    return s


def conformance(inputs: Inputs) -> Section:
    s = Section("conformance", "Conformance matrix")
    if not inputs.checks:
        s.intro.append("No rope-suite check --json report among the inputs.")
        return s
    s.intro.append("Implementation x feature from rope-suite check (read as README's \"How to read it\"): green "
                   "conformant (float64: the angle accuracy reached), red non-conformant, charged to the feature "
                   "that causes it, each distinct cause once in the notes below; masked: fails only through "
                   "another cause; not tested (supplied): the library does not compute that part; grey "
                   "unsupported (every case skipped).")
    table = Table(["implementation", "verdict", "passed / failed / skipped", "properties", *FEATURES], [])
    reasons = Table(["note", "implementation", "cause"], [])
    css = {"conformant": "ok", "non-conformant": "bad", "unsupported": "na", "masked": "na", "supplied": "na"}
    notes: dict[str, str] = {}
    for report in inputs.checks:
        summary = report.get("summary") or {}
        row = [Cell(str(report["target"])), Cell(str(report["verdict"]), css.get(report["verdict"], "")),
               Cell(f"{summary.get('passed')} / {summary.get('failed')} / {summary.get('skipped')}", "num"),
               Cell("; ".join(report.get("properties") or []) or "–")]
        for cell in cells(report).values():
            text = f"{cell.status}: {cell.detail}" if cell.detail else cell.status
            if cell.cause:  # the cause goes into the notes below, once; the cell points at it
                key = f"{report['target']}: {cell.cause}"
                if key not in notes:
                    notes[key] = f"[{len(notes) + 1}]"
                    reasons.rows.append([Cell(notes[key]), Cell(str(report["target"])), Cell(cell.cause)])
                text = f"{text} {notes[key]}"
            row.append(Cell(text, css.get(cell.status, "none"), cell.cause))
        table.rows.append(row)
    s.blocks.append(("", table))
    if reasons.rows:
        s.blocks.append(("The cause of each non-conformant cell", reasons))
    return s


def findings(inputs: Inputs) -> Section:
    s = Section("findings", "Findings in third-party code")
    found = distinct(inputs.checks)
    if not found:
        s.intro.append("No deviation of third-party code among the check reports.")
        return s
    s.intro.append("One row per distinct deviation (rope-suite findings writes a standalone reproduction script "
                   "for each).")
    table = Table(["implementation", "class", "what is wrong", "the library's code", "cases", "error"], [])
    for f in found:
        table.rows.append([Cell(f.target), Cell(f.kind), Cell(f.summary), Cell(f.where or "–"),
                           Cell(str(len(f.cases)), "num"), Cell(f.error)])
    s.blocks.append(("", table))
    return s


def horizons(inputs: Inputs) -> Section:
    s = Section("horizons", "Precision horizon")
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for report in inputs.checks:
        for case in report.get("checks", []):
            if case.get("check") == "precision_horizon" and case.get("value") is not None:
                dtype, value = case.get("dtype"), float(case["value"])
                current = found[str(report["target"])].get(dtype)
                found[str(report["target"])][dtype] = value if current is None else min(current, value)
    if not found:
        s.intro.append("No precision horizons among the inputs (they come from rope-suite check --json reports).")
        return s
    s.intro.append("The largest position 2^k + 1 up to which the error stays under 1% of max|x| (and at every "
                   "smaller probe), per implementation and dtype; -1: not even at the first probe.")
    s.blocks.append(("", Figure("precision-horizons", "precision horizon per implementation and dtype",
                                plots.precision_horizons(found, "Precision horizon per implementation and dtype"))))
    dtypes = [d for d in DTYPES if any(d in v for v in found.values())]
    s.blocks.append(("", Table(["implementation", *dtypes],
                               [[Cell(impl), *(Cell(num(found[impl].get(d), "{:,.0f}"), "num") for d in dtypes)]
                                for impl in sorted(found)])))
    return s


def build(inputs: Inputs, title: str = "rope-suite: RoPE conformance and performance report") -> Report:
    """Every section, in reading order, from the merged inputs."""
    from . import performance

    sections = [headline(inputs), conformance(inputs), findings(inputs), performance.throughput(inputs), performance.roofline(inputs),
                horizons(inputs), performance.compile_times(inputs), floor(inputs), performance.cases(inputs),
                performance.problems(inputs), performance.machines(inputs)]
    generated = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Report(title, generated, list(inputs.sources), sections)
