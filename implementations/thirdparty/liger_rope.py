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
spec; the same code as ``LlamaRotaryEmbedding`` plus ``partial_rotary_factor``) called with
x and the positions, which gives float32 angles and cos/sin ``.to(x.dtype)``, attention
factor included. Why HF's and not the float64 reference's: Liger only ships the rotation and
is fed whatever HF's rotary module makes, in the activation dtype; judging that pairing is
judging Liger as deployed. Any deviation it shares with ``hf-gpt-neox`` is HF's, not Liger's.

Spec -> call:
  * ``head_dim``, ``rotary_dim``, ``base``, ``scaling``: the HF config of
    :func:`.hf_transformers.rope_parameters` (every HF rope_type: default, linear, dynamic,
    yarn, longrope, llama3; dynamic NTK gets a fresh HF module per call, as there). ``ntk``
    (static NTK-aware) is not an HF type: unsupported.
  * positions [batch, seq] -> HF's ``position_ids``; cos/sin [batch, seq, r], one row per sample.
  * x [batch, seq, heads, head_dim] -> ``x.transpose(1, 2)``: Liger transposes back to the
    physical [b, s, h, d] layout itself, so no copy is made for the layout.
  * ``convention``: "half" natively (the kernel hard-codes rotate-half). "interleaved" through
    the exact channel permutation of :mod:`._layout` (Meta <-> HF checkpoint conversion), a
    gather before and after, bit-exact, so every number is Liger's.
  * ``multi_axis``: unsupported (M-RoPE is Liger's separate ``qwen2vl_mrope`` op, not this one).
  * ``rope_qk``: the fused call itself, q and k with their own head counts (GQA).
  * ``rope``: Liger has no single-tensor entry point; x goes in as q with a one-head copy of
    x as k, whose result is dropped.

In place: the kernel writes into q and k's storage (in an HF model those are fresh projection
outputs). The suite's contract forbids mutating inputs, so q and k are copied first (or are
the fresh result of the interleaved gather).

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

from rope_suite.conformance.spec import RopeSpec

from ._layout import from_interleaved, to_interleaved
from .hf_transformers import GPT_NEOX_PATH, HF_ROPE_TYPES, HFHalfRope

DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")


def liger_rotary_pos_emb() -> Any:
    """Liger's public RoPE function, imported with Triton's interpreter on when there is no GPU."""
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    return importlib.import_module("liger_kernel.transformers.rope").liger_rotary_pos_emb


class LigerRope:
    """Liger-Kernel's fused q+k RoPE fed HF's cos/sin, as a plug-in object."""

    framework = "torch"

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
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated in one Liger call."""
        cos, sin = self.cos_sin(q, positions, spec)
        r = spec.rotary_dim
        interleaved = spec.convention == "interleaved"
        # Copies: the kernel writes in place (the interleaved gather already makes new tensors).
        q, k = (from_interleaved(q, r), from_interleaved(k, r)) if interleaved else (q.clone(), k.clone())
        q_out, k_out = liger_rotary_pos_emb()(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
        q_out, k_out = q_out.transpose(1, 2), k_out.transpose(1, 2)
        return (to_interleaved(q_out, r), to_interleaved(k_out, r)) if interleaved else (q_out, k_out)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] as Liger's q, with a one-head k whose result is dropped."""
        return self.rope_qk(x, x[:, :, :1], positions, spec)[0]


LIGER = LigerRope()
