"""Google DeepMind's gemma library: ``gemma.gm.math.apply_rope`` (JAX), what its ``Attention``
(``gemma/gm/nn/_modules.py``) calls on queries and keys.

Read from gemma 3.3.0, ``gemma/gm/math/_positional_embeddings.py``. That file imports only
``jax`` and ``jax.numpy``, but the ``gemma.gm`` package's ``__init__`` imports much more
(etils, kauldron, flax, orbax, ...; ``pip install --no-deps gemma`` has none of it), so the
file is loaded on its own (``importlib.util.spec_from_file_location`` on the installed
package's path, under a private module name) and ``gemma.gm`` is never imported.

What the library computes: ``apply_rope(inputs [B, L, N, H], positions [B, L], *,
base_frequency, scale_factor=1.0, rope_proportion=1.0)``: ``rope_angles = int(rope_proportion
* H // 2)`` pairs turn, with ``timescale = base_frequency ** ((2 / H) * arange(rope_angles,
float32))``, padded with ``inf`` for the other ``H/2 - rope_angles`` pairs (angle 0); angles
``positions / timescale / scale_factor`` (float32: integer positions promote to float32), sin
and cos in float32, the halves ``(x1, x2) = split(inputs, 2)`` (rotate-half pairs (i, i + H/2))
rotated as ``x1 cos - x2 sin``, ``x2 cos + x1 sin`` (in the promoted dtype: float32 for
float16/bfloat16/float32 x, float64 for float64 x) and cast back to x's dtype.

Spec -> call: ``apply_rope(x, positions, base_frequency=base, scale_factor=factor)``, x
[batch, seq, heads, head_dim] (the library's layout) and positions [batch, seq] (per-row
positions, the library's own: gemma passes ``segment_pos``).
  * ``base`` -> ``base_frequency`` (an int where the base is integral, as gemma's configs pass
    10_000 and 1_000_000; the power is float32 either way).
  * ``rotary_dim`` must equal ``head_dim``. gemma's partial rotary, ``rope_proportion`` < 1, is
    not the spec's partial rotary: its exponent denominator stays H (not r) and the turning
    pairs are (i, i + H/2) for i < rope_angles, spread over both halves of the head, with the
    other pairs at angle 0, where the spec turns pairs inside the first r channels with
    denominator r and passes the tail through. No spec is that, so r < head_dim is unsupported
    and ``rope_proportion`` stays 1.0 (gemma's own ``Attention`` never passes it either).
  * ``convention``: "half" natively; "interleaved" through the exact channel permutation of
    :mod:`._numpy_layout` (Meta <-> HF checkpoint conversion), ``jnp.take`` before and after:
    a gather, bit-exact, so every number is the library's.
  * ``scaling``: None -> ``scale_factor`` left at 1.0; ``linear`` -> ``scale_factor = factor``
    (angles divided by it: Gemma 3's global layers use 8). No other scaling exists in the library.
  * ``multi_axis``: None only.

Stateless: a function of its arguments, no cache. Called eagerly (no ``jax.jit``), as a user
calling ``gm.math.apply_rope`` gets it.

Precision: angles are float32 whatever x's dtype (float32 ``timescale``, positions promoted to
float32), so a float64 caller gets float32 angles (supports() claims float64: the suite reports
it). ``base_frequency ** exponents`` is XLA's float32 ``pow``. The suite's check process runs
JAX with x64 enabled (``frameworks.prepare``): x64 changes nothing here but lets float64 x exist.

Nothing is supplied: the function computes frequencies, the linear scaling and the rotation.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import RopeSpec

from . import _numpy_layout

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
WHERE = "gemma/gm/math/_positional_embeddings.py: apply_rope"


@functools.cache
def positional_embeddings() -> ModuleType:
    """``gemma/gm/math/_positional_embeddings.py``, loaded without importing the gemma.gm package."""
    package = importlib.util.find_spec("gemma")
    if package is None or not package.submodule_search_locations:
        raise ImportError("gemma is not installed (pip install --no-deps gemma)")
    path = Path(package.submodule_search_locations[0]) / "gm" / "math" / "_positional_embeddings.py"
    spec = importlib.util.spec_from_file_location("rope_suite_gemma_positional_embeddings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rotate(apply_rope: Any, x: Any, positions: Any, order: np.ndarray | None, **options: Any) -> Any:
    """``apply_rope(x, positions, **options)``, x [b, s, h, d]; with ``order`` (interleaved pairs)
    the channels are gathered to the rotate-half layout before and back after."""
    import jax.numpy as jnp

    if order is None:
        return apply_rope(x, positions, **options)
    out = apply_rope(jnp.take(x, np.argsort(order), axis=-1), positions, **options)
    return jnp.take(out, order, axis=-1)


class GemmaRope:
    """gemma's ``apply_rope``, as a plug-in object."""

    framework = "jax"
    device = "cpu"
    deviations: tuple[Deviation, ...] = (
        Deviation(
            "float32-angles", "precision choice",
            "the timescale is float32 (arange(..., dtype=float32)) and integer positions promote to float32, so "
            "float64 x gets float32 angles",
            WHERE, lambda rec: rec.get("dtype") == "float64" and rec.get("status") == "failed"),
    )

    def __repr__(self) -> str:
        return "GemmaRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return (dtype_name in DTYPES and spec.rotary_dim == spec.head_dim and spec.multi_axis is None
                and spec.rope_type in ("default", "linear"))

    @staticmethod
    def options(spec: RopeSpec) -> dict[str, Any]:
        """``apply_rope``'s keyword arguments for ``spec``."""
        base = int(spec.base) if spec.base.is_integer() else spec.base
        linear = {"scale_factor": spec.scaling.factor} if spec.rope_type == "linear" else {}
        return {"base_frequency": base, **linear}

    @staticmethod
    def order(spec: RopeSpec) -> np.ndarray | None:
        return _numpy_layout.interleaved_order(spec.head_dim, spec.rotary_dim) if spec.convention == "interleaved" else None

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        """x [batch, seq, heads, head_dim] rotated at ``positions`` [batch, seq]."""
        if tuple(positions.shape) != tuple(x.shape[:2]) or np.dtype(positions.dtype).kind not in "iu":
            raise ValueError(f"positions {tuple(positions.shape)} {positions.dtype} is invalid: apply_rope takes "
                             f"integer positions of shape {tuple(x.shape[:2])} for x {tuple(x.shape)}")
        return rotate(positional_embeddings().apply_rope, x, positions, self.order(spec), **self.options(spec))

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()``: gemma's file loaded on its own and ``rope(x,
        positions)`` calling ``apply_rope`` as :meth:`rope` does."""
        if not self.supports(spec, dtype_name):
            return None
        order = self.order(spec)
        order_source = "None" if order is None else f"np.array({order.tolist()})"
        return "\n\n".join([
            "from __future__ import annotations\n\nimport importlib.util\nfrom pathlib import Path\nfrom typing import Any"
            "\n\nimport numpy as np",
            inspect.getsource(rotate),
            "def make():\n"
            "    package = importlib.util.find_spec(\"gemma\")  # the file alone: gemma.gm's __init__ imports much more\n"
            "    path = Path(package.submodule_search_locations[0]) / \"gm\" / \"math\" / \"_positional_embeddings.py\"\n"
            "    spec = importlib.util.spec_from_file_location(\"gemma_positional_embeddings\", path)\n"
            "    module = importlib.util.module_from_spec(spec)\n    spec.loader.exec_module(module)\n"
            f"    order = {order_source}\n\n"
            f"    def rope(x, positions):\n"
            f"        return rotate(module.apply_rope, x, positions, order, **{self.options(spec)!r})\n\n"
            f"    return rope\n"])


GEMMA = GemmaRope()
