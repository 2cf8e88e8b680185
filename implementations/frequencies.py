"""The first-party implementations' frequencies, written once against an array namespace.

What a RoPE library computes before it rotates anything: the inverse frequency of each
rotating pair for every scaling type (default, linear, static NTK, dynamic NTK, YaRN,
Llama 3, LongRoPE), the attention factor that multiplies cos and sin, the position stream
that drives each pair (M-RoPE, 2D axial), and the sequence length the sequence-dependent
types read. Every first-party implementation (numpy, torch eager/compile/C++, JAX,
TensorFlow, Triton) and every mutant gets them from here, so the suite's float64 reference
(``rope_suite.conformance.reference``) is never an input to what it judges: agreement with
it is a test of this code too.

Written from the published sources, not from the reference: Hugging Face transformers'
``modeling_rope_utils`` (``_compute_*_parameters`` and ``dynamic_rope_update``, whose
structure and names the functions below keep), the YaRN paper (Peng et al. 2023), Meta's
Llama 3.1 ``apply_scaling``, Phi-3's LongRoPE, bloc97's NTK-aware base, Qwen2-VL's and
Qwen3-VL's M-RoPE and SAM 2's ``compute_axial_cis``. ROPE-SEMANTICS.md cites each.

Design: one module against an array namespace. Not one copy of the scaling math per
framework (five copies drift apart, and a fix lands in one), and not one host-side NumPy
computation shared by all (then only NumPy's arithmetic would be tested). ``xp`` is the namespace
of the caller's framework (``numpy``, ``torch``, ``jax.numpy``,
``tensorflow.experimental.numpy``) and ``dtype`` one of its float dtypes, so each framework
computes its own frequencies in its own arrays, as a library builds its ``inv_freq``
buffer. The functions use only what all four namespaces spell the same way: ``arange``,
``asarray``, ``where``, ``clip``, ``concatenate``, ``min``, ``max``, arithmetic and
comparison operators. Quantities that depend on the config alone (the grown dynamic-NTK base, YaRN's
correction range, Llama 3's wavelength bounds, the attention factor, which stream drives
each pair) are Python scalars and lists, as HF computes them with ``math``.

Precision: the arrays are computed in ``dtype``, and the implementations pass float64 and
round the result once to their compute dtype, so a float32 theta is within one rounding of
the exact value, as the accuracy model assumes of standard practice (``conformance/accuracy.py``). HF
computes ``inv_freq`` in float32; measured over rotary dims 8..256 and bases 1234.5..1e8,
that lands up to 10-19 float32 unit roundoffs off for NumPy, PyTorch and TensorFlow and 28
for XLA (Llama 3's blend triples the error of ``pow``), more than the accuracy model's
safety factor leaves at long positions. In float64 the error is up to 3 unit roundoffs for
NumPy, 6 for PyTorch and 9 for TensorFlow (Llama 3 again), inside the float64 bounds; XLA's
float64 ``pow`` is coarser (up to 39), which matters only where JAX runs float64 inputs.

Notation: r rotary dim, i < r/2 a pair index, s the scaling factor, L0 the original
context length.
"""

from __future__ import annotations

import math
from typing import Any

from rope_suite.conformance.spec import Axial2D, MRope, RopeSpec, Scaling

__all__ = [
    "default_frequencies", "linear_frequencies", "ntk_frequencies", "dynamic_frequencies", "yarn_frequencies",
    "llama3_frequencies", "longrope_frequencies", "inverse_frequencies", "get_mscale", "attention_factor",
    "pair_axes", "sequence_length",
]


def _exponents(xp: Any, dim: int, step: int, dtype: Any) -> Any:
    """arange(0, dim, step) / dim in ``dtype``: HF's ``torch.arange(0, dim, 2).float() / dim``."""
    return xp.arange(0, dim, step, dtype=dtype) / dim


# --- inverse frequencies, one function per rope_type ------------------------------------------

def default_frequencies(xp: Any, dim: int, base: float, dtype: Any) -> Any:
    """theta_i = 1 / base^(2i/dim), i < dim/2 (RoFormer eq. 15; HF
    ``_compute_default_rope_parameters``: ``1.0 / (base ** (arange(0, dim, 2) / dim))``)."""
    return 1.0 / base ** _exponents(xp, dim, 2, dtype)


def linear_frequencies(xp: Any, dim: int, base: float, s: Scaling, dtype: Any) -> Any:
    """Position Interpolation (Chen et al. 2023): HF ``_compute_linear_scaling_rope_parameters``
    divides the default inv_freq by ``factor``."""
    return default_frequencies(xp, dim, base, dtype) / s.factor


def ntk_frequencies(xp: Any, dim: int, base: float, s: Scaling, dtype: Any) -> Any:
    """Static NTK-aware scaling (bloc97, 2023): the default frequencies of the base
    ``base * factor ** (dim / (dim - 2))``."""
    return default_frequencies(xp, dim, base * s.factor ** (dim / (dim - 2)), dtype)


def dynamic_frequencies(xp: Any, dim: int, base: float, s: Scaling, seq_len: int, dtype: Any) -> Any:
    """Dynamic NTK (HF ``_compute_dynamic_ntk_parameters`` with ``dynamic_rope_update``).

    Up to seq_len = L0 the default frequencies; past it those of the grown base
    ``base * (factor * seq_len / L0 - (factor - 1)) ** (dim / (dim - 2))``.
    """
    l0 = s.original_max_position_embeddings
    if seq_len <= l0:  # HF clamps seq_len up to L0, where the grown base is the base itself
        return default_frequencies(xp, dim, base, dtype)
    grown = base * (s.factor * seq_len / l0 - (s.factor - 1)) ** (dim / (dim - 2))
    return default_frequencies(xp, dim, grown, dtype)


def yarn_frequencies(xp: Any, dim: int, base: float, s: Scaling, dtype: Any) -> Any:
    """YaRN "NTK-by-parts" (Peng et al. 2023, sec. 3.2), as HF ``_compute_yarn_parameters``.

    The correction range [low, high] is the span of pair indices whose wavelength lies
    between ``beta_fast`` and ``beta_slow`` rotations over L0 (floored and ceiled unless
    ``truncate`` is False, clamped to [0, dim - 1]); a linear ramp over it blends the
    extrapolated frequencies 1/base^(2i/dim) (below low) into the interpolated ones
    1/(factor base^(2i/dim)) (above high).
    """
    l0 = s.original_max_position_embeddings
    beta_fast = s.beta_fast or 32.0
    beta_slow = s.beta_slow or 1.0

    def find_correction_dim(num_rotations: float) -> float:
        return (dim * math.log(l0 / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = find_correction_dim(beta_fast), find_correction_dim(beta_slow)
    if s.truncate is not False:  # HF: ``truncate`` defaults to True
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # HF: "Prevent singularity"

    pos_freqs = base ** _exponents(xp, dim, 2, dtype)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (s.factor * pos_freqs)
    linear_ramp = xp.clip((xp.arange(dim // 2, dtype=dtype) - low) / (high - low), 0.0, 1.0)
    inv_freq_extrapolation_factor = 1.0 - linear_ramp
    return (inv_freq_interpolation * (1.0 - inv_freq_extrapolation_factor)
            + inv_freq_extrapolation * inv_freq_extrapolation_factor)


def llama3_frequencies(xp: Any, dim: int, base: float, s: Scaling, dtype: Any) -> Any:
    """Llama 3.1 (Meta's ``apply_scaling``; HF ``_compute_llama3_parameters``).

    With wavelen = 2 pi / inv_freq: wavelengths shorter than L0 / high_freq_factor keep
    their frequency, those longer than L0 / low_freq_factor are divided by ``factor``, and
    those between are blended with smooth = (L0 / wavelen - low) / (high - low):
    (1 - smooth) inv_freq / factor + smooth inv_freq.
    """
    inv_freq = default_frequencies(xp, dim, base, dtype)
    old_context_len = s.original_max_position_embeddings
    low_freq_wavelen = old_context_len / s.low_freq_factor
    high_freq_wavelen = old_context_len / s.high_freq_factor

    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = xp.where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / s.factor + smooth_factor * inv_freq_llama
    is_medium_freq = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return xp.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def longrope_frequencies(xp: Any, dim: int, base: float, s: Scaling, seq_len: int, dtype: Any) -> Any:
    """LongRoPE (Ding et al. 2024; Phi-3; HF ``_compute_longrope_parameters``):
    1 / (ext_i base^(2i/dim)), ext = ``long_factor`` when seq_len > L0, else ``short_factor``
    (HF ``longrope_frequency_update``: ``seq_len > original_max_position_embeddings``)."""
    ext = s.long_factor if seq_len > s.original_max_position_embeddings else s.short_factor
    return 1.0 / (xp.asarray(ext, dtype=dtype) * base ** _exponents(xp, dim, 2, dtype))


def inverse_frequencies(xp: Any, spec: RopeSpec, seq_len: int | None, dtype: Any) -> Any:
    """The frequency of each rotating pair, [r/2] in ``dtype``, in pair order.

    ``seq_len`` (this call's max(position) + 1, :func:`sequence_length`) is read by dynamic
    NTK and LongRoPE and must then be a positive int; other types ignore it. A 2D axial
    spec gives each axis the bands of SAM 2's ``compute_axial_cis``,
    ``1 / base^(arange(0, r, 4)[: r/4] / r)``, x's then y's.
    """
    s, r, base = spec.scaling, spec.rotary_dim, spec.base
    if isinstance(spec.multi_axis, Axial2D):
        bands = 1.0 / base ** _exponents(xp, r, 4, dtype)
        return xp.concatenate([bands, bands])
    if s is None:
        return default_frequencies(xp, r, base, dtype)
    if spec.sequence_dependent and (not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1):
        raise ValueError(f"seq_len={seq_len!r} is invalid: rope_type {s.rope_type!r} needs this call's "
                         "max(position) + 1, a positive int")
    if s.rope_type not in SCALED:
        raise ValueError(f"rope_type={s.rope_type!r} is not implemented here (implemented: {', '.join(SCALED)})")
    return SCALED[s.rope_type](xp, r, base, s, seq_len, dtype)


# The rope_types implemented here, each as f(xp, rotary_dim, base, scaling, seq_len, dtype).
SCALED: dict[str, Any] = {
    "linear": lambda xp, r, base, s, _, dtype: linear_frequencies(xp, r, base, s, dtype),
    "ntk": lambda xp, r, base, s, _, dtype: ntk_frequencies(xp, r, base, s, dtype),
    "dynamic": lambda xp, r, base, s, seq_len, dtype: dynamic_frequencies(xp, r, base, s, seq_len, dtype),
    "yarn": lambda xp, r, base, s, _, dtype: yarn_frequencies(xp, r, base, s, dtype),
    "llama3": lambda xp, r, base, s, _, dtype: llama3_frequencies(xp, r, base, s, dtype),
    "longrope": lambda xp, r, base, s, seq_len, dtype: longrope_frequencies(xp, r, base, s, seq_len, dtype),
}


def implemented(spec: RopeSpec) -> bool:
    """Whether the first-party code knows the spec's rope_type (a type the suite learns later is
    unsupported here until it is written, not an error)."""
    return spec.scaling is None or spec.scaling.rope_type in SCALED


# --- attention factor -------------------------------------------------------------------------

def get_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN's magnitude scaling 0.1 mscale ln(scale) + 1, 1 for scale <= 1 (YaRN eq. 21;
    HF ``get_mscale``, DeepSeek-V2 ``yarn_get_mscale``)."""
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def attention_factor(spec: RopeSpec) -> float:
    """The factor that multiplies cos and sin: 1.0 unless YaRN or LongRoPE.

    An explicit ``attention_factor`` wins. YaRN (HF ``_compute_yarn_parameters``):
    get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) when both are set and
    non-zero, else get_mscale(factor). LongRoPE (HF ``_compute_longrope_parameters``):
    sqrt(1 + ln(factor) / ln(L0)), 1.0 when factor <= 1.
    """
    s = spec.scaling
    if s is None or s.rope_type not in ("yarn", "longrope"):
        return 1.0
    if s.attention_factor is not None:
        return float(s.attention_factor)
    if s.rope_type == "yarn":
        if s.mscale and s.mscale_all_dim:
            return float(get_mscale(s.factor, s.mscale) / get_mscale(s.factor, s.mscale_all_dim))
        return get_mscale(s.factor)
    if s.factor <= 1.0:
        return 1.0
    return math.sqrt(1 + math.log(s.factor) / math.log(s.original_max_position_embeddings))


# --- positions --------------------------------------------------------------------------------

def pair_axes(xp: Any, spec: RopeSpec, dtype: Any) -> Any:
    """The position stream that drives each pair, [r/2] integers in ``dtype``.

    1D: stream 0 for every pair. M-RoPE chunked (Qwen2-VL, ``mrope_section``): the t block,
    then h, then w, each ``sections[j]`` pairs long. M-RoPE interleaved (Qwen3-VL
    ``apply_interleaved_mrope``): t everywhere, then h at pairs 1, 4, 7, ... below
    3 * sections[1] and w at pairs 2, 5, 8, ... below 3 * sections[2]. 2D axial (SAM 2
    ``compute_axial_cis``): x for the first r/4 pairs, y for the rest.
    """
    n, axis = spec.n_pairs, spec.multi_axis
    if axis is None:
        streams = [0] * n
    elif isinstance(axis, Axial2D):
        streams = [0] * (n // 2) + [1] * (n // 2)
    elif isinstance(axis, MRope) and not axis.interleaved:
        streams = [j for j, size in enumerate(axis.sections) for _ in range(size)]
    else:
        streams = [0] * n
        for stream in (1, 2):  # Qwen3-VL: ``idx = slice(offset, mrope_section[dim] * 3, 3)``, offset = dim
            for i in range(stream, min(3 * axis.sections[stream], n), 3):
                streams[i] = stream
    return xp.asarray(streams, dtype=dtype)


def sequence_length(xp: Any, positions: Any) -> int:
    """This call's sequence length max(position) + 1 (HF ``dynamic_rope_update``:
    ``torch.max(position_ids) + 1``), 1 when there are no positions.

    ValueError for a negative position: a sequence length means nothing then.
    """
    if math.prod(positions.shape) == 0:
        return 1
    low = int(xp.min(positions))
    if low < 0:
        raise ValueError(f"positions min={low} is invalid: positions must be >= 0")
    return int(xp.max(positions)) + 1
