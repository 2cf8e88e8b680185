"""cos/sin tables kept in bfloat16 whatever the input dtype.

The cos/sin cache is a buffer cast with the model (``model.to(torch.bfloat16)``), so a
float32 input is rotated with bfloat16 cos/sin: an error of 2^-9 on every element, at every
position. HF transformers issue 25681 (LlamaRotaryEmbedding: wrong cache values after casting
the model to float16/bfloat16); HF transformers PR 29285 (RoPE loses precision for Llama /
Gemma; forces the table to float32).
"""

import torch

from ._base import TorchRope


class CosSinBfloat16(TorchRope):
    def cos_sin(self, x, positions, spec):
        cos, sin = super().cos_sin(x, positions, spec)
        # BUG: the table is stored in bfloat16 (cast with the model) and applied to any input dtype.
        return cos.to(torch.bfloat16).to(cos.dtype), sin.to(torch.bfloat16).to(sin.dtype)


IMPLEMENTATION = CosSinBfloat16()
