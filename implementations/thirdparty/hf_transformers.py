"""Hugging Face transformers' own RoPE code paths (read from transformers 5.x), no weights.

Each object builds a tiny real config (one head of ``head_dim`` channels, one layer) and the
model's own rotary-embedding module from it, then applies the rotation with the model's own
``apply_rotary_pos_emb`` the way its attention module does. No RoPE math is written here.

``LLAMA``: ``LlamaRotaryEmbedding(LlamaConfig)`` + ``modeling_llama.apply_rotary_pos_emb``.
``GPT_NEOX``: ``GPTNeoXRotaryEmbedding`` + ``modeling_gpt_neox.apply_rotary_pos_emb``, which
itself splits q into the rotated ``q[..., :r]`` (r = cos width) and the pass-through tail.
``PHI``: ``PhiRotaryEmbedding`` + ``modeling_phi.apply_rotary_pos_emb`` on the slices
``PhiAttention.forward`` cuts (``query_states[..., :rotary_ndims]``, tail concatenated back).
``GPTJ``: ``GPTJRotaryEmbedding`` (the ``create_sinusoidal_positions`` table),
``modeling_gptj.apply_rotary_pos_emb`` (``rotate_every_two``) and the q_rot/q_pass slicing of
``GPTJAttention.forward``.

Spec -> config (Llama, GPT-NeoX, Phi; transformers-5 ``rope_parameters``):
  * ``head_dim`` -> ``hidden_size = head_dim``, ``num_attention_heads = 1`` (and Llama's
    ``head_dim``); ``base`` -> ``rope_theta``.
  * ``rotary_dim`` -> ``partial_rotary_factor = r / head_dim`` (nudged up one ulp where needed
    so HF's ``int(head_dim * factor)`` gives back r). Llama has no partial rotary:
    ``LlamaRotaryEmbedding.compute_default_rope_parameters`` ignores the factor and the
    attention rotates the whole head, so ``LLAMA.supports`` is False for r < head_dim.
  * ``scaling`` -> ``rope_parameters`` with the same keys (HF's own names), plus:
    dynamic: HF's L0 is ``config.max_position_embeddings`` (the dict's
    ``original_max_position_embeddings`` is not read), so ``max_position_embeddings = L0``
    and the key is dropped; yarn, longrope, llama3: the factor is passed explicitly (HF uses it
    as given) and ``max_position_embeddings = ceil(factor * L0)``, so HF's implicit factor
    (max / original) agrees with it and its consistency warning stays quiet.
  * ``ntk`` (static NTK-aware) does not exist in HF (only ``dynamic``, whose base grows with
    the call's length): supports() is False.
  * ``convention`` must be "half" (HF's ``rotate_half``); ``multi_axis`` must be None (the
    M-RoPE models have their own classes, not these paths).

State. One rotary module per spec is built on first use and kept across calls, for every
rope_type, as inside a model (``LlamaModel.__init__`` builds ``self.rotary_emb`` once). HF's
dynamic NTK module is stateful: ``dynamic_rope_update`` grows ``inv_freq`` when a call is
longer than any before and resets it only when a call is shorter than L0 (HF issues 25306,
27226), so a call at length L0 < L < L_before gets the frequencies of L_before. The spec is
stateless (L = this call's max(position) + 1); the suite's ``stateless`` check observes the
difference, and :data:`DYNAMIC_IS_STATEFUL` diagnoses it. LongRoPE's in-place ``inv_freq``
update is rewritten from this call's length every call, so keeping its module changes nothing.
x goes to HF as is: no copies are made.

Precision. HF computes angles and cos/sin in float32 whatever x's dtype (the frequencies are
``torch.float``, positions ``.float()``), casts cos/sin to x's dtype and rotates in x's dtype.
supports(float64) is True on purpose: a float64 caller gets float32 angles, and the suite
reports that instead of hiding it.

GPT-J: ``create_sinusoidal_positions`` hard-codes base 10000 and has no scaling, and
``rotate_every_two`` pairs adjacent channels, so ``GPTJ`` supports exactly: interleaved,
base 10000, no scaling, no multi-axis, any even r <= head_dim (GPT-J's ``rotary_dim``). Its
table covers positions < ``max_position_embeddings``; the adapter sizes that to the call's
largest position (rounded up, one table kept per r), up to ``max_position`` =
:data:`MAX_POSITION` (the suite skips cases beyond it; a call beyond raises ValueError).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation, rope_type
from rope_suite.conformance.spec import RopeSpec

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
HF_ROPE_TYPES: tuple[str, ...] = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")
MAX_POSITION = (1 << 21) - 1
"""Largest position GPT-J's table is built for (2^21 rows x rotary_dim 64: 512 MiB in float32)."""


def _after_grown_state(record: Mapping[str, Any]) -> bool:
    """A dynamic NTK case the kept module's state explains: the stateless check, or a failure of
    another check (float32 and below) whose worst element sits past the original length, where a
    module grown by an earlier, longer case in the same process gave its frequencies."""
    if rope_type(record) != "dynamic":
        return False
    if record.get("check") == "stateless":
        return True
    position = (record.get("mismatch") or {}).get("position")
    l0 = record["spec"]["scaling"]["original_max_position_embeddings"]
    return record.get("dtype") != "float64" and isinstance(position, int) and position >= l0


DYNAMIC_IS_STATEFUL = Deviation(
    "dynamic-ntk-is-stateful", "stateful by design",
    "The dynamic NTK module grows inv_freq on a call longer than any before and resets it only on a "
    "call shorter than the original length, so a call between the original length and an earlier, "
    "longer call gets the earlier call's frequencies.",
    "transformers/modeling_rope_utils.py: dynamic_rope_update (dynamic_frequency_update), "
    "_compute_dynamic_ntk_parameters",
    _after_grown_state, upstream="https://github.com/huggingface/transformers/issues/25306")
FLOAT32_ANGLES = Deviation(
    "float32-angles", "precision choice",
    "The frequencies, positions and angles are float32 whatever x's dtype (torch.float, "
    "position_ids.float()), so a float64 caller gets float32 angles.",
    "transformers/models/llama/modeling_llama.py: LlamaRotaryEmbedding.forward and "
    "compute_default_rope_parameters (and the other models' copies; GPT-J: create_sinusoidal_positions)",
    lambda record: record.get("dtype") == "float64" and record.get("check") in ("agreement", "gradient"))


def _module(name: str) -> Any:
    return importlib.import_module(f"transformers.models.{name}")


@dataclass(frozen=True)
class ModelPath:
    """Where one model's RoPE lives in transformers, and how its attention applies it.

    partial: "none" (rotates the whole head), "apply" (``apply_rotary_pos_emb`` splits off
    the tail by cos's width: GPT-NeoX), "attention" (the attention module slices: Phi).
    """

    name: str
    config_class: str
    module: str
    rotary_class: str
    partial: str


LLAMA_PATH = ModelPath("llama", "LlamaConfig", "llama.modeling_llama", "LlamaRotaryEmbedding", "none")
GPT_NEOX_PATH = ModelPath("gpt_neox", "GPTNeoXConfig", "gpt_neox.modeling_gpt_neox", "GPTNeoXRotaryEmbedding", "apply")
PHI_PATH = ModelPath("phi", "PhiConfig", "phi.modeling_phi", "PhiRotaryEmbedding", "attention")


def partial_rotary_factor(spec: RopeSpec) -> float:
    """r / head_dim, the smallest float with ``int(head_dim * factor) == r`` (HF's rounding)."""
    factor = spec.rotary_dim / spec.head_dim
    while int(spec.head_dim * factor) < spec.rotary_dim:
        factor = math.nextafter(factor, math.inf)
    return factor


def rope_parameters(spec: RopeSpec, path: ModelPath) -> tuple[dict[str, Any], int]:
    """(``rope_parameters``, ``max_position_embeddings``) of a config that makes HF compute ``spec``."""
    params: dict[str, Any] = {"rope_type": spec.rope_type, "rope_theta": spec.base}
    max_positions = 4096  # read by no formula of default / linear
    if spec.scaling is not None:
        scaling = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.scaling.to_dict().items()}
        scaling.pop("type", None)
        l0 = scaling.get("original_max_position_embeddings")
        if spec.rope_type == "dynamic":
            del scaling["original_max_position_embeddings"]  # HF's dynamic L0 is max_position_embeddings
            max_positions = l0
        elif l0 is not None:
            max_positions = math.ceil(spec.scaling.factor * l0)
        params |= scaling
    if path.partial != "none":
        params["partial_rotary_factor"] = partial_rotary_factor(spec)
    return params, max_positions


def config_kwargs(spec: RopeSpec, path: ModelPath) -> dict[str, Any]:
    """The keyword arguments of the tiny config: one head of head_dim channels, one layer."""
    params, max_positions = rope_parameters(spec, path)
    extra = {"head_dim": spec.head_dim, "num_key_value_heads": 1} if path.name == "llama" else {}
    return dict(hidden_size=spec.head_dim, num_attention_heads=1, num_hidden_layers=1, intermediate_size=8,
                vocab_size=16, max_position_embeddings=max_positions, rope_parameters=params, **extra)


HALF_REPRODUCTION = """import torch
import transformers
from transformers.models.{module} import apply_rotary_pos_emb, {rotary_class}


def make():
    rotary = {rotary_class}(transformers.{config_class}(**{kwargs!r}))

    def rope(x, positions):
        cos, sin = rotary(x, positions)
{body}

    return rope
"""
HALF_BODY = "        return apply_rotary_pos_emb(x, x, cos, sin, unsqueeze_dim=2)[0]"
PHI_BODY = """        r = cos.shape[-1]  # PhiAttention.forward: rotate the first rotary_ndims, concatenate the rest
        x_rot, _ = apply_rotary_pos_emb(x[..., :r], x[..., :r], cos, sin, unsqueeze_dim=2)
        return torch.cat((x_rot, x[..., r:]), dim=-1)"""
GPTJ_REPRODUCTION = """import torch
import transformers
from transformers.models.gptj.modeling_gptj import GPTJRotaryEmbedding, apply_rotary_pos_emb


def make():
    tables = []  # one GPTJRotaryEmbedding, rebuilt when a call needs more rows

    def rope(x, positions):
        needed = int(positions.max()) + 1 if positions.numel() else 1
        if not tables or tables[0].max_positions < needed:
            rows = max(2048, -(-needed // 4096) * 4096)
            tables[:] = [GPTJRotaryEmbedding(transformers.GPTJConfig(
                n_embd={head_dim}, n_head=1, n_layer=1, rotary_dim={r}, n_positions=rows))]
        sin, cos = tables[0](x, positions)
        x_rot = apply_rotary_pos_emb(x[:, :, :, :{r}], sin, cos)
        return torch.cat([x_rot, x[:, :, :, {r}:]], dim=-1)

    return rope
"""


class HFHalfRope:
    """A "half"-convention HF model path (Llama, GPT-NeoX, Phi) as a plug-in object."""

    framework = "torch"
    device = "cpu"
    deviations: tuple[Deviation, ...] = (DYNAMIC_IS_STATEFUL, FLOAT32_ANGLES)

    def __init__(self, path: ModelPath) -> None:
        self.path = path
        self._modules: dict[RopeSpec, Any] = {}

    def __repr__(self) -> str:
        return f"HFHalfRope({self.path.name})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return (dtype_name in DTYPES and spec.convention == "half" and spec.multi_axis is None
                and spec.rope_type in HF_ROPE_TYPES
                and (self.path.partial != "none" or spec.rotary_dim == spec.head_dim))

    def config(self, spec: RopeSpec) -> Any:
        """The tiny config: one head of head_dim channels, the spec's rope_parameters."""
        config_class = getattr(importlib.import_module("transformers"), self.path.config_class)
        return config_class(**config_kwargs(spec, self.path))

    def rotary_embedding(self, spec: RopeSpec) -> Any:
        """The model's rotary module for ``spec``, built on first use and kept (dynamic NTK too)."""
        if spec not in self._modules:
            self._modules[spec] = getattr(_module(self.path.module), self.path.rotary_class)(self.config(spec))
        return self._modules[spec]

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` builds this spec's config and rotary module once and
        returns ``rope(x, positions)``, the same HF calls as :meth:`rope`; None if unsupported."""
        if not self.supports(spec, dtype_name):
            return None
        return HALF_REPRODUCTION.format(module=self.path.module, rotary_class=self.path.rotary_class,
                                        config_class=self.path.config_class, kwargs=config_kwargs(spec, self.path),
                                        body=PHI_BODY if self.path.partial == "attention" else HALF_BODY)

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated by HF's code."""
        cos, sin = self.rotary_embedding(spec)(q, positions)  # [batch, seq, r] in q's dtype
        apply = _module(self.path.module).apply_rotary_pos_emb
        if self.path.partial != "attention":  # Llama: whole head; GPT-NeoX: apply splits the tail
            return apply(q, k, cos, sin, unsqueeze_dim=2)
        r = cos.shape[-1]  # PhiAttention.forward: rotate the first rotary_ndims, concatenate the rest
        q_rot, k_rot = apply(q[..., :r], k[..., :r], cos, sin, unsqueeze_dim=2)
        return torch.cat((q_rot, q[..., r:]), dim=-1), torch.cat((k_rot, k[..., r:]), dim=-1)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at positions [batch, seq] (HF takes one
        tensor pair; x goes in as both q and k, and q comes back)."""
        return self.rope_qk(x, x, positions, spec)[0]


class HFGPTJRope:
    """GPT-J's interleaved path: the sinusoid table, ``rotate_every_two``, q_rot/q_pass slicing."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION
    deviations: tuple[Deviation, ...] = (FLOAT32_ANGLES,)

    def __init__(self) -> None:
        self._tables: dict[int, Any] = {}  # rotary_dim -> GPTJRotaryEmbedding

    def __repr__(self) -> str:
        return "HFGPTJRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return (dtype_name in DTYPES and spec.convention == "interleaved" and spec.base == 10000.0
                and spec.scaling is None and spec.multi_axis is None)

    def rotary_embedding(self, spec: RopeSpec, needed: int) -> Any:
        """``GPTJRotaryEmbedding`` whose table holds at least ``needed`` positions."""
        r = spec.rotary_dim
        if needed > MAX_POSITION + 1:
            raise ValueError(f"position {needed - 1} is invalid: GPTJRotaryEmbedding holds sin/cos for positions "
                             f"< max_position_embeddings, and this adapter builds tables up to {MAX_POSITION}")
        table = self._tables.get(r)
        if table is None or table.max_positions < needed:
            gptj = _module("gptj.modeling_gptj")
            rows = max(2048, -(-needed // 4096) * 4096)
            config = importlib.import_module("transformers").GPTJConfig(
                n_embd=spec.head_dim, n_head=1, n_layer=1, rotary_dim=r, n_positions=rows)
            table = self._tables[r] = gptj.GPTJRotaryEmbedding(config)
        return table

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` returns ``rope(x, positions)``: GPT-J's table, grown as
        :meth:`rotary_embedding` grows it, and the q_rot/q_pass slicing; None if unsupported."""
        if not self.supports(spec, dtype_name):
            return None
        return GPTJ_REPRODUCTION.format(head_dim=spec.head_dim, r=spec.rotary_dim)

    def _rotate(self, x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor, r: int) -> torch.Tensor:
        gptj = _module("gptj.modeling_gptj")  # GPTJAttention.forward with rotary_dim set
        x_rot = gptj.apply_rotary_pos_emb(x[:, :, :, :r], sin, cos)
        return torch.cat([x_rot, x[:, :, :, r:]], dim=-1)

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        needed = int(positions.max()) + 1 if positions.numel() else 1
        sin, cos = self.rotary_embedding(spec, needed)(q, positions)  # [batch, seq, r/2] in q's dtype
        return self._rotate(q, sin, cos, spec.rotary_dim), self._rotate(k, sin, cos, spec.rotary_dim)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] (GPT-J's own layout before its transpose)."""
        needed = int(positions.max()) + 1 if positions.numel() else 1
        sin, cos = self.rotary_embedding(spec, needed)(x, positions)
        return self._rotate(x, sin, cos, spec.rotary_dim)


LLAMA = HFHalfRope(LLAMA_PATH)
GPT_NEOX = HFHalfRope(GPT_NEOX_PATH)
PHI = HFHalfRope(PHI_PATH)
GPTJ = HFGPTJRope()
