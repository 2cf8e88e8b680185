"""Angles in float32 for every dtype, float64 included: standard practice (HF, torchtune)."""

import numpy as np

from fakerope import FakeRope, frequencies, rotate


class Float32Angles(FakeRope):
    def rope(self, x, positions, spec):
        return rotate(x, positions, spec, frequencies(spec, self.length(positions)), angle_dtype=np.float32)


IMPLEMENTATION = Float32Angles()
