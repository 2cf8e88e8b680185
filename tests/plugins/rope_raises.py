"""A deliberately broken plug-in: rope() raises ValueError on interleaved specs, right otherwise."""

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    if spec.convention == "interleaved":
        raise ValueError(f"convention {spec.convention!r} is not implemented")
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
