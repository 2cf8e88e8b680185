"""The pytest plugin that turns implementations x checks x cases into test items.

Registered through the ``pytest11`` entry point, so it is active wherever rope-suite is
installed; it only parametrizes tests that ask for its ``rope_target`` fixture.

Options: ``--impl TARGET`` (repeatable; or the environment variable ROPE_SUITE_IMPL, comma
separated; default: every registered implementation), ``--profile quick|full`` and
``--rope-json FILE`` (one record per case, for the reports). The terminal summary ends with
pass/fail/skip counts per implementation, the skip reasons, and the precision horizons.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from .plan import PROFILES, plan
from .subject import LoadError, Subject
from .targets import Target, resolve

RECORD = "rope_record"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rope-suite", "RoPE conformance")
    group.addoption("--impl", action="append", default=None, metavar="TARGET",
                    help="implementation to check: registered name, module[:object] or file.py[:object] "
                         "or a group: first-party, third-party, all (repeatable; default: env ROPE_SUITE_IMPL, "
                         "else first-party)")
    group.addoption("--profile", choices=PROFILES, default=None,
                    help="case profile (default: env ROPE_SUITE_PROFILE, else full)")
    group.addoption("--rope-json", default=None, metavar="FILE", help="write one JSON record per case to FILE")


def selected_targets(config: pytest.Config) -> list[Target]:
    names = config.getoption("impl") or [n for n in os.environ.get("ROPE_SUITE_IMPL", "").replace(",", " ").split() if n]
    return resolve(names)


def selected_profile(config: pytest.Config) -> str:
    profile = config.getoption("profile") or os.environ.get("ROPE_SUITE_PROFILE", "full")
    if profile not in PROFILES:
        raise pytest.UsageError(f"ROPE_SUITE_PROFILE={profile!r} is invalid: allowed {', '.join(PROFILES)}")
    return profile


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rope_target" not in metafunc.fixturenames:
        return
    targets = selected_targets(metafunc.config)
    if "rope_planned" in metafunc.fixturenames:
        items = plan(selected_profile(metafunc.config))
        params = [(t, p) for t in targets for p in items]
        metafunc.parametrize(("rope_target", "rope_planned"), params, ids=[f"{t.name}/{p.id}" for t, p in params])
    else:
        metafunc.parametrize("rope_target", targets, ids=[t.name for t in targets])


class Subjects:
    """Loads each target once per session; remembers load failures so every case reports them."""

    def __init__(self) -> None:
        self._cache: dict[str, Subject | LoadError] = {}

    def get(self, target: Target) -> Subject:
        missing = target.missing
        if missing:
            pytest.skip(f"{target.name}: {missing} is not installed")
        if target.name not in self._cache:
            try:
                self._cache[target.name] = target.load()
            except LoadError as err:
                self._cache[target.name] = err
        loaded = self._cache[target.name]
        if isinstance(loaded, LoadError):
            pytest.fail(str(loaded), pytrace=False)
        return loaded


_SUBJECTS = Subjects()


@pytest.fixture
def rope_subject(rope_target: Target) -> Subject:
    """The loaded implementation under test (a skip if its framework is absent)."""
    return _SUBJECTS.get(rope_target)


@pytest.fixture
def rope_record(request: pytest.FixtureRequest, rope_target: Target) -> dict[str, Any]:
    """The case's JSON record; the test fills in what it measured."""
    rec: dict[str, Any] = {"implementation": rope_target.name}
    request.node.user_properties.append((RECORD, rec))
    return rec


# --- reporting -------------------------------------------------------------------------------------

class Tally:
    """Collects the records of finished cases (on the controller, also under xdist)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            for key, rec in report.user_properties:
                if key == RECORD:
                    status = "passed" if report.passed else ("skipped" if report.skipped else "failed")
                    if hasattr(report, "wasxfail"):
                        status = "xfailed" if report.skipped else "xpassed"
                    reason = _reason(report) if status != "passed" else rec.get("note", "")
                    self.records.append({**rec, "status": status, "reason": reason})


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    text = getattr(report, "longreprtext", "") or ""
    lines = [line for line in text.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("E ")]
    return "\n".join(line[2:].rstrip() for line in failed) if failed else (lines[-1] if lines else "")


_TALLY = Tally()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _TALLY.add(report)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    records = _TALLY.records
    if not records:
        return
    tr = terminalreporter
    tr.section("rope-suite: cases per implementation")
    counts: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, Counter] = defaultdict(Counter)
    for rec in records:
        counts[rec["implementation"]][rec["status"]] += 1
        if rec["status"] == "skipped":
            reasons[rec["implementation"]][rec["reason"]] += 1
    width = max(map(len, counts))
    for name, c in counts.items():
        tr.write_line(f"{name:<{width}}  passed {c['passed']:4d}  failed {c['failed']:4d}  "
                      f"skipped {c['skipped']:4d}" + "".join(f"  {k} {c[k]}" for k in ("xfailed", "xpassed") if c[k]))
        for reason, n in reasons[name].most_common():
            tr.write_line(f"{'':<{width}}    skipped {n}: {reason}")
    horizons = [r for r in records if r.get("check") == "precision_horizon" and r.get("value") is not None]
    if horizons:
        tr.section("rope-suite: precision horizon (largest position with error < 1e-2 max|x|)")
        for r in horizons:
            tr.write_line(f"{r['implementation']:<{width}}  {r['dtype']:<9} {int(r['value']):>12,d}")
    path = config.getoption("rope_json")
    if path:
        Path(path).write_text(json.dumps(records, indent=1))
        tr.write_line(f"rope-suite: {len(records)} case records written to {path}")
