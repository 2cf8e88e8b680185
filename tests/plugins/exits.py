"""A deliberately broken plug-in: calls os._exit(3) (no cleanup, no exception) on the gpt-j-6b spec."""

import os

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    if spec.head_dim == 256 and spec.rotary_dim == 64:
        os._exit(3)
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
