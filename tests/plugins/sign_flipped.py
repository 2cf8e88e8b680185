"""A deliberately broken plug-in: rotates by -phi (sine sign flipped), in NumPy.

Used by tests/test_engine.py to prove the checks fail, and say why. Module-level plug-in:
``framework`` and ``rope`` at top level, no rope-suite import needed for the contract itself.
"""

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"


def supports(spec, dtype):
    return dtype in ("float64", "float32")


def rope(x, positions, spec):
    return reference.apply_transpose(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
