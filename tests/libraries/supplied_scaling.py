"""A function fed its frequencies by its caller: it says so, and its scaling is not graded as its own."""

from fakerope import FakeRope


class SuppliedScaling(FakeRope):
    supplied = {"frequencies": "the test's tables", "scaling": "the test's tables"}


IMPLEMENTATION = SuppliedScaling()
