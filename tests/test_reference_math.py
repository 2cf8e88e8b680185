"""The reference against oracles computed differently, and the math properties of RoPE.

Oracles: explicit block-diagonal rotation matrices built from scalar Python math, complex
multiplication for interleaved pairs (Meta's ``apply_rotary_emb``), the channel permutation
that maps the half layout onto the interleaved one, and SAM 2's axial complex form.
Properties: pair norms preserved, identity at position 0, R(a)R(b) = R(a+b), and q.k
depending only on the relative position.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rope_suite.conformance import reference
from rope_suite.conformance.presets import PRESETS
from rope_suite.conformance.spec import Axial2D, MRope, RopeSpec
from rope_suite.conformance.strategies import position_shape, specs

TIGHT = dict(rtol=1e-12, atol=1e-12)


def random_case(spec: RopeSpec, batch: int = 2, seq: int = 5, heads: int = 3, max_pos: int = 5000, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, seq, heads, spec.head_dim))
    pos = rng.integers(0, max_pos, size=position_shape(spec, batch, seq))
    return x, pos


# --- oracle 1: block-diagonal rotation matrices from scalar math --------------------------------

def rotation_matrix(spec: RopeSpec, position: int) -> np.ndarray:
    """The D x D matrix of RoFormer eq. 15 for the default frequencies, built entry by entry with
    ``math`` (no numpy broadcasting, no reference code): 2x2 blocks on the pairs, identity on the tail."""
    d, r = spec.head_dim, spec.rotary_dim
    m = np.eye(d)
    for i in range(r // 2):
        phi = position * math.pow(spec.base, -2.0 * i / r)
        a, b = (i, i + r // 2) if spec.convention == "half" else (2 * i, 2 * i + 1)
        m[a, a], m[a, b] = math.cos(phi), -math.sin(phi)
        m[b, a], m[b, b] = math.sin(phi), math.cos(phi)
    return m


@pytest.mark.parametrize("name", ["llama2-7b", "gpt-neox-20b", "gpt-j-6b", "phi-2", "codellama-7b"])
def test_reference_equals_block_diagonal_rotation(name: str) -> None:
    spec = PRESETS[name]
    x, pos = random_case(spec)
    got = reference.apply(x, pos, spec)
    want = np.einsum("bsij,bshj->bshi", np.array([[rotation_matrix(spec, p) for p in row] for row in pos]), x)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


# --- oracle 2: complex multiplication (Meta's llama apply_rotary_emb) ---------------------------

@given(specs(multi_axis=False), st.integers(0, 2**20))
@settings(max_examples=60, deadline=None)
def test_interleaved_equals_complex_multiplication(spec: RopeSpec, max_pos: int) -> None:
    spec = spec.replace(convention="interleaved")
    x, pos = random_case(spec, max_pos=max_pos + 1)
    r = spec.rotary_dim
    z = x[..., 0:r:2] + 1j * x[..., 1:r:2]
    cos, sin = reference.cos_sin(pos, spec)
    rotated = z * (cos + 1j * sin)[:, :, None, :]  # (a + jb) * A e^{j phi}
    want = x.copy()
    want[..., 0:r:2], want[..., 1:r:2] = rotated.real, rotated.imag
    np.testing.assert_allclose(reference.apply(x, pos, spec), want, **TIGHT)


# --- oracle 3: half and interleaved differ by a fixed channel permutation -----------------------

def half_to_interleaved(r: int, d: int) -> np.ndarray:
    """perm with x_interleaved = x_half[..., perm]: channel 2i <- i, 2i+1 <- i + r/2, tail fixed."""
    perm = np.arange(d)
    perm[0:r:2] = np.arange(r // 2)
    perm[1:r:2] = np.arange(r // 2) + r // 2
    return perm


@given(specs())
@settings(max_examples=60, deadline=None)
def test_half_is_interleaved_under_the_channel_permutation(spec: RopeSpec) -> None:
    x, pos = random_case(spec)
    perm = half_to_interleaved(spec.rotary_dim, spec.head_dim)
    half = reference.apply(x, pos, spec.replace(convention="half"))
    inter = reference.apply(x[..., perm], pos, spec.replace(convention="interleaved"))
    np.testing.assert_allclose(inter, half[..., perm], **TIGHT)
    if spec.rotary_dim > 2 and pos.any():  # with one pair the two layouts coincide
        assert not np.allclose(half, reference.apply(x, pos, spec.replace(convention="interleaved")))


# --- oracle 4: SAM 2 axial 2D form --------------------------------------------------------------

def test_axial_equals_sam2_complex_form() -> None:
    """Ultralytics ``compute_axial_cis`` + ``apply_rotary_enc``, restated: per axis, frequencies
    1 / theta^(arange(0, D, 4)[: D/4] / D); x-angles for the first D/4 complex pairs, y for the rest."""
    spec = PRESETS["sam2"]
    d = spec.head_dim
    x, pos = random_case(spec, max_pos=64)
    band = 1.0 / spec.base ** (np.arange(0, d, 4)[: d // 4] / d)
    phase = np.concatenate([pos[..., 0:1] * band, pos[..., 1:2] * band], axis=-1)
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * phase)[:, :, None, :]
    want = np.stack([z.real, z.imag], axis=-1).reshape(x.shape)
    np.testing.assert_allclose(reference.apply(x, pos, spec), want, **TIGHT)


def test_mrope_chunked_streams_drive_their_sections() -> None:
    """Qwen2-VL: frequency block j takes its angle from position stream j (explicit loop)."""
    spec = PRESETS["qwen2-vl"]
    x, pos = random_case(spec)
    theta = reference.inverse_frequencies(spec)
    bounds = np.cumsum((0, *spec.multi_axis.sections))
    phi = np.empty(pos.shape[:2] + (spec.n_pairs,))
    for stream, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        phi[..., lo:hi] = pos[..., stream:stream + 1] * theta[lo:hi]
    assert np.array_equal(reference.angles(pos, spec), phi)


def test_text_tokens_make_mrope_equal_1d_rope() -> None:
    """With t = h = w (text tokens), M-RoPE in either layout is plain 1D RoPE."""
    x, pos1 = random_case(PRESETS["llama2-7b"])
    pos3 = np.repeat(pos1[..., None], 3, axis=-1)
    for name in ("qwen2-vl", "qwen3-vl"):
        spec = PRESETS[name]
        plain = RopeSpec(head_dim=spec.head_dim, base=spec.base)
        np.testing.assert_array_equal(reference.apply(x, pos3, spec), reference.apply(x, pos1, plain))


def test_qwen3_interleaved_layout() -> None:
    """Qwen3-VL's ``apply_interleaved_mrope``: stream 1 on i%3==1 below 3*s_h, 2 on i%3==2 below 3*s_w."""
    axes = reference.pair_axes(RopeSpec(head_dim=24, multi_axis=MRope((6, 3, 3), interleaved=True)))
    assert axes.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 0]
    assert reference.pair_axes(RopeSpec(head_dim=8, multi_axis=Axial2D())).tolist() == [0, 0, 1, 1]


# --- properties ---------------------------------------------------------------------------------

@given(specs(), st.integers(1, 2**20))
@settings(max_examples=80, deadline=None)
def test_pair_norms_scale_by_attention_factor_and_tail_passes(spec: RopeSpec, max_pos: int) -> None:
    x, pos = random_case(spec, max_pos=max_pos)
    y = reference.apply(x, pos, spec)
    first, second = reference.pair_channels(spec)
    a = reference.attention_factor(spec)
    np.testing.assert_allclose(np.hypot(y[..., first], y[..., second]),
                               a * np.hypot(x[..., first], x[..., second]), **TIGHT)
    assert np.array_equal(y[..., spec.rotary_dim:], x[..., spec.rotary_dim:])


@given(specs())
@settings(max_examples=40, deadline=None)
def test_position_zero_is_identity_times_attention_factor(spec: RopeSpec) -> None:
    x, pos = random_case(spec)
    y = reference.apply(x, np.zeros_like(pos), spec)
    a = reference.attention_factor(spec)
    expected = x.copy()
    expected[..., : spec.rotary_dim] *= a
    assert np.array_equal(y, expected) if a == 1.0 else np.allclose(y, expected, **TIGHT)


@given(specs().filter(lambda s: not s.sequence_dependent), st.integers(0, 2**16), st.integers(0, 2**16))
@settings(max_examples=60, deadline=None)
def test_rotations_compose(spec: RopeSpec, a: int, b: int) -> None:
    """R(a) R(b) = R(a + b) (frequencies that do not depend on the sequence length)."""
    x, _ = random_case(spec)
    shape = position_shape(spec, *x.shape[:2])
    pa, pb = np.full(shape, a), np.full(shape, b)
    gain = reference.attention_factor(spec)
    twice = reference.apply(reference.apply(x, pa, spec), pb, spec)
    once = reference.apply(x, pa + pb, spec)
    once[..., : spec.rotary_dim] *= gain  # each application multiplies by the attention factor
    np.testing.assert_allclose(twice, once, rtol=1e-9, atol=1e-9 * (1 + abs(a) + abs(b)) * 1e-3)


@given(specs().filter(lambda s: not s.sequence_dependent), st.integers(0, 2**14))
@settings(max_examples=60, deadline=None)
def test_scores_depend_only_on_relative_position(spec: RopeSpec, shift: int) -> None:
    q, pos = random_case(spec, max_pos=4096, seed=1)
    k, _ = random_case(spec, seed=2)
    def scores(p: np.ndarray) -> np.ndarray:
        return np.einsum("bshd,bthd->bhst", reference.apply(q, p, spec), reference.apply(k, p, spec))
    np.testing.assert_allclose(scores(pos + shift), scores(pos), rtol=1e-9, atol=1e-9)


def test_dynamic_frequencies_follow_the_longest_position_of_each_call() -> None:
    """Stateless dynamic NTK: a short call after a long one gets the default frequencies back."""
    spec = RopeSpec(head_dim=64, scaling={"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 128})
    x, _ = random_case(spec, seq=1)
    short = np.array([[5], [7]])
    before = reference.apply(x, short, spec)
    reference.apply(x, np.array([[5], [4000]]), spec)
    np.testing.assert_array_equal(reference.apply(x, short, spec), before)
    assert not np.allclose(reference.apply(x, np.array([[5], [4000]]), spec)[0],
                           reference.apply(x, np.array([[5], [7]]), spec)[0])


def test_longrope_switches_strictly_above_original_length() -> None:
    spec = RopeSpec(head_dim=8, scaling={"rope_type": "longrope", "factor": 4.0, "original_max_position_embeddings": 16,
                                         "short_factor": [1.0, 1.0, 1.0, 1.0], "long_factor": [2.0, 2.0, 2.0, 2.0]})
    default = 1.0 / 10000.0 ** (np.arange(0, 8, 2) / 8)
    np.testing.assert_allclose(reference.inverse_frequencies(spec, seq_len=16), default, **TIGHT)
    np.testing.assert_allclose(reference.inverse_frequencies(spec, seq_len=17), default / 2, **TIGHT)
    assert reference.attention_factor(spec) == pytest.approx(math.sqrt(1 + math.log(4) / math.log(16)))
