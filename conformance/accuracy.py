"""The accuracy model: how far from exact math an implementation may land, element by element.

A fixed rtol is wrong for RoPE. The angle phi = m * theta grows with the position m, and
standard practice computes it in float32, so its absolute error grows with m too (at m = 2^20
one float32 step of phi is 0.125 rad); a bound loose enough for that lets a bfloat16 angle
(an error 2^16 times larger) through at small positions. So the bound follows the error that
standard practice makes, per element, and an implementation passes when it stays within a
small factor of it.

Standard practice (HF, torchtune, keras-hub, Ultralytics, rotary-embedding-torch, flash-attn):
theta rounded to float32, phi = m * theta in float32, cos and sin in float32, then the rotation
y1 = a cos - b sin, y2 = b cos + a sin in the input dtype (or in float32, which is no worse), the
result stored in the input dtype; float64 inputs included, on purpose. So every dtype is judged
against float32 angles by default. Strict mode (``rope-suite check --strict``) is for users who
need float64 arithmetic: it judges float64 inputs against float64 angles. Either way the angle
accuracy a case reaches is reported (:func:`angle_accuracy`): a float64 result within the
float64-angle bound is "float64 angles", one within the float32-angle bound only is "float32
angles", so a library's precision class is stated, not charged as a bug. Worse than float32
angles (bfloat16 angles, float16 positions, bfloat16 cos/sin for float32 x) fails either way.

With u the input dtype's unit roundoff and u_a that of the angle arithmetic (float32, or
float64 in strict mode for float64 inputs), a first-order error analysis of one pair (a, b)
with attention factor g gives

    |delta phi|      <= 2 u_a |phi|                 (theta rounded, product rounded)
    |delta cos/sin|  <= |delta phi| + u_a + u       (evaluation, then cast to the dtype)
    |delta y|        <= g (|a| + |b|) (2 u_a |phi| + u_a + 3 u) + u |y|
                        (three roundings in the rotation, one in the final store)

The allowed error is SAFETY times that, plus a floor of one unit roundoff of the largest
input (so exact zeros do not demand exact zeros). Channels past rotary_dim must be bit-equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import reference
from .frameworks import UNIT_ROUNDOFF
from .spec import RopeSpec

SAFETY = 4.0
"""How far beyond standard practice an implementation may land: room for a pow() or sin()
a few ulp off, and for positions cast to float32 above 2^24, but not for an angle computed in
half precision (a factor of 2^13 or more)."""


ANGLES: tuple[str, ...] = ("float64", "float32")
"""The angle precisions a result is classed by, most accurate first."""
STANDARD_ANGLES = "float32"


def required_angles(dtype: str, strict: bool = False) -> str:
    """The angle precision a ``dtype`` input is judged against: float32 (standard practice), or
    float64 for float64 inputs in strict mode."""
    return "float64" if strict and dtype == "float64" else STANDARD_ANGLES


def standard_error(x: np.ndarray, positions: np.ndarray, spec: RopeSpec, dtype: str,
                   angles: str = STANDARD_ANGLES) -> np.ndarray:
    """The first-order error of RoPE with ``angles`` arithmetic for each element of apply(x),
    float64, x's shape.

    x holds the exact input values (already rounded to ``dtype``), [batch, seq, heads, head_dim].
    """
    return _ErrorTerms(x, positions, spec).error(dtype, angles)


class _ErrorTerms:
    """What the first-order error needs of one input, computed once for any angle precision:
    |phi|, g (|a| + |b|) per pair, |apply(x)| and the pair channels."""

    def __init__(self, x: np.ndarray, positions: np.ndarray, spec: RopeSpec) -> None:
        self.phi = np.abs(reference.angles(positions, spec))[:, :, None, :]
        self.first, self.second = reference.pair_channels(spec)
        self.scale = reference.attention_factor(spec) * (np.abs(x[..., self.first]) + np.abs(x[..., self.second]))
        self.y = np.abs(reference.apply(x, positions, spec))

    def error(self, dtype: str, angles: str) -> np.ndarray:
        u, ua = UNIT_ROUNDOFF[dtype], UNIT_ROUNDOFF[angles]
        pair = self.scale * (2 * ua * self.phi + ua + 3 * u)
        err = np.zeros_like(self.y)
        err[..., self.first] = pair + u * self.y[..., self.first]
        err[..., self.second] = pair + u * self.y[..., self.second]
        return err


def allowed_errors(x: np.ndarray, positions: np.ndarray, spec: RopeSpec, dtype: str,
                   angles: tuple[str, ...] = ANGLES) -> dict[str, np.ndarray]:
    """:func:`allowed_error` for each angle precision of ``angles``, the terms they share computed once."""
    terms = _ErrorTerms(x, positions, spec)
    floor = UNIT_ROUNDOFF[dtype] * float(np.max(np.abs(x), initial=0.0))
    out = {}
    for precision in angles:
        bound = SAFETY * terms.error(dtype, precision) + floor
        bound[..., spec.rotary_dim:] = 0.0
        out[precision] = bound
    return out


def allowed_error(x: np.ndarray, positions: np.ndarray, spec: RopeSpec, dtype: str,
                  angles: str = STANDARD_ANGLES) -> np.ndarray:
    """SAFETY x standard_error + floor on the rotated channels; 0 on the pass-through tail."""
    return allowed_errors(x, positions, spec, dtype, (angles,))[angles]


@dataclass(frozen=True)
class Comparison:
    """got vs want under per-element bounds; ``worst`` is the element with the largest err/bound."""

    max_abs_err: float
    max_rel_err: float
    over: int
    total: int
    worst: tuple[int, ...]
    got: float
    want: float
    bound: float

    @property
    def ok(self) -> bool:
        return self.over == 0


def compare(got: np.ndarray, want: np.ndarray, bound: np.ndarray) -> Comparison:
    """Compare element-wise; NaN or Inf in ``got`` counts as over the bound."""
    err = np.abs(got - want)
    err = np.where(np.isfinite(err), err, np.inf)
    over = err > bound
    ratio = np.where(bound > 0, err / np.where(bound > 0, bound, 1.0), np.where(err > 0, np.inf, 0.0))
    worst = np.unravel_index(int(np.argmax(ratio)), got.shape) if got.size else ()
    rel = err / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    return Comparison(
        max_abs_err=float(np.max(err, initial=0.0)),
        max_rel_err=float(np.max(np.where(err > 0, rel, 0.0), initial=0.0)),
        over=int(np.count_nonzero(over)), total=int(got.size), worst=tuple(int(i) for i in worst),
        got=float(got[worst]) if got.size else 0.0, want=float(want[worst]) if got.size else 0.0,
        bound=float(bound[worst]) if got.size else 0.0,
    )


def angle_accuracy(got: np.ndarray, want: np.ndarray, x: np.ndarray, positions: np.ndarray, spec: RopeSpec,
                   dtype: str) -> str | None:
    """The most accurate angle precision of ANGLES whose bound ``got`` meets (its precision
    class), or None when it meets none of them."""
    return class_reached(got, want, allowed_errors(x, positions, spec, dtype))


def class_reached(got: np.ndarray, want: np.ndarray, bounds: dict[str, np.ndarray]) -> str | None:
    """:func:`angle_accuracy` with the bounds of every precision of ANGLES already computed."""
    return next((angles for angles in ANGLES if compare(got, want, bounds[angles]).ok), None)
