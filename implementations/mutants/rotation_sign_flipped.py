"""The rotation's sign flipped: every pair turns by -phi instead of +phi.

rotate_half written as cat(x2, -x1) (the transpose of the rotation matrix). Within one
model trained from scratch this is an equivalent convention, but it rotates HF/Meta
checkpoints the wrong way: karpathy/nanochat PR 489 (apply_rotary_emb uses the transpose of
the textbook rotation; kept there on purpose, documented in 3616a02); trymirai/lalamo PR 268
(a sine-sign flip planted to test their CI, "caught by ci").
"""

from ._base import TorchRope


class RotationSignFlipped(TorchRope):
    def rotate_partner(self, x, convention):
        return -super().rotate_partner(x, convention)  # BUG: cat(x2, -x1): a rotation by -phi.


IMPLEMENTATION = RotationSignFlipped()
