"""The input mutated: the rotated values are written back into x, which is also returned.

In-place kernels save memory, but the caller's q/k (kept for the KV cache, a residual, or
saved for backward under gradient checkpointing) silently change. unslothai/unsloth issue 5001
(the RoPE Triton kernel stores its result into Q and K, "risks silent gradient corruption");
lucidrains/rotary-embedding-torch PR 31 (a tuple assignment made ``apply_rotary_emb`` in-place,
breaking backward).
"""

from ._base import TorchRope


class MutatesInput(TorchRope):
    def rope(self, x, positions, spec):
        out = super().rope(x, positions, spec)
        return x.copy_(out)  # BUG: the result lands in the caller's tensor.


IMPLEMENTATION = MutatesInput()
