"""nox sessions: ``nox -s tests`` runs the test suite in a fresh virtual environment;
``nox -s bench`` times the implementations (``nox -s bench -- --quick`` for CI; other
arguments go to ``rope-suite bench``) and ``nox -s report`` writes the HTML + Markdown
report from ``results/`` (or from the files given after ``--``).

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
    session.install("--no-deps", "-r", ".ci/thirdparty-no-deps.txt")  # why: that file
    install(session, "all")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks against the copy roofline: results/bench.json (+ .jsonl stream, pytest-benchmark JSON)."""
    install(session, "all")
    session.run("rope-suite", "bench", *session.posargs)


@nox.session(python="3.11")
def report(session: nox.Session) -> None:
    """The report (results/report.html + .md) from results/bench.json and results/check-all.json."""
    install(session, "bench")
    given = any(arg.endswith((".json", ".jsonl")) for arg in session.posargs)
    inputs = [] if given else [p for p in ("results/check-all.json", "results/bench.json") if os.path.isfile(p)]
    session.run("rope-suite", "report", *inputs, *session.posargs)
