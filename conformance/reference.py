"""The float64 numpy reference: what every RoPE variant in :mod:`rope_suite.conformance.spec` computes.

Read top to bottom, this is the math of ROPE-SEMANTICS.md, one formula per function:
inverse frequencies (and their scaling), the attention factor, which position stream
drives each pair, angles, cos/sin, and the rotation itself. Everything is float64 and
nothing is cached, so no state leaks between calls (the dynamic-NTK class of bugs).

Notation: r rotary dim, i in [0, r/2) a pair (frequency) index, m a position, s the
scaling factor, L0 the original context length.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .spec import Axial2D, MRope, RopeSpec, Scaling

__all__ = [
    "inverse_frequencies", "attention_factor", "sequence_length", "pair_axes", "pair_channels",
    "angles", "cos_sin", "expand_to_channels", "rotate_pairs", "apply", "apply_transpose", "check_positions",
]


# --- inverse frequencies ---------------------------------------------------------------------

def default_frequencies(rotary_dim: int, base: float) -> np.ndarray:
    """theta_i = base^(-2i/r), i < r/2 (RoFormer, Su et al. 2021, eq. 15)."""
    return 1.0 / base ** (np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim)


def linear_frequencies(rotary_dim: int, base: float, s: Scaling) -> np.ndarray:
    """theta_i / s: Position Interpolation (Chen et al. 2023), HF ``linear``."""
    return default_frequencies(rotary_dim, base) / s.factor


def ntk_frequencies(rotary_dim: int, base: float, s: Scaling) -> np.ndarray:
    """Static NTK-aware scaling (bloc97, 2023): base' = base * s^(r/(r-2))."""
    return default_frequencies(rotary_dim, base * s.factor ** (rotary_dim / (rotary_dim - 2)))


def dynamic_frequencies(rotary_dim: int, base: float, s: Scaling, seq_len: int) -> np.ndarray:
    """Dynamic NTK (HF ``_compute_dynamic_ntk_parameters``): with L = seq_len, only when L > L0,
    base' = base * (s L / L0 - (s - 1))^(r/(r-2)); the default frequencies otherwise."""
    l0 = s.original_max_position_embeddings
    if seq_len <= l0:
        return default_frequencies(rotary_dim, base)
    grown = base * (s.factor * seq_len / l0 - (s.factor - 1)) ** (rotary_dim / (rotary_dim - 2))
    return default_frequencies(rotary_dim, grown)


def yarn_frequencies(rotary_dim: int, base: float, s: Scaling) -> np.ndarray:
    """YaRN (Peng et al. 2023, sec. 3.2; HF ``_compute_yarn_parameters``).

    corr(n) = r ln(L0 / (2 pi n)) / (2 ln base); low = floor(corr(beta_fast)),
    high = ceil(corr(beta_slow)) (unrounded when truncate is False), clamped to [0, r-1];
    ramp_i = clip((i - low) / (high - low), 0, 1), e_i = 1 - ramp_i;
    theta_i = theta_i/s * (1 - e_i) + theta_i * e_i.
    """
    l0 = s.original_max_position_embeddings
    beta_fast = 32.0 if s.beta_fast is None else s.beta_fast
    beta_slow = 1.0 if s.beta_slow is None else s.beta_slow

    def corr(n_rotations: float) -> float:
        return rotary_dim * math.log(l0 / (2 * math.pi * n_rotations)) / (2 * math.log(base))

    low, high = corr(beta_fast), corr(beta_slow)
    if s.truncate is not False:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, rotary_dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(rotary_dim // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    extrapolation_weight = 1.0 - ramp
    extrapolated = default_frequencies(rotary_dim, base)
    interpolated = extrapolated / s.factor
    return interpolated * (1.0 - extrapolation_weight) + extrapolated * extrapolation_weight


def llama3_frequencies(rotary_dim: int, base: float, s: Scaling) -> np.ndarray:
    """Llama 3.1 (Meta's ``apply_scaling``; HF ``_compute_llama3_parameters``).

    lambda_i = 2 pi / theta_i; keep theta_i where lambda_i < L0/hf; theta_i/s where
    lambda_i > L0/lf; between, with smooth = (L0/lambda_i - lf)/(hf - lf):
    (1 - smooth) theta_i/s + smooth theta_i.
    """
    theta = default_frequencies(rotary_dim, base)
    l0, lf, hf = s.original_max_position_embeddings, s.low_freq_factor, s.high_freq_factor
    wavelength = 2 * math.pi / theta
    smooth = (l0 / wavelength - lf) / (hf - lf)
    blended = (1 - smooth) * theta / s.factor + smooth * theta
    return np.where(wavelength < l0 / hf, theta, np.where(wavelength > l0 / lf, theta / s.factor, blended))


def longrope_frequencies(rotary_dim: int, base: float, s: Scaling, seq_len: int) -> np.ndarray:
    """LongRoPE (Ding et al. 2024; HF ``_compute_longrope_parameters``):
    theta_i = 1 / (ext_i base^(2i/r)), ext = long_factor when seq_len > L0 (strictly),
    short_factor otherwise."""
    ext = s.long_factor if seq_len > s.original_max_position_embeddings else s.short_factor
    return default_frequencies(rotary_dim, base) / np.asarray(ext, dtype=np.float64)


# The frequency function of each rope_type (its record is spec.SCALING_TYPES), called as
# f(rotary_dim, base, scaling, seq_len); seq_len is None unless the type is sequence dependent.
FREQUENCIES: dict[str, Callable[[int, float, Scaling, int | None], np.ndarray]] = {
    "linear": lambda r, base, s, _: linear_frequencies(r, base, s),
    "ntk": lambda r, base, s, _: ntk_frequencies(r, base, s),
    "dynamic": dynamic_frequencies,
    "yarn": lambda r, base, s, _: yarn_frequencies(r, base, s),
    "llama3": lambda r, base, s, _: llama3_frequencies(r, base, s),
    "longrope": longrope_frequencies,
}


def inverse_frequencies(spec: RopeSpec, seq_len: int | None = None) -> np.ndarray:
    """The frequency of each rotating pair, float64 [r/2], in pair order.

    ``seq_len`` (max(position) + 1) is required for dynamic NTK and LongRoPE and ignored
    otherwise. For 2D axial specs each axis has its own r/4 frequencies over r/2 channels
    (SAM 2 ``compute_axial_cis``), repeated for x then y.
    """
    s, r, base = spec.scaling, spec.rotary_dim, spec.base
    if isinstance(spec.multi_axis, Axial2D):
        per_axis = default_frequencies(r // 2, base)
        return np.concatenate([per_axis, per_axis])
    if s is None:
        return default_frequencies(r, base)
    if spec.sequence_dependent:
        if seq_len is None or isinstance(seq_len, bool) or int(seq_len) != seq_len or seq_len < 1:
            raise ValueError(f"seq_len={seq_len!r} is invalid: rope_type {s.rope_type!r} needs the "
                             "sequence length max(position)+1, a positive integer")
        seq_len = int(seq_len)
    else:
        seq_len = None
    return FREQUENCIES[s.rope_type](r, base, s, seq_len)


# --- attention factor ---------------------------------------------------------------------------

def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    """g(s, k) = 0.1 k ln s + 1 for s > 1, else 1 (YaRN eq. 21; DeepSeek-V2's ``yarn_get_mscale``)."""
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def yarn_attention_factor(s: Scaling) -> float:
    """YaRN: with mscale and mscale_all_dim both set, g(s, mscale) / g(s, mscale_all_dim); else g(s, 1)."""
    if s.mscale and s.mscale_all_dim:
        return yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim)
    return yarn_mscale(s.factor)


def longrope_attention_factor(s: Scaling) -> float:
    """LongRoPE: sqrt(1 + ln s / ln L0), 1 when s <= 1."""
    if s.factor <= 1:
        return 1.0
    return math.sqrt(1 + math.log(s.factor) / math.log(s.original_max_position_embeddings))


# The rope_types whose cos and sin carry a factor (every other type: 1).
ATTENTION_FACTORS: dict[str, Callable[[Scaling], float]] = {
    "yarn": yarn_attention_factor,
    "longrope": longrope_attention_factor,
}


def attention_factor(spec: RopeSpec) -> float:
    """The factor that multiplies cos and sin: 1 unless the rope_type has one (YaRN, LongRoPE);
    an explicit ``attention_factor`` in the scaling wins over the type's formula."""
    s = spec.scaling
    if s is None or s.rope_type not in ATTENTION_FACTORS:
        return 1.0
    if s.attention_factor is not None:
        return s.attention_factor
    return ATTENTION_FACTORS[s.rope_type](s)


# --- positions ----------------------------------------------------------------------------------

def check_positions(positions: np.ndarray, spec: RopeSpec, leading_shape: tuple[int, int] | None = None
                    ) -> np.ndarray:
    """Validate integer positions [batch, seq] (or [batch, seq, n_axes]) and return them as int64.

    Raises ValueError for a non-integer dtype, a wrong rank or axis count, a shape that does
    not match x's (batch, seq), or a negative position.
    """
    pos = np.asarray(positions)
    if pos.dtype == np.bool_ or not np.issubdtype(pos.dtype, np.integer):
        raise ValueError(f"positions.dtype={pos.dtype} is invalid: positions must be integers (int32 or int64)")
    want = "[batch, seq]" if spec.n_axes == 1 else f"[batch, seq, {spec.n_axes}]"
    rank_ok = pos.ndim == 2 if spec.n_axes == 1 else (pos.ndim == 3 and pos.shape[-1] == spec.n_axes)
    if not rank_ok:
        raise ValueError(f"positions.shape={pos.shape} is invalid: this spec takes positions {want}")
    if leading_shape is not None and pos.shape[:2] != tuple(leading_shape):
        raise ValueError(f"positions.shape={pos.shape} is invalid: its (batch, seq) must match x's {tuple(leading_shape)}")
    if pos.size and pos.min() < 0:
        where = np.unravel_index(np.argmin(pos), pos.shape)
        raise ValueError(f"positions[{', '.join(map(str, where))}]={pos.min()} is invalid: positions must be >= 0")
    return pos.astype(np.int64)


def sequence_length(positions: np.ndarray) -> int:
    """L = max(position) + 1 over the whole call (HF ``dynamic_rope_update``)."""
    return int(np.max(positions)) + 1 if np.size(positions) else 1


def pair_axes(spec: RopeSpec) -> np.ndarray:
    """For each pair i < r/2, the position stream (axis) that drives it, int64 [r/2].

    1D: all 0. M-RoPE chunked (Qwen2-VL): stream j for the j-th block of ``sections``.
    M-RoPE interleaved (Qwen3-VL): 1 where i % 3 == 1 and i < 3 s_h, 2 where i % 3 == 2 and
    i < 3 s_w, else 0. 2D axial (SAM 2): x for the first r/4 pairs, y for the rest.
    """
    n = spec.n_pairs
    axis = spec.multi_axis
    if axis is None:
        return np.zeros(n, dtype=np.int64)
    if isinstance(axis, Axial2D):
        return np.repeat(np.arange(2, dtype=np.int64), n // 2)
    assert isinstance(axis, MRope)
    if not axis.interleaved:
        return np.repeat(np.arange(axis.n_axes, dtype=np.int64), axis.sections)
    i = np.arange(n)
    out = np.zeros(n, dtype=np.int64)
    out[(i % 3 == 1) & (i < 3 * axis.sections[1])] = 1
    out[(i % 3 == 2) & (i < 3 * axis.sections[2])] = 2
    return out


# --- angles, cos/sin, rotation ------------------------------------------------------------------

def angles(positions: np.ndarray, spec: RopeSpec) -> np.ndarray:
    """phi[b, s, i] = m[b, s, axis_i] * theta_i, float64 [batch, seq, r/2]."""
    pos = check_positions(positions, spec)
    seq_len = sequence_length(pos) if spec.sequence_dependent else None
    theta = inverse_frequencies(spec, seq_len)
    if spec.n_axes == 1:
        return pos[..., None].astype(np.float64) * theta
    return pos[..., pair_axes(spec)].astype(np.float64) * theta


def cos_sin(positions: np.ndarray, spec: RopeSpec) -> tuple[np.ndarray, np.ndarray]:
    """(a cos phi, a sin phi), each float64 [batch, seq, r/2], a the attention factor."""
    phi = angles(positions, spec)
    a = attention_factor(spec)
    return a * np.cos(phi), a * np.sin(phi)


def pair_channels(spec: RopeSpec) -> tuple[np.ndarray, np.ndarray]:
    """Channel indices (first, second) of each pair: half (i, i + r/2); interleaved (2i, 2i + 1)."""
    i = np.arange(spec.n_pairs)
    if spec.convention == "half":
        return i, i + spec.n_pairs
    return 2 * i, 2 * i + 1


def expand_to_channels(table: np.ndarray, convention: str) -> np.ndarray:
    """Lay a per-pair table [..., r/2] out per channel [..., r]: cat(t, t) for "half",
    repeat_interleave(t, 2) for "interleaved" (the layouts HF and GPT-J pass around)."""
    if convention == "half":
        return np.concatenate([table, table], axis=-1)
    if convention == "interleaved":
        return np.repeat(table, 2, axis=-1)
    raise ValueError(f"convention={convention!r} is invalid: allowed 'half', 'interleaved'")


def rotate_pairs(a: np.ndarray, b: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) -> (a cos - b sin, b cos + a sin): the 2D rotation by phi (RoFormer eq. 13)."""
    return a * cos - b * sin, b * cos + a * sin


def apply(x: np.ndarray, positions: np.ndarray, spec: RopeSpec, *, transpose: bool = False) -> np.ndarray:
    """Rotate x [batch, seq, heads, head_dim] at integer positions [batch, seq] (or
    [batch, seq, n_axes]); returns a new float64 array of x's shape.

    Channels past rotary_dim are copied unchanged. x is not modified. With ``transpose``
    the rotation is by -phi: R^T x, which is also the vector-Jacobian product of apply.
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != spec.head_dim:
        raise ValueError(f"x.shape={x.shape} is invalid: expected [batch, seq, heads, head_dim={spec.head_dim}]")
    pos = check_positions(positions, spec, leading_shape=x.shape[:2])
    cos, sin = cos_sin(pos, spec)
    cos, sin = cos[:, :, None, :], (-sin if transpose else sin)[:, :, None, :]  # broadcast over heads
    first, second = pair_channels(spec)
    out = x.astype(np.float64, copy=True)
    out[..., first], out[..., second] = rotate_pairs(out[..., first], out[..., second], cos, sin)
    return out


def apply_transpose(cotangent: np.ndarray, positions: np.ndarray, spec: RopeSpec) -> np.ndarray:
    """The vector-Jacobian product of apply: a R(phi)^T g (rotation by -phi times the attention
    factor a; the tail passes through). The gradient every autodiff implementation must return."""
    return apply(cotangent, positions, spec, transpose=True)
