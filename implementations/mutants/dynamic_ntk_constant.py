"""Dynamic NTK that does not depend on the sequence: the base is grown for s * L0 always.

vLLM's DynamicNTKScalingRotaryEmbedding sets ``max_len = max_position_embeddings *
scaling_factor`` and grows the base for that length once, so inputs shorter than L0 get a
grown base too (HF: the default frequencies until max(position)+1 > L0, then a base grown for
that length). vLLM issue 3488 (differs from Transformers), issue 5093, issue 41236 / PR 41277
("a constant that is completely independent of the sequence length").
"""

import torch

from .. import frequencies
from ._base import TorchRope


class DynamicNtkConstant(TorchRope):
    def inverse_frequencies(self, spec, positions):
        if spec.rope_type != "dynamic":
            return super().inverse_frequencies(spec, positions)
        s = spec.scaling
        # BUG: the sequence length is fixed at the scaled maximum, not max(position) + 1 of this call.
        return frequencies.inverse_frequencies(torch, spec, int(s.factor * s.original_max_position_embeddings),
                                               torch.float64)


IMPLEMENTATION = DynamicNtkConstant()
