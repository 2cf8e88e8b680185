"""Vectorised NumPy RoPE: float32 angles and rotation (float64 for float64 inputs).

The frequency vector, the attention factor and the pair-to-axis map are computed in NumPy on
every call by :mod:`rope_suite.implementations.frequencies` (the way a library builds its
``inv_freq`` buffer): in float64, rounded once to the compute dtype. This module does the
rest: position validation, angles, cos/sin, the rotation of the pairs through strided views
(no index gathers), and the pass-through tail. Precision follows torchtune / flash-attn:
positions and frequencies in float32, cos/sin and the multiply in float32, one rounding to
the input dtype at the end.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from rope_suite.conformance.spec import RopeSpec

from . import frequencies

DTYPES: dict[str, Any] = {"float64": np.float64, "float32": np.float32,
                          "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def compute_dtype(dtype: np.dtype) -> type:
    """float64 stays float64; every narrower float computes in float32."""
    return np.float64 if dtype == np.float64 else np.float32


def check_positions(positions: Any, spec: RopeSpec, leading_shape: tuple[int, ...]) -> np.ndarray:
    """Integer positions [batch, seq] (or [batch, seq, n_axes]) matching x's (batch, seq),
    none negative, as int64; else ValueError naming the value and what is allowed."""
    pos = np.asarray(positions)
    if pos.dtype == np.bool_ or not np.issubdtype(pos.dtype, np.integer):
        raise ValueError(f"positions.dtype={pos.dtype} is invalid: positions must be integers (int32 or int64)")
    want = (*leading_shape,) if spec.n_axes == 1 else (*leading_shape, spec.n_axes)
    if pos.shape != want:
        raise ValueError(f"positions.shape={pos.shape} is invalid: this spec and x need {want}")
    if pos.size and pos.min() < 0:
        where = np.unravel_index(np.argmin(pos), pos.shape)
        raise ValueError(f"positions[{', '.join(map(str, where))}]={pos.min()} is invalid: positions must be >= 0")
    return pos.astype(np.int64)


def cos_sin(positions: np.ndarray, spec: RopeSpec, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(a cos phi, a sin phi) in ``dtype``, each [batch, seq, r/2]; phi = m * theta in ``dtype``.

    positions: int64 [batch, seq] or [batch, seq, n_axes], already validated. The
    frequencies are recomputed from this call's positions (nothing is cached).
    """
    seq_len = frequencies.sequence_length(np, positions) if spec.sequence_dependent else None
    inv_freq = frequencies.inverse_frequencies(np, spec, seq_len, np.float64).astype(dtype)
    if spec.n_axes == 1:
        pos = positions.astype(dtype)[..., None]
    else:
        pos = positions[..., frequencies.pair_axes(np, spec, np.int64)].astype(dtype)
    phi = pos * inv_freq
    a = dtype(frequencies.attention_factor(spec))
    return a * np.cos(phi), a * np.sin(phi)


def pair_views(x: np.ndarray, spec: RopeSpec) -> tuple[np.ndarray, np.ndarray]:
    """Strided views (first, second) of the pairs: half (:r/2, r/2:r); interleaved (0:r:2, 1:r:2)."""
    r, h = spec.rotary_dim, spec.n_pairs
    if spec.convention == "half":
        return x[..., :h], x[..., h:r]
    return x[..., 0:r:2], x[..., 1:r:2]


def check_x(x: np.ndarray, spec: RopeSpec, name: str = "x") -> np.ndarray:
    """x as an array [batch, seq, heads, head_dim] of a supported dtype, else ValueError."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != spec.head_dim:
        raise ValueError(f"{name}.shape={x.shape} is invalid: expected [batch, seq, heads, head_dim={spec.head_dim}]")
    if x.dtype not in [np.dtype(d) for d in DTYPES.values()]:
        raise ValueError(f"{name}.dtype={x.dtype} is invalid: supported {', '.join(DTYPES)}")
    return x


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, spec: RopeSpec) -> np.ndarray:
    """A new array: x's pairs rotated by (cos, sin) [batch, seq, r/2] in their dtype, rounded
    once to x's dtype; the tail x[..., r:] copied unchanged."""
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # broadcast over heads
    a, b = (v.astype(cos.dtype, copy=False) for v in pair_views(x, spec))
    out = np.empty_like(x)
    out[..., spec.rotary_dim:] = x[..., spec.rotary_dim:]
    out_a, out_b = pair_views(out, spec)
    out_a[...] = (a * cos - b * sin).astype(x.dtype)
    out_b[...] = (b * cos + a * sin).astype(x.dtype)
    return out


class NumpyRope:
    """The plug-in object: ``rope`` and ``rope_qk`` on NumPy arrays (bfloat16 via ml_dtypes)."""

    framework = "numpy"
    device = "cpu"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return dtype_name in DTYPES and frequencies.implemented(spec)

    def rope(self, x: np.ndarray, positions: np.ndarray, spec: RopeSpec) -> np.ndarray:
        """Rotate x [batch, seq, heads, head_dim] at integer positions [batch, seq] (or
        [batch, seq, n_axes]); a new array of x's shape and dtype, the tail copied bit for bit."""
        x = check_x(x, spec)
        pos = check_positions(positions, spec, x.shape[:2])
        return rotate(x, *cos_sin(pos, spec, compute_dtype(x.dtype)), spec)

    def rope_qk(self, q: np.ndarray, k: np.ndarray, positions: np.ndarray, spec: RopeSpec
                ) -> tuple[np.ndarray, np.ndarray]:
        """(rope(q), rope(k)) with one cos/sin computation; q and k may differ in heads (GQA)."""
        q, k = check_x(q, spec, "q"), check_x(k, spec, "k")
        if k.dtype != q.dtype:
            raise ValueError(f"k.dtype={k.dtype} is invalid: must match q's {q.dtype}")
        pos = check_positions(positions, spec, q.shape[:2])
        check_positions(positions, spec, k.shape[:2])
        cos, sin = cos_sin(pos, spec, compute_dtype(q.dtype))
        return rotate(q, cos, sin, spec), rotate(k, cos, sin, spec)


IMPLEMENTATION = NumpyRope()
