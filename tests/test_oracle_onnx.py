"""The float64 reference against ONNX's ``RotaryEmbedding`` operator (opset 23).

ONNX is an oracle no one here wrote: its reference evaluator
(``onnx/reference/ops/op_rotary_embedding.py``, the numpy code the operator's schema doc
quotes) and onnxruntime's CPU kernel are run on models built with ``onnx.helper``. The
cos/sin caches come from ``reference.cos_sin``; what is under test is everything the
operator does with them: the rotation formula, the pairing (``interleaved``), the partial
tail (``rotary_embedding_dim``), the lookup by ``position_ids``, and the 4D
[batch, heads, seq, head] and 3D [batch, seq, hidden] layouts.

Precision. The schema's type constraint T is float, float16 or bfloat16, but the reference
evaluator is plain numpy and does not enforce it, so it runs a float64 model and is compared
at float64 rounding. onnxruntime validates T, so it runs the float32 model (which
``onnx.checker`` accepts with ``full_check``) at a float32 bound derived in
:func:`float32_bound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from conftest import need

from rope_suite.conformance import reference
from rope_suite.conformance.presets import preset
from rope_suite.conformance.spec import RopeSpec

OPSET = 23
EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


# --- the cases ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OnnxCase:
    """One way to call the operator: which features of it are exercised."""

    id: str
    spec: RopeSpec
    with_position_ids: bool  # caches [max_pos, r/2] + position_ids, else caches [batch, seq, r/2]
    rank: int                # 4: [batch, heads, seq, head]; 3: [batch, seq, heads*head] + num_heads
    batch: int = 2
    seq: int = 5
    heads: int = 3


def _feature_cases() -> list[OnnxCase]:
    """Every combination of convention x partial rotary x position_ids x input rank."""
    cases = []
    for convention in ("half", "interleaved"):
        for rotary_dim, rotary in ((16, "full"), (6, "partial")):
            spec = RopeSpec(head_dim=16, rotary_dim=rotary_dim, base=10000.0, convention=convention)
            for with_ids, ids in ((True, "position_ids"), (False, "per_token_cache")):
                for rank in (4, 3):
                    cases.append(OnnxCase(f"{convention}_{rotary}_{ids}_{rank}d", spec, with_ids, rank))
    return cases


FEATURE_CASES = _feature_cases()
# Real models' specs, 4D with position_ids (the layout ONNX exporters emit).
PRESET_CASES = [OnnxCase(name, preset(name), with_position_ids=True, rank=4, heads=2)
                for name in ("gpt-neox-20b", "gpt-j-6b", "phi-2", "llama2-7b")]
ALL_CASES = FEATURE_CASES + PRESET_CASES


# --- building and running the ONNX model --------------------------------------------------------

def rotary_model(onnx: ModuleType, case: OnnxCase, elem_type: int) -> Any:
    """A one-node opset-23 model ``Y = RotaryEmbedding(X, cos_cache, sin_cache[, position_ids])``.

    Attributes as in the operator schema (``onnx/defs/nn/defs.cc``, RotaryEmbedding-23):
    ``interleaved`` 1 for adjacent pairs; ``rotary_embedding_dim`` only when partial;
    ``num_heads`` only for 3D input.
    """
    helper, spec = onnx.helper, case.spec
    if case.rank == 4:
        x_shape = ["batch", "heads", "seq", spec.head_dim]
    else:
        x_shape = ["batch", "seq", case.heads * spec.head_dim]
    cache_shape = ["max_pos", spec.n_pairs] if case.with_position_ids else ["batch", "seq", spec.n_pairs]
    inputs = [helper.make_tensor_value_info("X", elem_type, x_shape),
              helper.make_tensor_value_info("cos_cache", elem_type, cache_shape),
              helper.make_tensor_value_info("sin_cache", elem_type, cache_shape)]
    if case.with_position_ids:
        inputs.append(helper.make_tensor_value_info("position_ids", onnx.TensorProto.INT64, ["batch", "seq"]))
    attributes: dict[str, int] = {"interleaved": int(spec.convention == "interleaved")}
    if spec.rotary_dim != spec.head_dim:
        attributes["rotary_embedding_dim"] = spec.rotary_dim
    if case.rank == 3:
        attributes["num_heads"] = case.heads
    node = helper.make_node("RotaryEmbedding", [i.name for i in inputs], ["Y"], **attributes)
    graph = helper.make_graph([node], "rotary", inputs, [helper.make_tensor_value_info("Y", elem_type, x_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


@dataclass(frozen=True)
class Sample:
    """Inputs in the reference's layout (x [batch, seq, heads, head], positions [batch, seq]) and
    the operator's feeds for them, in float64."""

    x: np.ndarray
    positions: np.ndarray
    feeds: dict[str, np.ndarray]


def make_sample(case: OnnxCase, seed: int = 0) -> Sample:
    """Random x (float32-representable, so rounding x costs nothing in the float32 runs) and
    per-row offset, non-contiguous positions; the caches laid out for the case."""
    rng = np.random.default_rng(seed)
    spec = case.spec
    x = rng.standard_normal((case.batch, case.seq, case.heads, spec.head_dim)).astype(np.float32).astype(np.float64)
    steps = rng.integers(1, 4, size=(case.batch, case.seq))
    positions = np.cumsum(steps, axis=1) + rng.integers(0, 50, size=(case.batch, 1))
    if case.rank == 4:
        feeds = {"X": x.transpose(0, 2, 1, 3)}
    else:
        feeds = {"X": x.reshape(case.batch, case.seq, case.heads * spec.head_dim)}
    if case.with_position_ids:
        table = np.arange(int(positions.max()) + 1)[None, :]
        cos, sin = reference.cos_sin(table, spec)
        feeds |= {"cos_cache": cos[0], "sin_cache": sin[0], "position_ids": positions.astype(np.int64)}
    else:
        cos, sin = reference.cos_sin(positions, spec)
        feeds |= {"cos_cache": cos, "sin_cache": sin}
    return Sample(x, positions, feeds)


def to_reference_layout(y: np.ndarray, case: OnnxCase) -> np.ndarray:
    """The operator's output back in [batch, seq, heads, head]."""
    if case.rank == 4:
        return y.transpose(0, 2, 1, 3)
    return y.reshape(case.batch, case.seq, case.heads, case.spec.head_dim)


def as_float32(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float feeds cast to float32; position_ids stay int64."""
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in feeds.items()}


# --- bounds and the assertion -------------------------------------------------------------------

def float64_bound(x: np.ndarray) -> float:
    """Each output is a*c - b*s (or b*c + a*s): two products and a sum, each rounded once
    (<= eps/2 of |a c| + |b s| <= 2 max|x|), so 4 eps64 max|x| covers any evaluation order."""
    return 4 * EPS64 * float(np.max(np.abs(x)))


def float32_bound(x: np.ndarray) -> float:
    """x is float32-representable; cos and sin are rounded to float32 (relative u = eps32/2
    each), then two products and a sum round once each (u each). Per output that is at most
    3u (|a c| + |b s|) + u |result| <= 4u * 2 max|x| = 4 eps32 max|x|; the pass-through tail
    is exact. FMA kernels only round less."""
    return 4 * EPS32 * float(np.max(np.abs(x)))


def assert_close(got: np.ndarray, want: np.ndarray, bound: float, call: str,
                 positions: np.ndarray | None = None) -> None:
    """Fail unless |got - want| <= bound everywhere; the message names the worst element
    (index [batch, seq, head, channel], its position id, got, wanted, error vs bound) and how
    many are over, then the call (STYLE.md)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape={got.shape}, but should be {want.shape} [{call}]"
    err = np.abs(got - want)
    over = ~(err <= bound)  # NaN counts as over
    if over.any():
        worst = np.unravel_index(np.argmax(np.where(np.isnan(err), np.inf, err)), err.shape)
        where = f" (position {int(positions[worst[:2]])})" if positions is not None else ""
        pytest.fail(f"{int(over.sum())}/{err.size} elements over the bound; worst at index {tuple(map(int, worst))}"
                    f"{where}: got {float(got[worst])!r}, wanted {float(want[worst])!r}, "
                    f"error {float(err[worst]):.3g} > bound {bound:.3g} [{call}]")


# --- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx() -> ModuleType:
    return need("onnx")


@pytest.fixture(scope="module")
def onnxruntime() -> ModuleType:
    return need("onnxruntime")


def run_reference_evaluator(onnx: ModuleType, case: OnnxCase, feeds: dict[str, np.ndarray], elem_type: int
                            ) -> np.ndarray:
    """``onnx.reference.ReferenceEvaluator`` on the case's model."""
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(rotary_model(onnx, case, elem_type)).run(None, feeds)[0]


# --- the tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_reference_evaluator_float64(onnx: ModuleType, case: OnnxCase) -> None:
    """reference.apply == ONNX's reference evaluator, float64, at float64 rounding."""
    sample = make_sample(case)
    y = run_reference_evaluator(onnx, case, sample.feeds, onnx.TensorProto.DOUBLE)
    assert y.dtype == np.float64, f"y.dtype={y.dtype}, but should be float64 [ReferenceEvaluator, {case.id}]"
    want = reference.apply(sample.x, sample.positions, case.spec)
    assert_close(to_reference_layout(y, case), want, float64_bound(sample.x),
                 f"ReferenceEvaluator(RotaryEmbedding-{OPSET}, {case.id}) vs reference.apply", sample.positions)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_reference_evaluator_float32_model(onnx: ModuleType, case: OnnxCase) -> None:
    """The float32 model is valid ONNX (full check), and the evaluator's float32 output is
    within the float32 bound of reference.apply."""
    model = rotary_model(onnx, case, onnx.TensorProto.FLOAT)
    onnx.checker.check_model(model, full_check=True)
    sample = make_sample(case)
    y = run_reference_evaluator(onnx, case, as_float32(sample.feeds), onnx.TensorProto.FLOAT)
    want = reference.apply(sample.x, sample.positions, case.spec)
    assert_close(to_reference_layout(y, case), want, float32_bound(sample.x),
                 f"ReferenceEvaluator(RotaryEmbedding-{OPSET}, float32, {case.id}) vs reference.apply",
                 sample.positions)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_onnxruntime_cpu(onnx: ModuleType, onnxruntime: ModuleType, case: OnnxCase) -> None:
    """reference.apply == onnxruntime's CPU RotaryEmbedding-23 kernel, float32, at the float32 bound."""
    model = rotary_model(onnx, case, onnx.TensorProto.FLOAT)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sample = make_sample(case)
    y = session.run(None, as_float32(sample.feeds))[0]
    want = reference.apply(sample.x, sample.positions, case.spec)
    assert_close(to_reference_layout(y, case), want, float32_bound(sample.x),
                 f"onnxruntime {onnxruntime.__version__} CPU RotaryEmbedding-{OPSET}, {case.id} vs reference.apply",
                 sample.positions)


def test_cases_cover_every_operator_feature() -> None:
    """The feature cases reach every attribute/input combination the operator has (guards the
    parametrization itself: dropping a combination fails here, not silently)."""
    seen = {(c.spec.convention, c.spec.rotary_dim < c.spec.head_dim, c.with_position_ids, c.rank)
            for c in FEATURE_CASES}
    want = {(conv, partial, ids, rank) for conv in ("half", "interleaved") for partial in (False, True)
            for ids in (False, True) for rank in (3, 4)}
    assert seen == want, f"feature combinations {sorted(want - seen)} are missing"
