"""Positions cast to the input's dtype before the angle is taken.

bfloat16 holds integers exactly only up to 256 (float16 up to 2048): position 1001 becomes
1000, 8191 becomes 8192. keras-hub PR 1544 (start_index cast to the layer's compute dtype; the
review notes "float16 or bfloat16 are both bad for an incrementing integer"); oarriaga/paz
PR 415 (positions built in the input dtype, "bfloat16 cannot represent integers above 256").
ROPE-SEMANTICS.md also lists keras-hub issue 1494.
"""

from ._base import TorchRope


class PositionsInInputDtype(TorchRope):
    def angle_positions(self, x, positions, spec):
        pos = super().angle_positions(x, positions, spec)
        # BUG: positions go through the compute dtype of the layer (x's dtype) on their way to the angle.
        return pos.to(x.dtype).to(pos.dtype)


IMPLEMENTATION = PositionsInInputDtype()
