"""What a case that kills or wedges its process costs: only itself.

Under pytest-xdist a case that kills its worker (segfault, abort, ``os._exit``, the OOM killer)
leaves only its node id; :class:`Crashes` (on the controller) turns that into the case's
``crashed`` record with the exit status and the tail of the worker's stderr, or a ``timed out``
one when the hard-timeout watchdog (faulthandler, :func:`watch`) killed it. :func:`write_planned`
lists the cases a run will run, so a run stopped part-way knows which did not.
"""

from __future__ import annotations

import faulthandler
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from .crashes import condense_stderr, describe_exit, exit_status, read_from
from .plan import Planned, plan
from .records import case_record
from .selection import selected_profile, selected_targets


class Crashes:
    """On the xdist controller: where the running case's stderr starts, and what became of a
    worker that died in a case."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        # when the last case ended and how long stderr was then: the next case's output starts there
        # (taken at the end of the previous case, because a worker may die before its start is seen)
        self.last_end, self.offset = time.monotonic(), 0
        self.index: dict[str, tuple[str, Planned | None]] | None = None

    def case_ended(self) -> None:
        path = self.config.getoption("rope_stderr")
        self.last_end = time.monotonic()
        self.offset = os.path.getsize(path) if path and os.path.exists(path) else 0

    def case(self, nodeid: str) -> dict[str, Any] | None:
        """The record of the case ``nodeid`` (a crashed worker leaves only the node id); None if
        it is not a conformance case."""
        if self.index is None:
            items = plan(selected_profile(self.config))
            self.index = {}
            for target in selected_targets(self.config):
                self.index[target.name] = (target.name, None)
                self.index.update({f"{target.name}/{p.id}": (target.name, p) for p in items})
        param = nodeid[nodeid.find("[") + 1: -1] if nodeid.endswith("]") else None
        return case_record(*self.index[param]) if param in self.index else None

    def record(self, nodeid: str, worker: Any) -> dict[str, Any] | None:
        """The ``crashed`` or ``timed out`` record of the case ``nodeid`` whose worker died."""
        rec = self.case(nodeid)
        if rec is None:
            return None
        stderr = read_from(self.config.getoption("rope_stderr"), self.offset)
        status = exit_status(worker)
        died = describe_exit(status)
        name, case_id = rec["implementation"], rec.get("id")
        if re.search(r"^Timeout \([0-9:.]+\)!", stderr, re.MULTILINE):  # --rope-hard-timeout's faulthandler
            rec["problem"], rec["timeout_s"] = "timed out", round(time.monotonic() - self.last_end)
            headline = (f"{name}: timed out: {case_id} still running after {rec['timeout_s']} s, "
                        f"where no timeout signal reached it; its worker was killed")
        else:
            rec["problem"] = "crashed"
            headline = f"{name}: crashed while running {case_id}: the worker process {died}"
        tail = condense_stderr(stderr)
        rec.update(exit_status=status, stderr_tail=tail)
        rec["reason"] = headline + ("\n  stderr:\n" + "\n".join("    " + ln for ln in tail.splitlines()) if tail
                                    else "; it wrote nothing to stderr")
        return rec

    def write_planned(self, nodeids: list[str]) -> None:
        """--rope-planned FILE: the records, before they run, of the conformance cases this run will
        run (after -k and every deselection), written once and whole (a replaced worker collects again)."""
        path = self.config.getoption("rope_planned")
        if not path or os.path.exists(path):
            return
        records = [rec for rec in (self.case(nodeid) for nodeid in nodeids) if rec is not None]
        Path(path + ".tmp").write_text(json.dumps(records))
        os.replace(path + ".tmp", path)


def watch(seconds: float | None, stderr_fd: int | None) -> None:
    """--rope-hard-timeout: faulthandler's watchdog is a C thread, so it fires even when the case is
    stuck in C code that holds the GIL or ignores signals; it dumps the stacks and exits the process."""
    if seconds:
        faulthandler.dump_traceback_later(seconds, exit=True, file=stderr_fd)


def unwatch(seconds: float | None) -> None:
    if seconds:
        faulthandler.cancel_dump_traceback_later()
