"""A deliberately broken plug-in that hangs: on gpt-j-6b it sleeps for an hour (a Python-level
hang a timeout signal interrupts); on sam2 it first blocks SIGALRM, like C code that never
returns to the interpreter, so only a watchdog outside the signal path can stop it."""

import signal
import time

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def rope(x, positions, spec):
    if spec.head_dim == 256 and spec.rotary_dim == 64:  # gpt-j-6b
        time.sleep(3600)
    if spec.multi_axis is not None and spec.head_dim == 256:  # sam2
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
