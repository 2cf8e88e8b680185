"""Dynamic NTK with state kept across calls: the base grown for the longest input so far.

After one long input, every later short input is rotated with the grown base instead of the
default frequencies. HF transformers issue 25306 ("Long context inference will impact short
context inference"), PR 25308 / PR 27033 / issue 27226 (the cos/sin cache only updated when
seq_len > max_seq_len_cached).
"""

import torch

from .. import frequencies
from ._base import TorchRope


class DynamicNtkStateful(TorchRope):
    def __init__(self) -> None:
        self._longest: dict = {}

    def inverse_frequencies(self, spec, positions):
        if spec.rope_type != "dynamic":
            return super().inverse_frequencies(spec, positions)
        seq_len = frequencies.sequence_length(torch, positions)
        # BUG: the cached length only grows; a shorter call reuses the longest call's base.
        longest = self._longest[spec] = max(self._longest.get(spec, 0), seq_len)
        return frequencies.inverse_frequencies(torch, spec, longest, torch.float64)


IMPLEMENTATION = DynamicNtkStateful()
