"""A pytest subprocess, followed: how ``rope-suite check`` and ``rope-suite bench`` run each target.

:func:`follow` starts the command in a session of its own, so the command and everything it
starts (pytest-xdist's workers included) are one process group, and, on Linux, with a
parent-death signal: if this process dies, even by SIGKILL, the kernel kills the command, and
the conformance plugin arms the same signal in the command's xdist workers (see
:func:`die_with_parent`), so nothing outlives the run that started it. While the command runs,
the records appended to its JSON-lines stream are handed to a callback every ``POLL_S``
seconds; the callback stops the command by returning a reason, and an overall timeout stops it
too. However :func:`follow` ends (the command exited, was stopped, or this process was
interrupted), no process of the group is left running.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, IO

POLL_S = 0.2
GRACE_S = 2.0  # between SIGTERM and SIGKILL when stopping a process group
FOLLOWED = "ROPE_SUITE_FOLLOWED"  # set in the command's environment: its xdist workers die with it too
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

Records = list[dict[str, Any]]


def _prctl() -> Any:
    """libc's prctl, resolved now, in the parent: after fork, the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent (pid ``parent``) dies; if the parent
    died before the signal was armed, die now. A no-op where there is no prctl (not Linux): there
    a killed run's processes are stopped only when it can clean up (SIGTERM, Ctrl-C)."""
    if _PRCTL is None:
        return
    _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # reparented already: the signal will never come
        os.kill(os.getpid(), signal.SIGKILL)


class Tail:
    """The JSON objects appended to a JSON-lines file after the point it had reached when this was
    made; a line still being written waits for its newline, a line that is not an object is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def read(self) -> Records:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        records = []
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


@dataclass(frozen=True)
class Ended:
    """How a followed command ended: its exit status (negative: killed by that signal), and why
    :func:`follow` stopped it (the callback's reason or the timeout), None if it exited by itself."""

    returncode: int
    stopped: str | None = None


def follow(command: list[str], read: Callable[[], Records], on_records: Callable[[Records], str | None], *,
           stdout: IO[Any] | int | None, stderr: IO[Any] | int | None = None, env: dict[str, str] | None = None,
           timeout: float | None = None) -> Ended:
    """Run ``command`` (stdin empty, output to ``stdout``/``stderr``, environment ``env`` or this
    one's) until it exits; pass each batch of new records, ``read()``, to ``on_records``, and stop
    the command when that returns a reason or after ``timeout`` seconds. The records still unread
    when it ends are passed too (that return value is ignored). Returns when every process of the
    command's group is gone, also when an exception (KeyboardInterrupt, SystemExit) interrupts it."""
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            env={**(os.environ if env is None else env), FOLLOWED: "1"},
                            start_new_session=True, preexec_fn=partial(die_with_parent, os.getpid()))
    deadline = None if timeout is None else time.monotonic() + timeout
    stopped = None
    try:
        while stopped is None and proc.poll() is None:
            time.sleep(POLL_S)
            stopped = on_records(read())
            if stopped is None and deadline is not None and time.monotonic() > deadline:
                stopped = f"still running after {timeout:g} s"
    finally:
        _end_group(proc)
    on_records(read())
    return Ended(proc.returncode, stopped)


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM to ``proc``'s process group, up to GRACE_S for ``proc`` to exit, then SIGKILL to
    the group: a worker may ignore SIGTERM, or outlive a leader that exited by itself."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # the group is empty: every member has exited
        pass


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """Inside: SIGTERM raises SystemExit(143) instead of ending this process at once, so the
    ``finally`` blocks run (:func:`follow` stops its command, a report is written) before it exits."""
    def exit_now(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, exit_now)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
