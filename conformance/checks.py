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

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import accuracy, reference
from .accuracy import Comparison
from .cases import BOUNDARY, FIRST_EXAMPLES, PARTIAL, SPECS, Case, representative
from .frameworks import FLOAT_DTYPES, NUMPY_DTYPES, has_autodiff, round_to, to_numpy
from .subject import Subject


@dataclass
class Outcome:
    """What a passing check measured (a failing one carries the same in CheckFailed)."""

    max_abs_err: float | None = None
    max_rel_err: float | None = None
    bound: float | None = None
    value: float | None = None  # a reported figure (the precision horizon)
    note: str = ""


class CheckFailed(AssertionError):
    def __init__(self, message: str, outcome: Outcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome or Outcome()


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
    tokens) of those arrays when they are not the case's (batch, seq).
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


# --- messages -------------------------------------------------------------------------------------

def spec_text(case: Case) -> str:
    return f"{json.dumps(case.spec.to_dict())}  (spec {case.spec_name!r})"


def mismatch_report(what: str, subject: Subject, case: Case, cmp: Comparison, positions: np.ndarray,
                    shape_label: str = "x") -> str:
    """The failure message: the call, the spec, where the worst element is, got vs wanted, error vs bound."""
    b, s, h, d = cmp.worst if len(cmp.worst) == 4 else (*cmp.worst, 0, 0, 0)[:4]
    spec = case.spec
    first, second = reference.pair_channels(spec)
    pair = next((i for i in range(spec.n_pairs) if d in (first[i], second[i])), None)
    channel = f"pair {pair}" if pair is not None else "pass-through tail"
    pos = positions[b, s].tolist() if positions.ndim >= 2 else positions
    share = 100.0 * cmp.over / max(cmp.total, 1)
    return "\n".join([
        f"{what}: {subject.name} on {case.spec_name}, {case.dtype}, {shape_label}{list(case.shape)}, "
        f"positions {case.pattern} ({case.pos_dtype})",
        f"  spec: {spec_text(case)}",
        f"  mismatched elements: {cmp.over} / {cmp.total} ({share:.1f}%) over the allowed error",
        f"  worst: {shape_label}[{b}, {s}, {h}, {d}] ({channel}, position {pos}): got {cmp.got:.8g}, wanted {cmp.want:.8g}",
        f"  error {abs(cmp.got - cmp.want):.3g} vs allowed {cmp.bound:.3g} "
        f"({accuracy.SAFETY:g}x standard practice in {case.dtype}); max abs err {cmp.max_abs_err:.3g}, "
        f"max rel err {cmp.max_rel_err:.3g}",
    ])


def _decide(cmp: Comparison, message: Callable[[], str]) -> Outcome:
    outcome = Outcome(cmp.max_abs_err, cmp.max_rel_err, cmp.bound)
    if not cmp.ok:
        raise CheckFailed(message(), outcome)
    return outcome


# --- check functions --------------------------------------------------------------------------------

def agreement(subject: Subject, case: Case) -> Outcome:
    """rope(x) equals the float64 reference within the accuracy model."""
    x, pos = case.inputs()
    got = subject.rope(x, pos, case.spec, case.dtype, case.pos_dtype)
    cmp = accuracy.compare(got, reference.apply(x, pos, case.spec), accuracy.allowed_error(x, pos, case.spec, case.dtype))
    return _decide(cmp, lambda: mismatch_report("agreement with the float64 reference", subject, case, cmp, pos))


def fused_qk(subject: Subject, case: Case) -> Outcome:
    """rope_qk(q, k) rotates q and k like rope() (k with its own head count, as in GQA)."""
    if not subject.has_rope_qk:
        raise CheckFailed("no rope_qk")  # the plan only schedules this for subjects that have it
    q, pos = case.inputs()
    k = q[:, :, : max(1, case.heads // 2)][:, :, ::-1].copy()
    got_q, got_k = subject.rope_qk(q, k, pos, case.spec, case.dtype, case.pos_dtype)
    worst = None
    for label, inp, got in (("q", q, got_q), ("k", k, got_k)):
        cmp = accuracy.compare(got, reference.apply(inp, pos, case.spec),
                               accuracy.allowed_error(inp, pos, case.spec, case.dtype))
        if not cmp.ok:
            raise CheckFailed(mismatch_report(f"fused rope_qk, {label} output", subject, case, cmp, pos, label),
                              Outcome(cmp.max_abs_err, cmp.max_rel_err, cmp.bound))
        worst = cmp if worst is None or cmp.max_abs_err > worst.max_abs_err else worst
    return Outcome(worst.max_abs_err, worst.max_rel_err, worst.bound)


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
    bq, bk = accuracy.allowed_error(q, pos, spec, dtype), accuracy.allowed_error(k, pos, spec, dtype)
    wq, wk = np.abs(reference.apply(q, pos, spec)), np.abs(reference.apply(k, pos, spec))
    dot_bound = np.einsum("bshd,bthd->bhst", bq, wk) + np.einsum("bshd,bthd->bhst", wq, bk)
    cmp = accuracy.compare(scores[1:], np.broadcast_to(scores[:1], scores[1:].shape), dot_bound[1:] + dot_bound[:1])

    def message() -> str:
        b, h, s, t = cmp.worst
        return "\n".join([
            f"relative-position invariance: {subject.name} on {case.spec_name}, {dtype}, x{list(case.shape)}",
            f"  spec: {spec_text(case)}",
            f"  q(m).k(n) changed when every position moved by {int(shifts.ravel()[b + 1])}: "
            f"head {h}, query token {s} (position {pos[0, s].tolist()}), key token {t} (position {pos[0, t].tolist()})",
            f"  got {cmp.got:.8g}, unshifted {cmp.want:.8g}: difference {abs(cmp.got - cmp.want):.3g} vs allowed "
            f"{cmp.bound:.3g}; {cmp.over} / {cmp.total} scores over",
        ])
    return _decide(cmp, message)


def pair_norms(subject: Subject, case: Case) -> Outcome:
    """Every rotated pair keeps its length (times the attention factor)."""
    x, pos = case.inputs()
    spec = case.spec
    got = subject.rope(x, pos, spec, case.dtype, case.pos_dtype)
    first, second = reference.pair_channels(spec)
    bound = accuracy.allowed_error(x, pos, spec, case.dtype)
    g = reference.attention_factor(spec)
    cmp = accuracy.compare(np.hypot(got[..., first], got[..., second]), g * np.hypot(x[..., first], x[..., second]),
                           bound[..., first] + bound[..., second])

    def message() -> str:
        b, s, h, i = cmp.worst
        return "\n".join([
            f"pair norm: {subject.name} on {case.spec_name}, {case.dtype}, x{list(case.shape)}",
            f"  spec: {spec_text(case)}",
            f"  pair {i} (channels {first[i]}, {second[i]}) at x[{b}, {s}, {h}], position {pos[b, s].tolist()}: "
            f"length {cmp.got:.8g}, wanted {cmp.want:.8g} (input length x attention factor {g:g})",
            f"  error {abs(cmp.got - cmp.want):.3g} vs allowed {cmp.bound:.3g}; {cmp.over} / {cmp.total} pairs over",
        ])
    return _decide(cmp, message)


def identity_at_zero(subject: Subject, case: Case) -> Outcome:
    """At position 0 every pair is unrotated: rope(x) == attention_factor * x on rotated channels."""
    x, pos = case.inputs()
    pos = np.zeros_like(pos)
    got = subject.rope(x, pos, case.spec, case.dtype, case.pos_dtype)
    cmp = accuracy.compare(got, reference.apply(x, pos, case.spec), accuracy.allowed_error(x, pos, case.spec, case.dtype))
    return _decide(cmp, lambda: mismatch_report("identity at position 0", subject, case, cmp, pos))


def tail_passthrough(subject: Subject, case: Case) -> Outcome:
    """Channels rotary_dim..head_dim-1 come back bit-identical (partial rotary)."""
    x, pos = case.inputs()
    r = case.spec.rotary_dim
    got = subject.rope(x, pos, case.spec, case.dtype, case.pos_dtype)
    changed = np.argwhere(got[..., r:] != x[..., r:])
    if len(changed):
        b, s, h, d = changed[0]
        raise CheckFailed("\n".join([
            f"pass-through tail: {subject.name} on {case.spec_name}, {case.dtype}, x{list(case.shape)}",
            f"  spec: {spec_text(case)}",
            f"  {len(changed)} / {got[..., r:].size} tail elements changed; first at x[{b}, {s}, {h}, {r + d}] "
            f"(rotary_dim={r}): got {got[b, s, h, r + d]:.8g}, input {x[b, s, h, r + d]:.8g}",
        ]), Outcome(float(np.max(np.abs(got[..., r:] - x[..., r:]))), None, 0.0))
    return Outcome(0.0, 0.0, 0.0)


def output_contract(subject: Subject, case: Case) -> Outcome:
    """Same shape and dtype, finite (all three checked on every call), inputs untouched, deterministic."""
    x, pos = case.inputs()
    spec, fw = case.spec, subject.framework
    xn, pn = subject.native(x, case.dtype), subject.native(pos, case.pos_dtype)
    x_before, p_before = subject.check_output(xn, xn, case.dtype, "input"), np.array(pos)
    first = subject.check_output(subject.call_rope(xn, pn, spec), xn, case.dtype)
    second = subject.check_output(subject.call_rope(xn, pn, spec), xn, case.dtype)
    problems = []
    x_after = subject.check_output(xn, xn, case.dtype, "input")
    if not np.array_equal(x_after, x_before, equal_nan=True):
        where = np.argwhere(x_after != x_before)[0]
        problems.append(f"x was modified in place: x{list(where)} was {x_before[tuple(where)]:.8g}, "
                        f"is {x_after[tuple(where)]:.8g}")
    if not np.array_equal(to_numpy(fw, pn), p_before):
        problems.append("positions were modified in place")
    if not np.array_equal(first, second, equal_nan=True):
        where = np.argwhere(first != second)[0]
        problems.append(f"not deterministic: two calls differ at x{list(where)}: "
                        f"{first[tuple(where)]:.8g} vs {second[tuple(where)]:.8g}")
    if problems:
        raise CheckFailed("\n".join([f"output contract: {subject.name} on {case.spec_name}, {case.dtype}, "
                                     f"x{list(case.shape)}", f"  spec: {spec_text(case)}",
                                     *(f"  {p}" for p in problems)]))
    return Outcome(note="ok")


def stateless(subject: Subject, case: Case) -> Outcome:
    """No state survives a call: short positions, then long ones (past the original length), then
    the short ones again, all agree with the reference and the two short calls are bit-identical
    (HF 25306: dynamic NTK kept its grown base; lucidrains 11: a cos/sin cache keyed on length)."""
    x, short = case.inputs()
    short = short % 200  # below every original length the suite's specs use (largest_position knows)
    long = short + 5000
    spec, dtype = case.spec, case.dtype
    calls = [("short", short), ("long", long), ("short again", short)]
    outputs = []
    for label, pos in calls:
        got = subject.rope(x, pos, spec, dtype)
        cmp = accuracy.compare(got, reference.apply(x, pos, spec), accuracy.allowed_error(x, pos, spec, dtype))
        if not cmp.ok:
            raise CheckFailed(mismatch_report(f"stateless: the {label} call of short, long, short", subject, case,
                                              cmp, pos), Outcome(cmp.max_abs_err, cmp.max_rel_err, cmp.bound))
        outputs.append(got)
    if not np.array_equal(outputs[0], outputs[2]):
        where = np.argwhere(outputs[0] != outputs[2])[0]
        raise CheckFailed(f"stateless: {subject.name} on {case.spec_name}, {dtype}: the same call before and after a "
                          f"long call differs at x{list(where)}: {outputs[0][tuple(where)]:.8g} vs "
                          f"{outputs[2][tuple(where)]:.8g}")
    return Outcome(note="ok")


def gradient(subject: Subject, case: Case) -> Outcome:
    """The VJP with respect to x is the inverse rotation of the cotangent (times the attention factor)."""
    x, pos = case.inputs()
    g, _ = case.inputs(salt=7)
    got = subject.vjp(x, pos, g, case.spec, case.dtype)
    cmp = accuracy.compare(got, reference.apply_transpose(g, pos, case.spec),
                           accuracy.allowed_error(g, pos, case.spec, case.dtype))
    return _decide(cmp, lambda: mismatch_report("gradient (VJP = inverse rotation of the cotangent)",
                                                subject, case, cmp, pos, "grad"))


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
    return int((case.inputs()[1] % 200).max()) + 5000  # the long call of short, long, short


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


def agreement_cases(profile: str) -> list[Case]:
    """Every spec and dtype (quick: the representative specs and one per scaling type), the
    dynamic/LongRoPE boundaries, every position pattern, int32 positions, heads == seq, and
    large positions in every dtype."""
    full = profile == "full"
    specs = tuple(SPECS) if full else tuple(dict.fromkeys(representative(profile) + FIRST_EXAMPLES + ("qwen3-vl",)))
    return [*_each(tuple(s for s in specs if s not in BOUNDARY), FLOAT_DTYPES),
            *(Case(s, "float32", "contiguous", batch=1, seq=n) for s in BOUNDARY for n in (6, 7)),
            *(Case(s, "float32", p, **PATTERN_SHAPES.get(p, {}))
              for s in (("llama2-7b", "gpt-j-6b", "dynamic-above", "qwen2-vl") if full else ("llama2-7b", "dynamic-above"))
              for p in PATTERNS),
            Case("llama2-7b", "float32", pos_dtype="int32"), Case("sam2", "float32", pos_dtype="int32"),
            Case("llama2-7b", "float32", batch=2, seq=4, heads=4),  # heads == seq
            *(Case("llama2-7b", d, "large_positions") for d in FLOAT_DTYPES if d != "float32")]


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("agreement", agreement, "equals the float64 reference within the accuracy model", agreement_cases),
    Check("fused_qk", fused_qk, "rope_qk rotates q and k (different head counts) like rope",
          lambda p: _each(representative(p), ("float32", "bfloat16")), needs_rope_qk=True, arrays=2),
    Check("relative_position", relative_position, "q(m).k(n) == q(m+s).k(n+s) on its own outputs",
          lambda p: _each(representative(p), ("float32",), batch=3), largest_position=shifted_positions, arrays=2),
    Check("pair_norms", pair_norms, "every rotated pair keeps its length x attention factor",
          lambda p: _each(representative(p), ("float32", "bfloat16"))),
    Check("identity_at_zero", identity_at_zero, "position 0 leaves x unrotated",
          lambda p: _each(representative(p), ("float32",))),
    Check("tail_passthrough", tail_passthrough, "channels past rotary_dim are bit-identical",
          lambda p: _each(PARTIAL, FLOAT_DTYPES)),
    Check("stateless", stateless, "no state kept between calls (short, long, short again)",
          lambda p: _each(("llama2-7b", "dynamic-above", "longrope-long", "qwen2-vl"), ("float32",)),
          largest_position=stateless_positions),
    Check("output_contract", output_contract, "shape, dtype, finite, no mutation, deterministic",
          lambda p: [*_each(("llama2-7b",), FLOAT_DTYPES), *_each(representative(p)[1:], ("float32",))]),
    Check("gradient", gradient, "VJP equals the inverse rotation of the cotangent",
          lambda p: _each(representative(p), ("float32", "float64")), needs_autodiff=True, arrays=2),
    Check("precision_horizon", precision_horizon, "largest position with error < 1e-2 max|x| (reported)",
          lambda p: _each(("llama2-7b",), FLOAT_DTYPES), reported=True, largest_position=None,
          rows_seq=horizon_rows),
)}
