"""A small stand-alone RoPE "library" for the tests of how verdicts are formed: NumPy, its own
math (not the suite's), plain specs (no multi-axis) with no scaling, linear or dynamic NTK.
Each fake in this folder is it with one behaviour changed, as real libraries have them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

KNOWN = ("default", "linear", "dynamic")


def frequencies(spec, length: int) -> np.ndarray:
    """theta_i = base^(-2i/r), divided by the linear factor, or with dynamic NTK's grown base."""
    r, base, s = spec.rotary_dim, spec.base, spec.scaling
    if s is not None and s.rope_type == "dynamic" and length > s.original_max_position_embeddings:
        base = base * (s.factor * length / s.original_max_position_embeddings - (s.factor - 1)) ** (r / (r - 2))
    theta = 1.0 / base ** (np.arange(0, r, 2, dtype=np.float64) / r)
    return theta / s.factor if s is not None and s.rope_type == "linear" else theta


def rotate(x: np.ndarray, positions: np.ndarray, spec, theta: np.ndarray, angle_dtype=np.float64) -> np.ndarray:
    """x [b, s, h, d] rotated by positions [b, s] x theta, angles in ``angle_dtype``, the result in x's dtype."""
    phi = positions.astype(angle_dtype)[..., None, None] * theta.astype(angle_dtype)
    cos, sin = np.cos(phi).astype(np.float64), np.sin(phi).astype(np.float64)
    r = spec.rotary_dim
    work = x.astype(np.float64)
    if spec.convention == "half":
        a, b = work[..., : r // 2], work[..., r // 2: r]
    else:
        a, b = work[..., 0:r:2], work[..., 1:r:2]
    out = work.copy()
    first, second = a * cos - b * sin, b * cos + a * sin
    if spec.convention == "half":
        out[..., : r // 2], out[..., r // 2: r] = first, second
    else:
        out[..., 0:r:2], out[..., 1:r:2] = first, second
    return out.astype(x.dtype)


class FakeRope:
    """The plain library: correct, stateless, new output arrays."""

    framework = "numpy"

    def supports(self, spec, dtype: str) -> bool:
        return spec.multi_axis is None and spec.rope_type in KNOWN

    def length(self, positions: np.ndarray) -> int:
        return int(positions.max()) + 1

    def rope(self, x: np.ndarray, positions: np.ndarray, spec) -> np.ndarray:
        return rotate(x, positions, spec, frequencies(spec, self.length(positions)))

    def reproduction(self, spec, dtype: str) -> str:
        """Source whose make() returns this fake called directly (for `rope-suite findings`): the
        fake's module imported from its file, the spec as a plain namespace (no rope-suite)."""
        module = sys.modules[type(self).__module__]
        scaling = None if spec.scaling is None else dict(spec.scaling.to_dict())
        return REPRODUCTION.format(folder=str(Path(module.__file__).parent),
                                   module=Path(module.__file__).stem, rotary_dim=spec.rotary_dim, base=spec.base,
                                   convention=spec.convention, scaling=scaling, rope_type=spec.rope_type)


REPRODUCTION = """
import sys
from types import SimpleNamespace

sys.path.insert(0, {folder!r})
from {module} import IMPLEMENTATION

SCALING = {scaling!r}
SPEC = SimpleNamespace(rotary_dim={rotary_dim}, base={base!r}, convention={convention!r}, multi_axis=None,
                       rope_type={rope_type!r}, scaling=None if SCALING is None else SimpleNamespace(**SCALING))


def make():
    library = type(IMPLEMENTATION)()  # a new instance, as a user builds one
    return lambda x, positions: library.rope(x, positions, SPEC)
"""
