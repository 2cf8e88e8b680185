"""A deliberately broken plug-in: right numbers except one NaN and one Inf in every output."""

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    out = reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
    out.reshape(-1)[0] = np.nan
    out.reshape(-1)[-1] = np.inf
    return out
