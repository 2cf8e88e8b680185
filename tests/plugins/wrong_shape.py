"""A deliberately broken plug-in: drops the pass-through tail, so the output is narrower than x."""

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    out = reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
    return out[..., : spec.rotary_dim - 2]
