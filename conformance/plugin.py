"""The pytest plugin that turns implementations x checks x cases into test items.

Registered through the ``pytest11`` entry point, so it is active wherever rope-suite is
installed; it only parametrizes tests that ask for its ``rope_target`` fixture.

Options: ``--impl TARGET`` (repeatable; or the environment variable ROPE_SUITE_IMPL, comma
separated; default: every registered implementation), ``--profile quick|full`` and
``--rope-json FILE`` (one record per case, for the reports). The terminal summary ends with
pass/fail/skip counts per implementation, the skip reasons, and the precision horizons.

Surviving broken implementations (``rope-suite check`` sets these up): under pytest-xdist a
case that kills its worker (segfault, abort, ``os._exit``, the OOM killer) is recorded as
``crashed`` with the exit status and the tail of the worker's stderr (``--rope-stderr``), and
xdist's replacement worker goes on with the next case; a pytest-timeout failure is recorded as
``timed out``, and ``--rope-hard-timeout`` kills a case stuck where no signal reaches it
(faulthandler, stacks to stderr). ``--rope-done FILE`` deselects cases already recorded there
(resuming a killed run); ``--rope-planned FILE`` lists the cases the run will run, so a run
stopped part-way knows which did not; ``--memory-budget`` skips cases whose inputs would not fit.
In a run that :mod:`rope_suite.conformance.process` follows, each xdist worker dies with its
controller (a parent-death signal), so killing the run never leaves a worker behind.
"""

from __future__ import annotations

import faulthandler
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from .budget import DEFAULT_BUDGET, parse_bytes
from .crashes import condense_stderr, describe_exit, exit_status, read_from
from .plan import PROFILES, Planned, plan
from .process import FOLLOWED, die_with_parent
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
    group.addoption("--memory-budget", default=None, metavar="SIZE",
                    help="skip cases whose inputs and outputs would need more than SIZE (bytes, 512MiB, 4GB, or a "
                         "percentage of this machine's memory; default: env ROPE_SUITE_MEMORY_BUDGET, else "
                         f"{DEFAULT_BUDGET})")
    group.addoption("--rope-done", default=None, metavar="FILE",
                    help="JSON lines of finished cases (an earlier --rope-jsonl): deselect those, run the rest")
    group.addoption("--rope-planned", default=None, metavar="FILE",
                    help="once collected, write the records of the cases this run will run to FILE (a JSON list)")
    group.addoption("--rope-stderr", default=None, metavar="FILE",
                    help="the file this run's stderr goes to: a crashed case gets its tail")
    group.addoption("--rope-hard-timeout", type=float, default=None, metavar="SECONDS",
                    help="kill a case still running after SECONDS even inside C code (faulthandler dumps the stacks "
                         "to stderr); under pytest-xdist the worker is replaced and the run goes on")


# --- memory budget ---------------------------------------------------------------------------------

def memory_budget(config: pytest.Config) -> int:
    text = config.getoption("memory_budget") or os.environ.get("ROPE_SUITE_MEMORY_BUDGET") or DEFAULT_BUDGET
    try:
        return parse_bytes(text)
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None


@pytest.fixture
def rope_memory_budget(pytestconfig: pytest.Config) -> int:
    """Bytes a case may allocate for its inputs and outputs; larger cases are skipped before allocating."""
    return memory_budget(pytestconfig)


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
    done_path = config.getoption("rope_done")
    if done_path:
        done = {(r.get("implementation"), r.get("id")) for r in read_records(Path(done_path))}
        finished = [item for item in items if item_key(item) in done]
        if finished:
            config.hook.pytest_deselected(items=finished)
            items[:] = [item for item in items if item_key(item) not in done]


def item_key(item: pytest.Item) -> tuple[str, str] | None:
    """(implementation, case id) of a conformance test item, as its record names them."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "rope_target" not in params:
        return None
    planned = params.get("rope_planned")
    return (params["rope_target"].name, planned.id if planned is not None else RANDOM_ID)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a line cut short by a kill is ignored."""
    records = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


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


RANDOM_ID = "random_specs"


def case_record(implementation: str, planned: Planned | None) -> dict[str, Any]:
    """A case's record before it runs: what it is (the test adds what it measured)."""
    rec: dict[str, Any] = {"implementation": implementation}
    if planned is None:
        return {**rec, "check": RANDOM_ID, "id": RANDOM_ID, "dtype": "float32"}
    c = planned.case
    rec.update(check=planned.check, id=planned.id, spec_name=c.spec_name, spec=c.spec.to_dict(), dtype=c.dtype,
               shape=list(c.shape), pattern=c.pattern,
               case={"spec_name": c.spec_name, "dtype": c.dtype, "pattern": c.pattern, "batch": c.batch,
                     "seq": c.seq, "heads": c.heads, "pos_dtype": c.pos_dtype})
    return rec


@pytest.fixture
def rope_record(request: pytest.FixtureRequest, rope_target: Target) -> dict[str, Any]:
    """The case's JSON record; the test fills in what it measured."""
    planned = getattr(getattr(request.node, "callspec", None), "params", {}).get("rope_planned")
    rec = case_record(rope_target.name, planned)
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
        # "call", or a failed setup; xdist reports a crashed case with when="???"
        if report.when == "call" or (report.when != "teardown" and not report.passed):
            for key, rec in report.user_properties:
                if key == RECORD:
                    rec = dict(rec)
                    status = "passed" if report.passed else ("skipped" if report.skipped else "failed")
                    if hasattr(report, "wasxfail"):
                        status = "xfailed" if report.skipped else "xpassed"
                    reason = rec.pop("reason", None) or (_reason(report) if status != "passed" else rec.get("note", ""))
                    if status == "failed" and PYTEST_TIMEOUT in reason:  # pytest-timeout's signal method
                        seconds = _seconds(reason)
                        rec = {**rec, "problem": "timed out", "timeout_s": seconds}
                        reason = (f"{rec['implementation']}: timed out: {rec.get('id')} still running after "
                                  f"{'?' if seconds is None else f'{seconds:g}'} s{_where(report)}")
                    status = PROBLEM_STATUS.get(rec.get("problem"), status) if status == "failed" else status
                    self.records.append({**rec, "status": status, "reason": reason})


PYTEST_TIMEOUT = "from pytest-timeout"
PROBLEM_STATUS = {"crashed": "crashed", "out of memory": "crashed", "timed out": "timed out"}
FAILING = ("failed", "crashed", "timed out")


def _seconds(message: str) -> float | None:
    match = re.search(r"Timeout \(>([0-9.]+)s\)", message)
    return float(match[1]) if match else None


def _where(report: pytest.TestReport) -> str:
    """', at hangs.py:17': the innermost frame of the interrupted test outside pytest-timeout."""
    frames = re.findall(r"^(\S+\.py):(\d+): ", getattr(report, "longreprtext", ""), re.MULTILINE)
    frames = [f for f in frames if "pytest_timeout" not in f[0]]
    return f", at {Path(frames[-1][0]).name}:{frames[-1][1]}" if frames else ""


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    text = getattr(report, "longreprtext", "") or ""
    text = re.sub(r"^\[gw\d+\] .*\n", "", text)  # the xdist worker's header line
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


# --- crashes and hangs ------------------------------------------------------------------------------

class Crashes:
    """On the xdist controller: where the running case's stderr starts, and what became of a
    worker that died in a case."""

    def __init__(self) -> None:
        # when the last case ended and how long stderr was then: the next case's output starts there
        # (taken at the end of the previous case, because a worker may die before its start is seen)
        self.last_end, self.offset = time.monotonic(), 0
        self.index: dict[str, tuple[str, Planned | None]] | None = None

    def case_ended(self, config: pytest.Config) -> None:
        path = config.getoption("rope_stderr")
        self.last_end = time.monotonic()
        self.offset = os.path.getsize(path) if path and os.path.exists(path) else 0

    def case(self, config: pytest.Config, nodeid: str) -> dict[str, Any] | None:
        """The record of the case ``nodeid`` (a crashed worker leaves only the node id); None if
        it is not a conformance case."""
        if self.index is None:
            items = plan(selected_profile(config))
            self.index = {}
            for target in selected_targets(config):
                self.index[target.name] = (target.name, None)
                self.index.update({f"{target.name}/{p.id}": (target.name, p) for p in items})
        param = nodeid[nodeid.find("[") + 1: -1] if nodeid.endswith("]") else None
        return case_record(*self.index[param]) if param in self.index else None

    def record(self, config: pytest.Config, nodeid: str, worker: Any) -> dict[str, Any] | None:
        """The ``crashed`` or ``timed out`` record of the case ``nodeid`` whose worker died."""
        rec = self.case(config, nodeid)
        if rec is None:
            return None
        stderr = read_from(config.getoption("rope_stderr"), self.offset)
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


_CRASHES = Crashes()


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    if _CONFIG is not None:
        _CRASHES.case_ended(_CONFIG)


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    """pytest-xdist: a worker died running ``crashitem``; its report becomes a ``crashed`` (or
    ``timed out``) record. xdist then starts a new worker that goes on with the next case."""
    rec = _CRASHES.record(_CONFIG, crashitem, getattr(report, "node", None))
    _CRASHES.case_ended(_CONFIG)
    if rec is not None:  # another project's test: xdist's own report stands
        report.longrepr = rec["reason"]
        report.user_properties = [(RECORD, rec)]


def write_planned(config: pytest.Config, nodeids: list[str]) -> None:
    """--rope-planned FILE: the records, before they run, of the conformance cases this run will
    run (after -k and every deselection), written once and whole (a replaced worker collects again)."""
    path = config.getoption("rope_planned")
    if not path or os.path.exists(path):
        return
    records = [rec for rec in (_CRASHES.case(config, nodeid) for nodeid in nodeids) if rec is not None]
    Path(path + ".tmp").write_text(json.dumps(records))
    os.replace(path + ".tmp", path)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # without xdist; under it, the controller writes
        write_planned(session.config, [item.nodeid for item in session.items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    write_planned(node.config, list(ids))


CONTROLLER = "rope_suite_controller"  # the workerinput key of the controller's pid


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: in a followed run, each worker learns the controller's pid,
    to die with it (pytest_configure); elsewhere xdist's workers are left as they are."""
    if os.environ.get(FOLLOWED):
        node.workerinput[CONTROLLER] = os.getpid()


_CONFIG: pytest.Config | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _CONFIG
    _CONFIG = config
    controller = getattr(config, "workerinput", {}).get(CONTROLLER)
    if controller:  # a worker stuck in a plug-in outlives a killed controller unless the kernel ends it
        die_with_parent(controller)
    memory_budget(config)  # a bad --memory-budget is a usage error now, not an error in every case
    # faulthandler writes with a file descriptor; take stderr now, before any test captures it
    config._rope_stderr_fd = os.dup(sys.__stderr__.fileno()) if config.getoption("rope_hard_timeout") else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """--rope-hard-timeout: faulthandler's watchdog is a C thread, so it fires even when the case is
    stuck in C code that holds the GIL or ignores signals; it dumps the stacks and exits the process."""
    seconds = item.config.getoption("rope_hard_timeout")
    if seconds:
        faulthandler.dump_traceback_later(seconds, exit=True, file=item.config._rope_stderr_fd)
    try:
        yield
    finally:
        if seconds:
            faulthandler.cancel_dump_traceback_later()


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
                      f"skipped {c['skipped']:4d}"
                      + "".join(f"  {k} {c[k]}" for k in ("crashed", "timed out", "xfailed", "xpassed") if c[k]))
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
