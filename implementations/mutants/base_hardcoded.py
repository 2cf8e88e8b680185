"""The frequency base hard-coded to 10000, whatever rope_theta the model sets.

Right for Llama 2 and GPT-NeoX, wrong for Llama 3 (500000), Qwen2 (1e6), CodeLlama (1e6).
NVIDIA/TransformerEngine issue 849 (``inv_freq`` of ``RotaryPositionEmbedding`` hard-coded
to 10k).
"""

from ._base import TorchRope


class BaseHardcoded(TorchRope):
    def inverse_frequencies(self, spec, positions):
        # BUG: rope_theta is not read; base 10000 always.
        return super().inverse_frequencies(spec.replace(base=10000.0), positions)


IMPLEMENTATION = BaseHardcoded()
