"""Single-token decode takes one scalar offset, row 0's, for the whole batch.

Prefill (seq > 1) is right; the decode fast path (seq == 1) reads a scalar offset, so every
row is rotated at the first row's cache length. ml-explore/mlx PR 2564 (``mx.fast.rope``
accepted only a scalar offset; batch decoding needs one per row); ml-explore/mlx issue 3494
(rows >= 1 wrong when seq_len == 1); vllm-project/vllm-metal PR 496 (scalar-offset corruption
for batched one-token rows).
"""

from ._base import TorchRope


class DecodeSharedOffset(TorchRope):
    def angle_positions(self, x, positions, spec):
        if positions.shape[1] == 1:
            # BUG: the decode path uses one scalar offset (row 0's) for every row.
            positions = positions[:1].expand_as(positions)
        return super().angle_positions(x, positions, spec)


IMPLEMENTATION = DecodeSharedOffset()
