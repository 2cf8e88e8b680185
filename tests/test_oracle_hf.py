"""The float64 reference against Hugging Face transformers' own RoPE code.

Sources (transformers 5.x, read from the installed package):
  * ``transformers/modeling_rope_utils.py``: ``ROPE_INIT_FUNCTIONS`` (linear, dynamic, yarn,
    longrope, llama3) and ``dynamic_rope_update`` (the forward-time dynamic/longrope switch).
  * ``transformers/models/{llama,gpt_neox}/modeling_*.py``: ``*RotaryEmbedding``
    (``compute_default_rope_parameters`` is the "default" type, which v5 keeps on the model
    class, not in ROPE_INIT_FUNCTIONS) and ``apply_rotary_pos_emb`` / ``rotate_half``.
  * ``transformers/models/phi/modeling_phi.py``: ``PhiAttention.forward`` slices the rotary part.
  * ``transformers/models/gptj/modeling_gptj.py``: ``create_sinusoidal_positions``,
    ``GPTJRotaryEmbedding``, ``rotate_every_two``, ``apply_rotary_pos_emb`` and the
    q_rot/q_pass slicing of ``GPTJAttention.forward``.

HF computes frequencies in float32. Each comparison runs twice: once with HF's code in
float64 (:func:`hf_float_means_float64`) at float64 rounding, once unpatched in float32 at
a bound derived from float32 epsilon, so the patch cannot hide a difference.

Configs are real config classes at tiny sizes; no weights are loaded. HF's layout is
[batch, heads, seq, head_dim]; the reference's is [batch, seq, heads, head_dim].
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import numpy as np
import pytest
from conftest import need

from rope_suite.conformance import reference
from rope_suite.conformance.presets import preset
from rope_suite.conformance.spec import RopeSpec

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
# HF's float64 theta vs numpy's: a pow, a reciprocal and at most a 3-term blend on each side,
# each within an ulp or two; 8 ulps is comfortably above that and ~1e4 times below any
# semantic difference.
THETA_ULPS64 = 8


# --- HF modules, configs, and running HF in float64 ---------------------------------------------

@dataclass(frozen=True)
class Model:
    """Where a model's RoPE pieces live in transformers."""

    config_class: str
    module: str
    rotary_class: str


MODELS: dict[str, Model] = {
    "llama": Model("LlamaConfig", "transformers.models.llama.modeling_llama", "LlamaRotaryEmbedding"),
    "gpt_neox": Model("GPTNeoXConfig", "transformers.models.gpt_neox.modeling_gpt_neox", "GPTNeoXRotaryEmbedding"),
    "phi": Model("PhiConfig", "transformers.models.phi.modeling_phi", "PhiRotaryEmbedding"),
    "gptj": Model("GPTJConfig", "transformers.models.gptj.modeling_gptj", "GPTJRotaryEmbedding"),
}


@dataclass(frozen=True)
class HF:
    """The imported pieces: torch, transformers, modeling_rope_utils, and each model's module."""

    torch: Any
    transformers: Any
    rope_utils: Any
    modules: dict[str, Any]


@pytest.fixture(scope="module")
def hf() -> HF:
    torch, transformers = need("torch"), need("transformers")
    return HF(torch, transformers, need("transformers.modeling_rope_utils"),
              {name: need(m.module) for name, m in MODELS.items()})


@contextlib.contextmanager
def hf_float_means_float64(hf: HF) -> Iterator[None]:
    """Run HF's RoPE code in float64, unchanged otherwise.

    Why: HF pins float32 explicitly (``torch.arange(..., dtype=torch.float)``,
    ``dtype=torch.float32`` in YaRN's ramp and LongRoPE's factors, ``position_ids.float()``,
    ``inv_freq.to(dtype=torch.float)``), so its output carries ~1e-7 relative rounding and
    cannot be compared with the float64 reference at 1e-12. Three patches, all undone on exit:
      * in HF's own modules only (modeling_rope_utils and the models' files), the global name
        ``torch`` is a view of torch whose ``float`` and ``float32`` are ``torch.float64``;
      * ``torch.Tensor.float`` returns float64 (a method, so it is patched on the class);
      * the default dtype is float64, for implicit int -> float promotion
        (``tensor(int64) * float`` in dynamic_rope_update, ``arange(int64) / dim`` in GPT-J).
    Every formula, branch and order of operations stays HF's. The float32 twin of each test
    runs the same code unpatched.
    """
    torch = hf.torch
    view = types.ModuleType("torch_with_float64_as_float")
    view.__dict__["__getattr__"] = lambda name: getattr(torch, name)  # PEP 562 fallback to torch
    view.float = view.float32 = torch.float64
    previous = torch.get_default_dtype()
    with contextlib.ExitStack() as stack:
        for module in (hf.rope_utils, *hf.modules.values()):
            stack.enter_context(mock.patch.object(module, "torch", view))
        stack.enter_context(mock.patch.object(
            torch.Tensor, "float",
            lambda self, memory_format=torch.preserve_format: self.to(torch.float64, memory_format=memory_format)))
        torch.set_default_dtype(torch.float64)
        try:
            yield
        finally:
            torch.set_default_dtype(previous)


def test_float64_patch_takes_effect_and_is_undone(hf: HF) -> None:
    """Inside, HF's ``torch.float``, ``.float()`` and the default dtype mean float64; after,
    everything is torch's own again (other tests share this process)."""
    torch, llama = hf.torch, hf.modules["llama"]
    with hf_float_means_float64(hf):
        inside = (llama.torch.float, torch.ones(1, dtype=torch.int64).float().dtype, torch.get_default_dtype())
    assert inside == (torch.float64,) * 3, f"inside the patch: {inside}, but should all be float64"
    after = (llama.torch is torch, hf.rope_utils.torch is torch, torch.ones(1, dtype=torch.int64).float().dtype,
             torch.get_default_dtype(), torch.float)
    assert after == (True, True, torch.float32, torch.float32, torch.float32), f"after the patch: {after}"


def precision(hf: HF, float64: bool) -> contextlib.AbstractContextManager[None]:
    """The float64 patch, or nothing (HF's own float32)."""
    return hf_float_means_float64(hf) if float64 else contextlib.nullcontext()


# --- the cases: one HF config and the reference spec it must equal ------------------------------

L0 = 4096  # original_max_position_embeddings of the tiny cases


def _longrope_factors(n_pairs: int) -> dict[str, list[float]]:
    """Short and long factors that differ at every pair, so picking the wrong list fails."""
    return {"short_factor": [1.0 + 0.05 * i for i in range(n_pairs)],
            "long_factor": [1.5 + 0.4 * i for i in range(n_pairs)]}


@dataclass(frozen=True)
class Case:
    """One HF RoPE config and the reference spec that must match it.

    ``hf_params`` are HF's ``rope_parameters`` (without rope_theta / partial_rotary_factor,
    which the config builder adds); ``scaling`` is the reference's (HF key names). ``seq_len``
    is what HF gets as ``seq_len`` (and max(position)+1 in the forward tests). ``exercises``
    says what the frequencies must look like next to the unscaled ones: "default" (equal),
    "scaled" (differ), "blend" (some kept, some divided by factor, some in between).
    """

    id: str
    model: str
    hf_params: dict[str, Any]
    scaling: dict[str, Any] | None
    exercises: str
    head_dim: int = 32
    partial: float = 1.0
    base: float = 10000.0
    max_positions: int = 4 * L0
    seq_len: int | None = None
    factor: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor", float((self.scaling or {}).get("factor", 1.0)))

    @property
    def spec(self) -> RopeSpec:
        return RopeSpec(head_dim=self.head_dim, rotary_dim=int(self.head_dim * self.partial),
                        base=self.base, scaling=self.scaling)


def _same(id_: str, model: str, params: dict[str, Any], exercises: str, **kw: Any) -> Case:
    """A case whose HF parameters are also the reference's scaling."""
    return Case(id_, model, params, params, exercises, **kw)


def _cases() -> list[Case]:
    linear = {"rope_type": "linear", "factor": 4.0}
    dynamic = {"rope_type": "dynamic", "factor": 4.0}
    # HF dynamic reads L0 from config.max_position_embeddings; the reference from the scaling.
    dynamic_ref = dynamic | {"original_max_position_embeddings": L0}
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": L0}
    longrope = {"rope_type": "longrope", "factor": 4.0, "original_max_position_embeddings": L0}
    llama31 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
    neox = {"model": "gpt_neox", "head_dim": 64}
    return [
        Case("default", "llama", {"rope_type": "default"}, None, "default"),
        Case("default_partial_quarter", "gpt_neox", {"rope_type": "default"}, None, "default",
             head_dim=64, partial=0.25),
        _same("linear", "llama", linear, "scaled"),
        Case("linear_partial_half", hf_params=linear, scaling=linear, exercises="scaled", partial=0.5, **neox),
        Case("dynamic_below_original", "llama", dynamic, dynamic_ref, "default", max_positions=L0, seq_len=L0 // 2),
        Case("dynamic_at_original", "llama", dynamic, dynamic_ref, "default", max_positions=L0, seq_len=L0),
        Case("dynamic_above_original", "llama", dynamic, dynamic_ref, "scaled", max_positions=L0,
             seq_len=3 * L0 + 17),
        Case("dynamic_partial_quarter_above_original", hf_params=dynamic, scaling=dynamic_ref, exercises="scaled",
             partial=0.25, max_positions=L0, seq_len=2 * L0 + 1, **neox),
        # HF has no static NTK. Its dynamic base' = base*(f*L/L0 - (f-1))^(r/(r-2)) with f = s-1
        # at L = 2*L0 gives (s-1)*2 - (s-2) = s: exactly the reference's ntk base*s^(r/(r-2)).
        Case("ntk_as_dynamic_at_twice_original", "llama", {"rope_type": "dynamic", "factor": 3.0},
             {"rope_type": "ntk", "factor": 4.0}, "scaled", max_positions=L0, seq_len=2 * L0),
        Case("ntk_as_dynamic_partial_half", hf_params={"rope_type": "dynamic", "factor": 3.0},
             scaling={"rope_type": "ntk", "factor": 4.0}, exercises="scaled", partial=0.5,
             max_positions=L0, seq_len=2 * L0, **neox),
        _same("yarn_defaults", "llama", yarn, "blend"),
        _same("yarn_beta_fast_slow", "llama", yarn | {"beta_fast": 16.0, "beta_slow": 2.0}, "blend"),
        _same("yarn_truncate_false", "llama", yarn | {"truncate": False}, "blend"),
        _same("yarn_mscale_all_dim", "llama", yarn | {"mscale": 1.0, "mscale_all_dim": 0.5}, "blend"),
        _same("yarn_explicit_attention_factor", "llama", yarn | {"attention_factor": 1.25}, "blend"),
        Case("yarn_partial_half", hf_params=yarn, scaling=yarn, exercises="blend", partial=0.5, **neox),
        # The correction range's clamps: corr(beta_fast) < 0 (low -> 0); corr(beta_slow) > r - 1
        # (high -> r - 1, past the last pair r/2 - 1: base 10 makes the range wide); and
        # low == high == 0 (L0 = 4 < 2 pi), where HF adds 0.001 to high.
        _same("yarn_low_clamped_to_zero", "llama", yarn | {"original_max_position_embeddings": 128}, "blend",
              max_positions=512),
        _same("yarn_high_clamped_to_last_channel", "llama", yarn | {"original_max_position_embeddings": 1024},
              "scaled", base=10.0, max_positions=4096),
        _same("yarn_empty_correction_range", "llama", yarn | {"original_max_position_embeddings": 4}, "scaled",
              max_positions=16),
        _same("longrope_below_original", "llama", longrope | _longrope_factors(16), "scaled", seq_len=L0 - 1),
        _same("longrope_at_original", "llama", longrope | _longrope_factors(16), "scaled", seq_len=L0),
        _same("longrope_above_original", "llama", longrope | _longrope_factors(16), "scaled", seq_len=L0 + 1),
        _same("longrope_explicit_attention_factor", "llama",
              longrope | _longrope_factors(16) | {"attention_factor": 1.5}, "scaled", seq_len=2 * L0),
        # Phi-3 style: no factor; HF takes max_position_embeddings / original (8) for the attention factor.
        Case("longrope_factor_from_lengths", "llama",
             {k: v for k, v in (longrope | _longrope_factors(16)).items() if k != "factor"},
             longrope | _longrope_factors(16) | {"factor": 8.0}, "scaled", max_positions=8 * L0, seq_len=L0 + 1),
        Case("longrope_partial_half_above_original", hf_params=longrope | _longrope_factors(16),
             scaling=longrope | _longrope_factors(16), exercises="scaled", partial=0.5, seq_len=L0 + 1, **neox),
        _same("llama3_1", "llama", llama31, "blend", head_dim=128, base=500000.0, max_positions=131072),
        Case("llama3_partial_half", hf_params=llama31, scaling=llama31, exercises="blend", partial=0.5,
             base=500000.0, max_positions=131072, **neox),
    ]


CASES = _cases()


def hf_config(hf: HF, case: Case) -> Any:
    """A tiny config of the case's model class with its rope_parameters (transformers v5 format)."""
    params = dict(case.hf_params, rope_theta=case.base)
    if case.model == "llama":
        assert case.partial == 1.0, "Llama rotates the whole head; partial cases use GPT-NeoX"
    else:
        params["partial_rotary_factor"] = case.partial  # GPT-NeoX's own default is rotary_pct 0.25
    config_class = getattr(hf.transformers, MODELS[case.model].config_class)
    return config_class(hidden_size=2 * case.head_dim, num_attention_heads=2, num_hidden_layers=1,
                        intermediate_size=8, vocab_size=16, max_position_embeddings=case.max_positions,
                        rope_parameters=params)


def hf_init_function(hf: HF, case: Case) -> Any:
    """``ROPE_INIT_FUNCTIONS[rope_type]``, or the model's ``compute_default_rope_parameters``."""
    rope_type = case.hf_params["rope_type"]
    if rope_type == "default":
        return getattr(hf.modules[case.model], MODELS[case.model].rotary_class).compute_default_rope_parameters
    return hf.rope_utils.ROPE_INIT_FUNCTIONS[rope_type]


# --- bounds and the assertion -------------------------------------------------------------------

def unscaled_frequencies(spec: RopeSpec) -> np.ndarray:
    """The spec's frequencies without its scaling: base^(-2i/r)."""
    return reference.inverse_frequencies(RopeSpec(head_dim=spec.head_dim, rotary_dim=spec.rotary_dim, base=spec.base))


def frequency_rtol32(spec: RopeSpec, seq_len: int | None) -> np.ndarray:
    """Relative bound per pair on HF's float32 inverse frequencies, [r/2].

    theta_i = b^(-e_i) (b the base, or dynamic NTK's grown base): rounding e_i to float32
    (u = eps32/2) moves it by a relative e_i ln b u = |ln b^(-e_i)| u, at most
    max(|ln theta_i|, |ln theta_i unscaled|) u. YaRN/llama3 blend theta and theta/s with a
    weight w rounded to ~2u absolute: at most s 2u relative to the result (>= theta/s), and
    1 - w adds u more. Pow, the reciprocal, the division by factor (or by LongRoPE's factors,
    themselves rounded), the grown base and the blend's ops add u each (< 8u). Total:
    eps32 (max(|ln theta_i|, |ln theta_i unscaled|) + 3 s + 8).
    """
    theta = reference.inverse_frequencies(spec, seq_len)
    log_size = np.maximum(np.abs(np.log(theta)), np.abs(np.log(unscaled_frequencies(spec))))
    factor = spec.scaling.factor if spec.scaling is not None else 1.0
    return EPS32 * (log_size + 3 * factor + 8)


def angle_error(positions: np.ndarray, spec: RopeSpec, theta_rtol: np.ndarray | float, eps: float) -> float:
    """Bound on |phi_HF - phi| = |m theta_i| (theta_rtol_i + eps): theta's error plus the
    rounding of the product (positions are exact integers in both precisions here)."""
    phi = np.abs(reference.angles(positions, spec))
    return float(np.max(phi * (np.asarray(theta_rtol) + eps)))


def rotation_bound(x: np.ndarray, angle_err: float, attention: float, eps: float) -> float:
    """Absolute bound on a rotated element a (x1 cos phi - x2 sin phi), phi off by angle_err.

    cos and sin are 1-Lipschitz and rounded (eps); the products, the sum and the attention
    scaling round a few times more:
    |d out| <= a (|x1| + |x2|) (angle_err + 4 eps) <= a max|x| (2 angle_err + 8 eps).
    """
    return attention * float(np.max(np.abs(x))) * (2 * angle_err + 8 * eps)


def assert_close(got: np.ndarray, want: np.ndarray, bound: float | np.ndarray, call: str,
                 positions: np.ndarray | None = None) -> None:
    """Fail unless |got - want| <= bound everywhere; the message names the worst element
    (index, its position id when x-shaped, got, wanted, error vs bound) and how many are over,
    then the call (STYLE.md)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape={got.shape}, but should be {want.shape} [{call}]"
    err = np.abs(got - want)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), err.shape)
    over = ~(err <= bound)  # NaN counts as over
    if over.any():
        excess = np.where(np.isnan(err), np.inf, err - bound)
        worst = np.unravel_index(np.argmax(excess), err.shape)
        where = f" (position {int(positions[worst[:2]])})" if positions is not None else ""
        pytest.fail(f"{int(over.sum())}/{err.size} elements over the bound; worst at index {tuple(map(int, worst))}"
                    f"{where}: got {float(got[worst])!r}, wanted {float(want[worst])!r}, "
                    f"error {float(err[worst]):.3g} > bound {float(bound[worst]):.3g} [{call}]")


def assert_attention_factor(got: float, case: Case, call: str) -> None:
    """HF's attention factor is Python float math in both precisions: equal within 1e-12."""
    want = reference.attention_factor(case.spec)
    assert abs(got - want) <= 1e-12 * abs(want), \
        f"attention_factor={got!r}, but should be {want!r} (error {abs(got - want):.3g}) [{call}]"


# --- a. the init functions vs reference.inverse_frequencies / attention_factor -------------------

@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("float64", [True, False], ids=["float64", "float32"])
def test_init_function(hf: HF, case: Case, float64: bool) -> None:
    """HF's init function for the case == the reference: 1e-12 relative in float64, the derived
    float32 bound unpatched; the attention factor within 1e-12 in both."""
    fn = hf_init_function(hf, case)
    with precision(hf, float64):
        inv_freq, attention = fn(hf_config(hf, case), seq_len=case.seq_len)
    want_dtype = hf.torch.float64 if float64 else hf.torch.float32
    call = f"{fn.__qualname__}({case.id}, seq_len={case.seq_len})"
    assert inv_freq.dtype == want_dtype, f"inv_freq.dtype={inv_freq.dtype}, but should be {want_dtype} [{call}]"
    want = reference.inverse_frequencies(case.spec, case.seq_len)
    rtol = 1e-12 if float64 else frequency_rtol32(case.spec, case.seq_len)
    assert_close(inv_freq.numpy(), want, rtol * np.abs(want), call + " vs reference.inverse_frequencies")
    assert_attention_factor(attention, case, call)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_exercises_its_scaling(case: Case) -> None:
    """Guards the cases: each changes the frequencies the way its id says (a dynamic case at
    or below L0 is default, a YaRN/llama3 case reaches all three regions), so a case cannot
    silently test nothing."""
    spec = case.spec
    ratio = reference.inverse_frequencies(spec, case.seq_len) / unscaled_frequencies(spec)
    kept, divided = np.isclose(ratio, 1.0, rtol=1e-12), np.isclose(ratio, 1.0 / case.factor, rtol=1e-12)
    if case.exercises == "default":
        assert kept.all(), f"{case.id}: frequencies / unscaled = {ratio}, but should all be 1"
    elif case.exercises == "scaled":
        assert not kept.all(), f"{case.id}: frequencies equal the unscaled ones; the case tests no scaling"
    else:
        between = ~kept & ~divided
        assert kept.any() and divided.any() and between.any(), \
            f"{case.id}: frequencies / unscaled = {ratio}; want some 1, some 1/{case.factor:g} and some between"


# --- b. end to end: HF's apply_rotary_pos_emb and rotary modules vs reference.apply -------------

def sample(spec: RopeSpec, max_position: int, seed: int = 0, batch: int = 2, seq: int = 6, heads: int = 2
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q, k [batch, seq, heads, head_dim] (float32-representable) and positions [batch, seq]:
    row 0 starts at 0, row 1 is offset and ends at ``max_position``."""
    rng = np.random.default_rng(seed)
    q, k = (rng.standard_normal((batch, seq, heads, spec.head_dim)).astype(np.float32).astype(np.float64)
            for _ in range(2))
    steps = np.sort(rng.choice(np.arange(1, max_position), size=seq - 1, replace=False))
    positions = np.stack([np.arange(seq), np.concatenate([steps, [max_position]])]).astype(np.int64)
    return q, k, positions


def to_hf(torch: Any, x: np.ndarray, dtype: Any) -> Any:
    """[batch, seq, heads, head] numpy -> [batch, heads, seq, head] torch."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1, 3))).to(dtype)


def from_hf(y: Any) -> np.ndarray:
    """[batch, heads, seq, head] torch -> [batch, seq, heads, head] float64 numpy."""
    return y.detach().double().numpy().transpose(0, 2, 1, 3)


def hf_rotate(hf: HF, model: str, q: Any, k: Any, cos: Any, sin: Any, rotary_dim: int) -> tuple[Any, Any]:
    """q, k [batch, heads, seq, head] rotated the way the model's attention does it: Llama and
    GPT-NeoX call ``apply_rotary_pos_emb`` on the whole head (GPT-NeoX slices by cos.shape[-1]);
    ``PhiAttention.forward`` slices ``[..., :rotary_ndims]``, rotates, and concatenates."""
    apply = hf.modules[model].apply_rotary_pos_emb
    if model != "phi":
        return apply(q, k, cos, sin)
    q_rot, k_rot = apply(q[..., :rotary_dim], k[..., :rotary_dim], cos, sin)
    cat = hf.torch.cat
    return cat((q_rot, q[..., rotary_dim:]), dim=-1), cat((k_rot, k[..., rotary_dim:]), dim=-1)


@dataclass(frozen=True)
class ApplyCase:
    """A model's apply_rotary_pos_emb fed cos/sin from the reference."""

    id: str
    model: str
    spec: RopeSpec


APPLY_CASES = [
    ApplyCase("llama_full", "llama", RopeSpec(head_dim=32)),
    ApplyCase("llama_yarn_attention_factor", "llama", RopeSpec(head_dim=32, scaling={
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64})),
    ApplyCase("gpt_neox_partial_quarter", "gpt_neox", RopeSpec(head_dim=64, rotary_dim=16)),
    ApplyCase("gpt_neox_20b", "gpt_neox", preset("gpt-neox-20b")),
    ApplyCase("phi_2_partial", "phi", preset("phi-2")),
]


@pytest.mark.parametrize("case", APPLY_CASES, ids=lambda c: c.id)
def test_apply_rotary_pos_emb_with_reference_cos_sin(hf: HF, case: ApplyCase) -> None:
    """HF's apply_rotary_pos_emb(q, k, cos, sin) in float64, cos/sin = the reference's laid out
    cat(c, c) [batch, seq, r] (``expand_to_channels``), == reference.apply on q and on k."""
    torch, spec = hf.torch, case.spec
    q, k, positions = sample(spec, max_position=300)
    cos, sin = (torch.from_numpy(reference.expand_to_channels(t, "half")) for t in reference.cos_sin(positions, spec))
    got_q, got_k = hf_rotate(hf, case.model, to_hf(torch, q, torch.float64), to_hf(torch, k, torch.float64),
                             cos, sin, spec.rotary_dim)
    for name, x, got in (("q", q, got_q), ("k", k, got_k)):
        want = reference.apply(x, positions, spec)
        bound = rotation_bound(x, 0.0, reference.attention_factor(spec), EPS64)
        assert_close(from_hf(got), want, bound,
                     f"{case.model}.apply_rotary_pos_emb({name}, reference cos/sin, {case.id})", positions)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("float64", [True, False], ids=["float64", "float32"])
def test_rotary_embedding_module(hf: HF, case: Case, float64: bool) -> None:
    """The model's ``*RotaryEmbedding(config)`` forward (cos/sin for position_ids, with the
    dynamic/longrope update from max(position_ids)+1), then its attention's rotation, ==
    reference.apply. Positions end at seq_len - 1 where the case has a seq_len."""
    torch, spec = hf.torch, case.spec
    q, k, positions = sample(spec, max_position=(case.seq_len or 1001) - 1)
    dtype = torch.float64 if float64 else torch.float32
    with precision(hf, float64):
        rotary = getattr(hf.modules[case.model], MODELS[case.model].rotary_class)(hf_config(hf, case))
        hq, hk = to_hf(torch, q, dtype), to_hf(torch, k, dtype)
        cos, sin = rotary(hq, torch.from_numpy(positions))
        got_q, got_k = hf_rotate(hf, case.model, hq, hk, cos, sin, spec.rotary_dim)
    eps, theta_rtol = (EPS64, THETA_ULPS64 * EPS64) if float64 else (EPS32, frequency_rtol32(spec, case.seq_len))
    angle_err = angle_error(positions, spec, theta_rtol, eps)
    for name, x, got in (("q", q, got_q), ("k", k, got_k)):
        assert got.dtype == dtype, f"{name}.dtype={got.dtype}, but should be {dtype} [{case.id}]"
        bound = rotation_bound(x, angle_err, reference.attention_factor(spec), eps)
        assert_close(from_hf(got), reference.apply(x, positions, spec), bound,
                     f"{MODELS[case.model].rotary_class}({case.id}) + apply_rotary_pos_emb({name}), {dtype}",
                     positions)


# --- GPT-J: interleaved pairs in the first rotary_dim channels -----------------------------------

def gptj_rotate(hf: HF, x: Any, sin: Any, cos: Any, rotary_dim: int) -> Any:
    """``GPTJAttention.forward``: x [batch, seq, heads, head] (before its transpose) split into
    x[..., :rotary_dim] (rotated by apply_rotary_pos_emb / rotate_every_two) and the rest."""
    rotated = hf.modules["gptj"].apply_rotary_pos_emb(x[:, :, :, :rotary_dim], sin, cos)
    return hf.torch.cat([rotated, x[:, :, :, rotary_dim:]], dim=-1)


GPTJ_SPECS = {
    "gpt_j_6b": preset("gpt-j-6b"),
    "tiny_partial_quarter": RopeSpec(head_dim=32, rotary_dim=8, convention="interleaved"),
    "tiny_full": RopeSpec(head_dim=32, rotary_dim=32, convention="interleaved"),
}


@pytest.mark.parametrize("spec", GPTJ_SPECS.values(), ids=GPTJ_SPECS.keys())
def test_gptj_apply_rotary_pos_emb_with_reference_sin_cos(hf: HF, spec: RopeSpec) -> None:
    """GPT-J's apply_rotary_pos_emb with the reference's sin, cos [batch, seq, r/2] (it
    repeat_interleaves them itself), in float64, == reference.apply with interleaved pairs."""
    torch = hf.torch
    x, _, positions = sample(spec, max_position=300)
    sin, cos = (torch.from_numpy(t) for t in reversed(reference.cos_sin(positions, spec)))
    got = gptj_rotate(hf, torch.from_numpy(x), sin, cos, spec.rotary_dim).numpy()
    assert_close(got, reference.apply(x, positions, spec), rotation_bound(x, 0.0, 1.0, EPS64),
                 "gptj.apply_rotary_pos_emb(reference sin/cos)", positions)


@pytest.mark.parametrize("spec", list(GPTJ_SPECS.values())[1:], ids=list(GPTJ_SPECS)[1:])
@pytest.mark.parametrize("float64", [True, False], ids=["float64", "float32"])
def test_gptj_rotary_embedding_module(hf: HF, spec: RopeSpec, float64: bool) -> None:
    """``GPTJRotaryEmbedding(config)`` (``create_sinusoidal_positions``, base 10000 hard-coded)
    looked up at position_ids, then GPTJAttention's rotation, == reference.apply."""
    torch = hf.torch
    config = hf.transformers.GPTJConfig(n_embd=2 * spec.head_dim, n_head=2, n_layer=1, vocab_size=50400,
                                        rotary_dim=spec.rotary_dim, n_positions=512)
    x, _, positions = sample(spec, max_position=500)
    dtype = torch.float64 if float64 else torch.float32
    with precision(hf, float64):
        hx = torch.from_numpy(x).to(dtype)
        sin, cos = hf.modules["gptj"].GPTJRotaryEmbedding(config)(hx, torch.from_numpy(positions))
        got = gptj_rotate(hf, hx, sin, cos, spec.rotary_dim)
    assert got.dtype == dtype, f"dtype={got.dtype}, but should be {dtype}"
    eps, theta_rtol = (EPS64, THETA_ULPS64 * EPS64) if float64 else (EPS32, frequency_rtol32(spec, None))
    bound = rotation_bound(x, angle_error(positions, spec, theta_rtol, eps), 1.0, eps)
    assert_close(got.double().numpy(), reference.apply(x, positions, spec), bound,
                 f"GPTJRotaryEmbedding + apply_rotary_pos_emb, {dtype}", positions)
