"""YaRN's mscale / mscale_all_dim ignored: the attention factor is always 0.1 ln s + 1.

HF uses g(s, mscale) / g(s, mscale_all_dim) when both are set (DeepSeek-V2, Ministral3); for
Ministral3 (s 16, both 1) that is 1.0, and the generic YaRN path gave 1.277. vLLM issue 48621
(Ministral3 RoPE scaling ignores YaRN mscale), fix PR 48623; kekzl/imp PR 880 (the same
ratio collapsed into one mscale).
"""

from .. import frequencies
from ._base import TorchRope


class YarnMscaleIgnored(TorchRope):
    def attention_factor(self, spec):
        s = spec.scaling
        if spec.rope_type == "yarn" and s.attention_factor is None:
            return frequencies.get_mscale(s.factor)  # BUG: mscale and mscale_all_dim are never read.
        return super().attention_factor(spec)


IMPLEMENTATION = YarnMscaleIgnored()
