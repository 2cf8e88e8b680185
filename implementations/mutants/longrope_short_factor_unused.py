"""LongRoPE with the long factors always, short_factor never used.

Phi-3 was trained with short_factor up to original_max_position_embeddings; using long_factor
for short prompts rotates them with the wrong table. ml-explore/mlx-lm PR 660 (SuScaledRoPE:
"short_factor and short_mscale parameters were accepted but never used"); lablup/mlxcel issue
1358 (only long_factor read).
"""

import torch

from .. import frequencies
from ._base import TorchRope


class LongropeShortFactorUnused(TorchRope):
    def inverse_frequencies(self, spec, positions):
        if spec.rope_type != "longrope":
            return super().inverse_frequencies(spec, positions)
        ext = spec.scaling.long_factor  # BUG: the long factors whatever the sequence length.
        return (frequencies.default_frequencies(torch, spec.rotary_dim, spec.base, torch.float64)
                / torch.tensor(ext, dtype=torch.float64))


IMPLEMENTATION = LongropeShortFactorUnused()
