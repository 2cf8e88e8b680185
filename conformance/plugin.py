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
    group.addoption("--rope-jsonl", default=None, metavar="FILE",
                    help="append each case's JSON record to FILE as soon as it finishes (one per line)")
    group.addoption("--xfails-file", default=None, metavar="FILE",
                    help="known deviations: case-id prefixes, one per line (# comments), run as expected failures")
    group.addoption("--skips-file", default=None, metavar="FILE",
                    help="case-id prefixes, one per line (# comments), not run at all")


def read_id_file(path: str, option: str) -> list[str]:
    """Non-empty, non-comment lines of an xfails/skips file; a clear error if it cannot be read."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise pytest.UsageError(f"{option} {path}: cannot read it: {err.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def case_ids(item: pytest.Item) -> tuple[str, ...]:
    """The ids an xfails/skips entry may prefix: with and without the implementation name."""
    params = getattr(item, "callspec", None)
    if params is None or "rope_target" not in params.params:
        return ()
    target = params.params["rope_target"].name
    planned = params.params.get("rope_planned")
    local = planned.id if planned is not None else item.originalname
    return (f"{target}/{local}", local)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    lists = {kind: read_id_file(path, f"--{kind}-file") for kind in ("xfails", "skips")
             if (path := config.getoption(f"{kind}_file"))}
    used: set[tuple[str, str]] = set()
    for item in items:
        ids = case_ids(item)
        for kind, entries in lists.items():
            hit = next((e for e in entries if any(i.startswith(e) for i in ids)), None)
            if hit is None:
                continue
            used.add((kind, hit))
            if kind == "skips":
                item.add_marker(pytest.mark.skip(reason=f"listed in --skips-file: {hit}"))
            else:
                item.add_marker(pytest.mark.xfail(reason=f"known deviation (--xfails-file: {hit})", strict=False))
    config._rope_unused = [(kind, e) for kind, entries in lists.items() for e in entries if (kind, e) not in used]
    for kind, entry in config._rope_unused:
        config.issue_config_time_warning(pytest.PytestWarning(
            f"rope-suite: --{kind}-file entry {entry!r} matches no case (stale entry?)"), stacklevel=2)


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

    def get(self, target: Target, record: dict[str, Any]) -> Subject:
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
            record["load_error"] = str(loaded)
            pytest.fail(str(loaded), pytrace=False)
        record["framework"] = loaded.framework
        return loaded


_SUBJECTS = Subjects()


@pytest.fixture
def rope_record(request: pytest.FixtureRequest, rope_target: Target) -> dict[str, Any]:
    """The case's JSON record; the test fills in what it measured."""
    rec: dict[str, Any] = {"implementation": rope_target.name}
    planned = getattr(getattr(request.node, "callspec", None), "params", {}).get("rope_planned")
    if planned is not None:
        c = planned.case
        rec.update(check=planned.check, id=planned.id, spec_name=c.spec_name, spec=c.spec.to_dict(), dtype=c.dtype,
                   shape=list(c.shape), pattern=c.pattern,
                   case={"spec_name": c.spec_name, "dtype": c.dtype, "pattern": c.pattern, "batch": c.batch,
                         "seq": c.seq, "heads": c.heads, "pos_dtype": c.pos_dtype})
    request.node.user_properties.append((RECORD, rec))
    return rec


@pytest.fixture
def rope_subject(rope_target: Target, rope_record: dict[str, Any]) -> Subject:
    """The loaded implementation under test (a skip if its framework is absent)."""
    return _SUBJECTS.get(rope_target, rope_record)


# --- reporting -------------------------------------------------------------------------------------

class Tally:
    """Collects the records of finished cases (on the controller, also under xdist), and
    appends each to the --rope-jsonl file as it finishes, so a killed run keeps them."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.stream: Any = None

    def add(self, report: pytest.TestReport) -> None:
        before = len(self.records)
        self._collect(report)
        if self.stream is not None:
            for rec in self.records[before:]:
                self.stream.write(json.dumps(rec) + "\n")
            self.stream.flush()

    def _collect(self, report: pytest.TestReport) -> None:
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
    failed = [line for line in text.splitlines() if line.startswith("E ")]
    # pytest.fail(..., pytrace=False) gives the message alone; a traceback has it on its E lines
    return "\n".join(line[2:].rstrip() for line in failed) if failed else text.strip()


_TALLY = Tally()


def pytest_sessionstart(session: pytest.Session) -> None:
    path = session.config.getoption("rope_jsonl")
    if path and not hasattr(session.config, "workerinput"):  # the xdist controller writes, not workers
        _TALLY.stream = open(path, "a", buffering=1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _TALLY.stream is not None:
        _TALLY.stream.close()
        _TALLY.stream = None


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
    for kind, entry in getattr(config, "_rope_unused", []):
        tr.write_line(f"rope-suite: warning: --{kind}-file entry {entry!r} matches no case (stale entry?)")
    xpassed = [r for r in records if r["status"] == "xpassed"]
    for r in xpassed:
        tr.write_line(f"rope-suite: {r['implementation']}/{r.get('id')} is listed as a known deviation but passed")
    path = config.getoption("rope_json")
    if path:
        Path(path).write_text(json.dumps(records, indent=1))
        tr.write_line(f"rope-suite: {len(records)} case records written to {path}")
