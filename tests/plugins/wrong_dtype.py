"""A deliberately broken plug-in: right numbers, but always returns float64 (dtype upcast)."""

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec)
