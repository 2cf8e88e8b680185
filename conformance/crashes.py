"""What a dead worker process left behind: how it exited, and the useful tail of its stderr."""

from __future__ import annotations

import re
import signal
from typing import Any

def exit_status(worker: Any) -> int | None:
    """The dead worker's exit status (negative: the signal), from execnet's Popen if it has one."""
    popen = getattr(getattr(getattr(worker, "gateway", None), "_io", None), "popen", None)
    try:
        return popen.wait(timeout=10) if popen is not None else None
    except Exception:
        return None


def describe_exit(status: int | None) -> str:
    """'was killed by SIGSEGV (signal 11)', 'exited with code 3', or 'died' when unknown."""
    if status is None:
        return "died"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "signal"
        return f"was killed by {name} (signal {-status})"
    return f"exited with code {status}"


def read_from(path: str | None, offset: int) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


_NOISE = re.compile(r'File ".*[/\\](_pytest|pytest|pluggy|xdist|execnet)[/\\]|File "<(string|frozen [a-z]+)>"|^Extension modules:'
                    r'|PytestBenchmarkWarning|warner\(')


def condense_stderr(text: str, lines: int = 15) -> str:
    """The tail of a crashed case's stderr, less the test runner's own frames, and less the stacks
    of threads (in a faulthandler dump) left with none of anyone else's (xdist's receiver)."""
    kept: list[str] = []
    block: list[str] = []  # a thread's header and its frames

    def close() -> None:
        if len(block) > 1:
            kept.extend(block)
        block.clear()

    for line in text.splitlines():
        if not line.strip() or _NOISE.search(line):
            continue
        if line.startswith(("Thread 0x", "Current thread 0x")):
            close()
            block.append(line.rstrip())
        elif block and line.startswith("  "):
            block.append(line.rstrip())
        else:
            close()
            kept.append(line.rstrip())
    close()
    return "\n".join(kept[-lines:])
