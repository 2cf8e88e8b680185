"""A deliberately broken plug-in: segfaults (reads address 0) on the gpt-j-6b spec, right otherwise."""

import ctypes
import sys

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    if spec.head_dim == 256 and spec.rotary_dim == 64:  # gpt-j-6b
        print("segfaults.py: about to read address 0", file=sys.stderr, flush=True)
        ctypes.string_at(0)
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
