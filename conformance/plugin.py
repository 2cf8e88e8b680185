"""The pytest plugin that turns implementations x checks x cases into test items.

Registered through the ``pytest11`` entry point, so it is active wherever rope-suite is
installed; it only parametrizes tests that ask for its ``rope_target`` fixture.

Options: ``--impl TARGET`` (repeatable; or the environment variable ROPE_SUITE_IMPL, comma
separated; default: every registered implementation), ``--rope-signature NAME`` (free-form
targets are bare functions with that calling convention), ``--profile quick|full`` and
``--rope-json FILE`` (one record per case, for the reports). The terminal summary ends with
pass/fail/skip counts per implementation, the skip reasons, and the precision horizons.

This module is the wiring: options, fixtures and the hooks, whose work is done by
:mod:`.selection` (which cases run), :mod:`.records` (each case's record and the JSON-lines
stream), :mod:`.isolation` (crashed and wedged cases) and :mod:`.summary`. A run's state is
one :class:`RopeSession`, registered as a plugin and kept in ``config.stash``.

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

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from . import isolation, selection
from .budget import DEFAULT_BUDGET, parse_bytes
from .plan import PROFILES
from .process import FOLLOWED, die_with_parent
from .records import RECORD, Tally, case_record
from .subject import LoadError, Subject
from .summary import write_summary
from .targets import Loaded, Target

CONTROLLER = "rope_suite_controller"  # the workerinput key of the controller's pid


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rope-suite", "RoPE conformance")
    group.addoption("--impl", action="append", default=None, metavar="TARGET",
                    help="implementation to check: registered name, module[:object] or file.py[:object] "
                         "or a group: first-party, third-party, all (repeatable; default: env ROPE_SUITE_IMPL, "
                         "else first-party)")
    group.addoption("--rope-signature", default=None, metavar="NAME",
                    help="the calling convention of the free-form targets when they are bare functions "
                         "(x-cos-sin, qk-cos-sin, x-freqs-cis, x-seq-dim, ...; rope-suite check --signature)")
    group.addoption("--profile", choices=PROFILES, default=None,
                    help="case profile (default: env ROPE_SUITE_PROFILE, else full)")
    group.addoption("--rope-strict", action="store_true", default=False,
                    help="strict mode: judge float64 inputs against float64 angles (default: float32 angles, "
                         "standard practice, with the angle accuracy reached reported)")
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


def memory_budget(config: pytest.Config) -> int:
    """--memory-budget, else ROPE_SUITE_MEMORY_BUDGET, else the default, in bytes; a usage error
    names a bad value."""
    text = config.getoption("memory_budget") or os.environ.get("ROPE_SUITE_MEMORY_BUDGET") or DEFAULT_BUDGET
    try:
        return parse_bytes(text)
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None


class RopeSession:
    """One pytest run's state and the hooks that use it: the loaded subjects, the tally of finished cases and its
    stream, crash bookkeeping, and the xfails/skips entries that matched nothing."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.loaded = Loaded()
        self.tally = Tally()
        self.crashes = isolation.Crashes(config)
        self.unused: list[tuple[str, str]] = []
        # faulthandler writes with a file descriptor; take stderr now, before any test captures it
        self.hard_timeout = config.getoption("rope_hard_timeout")
        self.stderr_fd = os.dup(sys.__stderr__.fileno()) if self.hard_timeout else None

    def subject(self, target: Target, record: dict[str, Any]) -> Subject:
        """The loaded implementation under test: a skip if a module it needs is absent, a failure
        naming the problem if it cannot be loaded."""
        missing = target.missing
        if missing:
            install = target.record.install if target.record else f"pip install {missing}"
            record["not_installed"] = {"module": missing, "install": install}
            pytest.skip(f"{target.name}: not installed: module {missing} is missing (install: {install})")
        unavailable = target.unavailable
        if unavailable:
            record["unavailable"] = unavailable
            pytest.skip(f"{target.name}: {unavailable}")
        try:
            strict = self.config.getoption("rope_strict") or selection.selected_profile(self.config) == "strict"
            loaded = self.loaded.get(target, strict=strict)
        except LoadError as err:
            record["load_error"] = str(err)
            pytest.fail(str(err), pytrace=False)
        record["framework"] = loaded.framework
        if loaded.supplied:
            record["supplied"] = loaded.supplied
        return loaded

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        path = self.config.getoption("rope_jsonl")
        if path and not hasattr(self.config, "workerinput"):  # the xdist controller writes, not workers
            self.tally.open(path)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.tally.close()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not hasattr(self.config, "workerinput"):  # without xdist; under it, the controller writes
            self.crashes.write_planned([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.crashes.write_planned(list(ids))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist, on the controller: in a followed run, each worker learns the controller's
        pid, to die with it (pytest_configure); elsewhere xdist's workers are left as they are."""
        if os.environ.get(FOLLOWED):
            node.workerinput[CONTROLLER] = os.getpid()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        isolation.watch(self.hard_timeout, self.stderr_fd)
        try:
            yield
        finally:
            isolation.unwatch(self.hard_timeout)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.tally.add(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.crashes.case_ended()

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """pytest-xdist: a worker died running ``crashitem``; its report becomes a ``crashed`` (or
        ``timed out``) record. xdist then starts a new worker that goes on with the next case."""
        rec = self.crashes.record(crashitem, getattr(report, "node", None))
        self.crashes.case_ended()
        if rec is not None:  # another project's test: xdist's own report stands
            report.longrepr = rec["reason"]
            report.user_properties = [(RECORD, rec)]

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        records = self.tally.records
        if not records:
            return
        write_summary(terminalreporter, records, self.unused)
        path = config.getoption("rope_json")
        if path:
            Path(path).write_text(json.dumps(records, indent=1))
            terminalreporter.write_line(f"rope-suite: {len(records)} case records written to {path}")


SESSION = pytest.StashKey[RopeSession]()


def pytest_configure(config: pytest.Config) -> None:
    controller = getattr(config, "workerinput", {}).get(CONTROLLER)
    if controller:  # a worker stuck in a plug-in outlives a killed controller unless the kernel ends it
        die_with_parent(controller)
    memory_budget(config)  # a bad --memory-budget is a usage error now, not an error in every case
    config.stash[SESSION] = RopeSession(config)
    config.pluginmanager.register(config.stash[SESSION], "rope-suite-session")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rope_target" in metafunc.fixturenames:
        selection.parametrize(metafunc)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[SESSION].unused = selection.mark_listed(config, items)
    selection.deselect_done(config, items)


@pytest.fixture
def rope_memory_budget(pytestconfig: pytest.Config) -> int:
    """Bytes a case may allocate for its inputs and outputs; larger cases are skipped before allocating."""
    return memory_budget(pytestconfig)


@pytest.fixture
def rope_record(request: pytest.FixtureRequest, rope_target: Target) -> dict[str, Any]:
    """The case's JSON record; the test fills in what it measured."""
    planned = getattr(getattr(request.node, "callspec", None), "params", {}).get("rope_planned")
    rec = case_record(rope_target.name, planned)
    request.node.user_properties.append((RECORD, rec))
    return rec


@pytest.fixture
def rope_subject(request: pytest.FixtureRequest, rope_target: Target, rope_record: dict[str, Any]) -> Subject:
    """The loaded implementation under test (a skip if its framework is absent)."""
    return request.config.stash[SESSION].subject(rope_target, rope_record)
