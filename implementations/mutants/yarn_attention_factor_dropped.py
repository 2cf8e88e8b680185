"""The YaRN attention factor dropped: cos and sin are not multiplied by it.

With factor s and no explicit attention_factor YaRN scales cos/sin by 0.1 ln s + 1 (1.139 for
Qwen2.5's s = 4); without it the logits' temperature is off. turboderp-org/exllamav3 issue 259
(YaRN attn_factor collapses to 1.0); vLLM PR 46280 / PR 48351 (an explicit attention_factor in
the rope config was never forwarded); sglang PR 22711 (as listed in ROPE-SEMANTICS.md).
"""

from ._base import TorchRope


class YarnAttentionFactorDropped(TorchRope):
    def attention_factor(self, spec):
        if spec.rope_type == "yarn":
            return 1.0  # BUG: the YaRN magnitude scaling never reaches the cos/sin table.
        return super().attention_factor(spec)


IMPLEMENTATION = YarnAttentionFactorDropped()
