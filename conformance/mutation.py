"""``rope-suite mutants``: the mutation catalogue through the checks, and the mutation score.

Every mutant in ``rope_suite.implementations.mutants`` is one real, cited bug. All run in one pytest
subprocess (they are small torch plug-ins); a mutant is caught when at least one of its cases
fails or observes a labelled property (a mutant that writes x in place or keeps state). The
score is caught / total; the exit code is 0 only at 100%.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .check_command import run_pytest
from .records import OBSERVED


def run_mutants(profile: str = "quick", json_path: str | None = None, pytest_args: list[str] | None = None) -> int:
    """Run every mutant through the checks (``pytest_args`` go to pytest, e.g. ``-k``); print each
    with the checks that caught it and the score; write ``json_path``; 0 only when all are caught."""
    from rich.console import Console

    from rope_suite.implementations.mutants import CATALOGUE

    console = Console(highlight=False, soft_wrap=True)
    targets = [m.target for m in CATALOGUE]
    with console.status(f"running {len(targets)} mutants through the checks ({profile} profile)"):
        runs = run_pytest(targets, profile, list(pytest_args or []))
    rows: list[dict[str, Any]] = []
    for mutant, run in zip(CATALOGUE, runs):
        caught_by = Counter(r.get("check") for r in run.records if r["status"] in ("failed", OBSERVED))
        rows.append({"mutant": mutant.name, "bug": mutant.bug, "source": mutant.source, "caught": bool(caught_by),
                     "caught_by": dict(caught_by.most_common()), "cases": len(run.records),
                     "load_error": run.load_error})
    width = max(len(r["mutant"]) for r in rows)
    for r in rows:
        mark = "[green]caught[/green]" if r["caught"] else "[red]MISSED[/red]"
        checks = ", ".join(f"{c} ({n})" for c, n in r["caught_by"].items()) or (r["load_error"] or "no check failed")
        console.print(f"{r['mutant']:<{width}}  {mark}  {checks}")
        console.print(f"{'':<{width}}          {r['bug']} [{r['source']}]", markup=False)
    caught = sum(r["caught"] for r in rows)
    score = 100.0 * caught / len(rows) if rows else 0.0
    console.print(f"mutation score: {caught}/{len(rows)} caught ({score:.0f}%)")
    if json_path:
        Path(json_path).write_text(json.dumps({"profile": profile, "score": score, "mutants": rows}, indent=1))
    return 0 if rows and caught == len(rows) else 1
