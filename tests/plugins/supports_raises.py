"""A deliberately broken plug-in: correct rope(), but supports() raises for every question."""

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def supports(spec, dtype):
    return {"float32": True}[dtype] and spec.scaling["rope_type"] == "default"  # KeyError / TypeError


def rope(x, positions, spec):
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
