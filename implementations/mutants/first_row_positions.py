"""Row 0's positions used for every row of the batch.

Right when every row starts at 0 (training without padding), wrong for left-padded or ragged
batches and for decode at per-row cache lengths. unslothai/unsloth PR 3803 (a single
``cache_position`` shared as position_ids across the batch; issue 3699); linkedin/Liger-Kernel
PR 477 (RoPE only read the first row of cos/sin, "Fix Rope Compatibility with Cos/Sin Position
Embedding for Batch Size > 1") and PR 464 (the same for Qwen2-VL M-RoPE).
"""

from ._base import TorchRope


class FirstRowPositions(TorchRope):
    def angle_positions(self, x, positions, spec):
        # BUG: one row of positions (row 0) is broadcast over the batch.
        return super().angle_positions(x, positions[:1].expand_as(positions), spec)


IMPLEMENTATION = FirstRowPositions()
