"""The given positions ignored: every row rotated at 0, 1, ..., seq-1.

Correct for a fresh prefill, wrong for a chunk continuing a KV cache, for left padding and
for packed sequences. keras-hub PR 1544 (the LLaMA backbone ignored the ``start_index`` of
the cache when computing the rotary embedding); pytorch/executorch PR 2010 (the KV-cache
branch must slice the precomputed table at start_pos: start_pos + seqlen).
"""

import torch

from ._base import TorchRope


class PositionsIgnored(TorchRope):
    def angle_positions(self, x, positions, spec):
        # BUG: positions are rebuilt as arange(seq) (the offset / position ids never reach the rotary).
        seq = torch.arange(positions.shape[1]).view(1, -1, *([1] * (positions.dim() - 2)))
        return super().angle_positions(x, seq.expand_as(positions), spec)


IMPLEMENTATION = PositionsIgnored()
