"""``rope-suite compare OLD NEW``: flag performance regressions between two sets of results.

Rows match on (implementation, case, timing). A regression is a case whose median time grew
by more than the threshold (NEW / OLD - 1 > threshold), or a case measured in OLD that failed
in NEW. Several runs of one case in a file: the fastest counts. Exit 1 when anything regressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from .results import Inputs

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Change:
    key: Key
    old_s: float | None
    new_s: float | None
    note: str

    @property
    def ratio(self) -> float | None:
        return self.new_s / self.old_s if self.old_s and self.new_s else None


def fastest(inputs: Inputs) -> tuple[dict[Key, float], set[Key]]:
    """(key -> fastest median, keys that failed) over every row."""
    best: dict[Key, float] = {}
    failed: set[Key] = set()
    for r in inputs.rows:
        key = (r["implementation"], r["case"], r["timing"])
        if r["status"] == "ok" and r["median_s"] is not None:
            best[key] = min(best.get(key, r["median_s"]), r["median_s"])
        elif r["status"] == "error":
            failed.add(key)
    return best, failed


def compare(old: Inputs, new: Inputs, threshold: float) -> tuple[list[Change], list[Change], list[str]]:
    """(regressions, improvements, warnings)."""
    old_best, _ = fastest(old)
    new_best, new_failed = fastest(new)
    regressions, improvements, warnings = [], [], []
    if set(old.machines) and set(new.machines) and not set(old.machines) & set(new.machines):
        warnings.append(f"the results come from different machines (old {', '.join(old.machines)}, new "
                        f"{', '.join(new.machines)}): differences include the hardware")
    for key, old_s in sorted(old_best.items()):
        if key in new_best:
            change = Change(key, old_s, new_best[key], "")
            if change.ratio - 1 > threshold:
                regressions.append(Change(key, old_s, new_best[key], f"{(change.ratio - 1) * 100:.0f}% slower"))
            elif 1 / change.ratio - 1 > threshold:
                improvements.append(Change(key, old_s, new_best[key], f"{(1 / change.ratio - 1) * 100:.0f}% faster"))
        elif key in new_failed:
            regressions.append(Change(key, old_s, None, "measured before, fails now"))
    missing = [k for k in old_best if k not in new_best and k not in new_failed]
    if missing:
        warnings.append(f"{len(missing)} case(s) measured in OLD are absent from NEW, e.g. {'/'.join(missing[0])}")
    return regressions, improvements, warnings


def format_change(change: Change) -> str:
    impl, case, timing = change.key
    old = "–" if change.old_s is None else f"{change.old_s * 1e3:.4g} ms"
    new = "–" if change.new_s is None else f"{change.new_s * 1e3:.4g} ms"
    return f"{impl:<24} {case:<40} {timing:<11} {old:>12} -> {new:>12}  {change.note}"


def report_lines(result: tuple[list[Change], list[Change], list[str]], threshold: float) -> list[str]:
    regressions, improvements, warnings = result
    lines = [f"warning: {w}" for w in warnings]
    lines.append(f"{len(regressions)} regression(s) beyond {threshold * 100:.0f}%"
                 + (":" if regressions else ""))
    lines += ["  " + format_change(c) for c in regressions]
    lines.append(f"{len(improvements)} improvement(s) beyond {threshold * 100:.0f}%" + (":" if improvements else ""))
    lines += ["  " + format_change(c) for c in improvements]
    return lines
