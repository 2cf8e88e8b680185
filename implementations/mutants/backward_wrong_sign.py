"""A hand-written backward that rotates the cotangent by +phi (the VJP of R(phi) is R(-phi)).

The forward is right, so inference is right; training gets wrong gradients for q and k.
NVIDIA/apex PR 1750 ("Fix a bug in the fused rope backward calculation"); the forward-only
check of a fused kernel misses this class (huggingface/candle PR 3612 added a backward that
"is the same fused rope applied to the incoming gradient with sin negated").
"""

import torch

from ._base import TorchRope


class _FusedRotate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin, spec, rotate):
        ctx.save_for_backward(cos, sin)
        ctx.spec, ctx.rotate = spec, rotate
        return rotate(x, cos, sin, spec)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        # BUG: the cotangent is rotated like the input (by +phi); it must turn by -phi (sin negated).
        return ctx.rotate(grad, cos, sin, ctx.spec), None, None, None, None


class BackwardWrongSign(TorchRope):
    def rotate(self, x, cos, sin, spec):
        return _FusedRotate.apply(x, cos, sin, spec, super().rotate)


IMPLEMENTATION = BackwardWrongSign()
