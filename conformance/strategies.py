"""Hypothesis strategies for specs, shapes and positions, in one place (array-api-tests style).

Every strategy draws only valid values; the tests that need invalid ones build them explicitly.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .spec import SCALING_TYPES, Axial2D, MRope, RopeSpec

MAX_HEAD_DIM = 64


@st.composite
def scalings(draw: st.DrawFn, rotary_dim: int) -> dict | None:
    """A valid HF-style ``rope_scaling`` mapping for ``rotary_dim`` of any registered rope_type
    (each record draws its own keys), or None."""
    kind = draw(st.sampled_from([None, *SCALING_TYPES]))
    if kind is None or rotary_dim < SCALING_TYPES[kind].min_rotary_dim:
        return None
    record = SCALING_TYPES[kind]
    factor = draw(st.floats(1.0, 16.0))
    l0 = draw(st.sampled_from([64, 256, 2048, 8192]))
    out: dict = {"rope_type": kind, "factor": factor}
    if "original_max_position_embeddings" in record.required:
        out["original_max_position_embeddings"] = l0
    if record.draw_params is not None:
        out |= record.draw_params(draw, st, rotary_dim)
    return out


@st.composite
def specs(draw: st.DrawFn, max_head_dim: int = MAX_HEAD_DIM, multi_axis: bool = True) -> RopeSpec:
    """Any valid RopeSpec: conventions, partial rotary, every scaling, M-RoPE and 2D axial."""
    head_dim = 2 * draw(st.integers(1, max_head_dim // 2))
    rotary_dim = 2 * draw(st.integers(1, head_dim // 2))
    base = draw(st.sampled_from([10000.0, 500000.0, 1e6])) if draw(st.booleans()) else draw(st.floats(2.0, 1e7))
    convention = draw(st.sampled_from(["half", "interleaved"]))
    axis_kind = draw(st.sampled_from([None, None, "mrope", "mrope-interleaved", "axial"])) if multi_axis else None
    if axis_kind == "axial" and rotary_dim % 4 == 0:
        return RopeSpec(head_dim, rotary_dim, base, convention, multi_axis=Axial2D())
    if axis_kind in ("mrope", "mrope-interleaved"):
        n = rotary_dim // 2
        a = draw(st.integers(0, n))
        b = draw(st.integers(0, n - a))
        scaling = draw(scalings(rotary_dim))
        if scaling is not None and SCALING_TYPES[scaling["rope_type"]].sequence_dependent:
            scaling = None
        return RopeSpec(head_dim, rotary_dim, base, convention, scaling,
                        MRope((a, b, n - a - b), interleaved=axis_kind == "mrope-interleaved"))
    return RopeSpec(head_dim, rotary_dim, base, convention, draw(scalings(rotary_dim)))


def position_shape(spec: RopeSpec, batch: int, seq: int) -> tuple[int, ...]:
    """[batch, seq] or [batch, seq, n_axes]."""
    return (batch, seq) if spec.n_axes == 1 else (batch, seq, spec.n_axes)
