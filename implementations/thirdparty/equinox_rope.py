"""Equinox's ``eqx.nn.RotaryPositionalEmbedding`` (JAX).

Read from equinox 0.13.8, ``equinox/nn/_embedding.py``.

What the library computes: the module (fields ``embedding_size``, ``theta``, ``dtype``, all
static) is called on one head, x [seq_length, embedding_size], and rotates token t at position t:
``precompute_freqs_cis(embedding_size, end, theta, dtype)`` builds
``freqs = 1 / theta ** (arange(0., embedding_size, 2) / embedding_size)``, angles
``outer(arange(float(end)), freqs)`` and ``cos``, ``sin`` cast to ``dtype`` at the very end
(all in JAX's default float dtype: float64 under x64, float32 otherwise); ``__call__`` tiles
them as cat(c, c) and returns ``(x * cos + rotate_half(x) * sin).astype(x.dtype)``
(rotate-half pairs (i, i + d/2)). The table is kept in a module-level dict
``internal_rope_embedding_cache`` keyed on ``(embedding_size, dtype)``, built by the first call
and rebuilt by any longer call, with the calling module's ``theta`` (cleared by
``eqx.clear_caches()``).

Spec -> call: ``RotaryPositionalEmbedding(embedding_size=head_dim, theta=base, dtype=x.dtype)``,
one module per (spec, dtype), built on first use and kept (the module's dtype is x's, as the
library's type-promotion error message tells users to do).
  * ``rotary_dim`` must equal ``head_dim``: the module rotates its whole embedding and has no
    pass-through (slicing x around it would be the adapter's partial rotary, not the library's).
  * ``convention``: "half" natively; "interleaved" through the exact channel permutation of
    :mod:`._numpy_layout` (Meta <-> HF checkpoint conversion), ``jnp.take`` before and after:
    a gather, bit-exact, so every number is the module's.
  * ``scaling``: None only (no scaling in the module). ``multi_axis``: None only.

Positions. The module has no positions argument (no offset either): token t of the sequence it
is given sits at position t. For positions [batch, seq], the adapter writes each token at index
p (its position) of a sequence of zeros longer than max(positions) (the same length for the
whole call: max(positions) + 1 rounded up to a power of two, at least 64, so that JAX compiles
few shapes; the rows below max(positions) do not depend on the length), calls the module on every head of that sequence (``jax.vmap(module, in_axes=1,
out_axes=1)``, the use equinox's docstring shows), and reads each token back from index p. A
row with a repeated position (packed sequences) gets one such sequence per repeat. Each row
of the module's output depends only on that row of x and of its table, so the token gets
exactly what the module gives a token at index p; the placement is the adapter's, every
number the module's. One batch row at a time, to keep memory to one row's sequences. The cost
is linear in the largest position, hence ``max_position`` = :data:`MAX_POSITION`.

Precision: the suite's check process runs JAX with x64 enabled (``frameworks.prepare``), so the
module's angles are float64 and cos/sin are rounded once to x's dtype; the rotation runs in x's
dtype. Without x64 the angles would be float32. The findings scripts enable x64 too.

Process state: because the table's key has no ``theta``, a module gets the table of whichever
module of the same size and dtype last built it (:data:`THETA_NOT_IN_CACHE_KEY`). The adapter
does not clear it (that would hide what a user with two thetas in one process gets). So that a
reproduction recreates the state its case met, :meth:`EquinoxRope.reproduction` reads the
length of the cached table (``internal_rope_embedding_cache``, read only) and the theta of the
module that built it (which this adapter saw grow it), and its ``make()`` first calls such a
module when that theta is not the spec's.

Nothing is supplied: the module computes frequencies and the rotation.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import RopeSpec

from . import _numpy_layout

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
MAX_POSITION = (1 << 16) - 1
"""Largest position: each call builds sequences of max(position) + 1 tokens per batch row."""
WHERE = "equinox/nn/_embedding.py"

THETA_NOT_IN_CACHE_KEY = Deviation(
    "theta-not-in-cache-key", "bug",
    "RotaryPositionalEmbedding caches its cos/sin table in the module-level internal_rope_embedding_cache "
    "keyed on (embedding_size, dtype) without theta, so a module gets the table of whichever module of the "
    "same size and dtype built it last (e.g. theta 1e6 after theta 1e4: Llama 2 then CodeLlama in one "
    "process, or Gemma-3-style local and global layers)",
    f"{WHERE}: RotaryPositionalEmbedding.__call__",
    lambda rec: rec.get("status") == "failed" and rec.get("check") in ("agreement", "random_specs", "gradient"))


def rotate(module: Any, x: Any, positions: Any, order: np.ndarray | None) -> Any:
    """x [b, s, h, d] (jax) at positions [b, s]: per batch row, each token written at index p = its
    position of a zero sequence [length, h, d], length > max(positions) (one sequence per repeat
    of a position in the row), ``module`` applied to every head (vmap over the heads axis) of every sequence,
    and each token read back from index p. ``order``: the interleaved -> half channel gather."""
    import jax
    import jax.numpy as jnp

    pos = np.asarray(positions).astype(np.int64)
    if order is not None:
        x = jnp.take(x, np.argsort(order), axis=-1)  # interleaved pairs -> the module's rotate-half layout
    # max(positions) + 1 rounded up to a power of two (>= 64): fewer shapes for JAX to compile
    length = max(64, 1 << int(pos.max()).bit_length()) if pos.size else 64
    per_head = jax.vmap(module, in_axes=1, out_axes=1)  # [length, heads, d] -> [length, heads, d]
    rows = []
    for row, where in zip(x, pos):
        repeat, seen = np.zeros(len(where), np.int64), {}
        for t, p in enumerate(where.tolist()):
            repeat[t] = seen.get(p, 0)
            seen[p] = repeat[t] + 1
        sequences = jnp.zeros((int(repeat.max(initial=0)) + 1, length, *row.shape[1:]), row.dtype)
        rows.append(jax.vmap(per_head)(sequences.at[repeat, where].set(row))[repeat, where])
    out = jnp.stack(rows) if rows else x
    return jnp.take(out, order, axis=-1) if order is not None else out


def equinox_cache() -> dict:
    """equinox's module-level table cache, (embedding_size, dtype) -> (cos, sin) (read only)."""
    return importlib.import_module("equinox.nn._embedding").internal_rope_embedding_cache


class EquinoxRope:
    """``eqx.nn.RotaryPositionalEmbedding``, one module per (spec, dtype), as a plug-in object."""

    framework = "jax"
    device = "cpu"
    max_position = MAX_POSITION
    deviations: tuple[Deviation, ...] = (THETA_NOT_IN_CACHE_KEY,)

    def __init__(self) -> None:
        self._modules: dict[tuple[RopeSpec, str], Any] = {}
        self._built_by: dict[tuple[int, str], float] = {}  # (size, dtype) -> theta of the module that built the table

    def __repr__(self) -> str:
        return "EquinoxRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return (dtype_name in DTYPES and spec.rotary_dim == spec.head_dim and spec.scaling is None
                and spec.multi_axis is None)

    def module(self, spec: RopeSpec, dtype: Any) -> Any:
        """The module for ``spec`` computing in ``dtype``, built on first use and kept."""
        key = (spec, np.dtype(dtype).name)
        if key not in self._modules:
            eqx = importlib.import_module("equinox")
            self._modules[key] = eqx.nn.RotaryPositionalEmbedding(embedding_size=spec.head_dim, theta=spec.base,
                                                                  dtype=dtype)
        return self._modules[key]

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        """x [batch, seq, heads, head_dim] rotated at ``positions`` [batch, seq]."""
        pos = np.asarray(positions)
        if pos.shape != tuple(x.shape[:2]) or pos.dtype.kind not in "iu":
            raise ValueError(f"positions {pos.shape} {pos.dtype} is invalid: equinox's adapter takes integer "
                             f"positions of shape {tuple(x.shape[:2])} for x {tuple(x.shape)}")
        if pos.size and not 0 <= int(pos.min()) <= int(pos.max()) <= MAX_POSITION:
            raise ValueError(f"positions from {int(pos.min())} to {int(pos.max())} are invalid: this adapter places "
                             f"tokens at their index in a sequence, for positions 0..{MAX_POSITION}")
        dtype = np.dtype(x.dtype)
        order = _numpy_layout.interleaved_order(spec.head_dim, spec.rotary_dim) if spec.convention == "interleaved" else None
        key, before = (spec.head_dim, dtype.name), self._cached_rows(spec.head_dim, dtype)
        out = rotate(self.module(spec, dtype), x, pos, order)
        if self._cached_rows(spec.head_dim, dtype) != before:  # this call (re)built the shared table
            self._built_by[key] = spec.base
        return out

    @staticmethod
    def _cached_rows(size: int, dtype: np.dtype) -> int | None:
        table = equinox_cache().get((size, dtype))
        return None if table is None else int(table[0].shape[0])

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()``: the module for ``spec`` and ``rope(x, positions)``
        as :meth:`rope` calls it; first, when equinox's shared table for this size and dtype was
        last built by a module of another theta (see the module docstring), a call of that module
        that rebuilds the same table."""
        if not self.supports(spec, dtype_name):
            return None
        size, dtype = spec.head_dim, np.dtype(_jnp_dtype(dtype_name))
        order = (f"np.array({_numpy_layout.interleaved_order(size, spec.rotary_dim).tolist()})"
                 if spec.convention == "interleaved" else "None")
        module = f"eqx.nn.RotaryPositionalEmbedding(embedding_size={size}, theta={{theta!r}}, dtype=jnp.dtype({dtype_name!r}))"
        state = ""
        rows, theta = self._cached_rows(size, dtype), self._built_by.get((size, dtype.name))
        if rows is not None and theta is not None and theta != spec.base:
            state = (f"    # equinox keys its table on (embedding_size, dtype) only: in the process this case ran in,\n"
                     f"    # a module with theta={theta!r} had built it for {rows} positions. Build that state first.\n"
                     f"    {module.format(theta=theta)}(jnp.zeros(({rows}, {size}), jnp.dtype({dtype_name!r})))\n")
        return "\n\n".join([
            "from __future__ import annotations\n\nfrom typing import Any\n\nimport equinox as eqx\nimport jax.numpy as jnp\n"
            "import numpy as np",
            inspect.getsource(rotate),
            f"def make():\n{state}    module = {module.format(theta=spec.base)}\n    order = {order}\n\n"
            f"    def rope(x, positions):\n        return rotate(module, x, positions, order)\n\n    return rope\n"])


def _jnp_dtype(name: str) -> Any:
    return importlib.import_module("jax.numpy").dtype(name)


EQUINOX = EquinoxRope()
