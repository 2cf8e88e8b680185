"""Right everywhere except linear scaling, whose factor it ignores: its only failure is a scaling type."""

from fakerope import FakeRope, frequencies, rotate


class LinearIgnored(FakeRope):
    def rope(self, x, positions, spec):
        theta = frequencies(spec, self.length(positions))
        if spec.rope_type == "linear":
            theta = theta * spec.scaling.factor
        return rotate(x, positions, spec, theta)


IMPLEMENTATION = LinearIgnored()
