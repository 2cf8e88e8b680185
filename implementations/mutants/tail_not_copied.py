"""The pass-through tail not copied: channels past rotary_dim come back as zeros.

The output is allocated zeroed and only the rotated pairs are written. almide/almide PR 1420
(issue 1419: the native kernel "zero-initialized the output row and wrote pairs only, so every
column past the geometry read 0.0"); fla-org/flash-linear-attention PR 967 (rows the rotary
kernel skips kept uninitialized memory). ROPE-SEMANTICS.md lists the same for an older
onnxruntime CPU kernel.
"""

import torch

from ._base import TorchRope


class TailNotCopied(TorchRope):
    def tail(self, x, spec):
        return torch.zeros_like(x[..., spec.rotary_dim:])  # BUG: the tail is never copied into the output.


IMPLEMENTATION = TailNotCopied()
