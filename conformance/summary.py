"""The end of a pytest run's terminal output: cases per implementation with every skip reason,
the precision horizons, stale xfails/skips entries and known deviations that passed."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


def write_summary(tr: Any, records: list[dict[str, Any]], unused: list[tuple[str, str]]) -> None:
    """Write the summary of ``records`` to pytest's terminal reporter ``tr``."""
    tr.section("rope-suite: cases per implementation")
    counts: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, Counter] = defaultdict(Counter)
    for rec in records:
        counts[rec["implementation"]][rec["status"]] += 1
        if rec["status"] == "skipped":
            reasons[rec["implementation"]][rec["reason"]] += 1
    width = max(map(len, counts))
    for name, c in counts.items():
        tr.write_line(f"{name:<{width}}  passed {c['passed']:4d}  failed {c['failed']:4d}  "
                      f"skipped {c['skipped']:4d}"
                      + "".join(f"  {k} {c[k]}" for k in ("crashed", "timed out", "xfailed", "xpassed") if c[k]))
        for reason, n in reasons[name].most_common():
            tr.write_line(f"{'':<{width}}    skipped {n}: {reason}")
    horizons = [r for r in records if r.get("check") == "precision_horizon" and r.get("value") is not None]
    if horizons:
        tr.section("rope-suite: precision horizon (largest position with error < 1e-2 max|x|)")
        for r in horizons:
            tr.write_line(f"{r['implementation']:<{width}}  {r['dtype']:<9} {int(r['value']):>12,d}")
    for kind, entry in unused:
        tr.write_line(f"rope-suite: warning: --{kind}-file entry {entry!r} matches no case (stale entry?)")
    for r in records:
        if r["status"] == "xpassed":
            tr.write_line(f"rope-suite: {r['implementation']}/{r.get('id')} is listed as a known deviation but passed")
