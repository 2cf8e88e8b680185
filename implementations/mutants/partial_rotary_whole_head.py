"""Partial rotary dropped: the whole head rotates (pairs and exponent over head_dim).

Models with partial_rotary_factor < 1 (GPT-NeoX 0.25, Phi-2 0.4, GPT-J rotary_dim 64) get
every channel rotated, with frequencies base^(-2i/D). AI-Hypercomputer/maxtext PR 4615 (the
M-RoPE path had no partial_rotary_factor: "RoPE was applied to every channel of the head
instead of the leading quarter"); pie-project/pie PR 603 (partial RoPE with pairs and
frequencies over the head width, not the rotary width).
"""

from ._base import TorchRope


class PartialRotaryWholeHead(TorchRope):
    def rope(self, x, positions, spec):
        # BUG: rotary_dim is not passed down this path, so it defaults to head_dim.
        return super().rope(x, positions, spec.replace(rotary_dim=spec.head_dim))


IMPLEMENTATION = PartialRotaryWholeHead()
