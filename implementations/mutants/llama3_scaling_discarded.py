"""Llama 3.1 scaling computed, then the unscaled frequencies returned.

HF transformers PR 32330 ("Llama 3.1: Fix incorrect inv_freq assignment"):
``_compute_llama3_parameters`` built ``inv_freq_new`` and ended with
``return inv_freq, attention_factor``, the unscaled vector. Low-frequency pairs then turn 8x
too fast (Llama 3.1's factor), which shows from a few thousand tokens on.
"""

from rope_suite.conformance import reference

from ._base import TorchRope


class Llama3ScalingDiscarded(TorchRope):
    def inverse_frequencies(self, spec, positions):
        if spec.rope_type != "llama3":
            return super().inverse_frequencies(spec, positions)
        inv_freq = reference.default_frequencies(spec.rotary_dim, spec.base)
        inv_freq_llama = reference.llama3_frequencies(spec.rotary_dim, spec.base, spec.scaling)  # noqa: F841
        return inv_freq  # BUG: the scaled inv_freq_llama is computed and dropped; the unscaled one returned.


IMPLEMENTATION = Llama3ScalingDiscarded()
