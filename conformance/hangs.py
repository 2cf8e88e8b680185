"""A target that hangs: ``rope-suite check`` stops its run after a few cases in a row time out.

Every timed-out case costs the whole case timeout (a little more and a fresh worker when the
faulthandler watchdog has to kill it), so a plug-in whose ``rope()`` never returns would keep a
run busy for hours. :class:`HangWatch` reads the case records as they arrive and, at ``limit``
``timed out`` records in a row (any other record starts the count again), gives the reason to
stop the target's process group. The cases planned for the run that then have no record are
reported ``not run`` (:func:`not_run`): failing, never passed.
"""

from __future__ import annotations

from typing import Any

from .records import NOT_RUN

DEFAULT_MAX_TIMEOUTS = 3


class HangWatch:
    """Counts the ``timed out`` records in a row; ``limit`` None or 0: never says stop."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.in_a_row: list[dict[str, Any]] = []

    def see(self, records: list[dict[str, Any]]) -> str | None:
        """Take the next records, in the order they were written; the reason to stop the run when
        the last ``limit`` timed out, else None."""
        for record in records:
            if record.get("status") == "timed out":
                self.in_a_row.append(record)
            else:
                self.in_a_row.clear()
        if self.limit and len(self.in_a_row) >= self.limit:
            return f"{len(self.in_a_row)} cases in a row timed out"
        return None

    def diagnosis(self, not_run: int | None) -> str:
        """One line: the target hung, which cases timed out after how long, and how many cases did
        not run (``not_run``; None when the run's plan is unknown)."""
        target = self.in_a_row[-1].get("implementation") if self.in_a_row else "?"
        seconds = sorted({r["timeout_s"] for r in self.in_a_row if r.get("timeout_s") is not None})
        after = "" if not seconds else f" after {seconds[0]:g} s" if len(seconds) == 1 else \
            f" after {seconds[0]:g} to {seconds[-1]:g} s"
        ids = ", ".join(str(r.get("id")) for r in self.in_a_row)
        rest = "the cases after them did not run" if not_run is None else f"{not_run} cases not run"
        return (f"{target}: hung: {len(self.in_a_row)} cases in a row timed out{after} ({ids}), so its run was "
                f"stopped; {rest} (--max-timeouts {self.limit})")


def not_run(planned: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``not run`` record for each planned case (a record before it runs, as the plugin writes
    them to --rope-planned) that ``records`` has no record of."""
    ran = {(r.get("implementation"), r.get("id")) for r in records}
    return [{**p, "status": NOT_RUN, "reason": f"{p['implementation']}: not run: the target hung"}
            for p in planned if (p.get("implementation"), p.get("id")) not in ran]
