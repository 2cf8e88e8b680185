"""What bounds a measured case, from its own figures: the operation's work timed with the data
in the cache (``benchmarks.timing.work_in_cache``: a cost per call plus a cost per element),
set against the same-process copy of the case.

Let T be the time the copy takes to move the case's bytes (bytes moved / the copy's GB/s: the
copy's own time, twice it for forward+backward) and W = fixed + per_element * E the work of
the case's E elements. If the operation hid all its work behind its memory traffic it could
reach T / W of the copy (its *work ceiling*); if it hid none, T / (T + W). So:

- a ceiling under the target: the miss is the operation's own work (its instructions per
  element, or its cost per call where that is the larger part), whatever the memory does;
- a fraction of copy between the two, out of the cache: the work is not (all) hidden behind
  the memory traffic;
- a fraction under even T / (T + W): not explained by the work; the memory side is left, and the
  text gives its size: the case's time less all of W, in copies of its bytes (the traffic beyond
  the copy's, or the same traffic reaching memory more slowly: a sum of the two, which timing
  alone does not split; the machine gives no cache-miss counters here).

Cuts whose scatter about their line, extrapolated to the case's elements, leaves its work
uncertain by more than a quarter (``results.cuts_determine_work``) draw no ceiling: the text gives
their times and the uncertainty (a cut of 4 MiB stands for a case of 64 MiB only through the
line's slope, and flat cuts give none).

In the cache the copy runs at cache bandwidth and the operation's time is its work, so only
the ceiling applies. The cuts only stand for the case where they predict it: a W more than
``results.FIT`` times the case's own median means the whole case runs another way (more
threads, another code path: XLA's position table, for one), and no ceiling is drawn from them.
A case that itself fits in the cache still has one: its own time is its work (there is no
memory traffic to hide it behind), so its ceiling is its own fraction of the copy, and the cuts
only say which part, the call or the elements, is the larger. Such a case is also timed whole in
the turns of its cuts (``work_case_s``); where its own rounds fall short of what its work allows,
that figure says whether it is that slow whenever it runs, or only was during its rounds.
"""

from __future__ import annotations

from typing import Any

from .model import ms, pct
from .results import FIT, UNCERTAIN, copy_time, cuts_determine_work, work_ceiling, work_uncertainty

SLACK = 0.9  # a fraction within 10% of the no-overlap figure counts as explained by it (timing noise)


def work_text(row: dict[str, Any]) -> str:
    """What the row's work costs in the cache, and the copy's time for the case's bytes."""
    return (f"in the cache its work takes {ms(row['work_s'])} ({ms(row['work_fixed_s'])} a call + "
            f"{row['work_per_element_s'] * 1e9:.2f} ns an element; the copy: {ms(row['copy_fixed_s'])} + "
            f"{row['copy_per_element_s'] * 1e9:.2f} ns), the copy {ms(copy_time(row))} for the case's bytes")


def ceiling(row: dict[str, Any], cached: bool) -> float | None:
    """The work ceiling (``results.work_ceiling``), or for a case in the cache whose cuts do not
    predict it, its own fraction of copy: its time there is its work (module docstring)."""
    drawn = work_ceiling(row)
    if drawn is None and cached and row.get("work_s") is not None and copy_time(row) is not None:
        return row["fraction_of_copy"]
    return drawn


def _undetermined(row: dict[str, Any]) -> str:
    """Why the cuts of a row do not determine its work (``results.cuts_determine_work``)."""
    times = [ms(t) for t in row["work_cut_s"]]
    return (f"its {len(times)} cuts ({row['work_cut_elements'][0]:,} to {row['work_cut_elements'][-1]:,} elements) "
            f"took {', '.join(times[:-1])} and {times[-1]}, whose line ({ms(row['work_fixed_s'])} a call + "
            f"{row['work_per_element_s'] * 1e9:.2f} ns an element) gives the case's {row['elements']:,} elements "
            f"{ms(row['work_s'])} of work +- {ms(work_uncertainty(row))}: their scatter, extrapolated, is more than "
            f"{pct(UNCERTAIN)} of it")


def _larger_part(row: dict[str, Any]) -> str:
    return "its cost per call" if row["work_fixed_s"] > row["work_s"] / 2 else "its work per element"


def _in_turns(row: dict[str, Any]) -> str:
    """Why a case in the cache ran slower than its work allows, from the whole case timed in turns
    with its cuts (``work_case_s``): as slow there too, or only in its own rounds."""
    again = row.get("work_case_s")
    if not again:
        return "the gap is how the case runs at full size (not measured further)"
    timed = (f"timed in turns with its cuts the whole case took {ms(again)}, against {ms(row['median_s'])} in its "
             "own rounds")
    if row["median_s"] > FIT * again:
        return f"{timed}: those rounds ran slower than the same calls do in turns (the machine while they ran)"
    return f"{timed}: it is that slow at full size, where its cuts' line is not (its own shape and positions)"


def bound(row: dict[str, Any], target: float, cached: bool) -> str:
    """One sentence: what bounds ``row``'s fraction of copy against ``target`` (see the module
    docstring); where it meets the target, what its work leaves room for."""
    t = copy_time(row)
    if row.get("work_s") is None or t is None:
        return row.get("work_reason") or "not measured (no in-cache work figures in these results)"
    work, fraction = row["work_s"], row["fraction_of_copy"] or 0.0
    drawn = work_ceiling(row)
    if not cuts_determine_work(row):
        if cached:
            return (f"{'met; ' if fraction >= target else ''}its own time: the case runs in the cache, so its own "
                    f"{ms(row['median_s'])} is its work, which caps it at {pct(fraction)}; {_undetermined(row)}")
        return (f"{'met; ' if fraction >= target else ''}no bound from the work in the cache: {_undetermined(row)} "
                f"(the case took {ms(row['median_s'])}, the copy {ms(t)} for its bytes)")
    if drawn is None and cached:
        return (f"{'met; ' if fraction >= target else ''}{_larger_part(row)}: the case runs in the cache, so its own "
                f"{ms(row['median_s'])} is its work, which caps it at {pct(fraction)}; the cuts put more on it "
                f"({work_text(row)}), so they only say which part is the larger")
    if drawn is None:
        return (f"{'met; ' if fraction >= target else ''}no bound from the work in the cache: {work_text(row)}, "
                f"more than the case's own {ms(row['median_s'])} ({row['median_s'] / row['elements'] * 1e9:.2f} ns an "
                "element, all in), so the whole case runs another way than its cuts (threads, code path), and its "
                "own time does not split into work and memory")
    if fraction >= target:
        return f"met; {work_text(row)}: ceiling {pct(drawn)}"
    what = _larger_part(row)
    if drawn < target:
        return f"{what}: {work_text(row)}, which caps it at {pct(drawn)}"
    if cached:
        return f"not its work: {work_text(row)}, which would allow {pct(drawn)}; {_in_turns(row)}"
    none_hidden = t / (t + work)
    if fraction >= SLACK * none_hidden:
        return (f"its work not hidden behind the memory traffic: {work_text(row)}; {pct(none_hidden)} if none of it "
                f"were hidden, {pct(min(drawn, 1.0))} if all")
    left = row["median_s"] - work
    return (f"not its work: {work_text(row)}, {pct(none_hidden)} even with none of it hidden; the memory side: less "
            f"all its work the case takes {ms(left)}, {left / t:.1f} times the copy's time for its bytes (more traffic "
            "than the copy's, or the same traffic reaching memory more slowly)")
