"""Llama 3.1 scaling computed, then the unscaled frequencies returned.

HF transformers PR 32330 ("Llama 3.1: Fix incorrect inv_freq assignment"):
``_compute_llama3_parameters`` built ``inv_freq_new`` and ended with
``return inv_freq, attention_factor``, the unscaled vector. Low-frequency pairs then turn 8x
too fast (Llama 3.1's factor), which shows from a few thousand tokens on.
"""

import torch

from .. import frequencies
from ._base import TorchRope


class Llama3ScalingDiscarded(TorchRope):
    def inverse_frequencies(self, spec, positions):
        if spec.rope_type != "llama3":
            return super().inverse_frequencies(spec, positions)
        inv_freq = frequencies.default_frequencies(torch, spec.rotary_dim, spec.base, torch.float64)
        inv_freq_llama = frequencies.llama3_frequencies(torch, spec.rotary_dim, spec.base, spec.scaling,  # noqa: F841
                                                        torch.float64)
        return inv_freq  # BUG: the scaled inv_freq_llama is computed and dropped; the unscaled one returned.


IMPLEMENTATION = Llama3ScalingDiscarded()
