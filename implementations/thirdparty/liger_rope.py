"""Liger-Kernel's fused Triton RoPE: ``liger_kernel.transformers.rope.liger_rotary_pos_emb``.

The function Liger patches in for HF's ``apply_rotary_pos_emb`` (``apply_liger_kernel_to_llama``
and friends): it takes q [b, n_q_heads, s, d], k [b, n_kv_heads, s, d] and HF-style cos/sin
[1 or b, s, r] (the ``cat(c, c)`` layout), and rotates q and k in one launch through Liger's
dispatcher (``dispatch("rope", ...)``: on a machine without the CuTe DSL or an Ascend NPU that
is the "nvidia-triton" impl, ``LigerRopeFunction`` over ``liger_kernel.ops.rope._triton_rope``,
with its own backward kernel). Read from liger-kernel 0.8.5.

What the kernel does: one program per (batch, token) row; it loads the first r/2 entries of
that row's cos/sin (row ``b`` of a per-sample table: per-row positions work, Liger PR 477),
loads the two halves (i, i + r/2) of the first r channels of every q and k head, casts them
to cos's dtype, computes ``(x1 cos - x2 sin, x2 cos + x1 sin)`` and stores in place; channels
r..d are not touched. r defaults to the width of cos (``_resolve_rotary_dim``), so partial
rotary is native. The backward is the same kernel with the sine negated.

cos/sin come from Hugging Face transformers, the way a Liger-patched HF model gets them: the
GPT-NeoX rotary module (``GPTNeoXRotaryEmbedding``, built by :mod:`.hf_transformers` from the
spec, one kept per spec as in a model; the same code as ``LlamaRotaryEmbedding`` plus
``partial_rotary_factor``) called with x and the positions, which gives float32 angles and
cos/sin ``.to(x.dtype)``, attention factor included. So the frequencies, their scaling and the
attention factor are HF's, not Liger's, and ``supplied`` says so: Liger only ships the rotation
and is fed whatever HF's rotary module makes, in the activation dtype. Any deviation it shares
with ``hf-gpt-neox`` is HF's (HF's dynamic NTK module is stateful: so is this pairing).

Spec -> call:
  * ``head_dim``, ``rotary_dim``, ``base``, ``scaling``: the HF config of
    :func:`.hf_transformers.rope_parameters` (every HF rope_type: default, linear, dynamic,
    yarn, longrope, llama3). ``ntk`` (static NTK-aware) is not an HF type: unsupported.
  * positions [batch, seq] -> HF's ``position_ids``; cos/sin [batch, seq, r], one row per sample.
  * x [batch, seq, heads, head_dim] -> ``x.transpose(1, 2)``: Liger transposes back to the
    physical [b, s, h, d] layout itself, so no copy is made for the layout.
  * ``convention``: "half" natively (the kernel hard-codes rotate-half). "interleaved" through
    the exact channel permutation of :mod:`._layout` (Meta <-> HF checkpoint conversion), a
    gather before and after, bit-exact, so every number is Liger's.
  * ``multi_axis``: unsupported here (M-RoPE is Liger's separate op: :data:`LIGER_MROPE`).
  * ``rope_qk``: the fused call itself, q and k with their own head counts (GQA).
  * ``rope``: Liger has no single-tensor entry point; x goes in as q, with a one-head key of
    zeros whose result is dropped (a fresh tensor, so no channel of x is rotated twice).

In place: the kernel writes into q and k's storage (in an HF model those are fresh projection
outputs) and returns them. They go in as given, no copies: with the "half" convention a
contiguous x comes back rotated, which the suite's ``output_contract`` check reports and
:data:`WRITES_IN_PLACE` diagnoses. (Interleaved specs rotate the adapter's gathered copy.)

M-RoPE (``LIGER_MROPE``): ``liger_kernel.transformers.qwen2vl_mrope.liger_multimodal_rotary_pos_emb``
(``LigerQwen2VLMRopeFunction`` over ``liger_kernel.ops.qwen2vl_mrope``), the op
``apply_liger_kernel_to_qwen2_vl(rope=True)`` installs as ``modeling_qwen2_vl.apply_multimodal_rotary_pos_emb``.
It takes cos/sin [3, b, s, d], one table per axis (t, h, w) over every pair, and
``mrope_section``; per token the kernel takes pairs [0, s_t) from the t table, the next s_h from
h and the rest from w, and rotates q and k in place (rotate-half, whole head). So the section
selection, the "positions" part, is Liger's own. The per-axis tables come from HF's
``Qwen2VLRotaryEmbedding`` (a tiny ``Qwen2VLTextConfig``, no weights), called once per axis with
that axis's positions on all three rows, which makes its own section recomposition a no-op:
the table of that axis for every pair, HF's float32 angles, ``.to(x.dtype)``. transformers 5
has no ``apply_multimodal_rotary_pos_emb`` any more (its rotary module recomposes the sections
and the attention calls ``apply_rotary_pos_emb``), so on transformers 5 the patch installs a
function nothing calls; this adapter calls the op directly as its signature documents.
Supported: chunked sections (Qwen2-VL); not Qwen3-VL's interleaved sections (the kernel has
contiguous t/h/w masks only), not partial rotary (it rotates the whole head), and only the
scalings whose frequencies do not depend on the call's length (default, linear, yarn, llama3):
per-axis calls would give dynamic NTK and LongRoPE each axis's length instead of the call's.

Dtypes: float32, float16, bfloat16 (the kernel computes in cos's dtype, i.e. x's, like HF's
eager code). float64 is unsupported: Liger registers tolerances only for those three, and a
float64 run would only restate HF's float32 angles (reported by ``hf-gpt-neox``). bfloat16
needs a GPU: Triton's interpreter stores bfloat16 as uint16 and does arithmetic on the bit
patterns (Triton's debugging guide: the interpreter "does not support operations on bfloat16";
triton issue 4972, PR 10945), so on the CPU every bfloat16 result would be the interpreter's
garbage (NaN, 1e38), not Liger's; supports() is False for bfloat16 there.

Device: "cuda" when torch sees a GPU, else "cpu" with Triton's interpreter
(``TRITON_INTERPRET=1``, set before Liger is first imported: it is read when the kernel is
decorated).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import MRope, RopeSpec

from ._layout import from_interleaved, to_interleaved
from .hf_transformers import (DYNAMIC_IS_STATEFUL, GPT_NEOX_PATH, HF_ROPE_TYPES, HFHalfRope, ModelPath, config_kwargs,
                              rope_parameters)

DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
MROPE_ROPE_TYPES: tuple[str, ...] = ("default", "linear", "yarn", "llama3")
"""HF rope_types whose frequencies do not depend on the call's length (the per-axis calls)."""
QWEN2_VL_PATH = ModelPath("qwen2_vl", "Qwen2VLTextConfig", "qwen2_vl.modeling_qwen2_vl", "Qwen2VLRotaryEmbedding",
                          "none")
HF_SUPPLIES = "HF transformers' GPTNeoXRotaryEmbedding (cos/sin tables)"
HF_QWEN2_VL_SUPPLIES = "HF transformers' Qwen2VLRotaryEmbedding (per-axis cos/sin tables)"

WRITES_IN_PLACE = Deviation(
    "writes-q-and-k-in-place", "in place by design",
    "The kernel stores the rotated q and k into the tensors it is given and returns them, so the "
    "caller's q and k are overwritten.",
    "liger_kernel/ops/rope.py: rope_forward (_triton_rope's tl.store into q_ptr, k_ptr); "
    "liger_kernel/ops/qwen2vl_mrope.py: qwen2vl_mrope_forward",
    lambda record: record.get("check") == "output_contract" and "in place" in (record.get("reason") or ""))


REPRODUCTION_HEADER = """import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before Liger is imported: read when its kernels are decorated

import transformers
"""
ROPE_REPRODUCTION = REPRODUCTION_HEADER + """from liger_kernel.transformers.rope import liger_rotary_pos_emb
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding


def make():
    rotary = GPTNeoXRotaryEmbedding(transformers.GPTNeoXConfig(**{kwargs!r}))
{order}
    def rope(x, positions):
        cos, sin = rotary.to(x.device)(x, positions)
        k = x.new_zeros((*x.shape[:2], 1, x.shape[3]))  # a one-head key whose result is dropped
{gather}        q, _ = liger_rotary_pos_emb(x.transpose(1, 2), k.transpose(1, 2), cos, sin)
        return {scatter}

    return rope
"""
INTERLEAVED_ORDER = """    n, r, d = {n}, {r}, {d}  # x[..., order] lays half-convention pairs (i, i + r/2) side by side
    order = torch.cat((torch.stack((torch.arange(n), torch.arange(n, r)), dim=-1).flatten(), torch.arange(r, d)))
"""
INTERLEAVED_GATHER = """        x = x.index_select(-1, torch.argsort(order).to(x.device))
        k = k.index_select(-1, torch.argsort(order).to(x.device))
"""
MROPE_REPRODUCTION = REPRODUCTION_HEADER + """from liger_kernel.transformers.qwen2vl_mrope import liger_multimodal_rotary_pos_emb
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLRotaryEmbedding


def make():
    rotary = Qwen2VLRotaryEmbedding(transformers.Qwen2VLTextConfig(**{kwargs!r}))

    def rope(x, positions):
        rotary.to(x.device)
        tables = [rotary(x, positions[..., axis].expand(3, -1, -1)) for axis in range(3)]
        cos, sin = torch.stack([c for c, _ in tables]), torch.stack([s for _, s in tables])
        k = x.new_zeros((*x.shape[:2], 1, x.shape[3]))  # a one-head key whose result is dropped
        q, _ = liger_multimodal_rotary_pos_emb(x.transpose(1, 2), k.transpose(1, 2), cos, sin, {sections!r})
        return q.transpose(1, 2)

    return rope
"""


def _liger(module: str, name: str) -> Any:
    """A Liger function, imported with Triton's interpreter on when there is no GPU."""
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    return getattr(importlib.import_module(f"liger_kernel.transformers.{module}"), name)


def liger_rotary_pos_emb() -> Any:
    """Liger's public RoPE function (``liger_kernel.transformers.rope``)."""
    return _liger("rope", "liger_rotary_pos_emb")


def liger_multimodal_rotary_pos_emb() -> Any:
    """Liger's public M-RoPE function (``liger_kernel.transformers.qwen2vl_mrope``)."""
    return _liger("qwen2vl_mrope", "liger_multimodal_rotary_pos_emb")


class LigerRope:
    """Liger-Kernel's fused q+k RoPE fed HF's cos/sin, as a plug-in object."""

    framework = "torch"
    supplied: dict[str, str] = {"frequencies": HF_SUPPLIES, "scaling": HF_SUPPLIES, "attention_factor": HF_SUPPLIES}
    deviations: tuple[Deviation, ...] = (WRITES_IN_PLACE, DYNAMIC_IS_STATEFUL)  # the second: HF's module it is fed

    def __init__(self) -> None:
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._hf = HFHalfRope(GPT_NEOX_PATH)  # HF's rotary module (cos/sin), one per spec

    def __repr__(self) -> str:
        return f"LigerRope(device={self.device!r})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name == "bfloat16" and self.device != "cuda":  # the interpreter's bf16 arithmetic is wrong
            return False
        return dtype_name in DTYPES and spec.multi_axis is None and spec.rope_type in HF_ROPE_TYPES

    def cos_sin(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> tuple[torch.Tensor, torch.Tensor]:
        """HF's (cos, sin) [batch, seq, rotary_dim] in x's dtype, on x's device."""
        return self._hf.rotary_embedding(spec).to(x.device)(x, positions)

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated in one Liger call,
        in place for the "half" convention (Liger's own behaviour)."""
        cos, sin = self.cos_sin(q, positions, spec)
        r = spec.rotary_dim
        interleaved = spec.convention == "interleaved"
        if interleaved:
            q, k = from_interleaved(q, r), from_interleaved(k, r)
        q_out, k_out = liger_rotary_pos_emb()(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
        q_out, k_out = q_out.transpose(1, 2), k_out.transpose(1, 2)
        return (to_interleaved(q_out, r), to_interleaved(k_out, r)) if interleaved else (q_out, k_out)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] as Liger's q, with a one-head key of zeros whose result is dropped."""
        return self.rope_qk(x, x.new_zeros((*x.shape[:2], 1, x.shape[3])), positions, spec)[0]

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` builds HF's GPT-NeoX rotary module once and returns
        ``rope(x, positions)``: the Liger call of :meth:`rope` (and the interleaved gather)."""
        if not self.supports(spec, dtype_name):
            return None
        kwargs = config_kwargs(spec, GPT_NEOX_PATH)
        if spec.convention == "half":
            return ROPE_REPRODUCTION.format(kwargs=kwargs, order="", gather="", scatter="q.transpose(1, 2)")
        order = INTERLEAVED_ORDER.format(n=spec.n_pairs, r=spec.rotary_dim, d=spec.head_dim)
        return ROPE_REPRODUCTION.format(kwargs=kwargs, order=order, gather=INTERLEAVED_GATHER,
                                        scatter="q.transpose(1, 2).index_select(-1, order.to(x.device))")


class LigerMRope:
    """Liger-Kernel's fused q+k M-RoPE (Qwen2-VL) fed HF's per-axis cos/sin, as a plug-in object."""

    framework = "torch"
    supplied: dict[str, str] = {"frequencies": HF_QWEN2_VL_SUPPLIES, "scaling": HF_QWEN2_VL_SUPPLIES,
                                "attention_factor": HF_QWEN2_VL_SUPPLIES}
    deviations: tuple[Deviation, ...] = (WRITES_IN_PLACE,)

    def __init__(self) -> None:
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._modules: dict[RopeSpec, Any] = {}

    def __repr__(self) -> str:
        return f"LigerMRope(device={self.device!r})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name == "bfloat16" and self.device != "cuda":  # the interpreter's bf16 arithmetic is wrong
            return False
        return (dtype_name in DTYPES and isinstance(spec.multi_axis, MRope) and not spec.multi_axis.interleaved
                and len(spec.multi_axis.sections) == 3 and spec.convention == "half"
                and spec.rotary_dim == spec.head_dim and spec.rope_type in MROPE_ROPE_TYPES)

    def config_kwargs(self, spec: RopeSpec) -> dict[str, Any]:
        """A tiny ``Qwen2VLTextConfig``'s arguments: one head of head_dim channels, the spec's
        rope_parameters with its ``mrope_section``."""
        params, max_positions = rope_parameters(spec, QWEN2_VL_PATH)
        params["mrope_section"] = list(spec.multi_axis.sections)
        return dict(hidden_size=spec.head_dim, num_attention_heads=1, num_key_value_heads=1, num_hidden_layers=1,
                    intermediate_size=8, max_position_embeddings=max_positions, rope_parameters=params)

    def config(self, spec: RopeSpec) -> Any:
        return importlib.import_module("transformers").Qwen2VLTextConfig(**self.config_kwargs(spec))

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Python source whose ``make()`` builds HF's Qwen2-VL rotary module once and returns
        ``rope(x, positions)``: the per-axis tables and the Liger call of :meth:`rope`."""
        if not self.supports(spec, dtype_name):
            return None
        return MROPE_REPRODUCTION.format(kwargs=self.config_kwargs(spec), sections=list(spec.multi_axis.sections))

    def rotary_embedding(self, spec: RopeSpec) -> Any:
        """HF's ``Qwen2VLRotaryEmbedding`` for ``spec``, built on first use and kept."""
        if spec not in self._modules:
            module = importlib.import_module(f"transformers.models.{QWEN2_VL_PATH.module}")
            self._modules[spec] = getattr(module, QWEN2_VL_PATH.rotary_class)(self.config(spec))
        return self._modules[spec]

    def cos_sin(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin) [3, batch, seq, head_dim] in x's dtype: HF's table of each axis for every pair
        (that axis's positions on all three rows, so HF's section recomposition picks nothing)."""
        rotary = self.rotary_embedding(spec).to(x.device)
        tables = [rotary(x, positions[..., axis].expand(3, -1, -1)) for axis in range(3)]
        return torch.stack([cos for cos, _ in tables]), torch.stack([sin for _, sin in tables])

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] at (t, h, w) positions [batch, seq, 3], rotated in one
        Liger call, in place."""
        cos, sin = self.cos_sin(q, positions, spec)
        q_out, k_out = liger_multimodal_rotary_pos_emb()(q.transpose(1, 2), k.transpose(1, 2), cos, sin,
                                                         list(spec.multi_axis.sections))
        return q_out.transpose(1, 2), k_out.transpose(1, 2)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] as Liger's q, with a one-head key of zeros whose result is dropped."""
        return self.rope_qk(x, x.new_zeros((*x.shape[:2], 1, x.shape[3])), positions, spec)[0]


LIGER = LigerRope()
LIGER_MROPE = LigerMRope()
