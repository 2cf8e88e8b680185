"""The checks: one record each, owning everything about it.

A :class:`Check` holds the function that decides a case, the cases it runs in each profile,
what it requires of the implementation, and what it feeds it (the largest position, the
arrays it allocates). The plan (:mod:`rope_suite.conformance.plan`) is every record's cases,
so a check added to :data:`CHECKS` runs everywhere and a check cannot be left out.

A check function takes a loaded :class:`Subject` and a :class:`Case` and returns an
:class:`Outcome` (numbers for the reports), raising :class:`CheckFailed` with a message that
pinpoints the bug.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import accuracy, reference
from .cases import BOUNDARY, FIRST_EXAMPLES, PARTIAL, SPECS, Case, representative
from .frameworks import FLOAT_DTYPES, NUMPY_DTYPES, has_autodiff, round_to, to_numpy
from .mismatch import Mismatch
from .subject import Subject


@dataclass
class Outcome:
    """What a passing check measured (a failing one carries the same in CheckFailed)."""

    max_abs_err: float | None = None
    max_rel_err: float | None = None
    bound: float | None = None
    value: float | None = None  # a reported figure (the precision horizon)
    note: str = ""
    angles: str | None = None  # the angle accuracy reached (accuracy.ANGLES), for checks against the reference


IN_PLACE, CALL_ORDER = "writes its input in place", "call-order dependent"  # the labelled properties


class PropertyObserved(Exception):
    """Not a wrong number but a labelled property of the implementation (it writes its inputs in
    place, its result depends on earlier calls): recorded as "observed" with the label and the
    evidence, never as non-conformant; ``mismatch`` says where it shows."""

    def __init__(self, label: str, mismatch: Mismatch) -> None:
        super().__init__(f"{label}: {mismatch.render()}")
        self.label = label
        self.mismatch = mismatch


class CheckFailed(AssertionError):
    """A check found the implementation wrong: ``mismatch`` says where and by how much (the
    message is its rendering), ``outcome`` the figures for the record."""

    def __init__(self, mismatch: Mismatch, outcome: Outcome | None = None) -> None:
        super().__init__(mismatch.render())
        self.mismatch = mismatch
        self.outcome = outcome or Outcome(mismatch.max_abs_err, mismatch.max_rel_err, mismatch.bound)


def case_positions(case: Case) -> int:
    """The largest position of the case's own inputs."""
    positions = case.inputs()[1]
    return int(positions.max()) if positions.size else 0


@dataclass(frozen=True)
class Check:
    """One check and everything about it.

    name: short id, the first part of its case ids; run: decides one case; summary: one line
    for reports; cases: the cases it runs in a profile ("quick" or "full"); needs_autodiff /
    needs_rope_qk: skipped (with the reason) for implementations without them; reported:
    measures a figure rather than deciding pass/fail; largest_position: the largest position
    it feeds the implementation on a case (checked against the implementation's max_position),
    None when the check keeps within max_position itself; arrays: how many input-sized arrays
    it passes (x; q and k; x and a cotangent), for the memory estimate; rows_seq: the (rows,
    tokens) of those arrays when they are not the case's (batch, seq); one_call: the check is
    one rope() call judged against the reference (exportable as test vectors), or None;
    keeps_instance: the check calls the kept instance on every case (it tests call order itself),
    where the others get a fresh one for a length-dependent spec (Subject.for_case).
    """

    name: str
    run: Callable[[Subject, Case], Outcome]
    summary: str
    cases: Callable[[str], list[Case]]
    needs_autodiff: bool = False
    needs_rope_qk: bool = False
    reported: bool = False
    largest_position: Callable[[Case], int] | None = case_positions
    arrays: int = 1
    rows_seq: Callable[[Case], tuple[int, int]] | None = None
    one_call: OneCall | None = None
    keeps_instance: bool = False

    def estimated_bytes(self, case: Case) -> int:
        """Roughly the most memory the check allocates on ``case``: per array it passes, the native
        input and output in the case's dtype plus the float64 copies the comparison holds (input,
        output, reference, allowed error), and the positions."""
        rows, seq = self.rows_seq(case) if self.rows_seq else (case.batch, case.seq)
        elements = rows * seq * case.heads * case.spec.head_dim
        per_element = 2 * np.dtype(NUMPY_DTYPES[case.dtype]).itemsize + 4 * 8
        return self.arrays * elements * per_element + rows * seq * case.spec.n_axes * 8

    def inapplicable(self, subject: Subject) -> str | None:
        """Why the check does not apply to this subject (a skip reason), or None."""
        if self.needs_autodiff and not has_autodiff(subject.framework):
            return f"{subject.framework} has no autodiff"
        if self.needs_rope_qk and not subject.has_rope_qk:
            return f"{subject.name} has no rope_qk (optional)"
        return None


def channel_of(case: Case, channel: int) -> str:
    """What channel ``channel`` of the case's head is: ``pair i`` or the pass-through tail."""
    first, second = reference.pair_channels(case.spec)
    pair = next((i for i in range(case.spec.n_pairs) if channel in (first[i], second[i])), None)
    return f"pair {pair}" if pair is not None else "pass-through tail"


def against_reference(check: str, what: str, subject: Subject, case: Case, x: np.ndarray, positions: np.ndarray,
                      got: np.ndarray, want: np.ndarray, array: str = "x") -> Outcome:
    """Judge an output against the reference (:func:`within_bound`) under the accuracy model of its
    input ``x`` (float32 angles, or float64 for float64 in strict mode), with the angle accuracy
    reached."""
    bounds = accuracy.allowed_errors(x, positions, case.spec, case.dtype)  # every precision, for the class
    return within_bound(check, what, subject.name, case, positions, got, want, bounds[subject.angles(case.dtype)],
                        array=array, angles=accuracy.class_reached(got, want, bounds))


def within_bound(check: str, what: str, implementation: str, case: Case, positions: np.ndarray, got: np.ndarray,
                 want: np.ndarray, bound: np.ndarray, array: str = "x", angles: str | None = None) -> Outcome:
    """Compare an output with the reference element by element under ``bound`` (the accuracy
    model's allowed error); raise CheckFailed with the worst element when any is over it, else
    return the figures. ``angles``: the angle accuracy reached, which names the cause of a
    failure that meets a looser class's bound."""
    cmp = accuracy.compare(got, want, bound)
    outcome = Outcome(cmp.max_abs_err, cmp.max_rel_err, cmp.bound, angles=angles)
    if not cmp.ok:
        location = channel_of(case, cmp.worst[-1]) if len(cmp.worst) == 4 else ""
        cause = "float32-angle accuracy where strict mode requires float64 angles" if angles else ""
        raise CheckFailed(Mismatch.compared(check, what, implementation, case, cmp, positions, array=array,
                                            location=location, cause=cause), outcome)
    return outcome


def first_difference(a: np.ndarray, b: np.ndarray) -> tuple[list[int], int]:
    """The index of the first element where ``a`` and ``b`` differ, and how many do (NaN == NaN)."""
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    where = np.argwhere(differ)
    return [int(i) for i in where[0]], len(where)


def exact_difference(got: np.ndarray, want: np.ndarray, positions: np.ndarray, wanted_label: str) -> dict[str, Any]:
    """The Mismatch fields of two outputs that should be bit-identical: the first element that
    differs, its position, got vs wanted, and how many differ (the bound is 0)."""
    index, count = first_difference(got, want)
    where = tuple(index)
    return dict(index=index, position=positions[index[0], index[1]].tolist(), got=float(got[where]),
                wanted=float(want[where]), wanted_label=wanted_label, error=abs(float(got[where] - want[where])),
                bound=0.0, over=count, total=got.size)


# --- check functions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class OneCall:
    """A check that is one rope() call judged against the float64 reference under the accuracy
    model: the check's name, ``what`` it tests (its mismatch's heading) and the call's ``inputs``
    (x, positions). The call and the reference decide it, so its cases can be exported as files
    any language reads (:mod:`rope_suite.conformance.vectors`)."""

    check: str
    what: str
    inputs: Callable[[Case], tuple[np.ndarray, np.ndarray]]

    def run(self, subject: Subject, case: Case) -> Outcome:
        """The check: rope() on the inputs, judged against the reference."""
        x, pos = self.inputs(case)
        got = subject.rope(x, pos, case.spec, case.dtype, case.pos_dtype)
        return against_reference(self.check, self.what, subject, case, x, pos, got, reference.apply(x, pos, case.spec))


def at_position_zero(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The case's x, every position 0 (where every pair is unrotated: rope(x) == attention_factor * x)."""
    x, pos = case.inputs()
    return x, np.zeros_like(pos)


AGREEMENT = OneCall("agreement", "agreement with the float64 reference", Case.inputs)
IDENTITY_AT_ZERO = OneCall("identity_at_zero", "identity at position 0", at_position_zero)


def fused_qk(subject: Subject, case: Case) -> Outcome:
    """rope_qk(q, k) rotates q and k like rope() (k with its own head count, as in GQA)."""
    if not subject.has_rope_qk:
        raise TypeError(f"{subject.name} has no rope_qk: the fused_qk check does not apply to it")
    q, pos = case.inputs()
    k = q[:, :, : max(1, case.heads // 2)][:, :, ::-1].copy()
    got_q, got_k = subject.rope_qk(q, k, pos, case.spec, case.dtype, case.pos_dtype)
    outcomes = [against_reference("fused_qk", f"fused rope_qk, {label} output", subject, case, inp, pos, got,
                                  reference.apply(inp, pos, case.spec), array=label)
                for label, inp, got in (("q", q, got_q), ("k", k, got_k))]
    return max(outcomes, key=lambda o: o.max_abs_err)


def shifted_rows(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """q, k and positions whose rows are the same token positions shifted by 0, 1000, 12345, ...
    Every row is in one call, so frequencies that depend on max(position) are shared."""
    q, base = case.inputs()
    k, _ = case.inputs(salt=1)
    q[:] = q[:1]
    k[:] = k[:1]
    shifts = np.array([0, 1000, 12345, 77777, 3][: case.batch]).reshape(-1, *([1] * (base.ndim - 1)))
    return q, k, base[:1] + shifts, shifts


def relative_position(subject: Subject, case: Case) -> Outcome:
    """q(m).k(n) == q(m+s).k(n+s) on the implementation's own outputs (RoFormer sec. 3.4.1)."""
    q, k, pos, shifts = shifted_rows(case)
    spec, dtype = case.spec, case.dtype
    rq, rk = subject.rope(q, pos, spec, dtype), subject.rope(k, pos, spec, dtype)
    scores = np.einsum("bshd,bthd->bhst", rq, rk)
    # Error of a score: sum over d of bound(q_d)|k_d| + |q_d|bound(k_d), for both rows compared.
    angles = subject.angles(dtype)
    bq, bk = accuracy.allowed_error(q, pos, spec, dtype, angles), accuracy.allowed_error(k, pos, spec, dtype, angles)
    wq, wk = np.abs(reference.apply(q, pos, spec)), np.abs(reference.apply(k, pos, spec))
    dot_bound = np.einsum("bshd,bthd->bhst", bq, wk) + np.einsum("bshd,bthd->bhst", wq, bk)
    cmp = accuracy.compare(scores[1:], np.broadcast_to(scores[:1], scores[1:].shape), dot_bound[1:] + dot_bound[:1])
    outcome = Outcome(cmp.max_abs_err, cmp.max_rel_err, cmp.bound)
    if not cmp.ok:
        b, h, s, t = cmp.worst
        shift = int(shifts.ravel()[b + 1])
        raise CheckFailed(Mismatch.compared(
            "relative_position", "relative-position invariance", subject.name, case, cmp, array="score", units="scores",
            location=f"head {h}, query token {s} at {pos[0, s].tolist()}, key token {t} at {pos[0, t].tolist()}",
            wanted_label="unshifted", cause=f"q(m).k(n) changed when every position moved by {shift}"), outcome)
    return outcome


def pair_norms(subject: Subject, case: Case) -> Outcome:
    """Every rotated pair keeps its length (times the attention factor)."""
    x, pos = case.inputs()
    spec = case.spec
    got = subject.rope(x, pos, spec, case.dtype, case.pos_dtype)
    first, second = reference.pair_channels(spec)
    bound = accuracy.allowed_error(x, pos, spec, case.dtype, subject.angles(case.dtype))
    g = reference.attention_factor(spec)
    cmp = accuracy.compare(np.hypot(got[..., first], got[..., second]), g * np.hypot(x[..., first], x[..., second]),
                           bound[..., first] + bound[..., second])
    outcome = Outcome(cmp.max_abs_err, cmp.max_rel_err, cmp.bound)
    if not cmp.ok:
        i = cmp.worst[-1]
        raise CheckFailed(Mismatch.compared(
            "pair_norms", "pair norm", subject.name, case, cmp, pos, array="pair length", units="pairs",
            location=f"pair {i}, channels {first[i]} and {second[i]}",
            wanted_label=f"wanted (input length x attention factor {g:g})"), outcome)
    return outcome


def tail_passthrough(subject: Subject, case: Case) -> Outcome:
    """Channels rotary_dim..head_dim-1 come back bit-identical (partial rotary)."""
    x, pos = case.inputs()
    r = case.spec.rotary_dim
    got = subject.rope(x, pos, case.spec, case.dtype, case.pos_dtype)
    if not np.array_equal(got[..., r:], x[..., r:]):
        index, count = first_difference(got[..., r:], x[..., r:])
        index[-1] += r
        where = tuple(index)
        error = float(np.max(np.abs(got[..., r:] - x[..., r:])))
        raise CheckFailed(Mismatch.of(
            "tail_passthrough", "pass-through tail", subject.name, case, index=index, location=f"rotary_dim={r}",
            position=pos[index[0], index[1]].tolist(), got=float(got[where]), wanted=float(x[where]),
            wanted_label="input", error=abs(float(got[where] - x[where])), bound=0.0, over=count,
            total=got[..., r:].size, max_abs_err=error,
            cause=f"{count} / {got[..., r:].size} tail elements changed"), Outcome(error, None, 0.0))
    return Outcome(0.0, 0.0, 0.0)


def output_contract(subject: Subject, case: Case) -> Outcome:
    """Same shape and dtype, finite (all three checked on every call), positions untouched,
    deterministic; x written in place (and nothing else wrong) is the labelled property
    "writes its input in place" (Liger's kernels do it by design), not a failure."""
    x, pos = case.inputs()
    spec, fw = case.spec, subject.framework
    xn, pn = subject.native(x, case.dtype), subject.native(pos, case.pos_dtype)
    x_before, p_before = subject.check_output(xn, xn, case.dtype, "input"), np.array(pos)
    first = subject.check_output(subject.call_rope(xn, pn, spec), xn, case.dtype)
    x_after = subject.check_output(xn, xn, case.dtype, "input")
    x_again = subject.native(x, case.dtype)  # the same input again, even if the first call overwrote xn
    second = subject.check_output(subject.call_rope(x_again, pn, spec), x_again, case.dtype)
    problems = []  # (cause, got, wanted, what wanted is)
    if not np.array_equal(x_after, x_before, equal_nan=True):
        index, _ = first_difference(x_after, x_before)
        problems.append((f"x was modified in place: x{index} was {x_before[tuple(index)]:.8g}, "
                         f"is {x_after[tuple(index)]:.8g}", x_after, x_before, "before the call"))
    in_place = problems[:]
    if not np.array_equal(to_numpy(fw, pn), p_before):
        problems.append(("positions were modified in place", None, None, ""))
    if not np.array_equal(first, second, equal_nan=True):
        index, _ = first_difference(second, first)
        problems.append((f"not deterministic: two calls differ at x{index}: {first[tuple(index)]:.8g} vs "
                         f"{second[tuple(index)]:.8g}", second, first, "first call"))
    if problems and problems == in_place:
        cause, got, want, label = in_place[0]
        raise PropertyObserved(IN_PLACE, Mismatch.of("output_contract", "output contract", subject.name, case,
                                                     cause=cause, **exact_difference(got, want, pos, label)))
    if problems:
        shown = next((p for p in problems if p[1] is not None), None)
        found = exact_difference(shown[1], shown[2], pos, shown[3]) if shown is not None else {}
        raise CheckFailed(Mismatch.of("output_contract", "output contract", subject.name, case,
                                      cause="; ".join(p[0] for p in problems), **found))
    return Outcome(note="ok")


STATELESS_ORDER: tuple[tuple[str, int], ...] = (("long", 5000), ("middle", 800), ("short", 0))
"""The stateless check's calls, in order, as offsets added to positions below 200: the lengths
cross the original lengths of the suite's specs (256 for dynamic-above and the LongRoPE ones)
downwards twice, from above to between (the call HF's dynamic NTK gets wrong after a longer
one) and from between to below."""


def stateless(subject: Subject, case: Case) -> Outcome:
    """No state survives a call: calls at a long, a middle and a short length, made in that order
    on one instance (as inside a model), each give bit for bit what a fresh instance gives for
    the same call. A difference is the labelled property "call-order dependent" (HF 25306:
    dynamic NTK keeps its grown base; lucidrains 11: a cos/sin cache keyed on length), not a
    wrong number: whether each call is right is agreement's to judge."""
    x, base = case.inputs()
    base = base % 200
    spec, dtype = case.spec, case.dtype
    kept = subject
    earlier: list[str] = []
    for label, offset in STATELESS_ORDER:
        pos = base + offset
        got = kept.rope(x, pos, spec, dtype)
        want = subject.new_instance().rope(x, pos, spec, dtype)
        if not np.array_equal(got, want, equal_nan=True):
            largest = float(np.max(np.abs(got - want)))
            raise PropertyObserved(CALL_ORDER, Mismatch.of(
                "stateless", "stateless", subject.name, case, max_abs_err=largest,
                cause=f"the {label} call (max position {int(pos.max())}) after "
                      f"{', '.join(earlier) or 'the earlier cases'} differs from the same call on a fresh instance "
                      f"by up to {largest:.3g}",
                **exact_difference(got, want, pos, "fresh instance")))
        earlier.append(f"the {label} call (max position {int(pos.max())})")
    return Outcome(note="ok")


def gradient(subject: Subject, case: Case) -> Outcome:
    """The VJP with respect to x is the inverse rotation of the cotangent (times the attention factor)."""
    x, pos = case.inputs()
    g, _ = case.inputs(salt=7)
    got = subject.vjp(x, pos, g, case.spec, case.dtype)
    return against_reference("gradient", "gradient (VJP = inverse rotation of the cotangent)", subject, case, g, pos,
                             got, reference.apply_transpose(g, pos, case.spec), array="grad")


HORIZON_THRESHOLD = 1e-2
"""Precision horizon: the error, relative to max|x|, above which a position is past the horizon."""
# 2^k + 1: not powers of two, which half-precision floats hold exactly, so positions rounded
# through fp16/bf16 show up too.
HORIZON_POSITIONS = np.array([0] + [(1 << k) + 1 for k in range(31)], dtype=np.int64)


def precision_horizon(subject: Subject, case: Case) -> Outcome:
    """The largest position 2^k + 1 at which max|rope - exact| / max|x| stays under HORIZON_THRESHOLD
    (and at every smaller probe), up to the implementation's max_position. Reported,
    not judged; non-finite output still fails (the output contract, checked on every call)."""
    spec = case.spec
    limit = subject.max_position
    positions = HORIZON_POSITIONS if limit is None else HORIZON_POSITIONS[HORIZON_POSITIONS <= limit]
    n = len(positions)
    rng = np.random.default_rng(case.seed)
    x = round_to(rng.standard_normal((n, 1, case.heads, spec.head_dim)), case.dtype)
    pos = positions.reshape(n, 1)
    if spec.n_axes > 1:
        pos = np.repeat(pos[..., None], spec.n_axes, axis=-1)
    got = subject.rope(x, pos, spec, case.dtype, case.pos_dtype)
    err = np.max(np.abs(got - reference.apply(x, pos, spec)).reshape(n, -1), axis=1) / np.max(np.abs(x))
    within = np.cumprod(err < HORIZON_THRESHOLD).astype(bool)
    horizon = int(positions[within][-1]) if within.any() else -1
    capped = " (its max_position)" if limit is not None and horizon == int(positions[-1]) else ""
    return Outcome(float(np.max(err)), None, HORIZON_THRESHOLD, value=float(horizon),
                   note=f"error < {HORIZON_THRESHOLD:g} x max|x| up to position {horizon}{capped}")


def shifted_positions(case: Case) -> int:
    return int(shifted_rows(case)[2].max())


def stateless_positions(case: Case) -> int:
    return int((case.inputs()[1] % 200).max()) + max(offset for _, offset in STATELESS_ORDER)


def horizon_rows(case: Case) -> tuple[int, int]:
    return len(HORIZON_POSITIONS), 1


# --- which cases each check runs ------------------------------------------------------------------
# ``full`` runs agreement over every spec x every dtype and every position pattern, and the other
# checks over a representative subset of specs; ``quick`` keeps every check, feature and dtype but
# fewer specs and patterns.

def _each(specs: tuple[str, ...], dtypes: tuple[str, ...], **shape: object) -> list[Case]:
    return [Case(s, d, **shape) for s in specs for d in dtypes]


PATTERNS = ("contiguous", "offset", "decode_offset_per_row", "packed_restart", "large_positions")
PATTERN_SHAPES = {"decode_offset_per_row": dict(batch=4, seq=1), "packed_restart": dict(batch=3, seq=8)}


# A spec per feature where it is the only departure from the plain spec (the scaling types' first
# examples and qwen2-vl's M-RoPE are such specs too), run in every dtype in every profile.
ISOLATED: tuple[str, ...] = ("interleaved-full", "gpt-neox-20b", "partial-one-pair", "axial2d-half")


def agreement_cases(profile: str) -> list[Case]:
    """Every spec and dtype (quick: the representative specs, one per scaling type and one per
    feature on its own), the dynamic/LongRoPE boundaries, every position pattern, int32
    positions, heads == seq, and large positions in every dtype."""
    full = profile == "full"
    specs = tuple(SPECS) if full else tuple(dict.fromkeys(representative(profile) + FIRST_EXAMPLES + ISOLATED
                                                          + ("qwen3-vl",)))
    return [*_each(tuple(s for s in specs if s not in BOUNDARY), FLOAT_DTYPES),
            *(Case(s, "float32", "contiguous", batch=1, seq=n) for s in BOUNDARY for n in (6, 7)),
            *(Case(s, "float32", p, **PATTERN_SHAPES.get(p, {}))
              for s in (("llama2-7b", "gpt-j-6b", "dynamic-above", "qwen2-vl") if full else ("llama2-7b", "dynamic-above"))
              for p in PATTERNS),
            Case("llama2-7b", "float32", pos_dtype="int32"), Case("sam2", "float32", pos_dtype="int32"),
            Case("llama2-7b", "float32", batch=2, seq=4, heads=4),  # heads == seq
            *(Case("llama2-7b", d, "large_positions") for d in FLOAT_DTYPES if d != "float32")]


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("agreement", AGREEMENT.run, "equals the float64 reference within the accuracy model", agreement_cases,
          one_call=AGREEMENT),
    Check("fused_qk", fused_qk, "rope_qk rotates q and k (different head counts) like rope",
          lambda p: _each(representative(p), ("float32", "bfloat16")), needs_rope_qk=True, arrays=2),
    Check("relative_position", relative_position, "q(m).k(n) == q(m+s).k(n+s) on its own outputs",
          lambda p: _each(representative(p), ("float32",), batch=3), largest_position=shifted_positions, arrays=2),
    Check("pair_norms", pair_norms, "every rotated pair keeps its length x attention factor",
          lambda p: _each(representative(p), ("float32", "bfloat16"))),
    Check("identity_at_zero", IDENTITY_AT_ZERO.run, "position 0 leaves x unrotated",
          lambda p: _each(representative(p), ("float32",)), one_call=IDENTITY_AT_ZERO),
    Check("tail_passthrough", tail_passthrough, "channels past rotary_dim are bit-identical",
          lambda p: _each(PARTIAL, FLOAT_DTYPES)),
    Check("stateless", stateless, "each call of long, middle, short equals a fresh instance's (reported)",
          lambda p: _each(("llama2-7b", "dynamic-above", "longrope-long", "qwen2-vl"), ("float32",)),
          largest_position=stateless_positions, keeps_instance=True),
    Check("output_contract", output_contract, "shape, dtype, finite, no mutation, deterministic",
          lambda p: [*_each(("llama2-7b",), FLOAT_DTYPES), *_each(representative(p)[1:], ("float32",))]),
    Check("gradient", gradient, "VJP equals the inverse rotation of the cotangent",
          lambda p: _each(representative(p), ("float32", "float64")), needs_autodiff=True, arrays=2),
    Check("precision_horizon", precision_horizon, "largest position with error < 1e-2 max|x| (reported)",
          lambda p: _each(("llama2-7b",), FLOAT_DTYPES), reported=True, largest_position=None,
          rows_seq=horizon_rows),
)}
