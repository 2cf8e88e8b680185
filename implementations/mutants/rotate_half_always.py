"""Rotate-half (GPT-NeoX) pairs hard-coded, applied to interleaved (GPT-J) specs too.

The kernel pairs (i, i + r/2) whatever the model's convention. qualcomm/vllm-qaic PR 59 (the
QAIC mrotary_embedding kernel and its eager fallback only support NeoX style;
is_neox_style=False was ignored); DeepLink-org/DIOPI PR 892 (the torch RotaryEmbedding only
implemented interleaved=False, without a check); vLLM PR 42765 (the Triton M-RoPE kernel
hard-coded NeoX pairs; GLM-OCR / GLM-4.1V, GPT-J style, got wrong outputs); huggingface/nanotron
PR 427 (checkpoint conversion ignored rope_interleaved, so interleaved-trained weights ran
under rotate-half).
"""

from ._base import TorchRope


class RotateHalfAlways(TorchRope):
    def pairing(self, spec):
        return "half"  # BUG: spec.convention is ignored; NeoX pairs (i, i + r/2) always.


IMPLEMENTATION = RotateHalfAlways()
