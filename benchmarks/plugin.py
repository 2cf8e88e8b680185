"""pytest options and parametrization for the benchmarks: implementation x case.

    pytest -p rope_suite.benchmarks.plugin --pyargs rope_suite.benchmarks --bench-impl torch-eager --bench-profile quick --bench-jsonl out.jsonl \
        --benchmark-json pytest-benchmark.json

``--bench-impl`` takes what ``rope-suite bench`` takes (registered names, groups ``first-party``,
``third-party``, ``all``, ``noop``, ``module:object``, ``file.py``); default: every registered
implementation and the no-ops. Each finished case appends its rows to ``--bench-jsonl`` at once,
so an interrupted run keeps what it measured. ``rope-suite bench`` runs this once per
implementation, each in its own process.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from rope_suite.conformance.subject import Subject
from rope_suite.conformance.targets import Loaded, Target

from .cases import BenchCase, PROFILES, profile_cases
from .runner import allocator_label, threads_label
from .targets import bench_targets, kind


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rope-suite-bench", "RoPE benchmarks")
    group.addoption("--bench-impl", action="append", default=None, metavar="TARGET",
                    help="implementation to time (repeatable; default: env ROPE_SUITE_BENCH_IMPL, comma separated, "
                         "else all registered implementations and the no-ops)")
    group.addoption("--bench-profile", choices=PROFILES, default=os.environ.get("ROPE_SUITE_BENCH_PROFILE", "quick"),
                    help="case profile (default quick)")
    group.addoption("--bench-jsonl", default=None, metavar="FILE",
                    help="append each finished case's results rows to FILE (JSON Lines)")
    group.addoption("--bench-run-id", default=None, help="run id for the rows (default: a new one)")
    group.addoption("--bench-machine-id", default=None, help="machine id for the rows (default: fingerprinted)")


class BenchSession:
    """Targets, loaded subjects and the results stream of one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        names = config.getoption("bench_impl")
        if not names and os.environ.get("ROPE_SUITE_BENCH_IMPL"):
            names = [n for n in os.environ["ROPE_SUITE_BENCH_IMPL"].split(",") if n]
        self.profile = config.getoption("bench_profile")
        self.targets = {t.name: t for t in bench_targets(names)}
        self.cases = {c.id: c for c in profile_cases(self.profile)}
        self.jsonl = config.getoption("bench_jsonl")
        self.run_id = config.getoption("bench_run_id") or uuid.uuid4().hex[:12]
        self.machine_id = config.getoption("bench_machine_id")
        self.loaded = Loaded()
        if self.machine_id is None:
            self._start_stream()

    def _start_stream(self) -> None:
        """Fingerprint the machine; a new stream file gets the header line."""
        from rope_suite.reports.machine import fingerprint
        from rope_suite.reports.schema import SCHEMA_VERSION, STREAM

        machine = fingerprint()
        self.machine_id = machine["machine_id"]
        if self.jsonl and not (Path(self.jsonl).is_file() and Path(self.jsonl).stat().st_size):
            run = {"run_id": self.run_id, "machine_id": self.machine_id, "profile": self.profile,
                   "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "command": "pytest -p rope_suite.benchmarks.plugin --pyargs rope_suite.benchmarks",
                   "allocator": allocator_label(os.environ), "threads": threads_label(os.environ)}
            self.append({"schema": STREAM, "schema_version": SCHEMA_VERSION, "run": run, "machine": machine})

    def subject(self, target: Target) -> Subject:
        """The loaded implementation (once per session); LoadError says why it cannot load."""
        return self.loaded.get(target)

    def base_row(self, target: Target, case: BenchCase, subject: Subject | None) -> dict[str, Any]:
        framework = subject.framework if subject else (target.record.framework if target.record else None)
        return {"run_id": self.run_id, "machine_id": self.machine_id, "implementation": target.name,
                "kind": kind(target), "framework": framework or None,
                "device": subject.device if subject else None, **case.to_dict()}

    def append(self, *items: dict[str, Any]) -> None:
        if not self.jsonl:
            return
        with open(self.jsonl, "a") as out:
            out.write("".join(json.dumps(item) + "\n" for item in items))
            out.flush()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION] = None


SESSION = pytest.StashKey[BenchSession]()


def bench_session(config: pytest.Config) -> BenchSession:
    if config.stash.get(SESSION, None) is None:
        config.stash[SESSION] = BenchSession(config)
    return config.stash[SESSION]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"bench_target", "bench_case"} <= set(metafunc.fixturenames):
        session = bench_session(metafunc.config)
        metafunc.parametrize("bench_target", list(session.targets))
        metafunc.parametrize("bench_case", list(session.cases))


@pytest.fixture
def bench(request: pytest.FixtureRequest) -> BenchSession:
    return bench_session(request.config)
