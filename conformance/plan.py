"""The plan: every check's cases in a profile, as (check, case) items with stable ids.

Each check record (:data:`rope_suite.conformance.checks.CHECKS`) says which cases it runs in
each profile; the plan is all of them, in the records' order. Each planned item has an id
``check/spec/dtype/pattern[...]`` that ``-k`` and the xfail/skip files match.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cases import CASES_OF, PROFILES, Case
from .checks import CHECKS

__all__ = ["PROFILES", "Planned", "plan"]


@dataclass(frozen=True)
class Planned:
    check: str
    case: Case

    @property
    def id(self) -> str:
        return f"{self.check}/{self.case.id}"


def plan(profile: str = "full") -> list[Planned]:
    """Every (check, case) of ``profile``, in a stable order."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is invalid: allowed {', '.join(PROFILES)}")
    cases = CASES_OF.get(profile, profile)  # strict: quick's cases, judged strictly
    items = [Planned(check.name, case) for check in CHECKS.values() for case in check.cases(cases)]
    ids = [p.id for p in items]
    assert len(ids) == len(set(ids)), "planned ids must be unique"
    return items
