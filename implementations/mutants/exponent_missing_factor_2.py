"""theta_i = base^(-i/r): the exponent lost its factor 2 (RoFormer: base^(-2i/r)).

The frequencies decay half as fast, so every pair but the first turns too fast.
rasbt/LLMs-from-scratch issue 410 (``arange(0, head_dim // 2) / head_dim`` proposed for
inv_freq; it fails the comparison with HF); hkproj/pytorch-llama issue 3 ("Where did the
factor 2 go in rotary embedding?").
"""

import torch

from ._base import TorchRope


class ExponentMissingFactor2(TorchRope):
    def inverse_frequencies(self, spec, positions):
        i = torch.arange(spec.n_pairs, dtype=torch.float64)
        # BUG: base^(-i/r) instead of base^(-2i/r) (scaling, if any, applies on top of the wrong default).
        return super().inverse_frequencies(spec, positions) * spec.base ** (i / spec.rotary_dim)


IMPLEMENTATION = ExponentMissingFactor2()
