"""A fused q+k RoPE with two of its four outputs cross-wired between q and k.

``rope`` is right; ``rope_qk`` writes q's second pair element from k's rotation and k's first
from q's (a GQA kernel: q head h reads kv head h // group). hpcaitech/ColossalAI issue 6428 /
PR 6429 (``fused_rotary_emb``: ``out_q1 = k_0 * sin + k_1 * cos`` and ``out_k0 = q_0 * cos -
q_1 * sin``, "was K, should be Q").
"""

from ._base import TorchRope


class QkCrossWired(TorchRope):
    def rope_qk(self, q, k, positions, spec):
        cos, sin = self.cos_sin(q, positions, spec)
        group = q.shape[2] // k.shape[2]
        out_q, out_k = self.rotate(q, cos, sin, spec), self.rotate(k, cos, sin, spec)
        r, n = spec.rotary_dim, spec.n_pairs  # a pair's channels: (i, i + r/2) "half", (2i, 2i + 1) "interleaved"
        first, second = (slice(0, n), slice(n, r)) if spec.convention == "half" else (slice(0, r, 2), slice(1, r, 2))
        # BUG: q's second elements come from (its kv head of) k, k's first elements from q.
        out_q[..., second] = self.rotate(k.repeat_interleave(group, dim=2), cos, sin, spec)[..., second]
        out_k[..., first] = self.rotate(q[:, :, ::group], cos, sin, spec)[..., first]
        return out_q, out_k


IMPLEMENTATION = QkCrossWired()
