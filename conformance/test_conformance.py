"""The conformance tests: every selected implementation x every planned (check, case).

Parametrized by :mod:`rope_suite.conformance.plugin`; run ``pytest --pyargs rope_suite.conformance --impl NAME`` for one
implementation. Test ids read ``implementation/check/spec/dtype/pattern``.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st

from rope_suite.conformance import reference
from rope_suite.conformance.cases import SPECS
from rope_suite.conformance.checks import CHECKS, CheckFailed, PropertyObserved, against_reference
from rope_suite.conformance.plan import Planned
from rope_suite.conformance.budget import format_bytes
from rope_suite.conformance.strategies import position_shape, specs
from rope_suite.conformance.spec import RopeSpec
from rope_suite.conformance.subject import ContractViolation, ImplementationError, OutOfMemory, Subject


def test_check(rope_subject: Subject, rope_planned: Planned, rope_record: dict[str, Any],
               rope_memory_budget: int, pytestconfig: pytest.Config) -> None:
    subject, planned, record = rope_subject, rope_planned, rope_record
    check, case = CHECKS[planned.check], planned.case
    needs = check.estimated_bytes(case)
    if needs > rope_memory_budget:  # decided from the shape alone, before any input exists
        pytest.skip(f"needs about {format_bytes(needs)} for its inputs and outputs, over the memory budget of "
                    f"{format_bytes(rope_memory_budget)} (--memory-budget)")
    problem = None
    try:
        reason = (check.inapplicable(subject) or subject.unsupported(case.spec, case.dtype)
                  or (check.largest_position is not None
                      and subject.beyond_max_position(check.largest_position(case))))
        if reason:
            pytest.skip(reason)
        outcome = check.run(subject if check.keeps_instance else subject.for_case(case.spec), case)
    except PropertyObserved as observed:  # a labelled property, recorded as "observed", not a failure
        record.update(property=observed.label, mismatch=observed.mismatch.fields(), reason=str(observed))
        outcome = None
    except CheckFailed as failure:
        record["mismatch"], record["angles_required"] = failure.mismatch.fields(), subject.angles(case.dtype)
        signature = pytestconfig.getoption("rope_signature")
        under = f" --rope-signature {signature}" if signature else ""
        outcome, problem = failure.outcome, (f"{failure}\n  rerun: pytest --pyargs rope_suite.conformance "
                                             f"--impl {subject.name}{under} -k '{subject.name}/{planned.id}'")
    except Exception as err:  # the implementation broke the contract, raised, or ran out of memory
        outcome, problem = None, diagnose(err, subject, check.name, record, pytestconfig)
    if outcome is not None:
        record.update(max_abs_err=outcome.max_abs_err, max_rel_err=outcome.max_rel_err, bound=outcome.bound,
                      value=outcome.value, note=outcome.note, angles=outcome.angles)
    if problem or record.get("property"):
        diagnosed(subject, record, "failed" if problem else "observed", problem or record["reason"])
    if problem:
        pytest.fail(problem, pytrace=False)


def diagnosed(subject: Subject, record: dict[str, Any], status: str, reason: str) -> None:
    """Attach the first of the adapter's declared deviations (conformance.deviations) that
    explains this failed or observed case: the findings and the table name it."""
    seen = {**record, "status": status, "reason": reason}
    reproduction = getattr(subject.obj, "reproduction", None)
    if callable(reproduction) and record.get("case"):  # the library called directly, for `rope-suite findings`
        try:
            record["reproduction"] = reproduction(SPECS[record["case"]["spec_name"]], record["dtype"])
        except Exception as err:  # a broken reproduction must not hide the finding itself
            record["reproduction_error"] = f"{type(err).__name__}: {err}"
    for deviation in getattr(subject.obj, "deviations", None) or ():
        if deviation.matches(seen):
            record["deviation"] = {"name": deviation.name, "kind": deviation.kind, "summary": deviation.summary,
                                   "where": deviation.where, "upstream": deviation.upstream}
            return


def diagnose(err: Exception, subject: Subject, check: str, record: dict[str, Any], config: pytest.Config) -> str:
    """One line for a failure that is not a wrong number; the traceback only with -v (--verbose)."""
    if isinstance(err, OutOfMemory):
        record["problem"], line = "out of memory", f"{err} (out of memory)"
    elif isinstance(err, ContractViolation):
        record["problem"], line = "contract violation", str(err)
    elif isinstance(err, ImplementationError):
        record["problem"], line = "raised", str(err)
    else:  # the suite tripped over something the implementation did
        record["problem"], line = "raised", f"{subject.name}: the {check} check raised {type(err).__name__}: {err}"
    if config.get_verbosity() > 0:
        return line + "\n" + "".join(traceback.format_exception(err)).rstrip()
    return line


@dataclass(frozen=True)
class Drawn:
    """A hypothesis-drawn spec and shape, standing in for a named case in a mismatch."""

    spec: RopeSpec
    shape: tuple[int, ...]
    spec_name: str = "a drawn spec"
    dtype: str = "float32"
    pattern: str = "drawn"
    pos_dtype: str = "int64"
    id: str = "drawn"


def test_random_specs(rope_subject: Subject, rope_record: dict[str, Any], pytestconfig: pytest.Config) -> None:
    """Agreement on specs, shapes and positions drawn by hypothesis (float32). A failure prints the
    drawn example; rerun it with the printed ``--hypothesis-seed``. Draws the implementation does
    not support are discarded; if it supports none of them, the test is skipped with that reason."""
    subject = rope_subject
    rope_record.update(check="random_specs", id="random_specs", dtype="float32")

    # derandomize: the same draws on every run, so a verdict (and the README table) never depends on luck
    # (the draws are seeded by this function's source, decorators included: edit it and they change)
    @settings(max_examples=8, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
    @given(spec=specs(max_head_dim=32), batch=st.integers(1, 3), seq=st.integers(1, 5), heads=st.integers(1, 3),
           max_position=st.sampled_from([16, 4096, 1 << 20]), seed=st.integers(0, 2**32 - 1))
    def agrees(spec: RopeSpec, batch: int, seq: int, heads: int, max_position: int, seed: int) -> None:
        assume(not subject.unsupported(spec, "float32"))  # discard the draw, not the test
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, seq, heads, spec.head_dim)).astype(np.float32).astype(np.float64)
        pos = rng.integers(0, max_position, size=position_shape(spec, batch, seq))
        assume(not subject.beyond_max_position(int(pos.max()) if pos.size else 0))
        try:
            got = subject.for_case(spec).rope(x, pos, spec, "float32")
        except (ContractViolation, ImplementationError):  # the drawn spec goes with the error (hypothesis
            rope_record.update(spec=spec.to_dict(), shape=list(x.shape))  # replays the smallest one last)
            raise
        try:
            against_reference("random_specs", "agreement on a drawn spec", subject, Drawn(spec, x.shape), x, pos,
                              got, reference.apply(x, pos, spec))
        except CheckFailed as failure:
            rope_record.update(spec=spec.to_dict(), shape=list(x.shape), max_abs_err=failure.outcome.max_abs_err,
                               max_rel_err=failure.outcome.max_rel_err, bound=failure.outcome.bound,
                               mismatch=failure.mismatch.fields())
            raise

    problem = None
    try:
        try:
            agrees()
        except BaseExceptionGroup as group:  # distinct failures, each replayed: the record holds the last's
            raise group.exceptions[-1] from None  # case, so that one is reported and diagnosed
    except Unsatisfiable:
        pytest.skip(f"{subject.name} supports none of the drawn specs in float32")
    except CheckFailed as failure:
        diagnosed(subject, rope_record, "failed", str(failure))
        raise
    except (ContractViolation, ImplementationError) as err:
        problem = diagnose(err, subject, "random_specs", rope_record, pytestconfig)
    if problem:  # outside the except block: the message alone, not the exception chain
        diagnosed(subject, rope_record, "failed", problem)
        pytest.fail(problem, pytrace=False)
