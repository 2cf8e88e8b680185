"""What ``rope-suite bench`` can time: every registered implementation, installed plug-ins,
free-form targets (``module:object``, ``file.py``), and the no-op floor of each framework."""

from __future__ import annotations

from rope_suite.conformance.targets import Target, resolve
from rope_suite.implementations.registry import Implementation

from .noop import TARGETS as NOOP_TARGETS

NOOP_GROUP = "noop"
DEFAULT: tuple[str, ...] = ("all", NOOP_GROUP)


def noop_record(name: str) -> Implementation:
    target, module = NOOP_TARGETS[name]
    return Implementation(name, target, module, requires=(module,), first_party=False,
                          summary="no-op: returns x unchanged (the harness's timing floor)", tags=("noop",))


def bench_targets(names: list[str] | None) -> list[Target]:
    """Targets for ``names``: groups (first-party, third-party, all, noop) expanded, in order,
    each once; every registered implementation and the no-ops when none are given."""
    out: dict[str, Target] = {}
    for name in names or list(DEFAULT):
        if name == NOOP_GROUP:
            out.update({n: Target(n, noop_record(n)) for n in NOOP_TARGETS})
        elif name in NOOP_TARGETS:
            out[name] = Target(name, noop_record(name))
        else:
            out.update({t.name: t for t in resolve([name])})
    return list(out.values())


def kind(target: Target) -> str:
    """first-party | third-party | noop | plug-in (a free-form target)."""
    record = target.record
    if record is None:
        return "plug-in"
    if "noop" in record.tags:
        return "noop"
    return "first-party" if record.first_party else "third-party"
