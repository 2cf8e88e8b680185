"""What bounds a measured case, from its own figures: the operation's work timed with the data
in the cache (``benchmarks.timing.work_in_cache``: a cost per call plus a cost per element),
set against the same-process copy of the case.

For a case of E elements whose copy takes C, the work alone takes W = fixed + per_element * E.
If the operation hid all its work behind its memory traffic it could reach C / W of the copy
(its *work ceiling*, capped by nothing else); if it hid none, C / (C + W). So:

- a ceiling under the target: the miss is the operation's own work (its instructions per
  element, or its cost per call where that is the larger part), whatever the memory does;
- a fraction of copy between the two, out of the cache: the work is not (all) hidden behind
  the memory traffic;
- a fraction under even C / (C + W): not explained by the work; the memory side (traffic
  beyond the copy's, or access patterns) is left, and the text says that it is not measured.

In the cache the copy runs at cache bandwidth and the operation's time is its work, so only
the ceiling applies.
"""

from __future__ import annotations

from typing import Any

from .model import ms, pct

SLACK = 0.9  # a fraction within 10% of the no-overlap figure counts as explained by it (timing noise)


def work_text(row: dict[str, Any]) -> str:
    """What the row's work costs in the cache, and the copy's time at full size."""
    return (f"in the cache its work takes {ms(row['work_s'])} ({ms(row['work_fixed_s'])} a call + "
            f"{row['work_per_element_s'] * 1e9:.2f} ns an element; the copy: {ms(row['copy_fixed_s'])} + "
            f"{row['copy_per_element_s'] * 1e9:.2f} ns), the copy {ms(row['copy_median_s'])} at full size")


def bound(row: dict[str, Any], target: float, cached: bool) -> str:
    """One sentence: what bounds ``row``'s fraction of copy against ``target`` (see the module
    docstring); where it meets the target, what its work leaves room for."""
    if row.get("work_s") is None or not row.get("copy_median_s"):
        return row.get("work_reason") or "not measured (no in-cache work figures in these results)"
    copy, work, fraction = row["copy_median_s"], row["work_s"], row["fraction_of_copy"] or 0.0
    ceiling = copy / work
    what = "its cost per call" if row["work_fixed_s"] > work / 2 else "its work per element"
    if fraction >= target:
        return f"met; {work_text(row)}: ceiling {pct(ceiling)}"
    if ceiling < target:
        return f"{what}: {work_text(row)}, which caps it at {pct(ceiling)}"
    if cached:
        return (f"not its work: {work_text(row)}, which would allow {pct(ceiling)}; the gap is how the case runs at "
                "full size (not measured further)")
    none_hidden = copy / (copy + work)
    if fraction >= SLACK * none_hidden:
        return (f"its work not hidden behind the memory traffic: {work_text(row)}; {pct(none_hidden)} if none of it "
                f"were hidden, {pct(min(ceiling, 1.0))} if all")
    return (f"not its work: {work_text(row)}, {pct(none_hidden)} even with none of it hidden; the memory side "
            "(not measured further)")
