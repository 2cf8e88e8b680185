"""The cos/sin table broadcast along the heads axis, as if x were [batch, heads, seq, head_dim].

With x in [batch, seq, heads, head_dim] (what flash-attn and xformers' memory_efficient_attention
take), head j of every token is rotated with the angle of token j. It runs silently when
heads == seq, is right when seq == 1 (decode), and raises a broadcast error otherwise.
facebookresearch/xformers issue 841 (RotaryEmbedding applied to dim -2, the heads, for
[B, M, H, K] inputs); mlfoundations/open_lm issue 4 (the same, found downstream).
"""

from ._base import TorchRope


class RotationAlongHeadsAxis(TorchRope):
    def cos_sin(self, x, positions, spec):
        cos, sin = super().cos_sin(x, positions, spec)  # [batch, seq, 1, r/2]
        # BUG: laid out for [batch, heads, seq, head_dim]: [batch, 1, seq, r/2].
        return cos.transpose(1, 2), sin.transpose(1, 2)


IMPLEMENTATION = RotationAlongHeadsAxis()
