"""Dynamic NTK that keeps the longest length it has seen, and forgets it only on a call shorter
than the original length (what HF's dynamic module does): every fresh call is right."""

from fakerope import FakeRope


class Stateful(FakeRope):
    def __init__(self) -> None:
        self.longest = 0

    def length(self, positions):
        length = super().length(positions)
        self.longest = length if length <= 256 else max(self.longest, length)
        return self.longest


IMPLEMENTATION = Stateful()
