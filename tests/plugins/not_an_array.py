"""A deliberately broken plug-in: returns a nested Python list instead of an array."""

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).tolist()
