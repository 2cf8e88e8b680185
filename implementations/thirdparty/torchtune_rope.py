"""torchtune's RoPE modules: ``RotaryPositionalEmbeddings`` and Llama 3.1's ``Llama3ScaledRoPE``.

Both take x as [b, s, n_h, h_d] (the suite's layout, no transpose) and ``input_pos`` [b, s]
(per-row positions, packed sequences included), pair adjacent channels (Meta's complex
layout: ``x.reshape(..., -1, 2)``), and read cos/sin from a table built at construction for
positions < ``max_seq_len`` (``build_rope_cache``). The multiply runs in float32
(``x.float()``), one rounding back to x's dtype (``type_as``).

Spec -> constructor:
  * ``head_dim`` -> ``dim``; ``base`` -> ``base``.
  * ``rotary_dim`` must equal ``head_dim``: the module rotates the whole last dimension (its
    cache view has ``h_d // 2`` pairs) and no torchtune model passes a tail through.
  * ``convention``: "interleaved" natively. "half" through the exact channel permutation
    Meta <-> HF checkpoint conversion applies to q/k (:mod:`._layout`): a gather before and
    after, bit-exact, so every number is torchtune's.
  * ``ROPE``: ``scaling`` must be None (the module has no scaling).
  * ``LLAMA3_SCALED``: only ``rope_type: llama3``, with ``factor`` -> ``scale_factor``,
    ``low_freq_factor``, ``high_freq_factor``, ``original_max_position_embeddings`` ->
    ``old_context_len``.
  * ``multi_axis`` must be None (``VisionRotaryPositionalEmbeddings`` takes a patch grid, not
    per-token positions, and is not wired here).
  * ``max_seq_len`` -> the call's max(position) + 1, rounded up to a multiple of 4096; one
    module is kept per spec and rebuilt larger when a call needs it (the table is the
    library's; positions past it raise IndexError in torchtune), up to ``max_position`` =
    :data:`MAX_POSITION` (the suite skips cases beyond it; a call beyond raises ValueError):
    position 2^30 would need a 512 GiB table at head_dim 128.

Precision: supports(float64) is True, and the suite reports what happens: torchtune builds
its table in float32 (``theta`` and ``seq_idx`` float32, ``idx_theta.float()``) and casts x to
float32 (``x.float()``), so a float64 input gets float32 angles and loses its low bits before
the rotation (declared in :attr:`TorchtuneRope.deviations`).

Nothing is supplied: the module computes frequencies, its scaling and the rotation itself.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import RopeSpec

from . import _layout
from ._layout import from_interleaved, to_interleaved
from ._tables import table_length

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
MAX_POSITION = (1 << 21) - 1
"""Largest position a cache is built for (2^21 rows x head_dim 128: 1 GiB in float32)."""



class TorchtuneRope:
    """A torchtune RoPE module class as a plug-in object; ``llama3`` picks Llama3ScaledRoPE."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION
    deviations: tuple[Deviation, ...] = (
        Deviation(
            "float32-angles", "precision choice",
            "the cos/sin table is float32 (float32 theta and positions, idx_theta.float()) and forward "
            "rotates x.float(), so float64 x gets float32 angles and float32 products",
            "torchtune/modules/position_embeddings.py: RotaryPositionalEmbeddings.build_rope_cache / forward "
            "(and torchtune/models/llama3_1/_position_embeddings.py: Llama3ScaledRoPE)",
            lambda rec: rec.get("dtype") == "float64" and rec.get("status") == "failed"),
    )

    def __init__(self, llama3: bool) -> None:
        self.llama3 = llama3
        self._modules: dict[RopeSpec, Any] = {}

    def __repr__(self) -> str:
        return f"TorchtuneRope(llama3={self.llama3})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        wanted = "llama3" if self.llama3 else "default"
        return (dtype_name in DTYPES and spec.rotary_dim == spec.head_dim and spec.multi_axis is None
                and spec.rope_type == wanted)

    def constructor(self, spec: RopeSpec) -> tuple[str, str, dict[str, Any]]:
        """(module, class, keyword arguments but ``max_seq_len``) of the torchtune module for ``spec``."""
        if not self.llama3:
            return "torchtune.modules", "RotaryPositionalEmbeddings", dict(dim=spec.head_dim, base=spec.base)
        s = spec.scaling
        return "torchtune.models.llama3_1", "Llama3ScaledRoPE", dict(
            dim=spec.head_dim, base=spec.base, scale_factor=s.factor, low_freq_factor=s.low_freq_factor,
            high_freq_factor=s.high_freq_factor, old_context_len=s.original_max_position_embeddings)

    def module(self, spec: RopeSpec, needed: int) -> Any:
        """The torchtune module for ``spec`` whose cache holds at least ``needed`` positions."""
        if needed > MAX_POSITION + 1:
            raise ValueError(f"position {needed - 1} is invalid: torchtune holds cos/sin for positions < max_seq_len, "
                             f"and this adapter builds caches up to {MAX_POSITION}")
        module = self._modules.get(spec)
        if module is None or module.max_seq_len < needed:
            where, name, kwargs = self.constructor(spec)
            module = getattr(importlib.import_module(where), name)(**kwargs, max_seq_len=table_length(needed))
            self._modules[spec] = module
        return module

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at ``input_pos=positions`` [batch, seq]."""
        needed = int(positions.max()) + 1 if positions.numel() else 1
        module = self.module(spec, needed)
        if spec.convention == "interleaved":
            return module(x, input_pos=positions)
        return from_interleaved(module(to_interleaved(x, spec.rotary_dim), input_pos=positions), spec.rotary_dim)

    def reproduction(self, spec: RopeSpec, dtype: str) -> str | None:
        """Self-contained source of ``make()``: the torchtune module for ``spec``, rebuilt with a
        longer table when a call needs it (as :meth:`module` does), called as :meth:`rope` does."""
        where, name, kwargs = self.constructor(spec)
        call = "module(x, input_pos=positions)"
        if spec.convention == "half":
            r = spec.rotary_dim
            call = f"from_interleaved(module(to_interleaved(x, {r}), input_pos=positions), {r})"
        helpers = [table_length]
        if spec.convention == "half":
            helpers += [_layout.interleaved_order, _layout.to_interleaved, _layout.from_interleaved]
        return "\n\n".join([
            f"from __future__ import annotations\n\nimport torch\nfrom {where} import {name}",
            *(inspect.getsource(f) for f in helpers),
            f"def make():\n    module = None\n\n"
            f"    def rope(x, positions):\n        nonlocal module\n"
            f"        needed = int(positions.max()) + 1 if positions.numel() else 1\n"
            f"        if module is None or module.max_seq_len < needed:\n"
            f"            module = {name}(**{kwargs!r}, max_seq_len=table_length(needed))\n"
            f"        return {call}\n\n    return rope\n"])


ROPE = TorchtuneRope(llama3=False)
LLAMA3_SCALED = TorchtuneRope(llama3=True)
