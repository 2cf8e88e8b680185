"""cos/sin laid out for the other convention than the pairs they multiply.

``repeat_interleave(freqs, 2)`` (the interleaved layout) combined with ``rotate_half`` (and
``cat(freqs, freqs)`` with ``rotate_every_two``): channel i gets the frequency of another pair,
so the two channels of a pair turn by different angles and pair lengths are not kept.
raiyanyahya/how-to-train-your-gpt issue 6 / PR 7 (``repeat_interleave`` layout with split-half
``rotate_half``); facebookresearch/vjepa2 PR 15 (``.repeat`` where ``repeat_interleave`` was
needed); facebookresearch/xformers issue 779 (the cat layout questioned against RoFormer's).
"""

from ._base import TorchRope

OTHER = {"half": "interleaved", "interleaved": "half"}


class CosSinLayoutSwapped(TorchRope):
    def layout(self, table, convention):
        # BUG: the table is expanded with the other convention's layout (cat vs repeat_interleave).
        return super().layout(table, OTHER[convention])


IMPLEMENTATION = CosSinLayoutSwapped()
