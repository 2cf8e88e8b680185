"""LongRoPE switching to the long factors at seq_len >= L0 instead of seq_len > L0.

A sequence of exactly original_max_position_embeddings tokens takes the long factors; HF
(``_compute_longrope_parameters``: ``seq_len > original_max_position_embeddings``) and Phi-3's
reference keep the short ones there. unslothai/unsloth PR 10681 ("Use the short RoPE factor at
exactly original_max_position_embeddings": the code tested ``seq_len < L0`` for short).
"""

import torch

from .. import frequencies
from ._base import TorchRope


class LongropeSwitchAtEqual(TorchRope):
    def inverse_frequencies(self, spec, positions):
        if spec.rope_type != "longrope":
            return super().inverse_frequencies(spec, positions)
        s = spec.scaling
        seq_len = frequencies.sequence_length(torch, positions)
        # BUG: >= where HF has >: at seq_len == L0 the long factors are used.
        ext = s.long_factor if seq_len >= s.original_max_position_embeddings else s.short_factor
        return (frequencies.default_frequencies(torch, spec.rotary_dim, spec.base, torch.float64)
                / torch.tensor(ext, dtype=torch.float64))


IMPLEMENTATION = LongropeSwitchAtEqual()
