"""Interleaved (GPT-J) pairs hard-coded, applied to rotate-half (NeoX/Llama) specs too.

The kernel pairs (2i, 2i + 1) whatever the model's convention. sglang PR 30342 (the DSA
indexer fused kernels hard-coded interleave/GPT-J RoPE; DeepSeek-V3.2, a NeoX-style model,
lost GSM8K accuracy with the fusion on); huggingface/nanotron PR 214 (nanotron used the
interleaved form for Llama checkpoints trained with rotate-half).
"""

from ._base import TorchRope


class InterleavedAlways(TorchRope):
    def pairing(self, spec):
        return "interleaved"  # BUG: spec.convention is ignored; GPT-J pairs (2i, 2i + 1) always.


IMPLEMENTATION = InterleavedAlways()
