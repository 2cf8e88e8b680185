"""A deliberately broken plug-in: dies by SIGKILL on the gpt-j-6b spec, the way the kernel's
OOM killer ends a process that took too much memory."""

import os
import signal

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    if spec.head_dim == 256 and spec.rotary_dim == 64:
        os.kill(os.getpid(), signal.SIGKILL)
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
