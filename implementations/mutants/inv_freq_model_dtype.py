"""The inverse-frequency buffer cast to the model's half-precision dtype.

``inv_freq`` is a registered buffer, so ``model.to(torch.bfloat16)`` rounds every theta_i to
bfloat16 (relative error 2^-9); the angle m * theta_i then drifts by up to m * 2^-9 theta_i,
radians at a few thousand tokens. InternLM issue 237 (position embedding buffer follows the
model to bfloat16); okoge-kaz/llm-recipes PR 6 (inv_freq must stay float32 after
``model.to(torch.bfloat16)``); HF transformers issue 25681.
"""

from ._base import TorchRope


class InvFreqModelDtype(TorchRope):
    def frequency_tensor(self, x, positions, spec):
        inv_freq = super().frequency_tensor(x, positions, spec)
        # BUG: the buffer was cast with the model: theta_i rounded to x's dtype (bf16/fp16).
        return inv_freq.to(x.dtype).to(inv_freq.dtype)


IMPLEMENTATION = InvFreqModelDtype()
