"""MLX's fused RoPE, ``mlx.core.fast.rope`` (Linux CPU build, ``pip install "mlx[cpu]"``).

``mx.fast.rope(a, dims, *, traditional, base, scale, offset, freqs=None)`` rotates the last
axis of ``a`` [B, *, T, D] with token t of row b at position ``scale * (offset[b] + t)``. The
0.32 CPU build runs the composed fallback of ``mlx/fast.cpp: rope`` (it takes float64, which a
CPU kernel would refuse); later releases add ``mlx/backend/cpu/rope.cpp`` with the same
formulas. It is how mlx-lm applies RoPE (``mlx_lm/models/rope_utils.py``, ``nn.RoPE``), and this
adapter calls it the way mlx-lm's attention does.

Spec -> call:
  * x [batch, seq, heads, head] is transposed to [batch, heads, seq, head] (seq second to last,
    as mlx-lm's attention lays q and k out) and the output transposed back.
  * ``convention`` -> ``traditional`` (True: interleaved pairs (2i, 2i + 1); False: rotate-half).
  * ``rotary_dim`` -> ``dims``: the first r channels rotate, the rest pass through, and the
    exponent's denominator is ``dims`` (so GPT-NeoX / Phi partial rotary).
  * ``base`` -> ``base``; linear scaling -> ``scale = 1 / factor`` (mlx-lm's ``nn.RoPE(scale=)``).
  * Positions: ``offset`` is an int or one int per batch row, and token t sits at offset + t, so
    a call takes rows that are each contiguous. When every row of ``positions`` is
    ``start_b + arange(seq)`` (prefill, a chunk continuing a KV cache) there is one call, with
    ``offset`` an int when the starts agree and an int32 array [batch] when they do not (mlx-lm's
    batched cache). Other positions (a row with gaps, packed sequences restarting mid-row) have
    no contiguous form, and MLX has no position-ids argument; mlx-lm meets them one token at a
    time in decode, so here too: one call per token t on ``x[:, :, t:t+1]`` with
    ``offset = positions[:, t]`` (each row its own position), concatenated along seq.
  * No multi-axis form: M-RoPE and 2D axial specs are unsupported.

Two objects:
  * ``MLX``: only what MLX computes itself: no scaling, or linear. Nothing is supplied.
  * ``MLX_FREQS``: every 1D scaling through ``freqs=`` (base None), the per-pair periods
    1 / theta_i: MLX multiplies positions by ``1 / freqs``, as mlx-lm's ``Llama3RoPE``,
    ``YarnRoPE`` and ``SuScaledRoPE`` pass them. The periods come from the suite's float64
    reference (rounded to float32, the dtype mlx-lm computes them in; for dynamic NTK and
    LongRoPE from this call's max(position) + 1), and the attention factor (YaRN mscale,
    LongRoPE's) multiplies x's rotary channels in x's dtype before the call, as those mlx-lm
    classes do: ``supplied`` names frequencies, scaling and attention factor. What is MLX's
    there: the rotation, the pairing, the pass-through tail and the positions.

Dtypes: float64, float32, float16, bfloat16 (the CPU build runs all four). MLX's kernel
computes the angle in float32 whatever the dtype, so float64 reaches float32 angles (standard
practice; reported as the precision class). Inputs come in as numpy (``framework = "numpy"``:
the suite's frameworks do not include MLX) and are converted exactly: ``mx.array(x, dtype=...)``
(an unconverted float64 array would become float32), bfloat16 through ml_dtypes, and back.
There is no gradient check: MLX differentiates (``mx.grad``, ``mx.vjp``), but the suite takes
gradients only in the frameworks it knows, and numpy has no autodiff.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import ml_dtypes
import numpy as np

from rope_suite.conformance import reference
from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import RopeSpec

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
NUMPY_DTYPES: dict[str, Any] = {"float64": np.float64, "float32": np.float32, "float16": np.float16,
                                "bfloat16": ml_dtypes.bfloat16}
SUPPLIER = "the suite's float64 reference (freqs= periods, attention factor on x)"


def _own_frequencies_off(record: Mapping[str, Any]) -> bool:
    """Wrong numbers on a rotated pair in float32 or float64, where the output's rounding leaves
    the angle's error nowhere to hide (in float16 and bfloat16 the store's rounding dominates)."""
    mismatch = record.get("mismatch") or {}
    return (record.get("check") in ("agreement", "random_specs") and record.get("dtype") in ("float32", "float64")
            and str(mismatch.get("location", "")).startswith("pair"))


INVERSE_FREQUENCIES_BY_EXP = Deviation(
    "inverse-frequencies-by-exp", "precision choice",
    "mx.fast.rope computes its own inverse frequencies as exp(-j * (log(base) / (dims / 2))) in float32, "
    "so theta_j is off by up to about ln(base) units of float32 roundoff (8.2 at base 10000, where one "
    "rounding of theta is 1) and angles at large positions drift past float32 standard practice; the same "
    "call fed float32 periods 1/theta_j through freqs= (mlx-freqs) agrees.",
    "mlx/fast.cpp: rope (fallback, default_inv_freqs); mlx/backend/cpu/rope.cpp: compute_rope_sincos "
    "(the same formula in later releases' CPU kernel)",
    _own_frequencies_off)


def _mx() -> Any:
    return importlib.import_module("mlx.core")


def row_starts(positions: np.ndarray) -> np.ndarray | None:
    """start_b per row when every row is ``start_b + arange(seq)``, else None."""
    pos = np.asarray(positions).astype(np.int64)
    starts = pos[:, :1]
    return starts[:, 0] if np.array_equal(pos, starts + np.arange(pos.shape[1])) else None


class MlxRope:
    """``mx.fast.rope`` with MLX's own frequencies (``freqs=False``) or fed periods (``freqs=True``)."""

    framework = "numpy"
    device = "cpu"

    def __init__(self, freqs: bool) -> None:
        self.freqs = freqs
        self.supplied: dict[str, str] = (
            {"frequencies": SUPPLIER, "scaling": SUPPLIER, "attention_factor": SUPPLIER} if freqs else {})
        self.deviations: tuple[Deviation, ...] = () if freqs else (INVERSE_FREQUENCIES_BY_EXP,)

    def __repr__(self) -> str:
        return f"MlxRope(freqs={self.freqs})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.multi_axis is not None:
            return False
        return self.freqs or spec.scaling is None or spec.rope_type == "linear"

    def keywords(self, spec: RopeSpec, positions: np.ndarray) -> dict[str, Any]:
        """The keyword arguments of ``mx.fast.rope`` but ``offset`` (``freqs`` as numpy float32)."""
        keywords: dict[str, Any] = {"traditional": spec.convention == "interleaved"}
        if self.freqs:
            seq_len = reference.sequence_length(positions) if spec.sequence_dependent else None
            periods = 1.0 / reference.inverse_frequencies(spec, seq_len)
            return {**keywords, "base": None, "scale": 1.0, "freqs": periods.astype(np.float32)}
        scale = 1.0 / spec.scaling.factor if spec.scaling is not None else 1.0
        return {**keywords, "base": spec.base, "scale": scale}

    def rope(self, x: np.ndarray, positions: np.ndarray, spec: RopeSpec) -> np.ndarray:
        """x [batch, seq, heads, head_dim] numpy (float64/32/16, bfloat16) at integer positions."""
        mx = _mx()
        dtype_name = np.dtype(x.dtype).name
        if dtype_name not in DTYPES:
            raise ValueError(f"x.dtype={x.dtype} is invalid: allowed {', '.join(DTYPES)}")
        if not self.supports(spec, dtype_name):
            raise ValueError(f"{self!r} does not express this spec (scaling={spec.scaling}, multi_axis={spec.multi_axis})")
        positions = np.asarray(positions)
        keywords = self.keywords(spec, positions)
        if "freqs" in keywords:
            keywords["freqs"] = mx.array(keywords["freqs"])
        a = mx.array(x, dtype=getattr(mx, dtype_name)).transpose(0, 2, 1, 3)  # [batch, heads, seq, head]
        factor = reference.attention_factor(spec) if self.freqs else 1.0
        if factor != 1.0:  # mlx-lm's YarnRoPE / SuScaledRoPE: x[..., :dims] = mscale * x[..., :dims]
            r = spec.rotary_dim
            a = mx.concatenate([factor * a[..., :r], a[..., r:]], axis=-1)
        starts = row_starts(positions)
        if starts is not None:
            offset = int(starts[0]) if np.all(starts == starts[0]) else mx.array(starts.astype(np.int32))
            y = mx.fast.rope(a, spec.rotary_dim, offset=offset, **keywords)
        else:  # one token at a time, each row at its own position (decode)
            pos = positions.astype(np.int32)
            y = mx.concatenate([mx.fast.rope(a[:, :, t:t + 1], spec.rotary_dim, offset=mx.array(pos[:, t]), **keywords)
                                for t in range(pos.shape[1])], axis=2)
        y = y.transpose(0, 2, 1, 3)
        if dtype_name == "bfloat16":  # numpy cannot read MLX's bfloat16 buffer; float32 holds it exactly
            return np.array(y.astype(mx.float32)).astype(ml_dtypes.bfloat16)
        return np.array(y)

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` returns ``rope(x, positions)`` on numpy arrays calling
        ``mx.fast.rope`` as this adapter does (supplied periods and attention factor written in as
        numbers). None when unsupported or, with supplied periods, when they depend on the call's
        length (dynamic NTK, LongRoPE)."""
        if not self.supports(spec, dtype_name) or (self.freqs and spec.sequence_dependent):
            return None
        keywords = self.keywords(spec, np.zeros((1, 1), dtype=np.int64))
        if self.freqs:
            keywords["freqs"] = "mx.array(np.array(%r, dtype=np.float32))" % keywords["freqs"].tolist()
            factor = reference.attention_factor(spec)
        else:
            factor = 1.0
        arguments = ", ".join(f"{k}={v}" if k == "freqs" else f"{k}={v!r}" for k, v in keywords.items())
        return REPRODUCTION.format(r=spec.rotary_dim, arguments=arguments, factor=factor,
                                   supplied="# Supplied by the suite's float64 reference: the periods 1/theta and the "
                                            "attention factor.\n" if self.freqs else "")


REPRODUCTION = """import ml_dtypes
import mlx.core as mx
import numpy as np

{supplied}ATTENTION_FACTOR = {factor!r}


def make():
    def rope(x, positions):
        a = mx.array(x, dtype=getattr(mx, np.dtype(x.dtype).name)).transpose(0, 2, 1, 3)  # [batch, heads, seq, head]
        if ATTENTION_FACTOR != 1.0:  # mlx-lm's YarnRoPE / SuScaledRoPE scale x's rotary channels
            a = mx.concatenate([ATTENTION_FACTOR * a[..., :{r}], a[..., {r}:]], axis=-1)
        pos = positions.astype(np.int64)
        starts = pos[:, :1]
        if np.array_equal(pos, starts + np.arange(pos.shape[1])):  # each row start + arange(seq)
            starts = starts[:, 0]
            offset = int(starts[0]) if np.all(starts == starts[0]) else mx.array(starts.astype(np.int32))
            y = mx.fast.rope(a, {r}, offset=offset, {arguments})
        else:  # one token at a time, each row at its own position (decode)
            pos = pos.astype(np.int32)
            y = mx.concatenate([mx.fast.rope(a[:, :, t:t + 1], {r}, offset=mx.array(pos[:, t]), {arguments})
                                for t in range(pos.shape[1])], axis=2)
        y = y.transpose(0, 2, 1, 3)
        if x.dtype == ml_dtypes.bfloat16:
            return np.array(y.astype(mx.float32)).astype(ml_dtypes.bfloat16)
        return np.array(y)

    return rope
"""

MLX = MlxRope(freqs=False)
MLX_FREQS = MlxRope(freqs=True)
