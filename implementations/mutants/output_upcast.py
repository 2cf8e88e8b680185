"""Half-precision inputs come back float32: the result is left in the compute dtype.

The numbers are right, but the output dtype breaks the contract (and attention kernels that
require q, k and v in one dtype). lucidrains/rotary-embedding-torch PR 9 (with bfloat16 inputs
and use_xpos=True "the dtype changes to float32"); HF transformers PR 24262 / issue 24261
(GPT-NeoX RotaryEmbedding returned float32 in float16 mode).
"""

from ._base import TorchRope


class OutputUpcast(TorchRope):
    def rotate(self, x, cos, sin, spec):
        return super().rotate(x.to(cos.dtype), cos, sin, spec)  # BUG: x is upcast and never cast back.


IMPLEMENTATION = OutputUpcast()
