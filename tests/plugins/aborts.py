"""A deliberately broken plug-in: calls abort() (SIGABRT, like a failed C++ assertion) on the
gpt-j-6b spec, right otherwise."""

import os
import sys

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    if spec.head_dim == 256 and spec.rotary_dim == 64:
        print("aborts.py: assertion `rotary_dim == head_dim' failed", file=sys.stderr, flush=True)
        os.abort()
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
