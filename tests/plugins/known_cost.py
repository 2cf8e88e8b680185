"""A plug-in whose call costs a known time: FIXED_S plus PER_ELEMENT_S for each element of x
(slept, so that it does not depend on the machine), returning a copy of x. The benchmark's
in-cache work figures must recover both."""

import time

import numpy as np

framework = "numpy"
FIXED_S, PER_ELEMENT_S = 2e-3, 20e-9


def rope(x, positions, spec):
    time.sleep(FIXED_S + PER_ELEMENT_S * x.size)
    return np.array(x)
