"""The check records own their behaviour: the plan is every record's cases, so a check added to
CHECKS runs in every profile without touching anything else, and one without cases is caught."""

from __future__ import annotations

import dataclasses

import pytest

from rope_suite.conformance import checks
from rope_suite.conformance.cases import PROFILES, Case
from rope_suite.conformance.checks import CHECKS, Check, Outcome
from rope_suite.conformance.plan import plan


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_runs_in_every_profile(name: str, profile: str) -> None:
    mine = [p for p in plan(profile) if p.check == name]
    assert mine, f"check {name!r} has no case in the {profile} profile: it would never run"
    assert [p.case for p in mine] == CHECKS[name].cases(profile)


def test_a_new_check_record_is_planned_with_nothing_else_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    def never_fails(subject, case) -> Outcome:
        return Outcome(note="ok")

    extra = Check("always_true", never_fails, "a check added by this test", lambda p: [Case("llama2-7b", "float32")])
    monkeypatch.setitem(checks.CHECKS, extra.name, extra)
    assert [p.id for p in plan("quick") if p.check == "always_true"] == ["always_true/llama2-7b/float32/per_row"]


def test_requirements_and_memory_come_from_the_record() -> None:
    qk, horizon = CHECKS["fused_qk"], CHECKS["precision_horizon"]
    case = Case("llama2-7b", "float32")
    assert qk.needs_rope_qk and not CHECKS["agreement"].needs_rope_qk
    positions = case.batch * case.seq * 8  # int64, one axis, counted once
    one = CHECKS["agreement"].estimated_bytes(case) - positions
    assert qk.estimated_bytes(case) - positions == 2 * one
    assert horizon.largest_position is None  # it keeps within max_position itself
    assert CHECKS["stateless"].largest_position(case) >= 5000
    bigger = dataclasses.replace(CHECKS["agreement"], arrays=3)
    assert bigger.estimated_bytes(case) - positions == 3 * one
