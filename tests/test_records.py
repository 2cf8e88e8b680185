"""The check records own their behaviour: the plan is every record's cases, so a check added to
CHECKS runs in every profile without touching anything else, and one without cases is caught."""

from __future__ import annotations

import dataclasses

import pytest

from rope_suite.conformance import checks
from rope_suite.conformance.cases import CASE_PROFILES, PROFILES, Case
from rope_suite.conformance.checks import CHECKS, Check, Outcome
from rope_suite.conformance.plan import plan


@pytest.mark.parametrize("profile", CASE_PROFILES)
@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_runs_in_every_profile(name: str, profile: str) -> None:
    mine = [p for p in plan(profile) if p.check == name]
    assert mine, f"check {name!r} has no case in the {profile} profile: it would never run"
    assert [p.case for p in mine] == CHECKS[name].cases(profile)


def test_the_strict_profile_runs_the_quick_cases() -> None:
    assert set(PROFILES) == {*CASE_PROFILES, "strict"}
    assert plan("strict") == plan("quick")


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


def test_every_scaling_type_has_its_reference_function() -> None:
    from rope_suite.conformance import reference
    from rope_suite.conformance.spec import SCALING_TYPES

    assert set(reference.FREQUENCIES) == set(SCALING_TYPES)
    assert set(reference.ATTENTION_FACTORS) <= set(SCALING_TYPES)


NEW_SCALING_TYPE = """
import numpy as np
from rope_suite.conformance import reference, spec

# the two places a new rope_type goes: its record and its reference function
spec.SCALING_TYPES["halved"] = spec.ScalingType("halved", ("factor",), examples={
    "halved-x2": dict(head_dim=32, scaling={"rope_type": "halved", "factor": 2.0})})
reference.FREQUENCIES["halved"] = lambda r, base, s, _: reference.default_frequencies(r, base) / (2 * s.factor)

from hypothesis import find
from rope_suite.conformance import strategies
from rope_suite.conformance.plan import plan
from rope_suite.reports.conformance_table import FEATURES, features_of

made = spec.RopeSpec(head_dim=8, scaling={"rope_type": "halved", "factor": 4.0})
assert np.allclose(reference.inverse_frequencies(made), reference.default_frequencies(8, 1e4) / 8)
for profile in ("quick", "full"):
    ids = [p.id for p in plan(profile)]
    assert "agreement/halved-x2/float32/per_row" in ids, profile
assert "halved" in FEATURES
assert features_of({"dtype": "float32", "spec": made.to_dict()}) == {"halved"}
find(strategies.specs(), lambda s: s.rope_type == "halved")
# first-party code that has not learnt the type says so: unsupported, not an error
from rope_suite.conformance.targets import resolve
assert "does not support" in resolve(["numpy"])[0].load().unsupported(made, "float32")
print("ok")
"""


def test_a_new_scaling_type_is_a_record_and_a_reference_function() -> None:
    """Registered before the rest of the suite is imported (as a new entry in spec.py and
    reference.py would be), a rope_type is validated, planned in both profiles, drawn by the
    hypothesis strategy and given its table column, with no other change; first-party code
    reports it unsupported until it implements it."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", NEW_SCALING_TYPE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
