"""nox sessions: ``nox -s tests`` runs the test suite in a fresh virtual environment.

On a CPU-only machine, ``.ci/constraints-cpu.txt`` pins torch's CPU build; set
ROPE_SUITE_CONSTRAINTS to another file (or to an empty string) to lift that on a GPU machine.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
CONSTRAINTS = os.environ.get("ROPE_SUITE_CONSTRAINTS", ".ci/constraints-cpu.txt")


def install(session: nox.Session, extras: str) -> None:
    args = ["-c", CONSTRAINTS] if CONSTRAINTS else []
    session.install(*args, "-e", f".[{extras}]")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The project's own tests (tests/)."""
    install(session, "all")
    session.run("pytest", *session.posargs)
