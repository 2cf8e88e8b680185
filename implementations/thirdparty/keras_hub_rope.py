"""keras-hub's ``keras_hub.layers.RotaryEmbedding`` under each Keras 3 backend.

``TENSORFLOW``, ``JAX`` and ``TORCH`` call the same layer (read from keras-hub 0.32,
``keras_hub/src/layers/modeling/rotary_embedding.py``) with the backend's native tensors.
The Keras backend is process-global and fixed when ``keras`` is first imported, so each
object sets ``os.environ["KERAS_BACKEND"]`` at its first call (not at module import) and then
imports keras; if keras was already imported with another backend it raises RuntimeError:
each of the three must run in a process of its own. (``import tensorflow`` imports keras
too, with the backend in the environment at that moment, default "tensorflow".)

What the layer computes: ``inverse_freq = max_wavelength ** -(arange(0, d, 2) / d)`` over
the whole feature axis d (float32), angles ``einsum("bi,j->bij", positions, inverse_freq)`` in
float32 with ``positions`` cast to float32, the per-channel table ``stack((f, f), -2)`` laid out
as cat(f, f), cos/sin cast to the layer's compute dtype, and ``x * cos + cat(-x2, x1) * sin``
(rotate-half) in that dtype.

Spec -> layer (``RotaryEmbedding(max_wavelength, scaling_factor, rope_type, beta_fast,
beta_slow, original_max_position_embeddings, truncate, sequence_axis=1, feature_axis=-1,
dtype)`` called as ``layer(x, positions=positions)``):
  * ``base`` -> ``max_wavelength``. x [batch, seq, heads, head_dim] is the layer's own layout
    (``sequence_axis=1``, ``feature_axis=-1``; the heads axis is broadcast).
  * positions [batch, seq] -> the ``positions`` call argument, which takes
    ``(batch, seq)`` per-row positions (``start_index`` is then ignored), so per-row offsets,
    decode steps and packed restarts are the layer's own.
  * ``rotary_dim``: the layer rotates its whole feature axis. r < head_dim is done the way
    keras-hub's own ``GPTNeoXAttention.call`` does it: the layer is applied to
    ``x[..., :r]`` and ``x[..., r:]`` is concatenated back (exponent denominator r).
  * ``convention``: "half" natively. "interleaved" through the exact channel permutation of
    :mod:`._layout` (Meta <-> HF checkpoint conversion), here as ``keras.ops.take`` on the
    first r channels and undone after: a gather, bit-exact, so every number is the layer's.
  * ``scaling``: None -> ``rope_type="linear"``, ``scaling_factor=1`` (the layer's default);
    ``linear`` -> ``rope_type="linear"``, ``scaling_factor=factor`` (inverse frequencies
    divided by it); ``yarn`` -> ``rope_type="yarn"`` with ``factor``, ``beta_fast``,
    ``beta_slow``, ``original_max_position_embeddings`` and ``truncate`` (the spec's
    defaults 32, 1, True are the layer's); the layer's attention factor is always
    0.1 ln(factor) + 1, so a spec with ``attention_factor``, or with both ``mscale`` and
    ``mscale_all_dim``, is unsupported.
    ``dynamic`` -> ``rope_type="dynamic"``, ``scaling_factor=factor``: keras-hub's name, but
    not HF's formula: the layer divides every inverse frequency by factor^(d/(d-2)) at every
    length (no original length, no dependence on the positions), which is neither HF's
    dynamic NTK (unscaled up to L0, then a grown base) nor static NTK (base * factor^(d/(d-2)),
    which leaves theta_0 alone). It is mapped as named so the suite reports the deviation.
    ``ntk``, ``llama3``, ``longrope``: no such rope_type in the layer, unsupported.
  * ``multi_axis``: unsupported (the layer takes one position stream).

Precision: the layer's ``dtype`` is x's dtype (as keras-hub models pass their
``dtype_policy``), so the rotation runs in x's dtype with float32 angles and cos/sin rounded
to it; the YaRN attention factor is computed in x's dtype too. float64 is supported where the
backend has it (JAX only with ``jax_enable_x64``, which is never flipped here); a float64
caller gets float32 angles, and the suite reports that instead of hiding it.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import numpy as np

from rope_suite.conformance.spec import RopeSpec

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
KERAS_ROPE_TYPES: dict[str, str] = {"default": "linear", "linear": "linear", "dynamic": "dynamic", "yarn": "yarn"}


def keras_for(backend: str) -> Any:
    """``keras``, imported with ``backend``; RuntimeError if it was already imported with another."""
    loaded = sys.modules.get("keras")
    if loaded is None:
        os.environ["KERAS_BACKEND"] = backend
    keras = importlib.import_module("keras")
    current = keras.config.backend()
    if current != backend:
        raise RuntimeError(
            f"keras is already imported with backend {current!r}, but this implementation needs backend "
            f"{backend!r}: the Keras backend is fixed per process at the first `import keras` (importing "
            f"tensorflow imports keras too), so run the keras-hub {backend} implementation in its own process")
    return keras


def interleaved_order(head_dim: int, rotary_dim: int) -> np.ndarray:
    """Indices [head_dim]: x[..., order] lays half-convention pairs (i, i + r/2) side by side
    (the gather of :func:`._layout.interleaved_order`, in NumPy for every backend)."""
    n = rotary_dim // 2
    pairs = np.stack((np.arange(n), np.arange(n, rotary_dim)), axis=-1).reshape(-1)
    return np.concatenate((pairs, np.arange(rotary_dim, head_dim)))


class KerasHubRope:
    """``keras_hub.layers.RotaryEmbedding`` under one Keras backend, as a plug-in object."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.framework = backend
        self.device = "cpu"
        self._layers: dict[tuple[RopeSpec, str], Any] = {}

    def __repr__(self) -> str:
        return f"KerasHubRope({self.backend!r})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.multi_axis is not None or spec.rope_type not in KERAS_ROPE_TYPES:
            return False
        if dtype_name == "float64" and self.backend == "jax":
            return bool(importlib.import_module("jax").config.jax_enable_x64)
        s = spec.scaling
        if spec.rope_type == "yarn":  # the layer's attention factor is always 0.1 ln(factor) + 1
            return s.attention_factor is None and not (s.mscale and s.mscale_all_dim)
        return True

    def layer(self, spec: RopeSpec, dtype: str) -> Any:
        """The layer for ``spec`` computing in ``dtype`` (one per pair: its dtype policy is fixed)."""
        key = (spec, dtype)
        if key not in self._layers:
            keras_for(self.backend)
            cls = importlib.import_module("keras_hub").layers.RotaryEmbedding
            s = spec.scaling
            options: dict[str, Any] = {"max_wavelength": spec.base, "rope_type": KERAS_ROPE_TYPES[spec.rope_type]}
            if s is not None:
                options["scaling_factor"] = s.factor
            if spec.rope_type == "yarn":
                options |= {"original_max_position_embeddings": s.original_max_position_embeddings}
                options |= {k: v for k, v in (("beta_fast", s.beta_fast), ("beta_slow", s.beta_slow),
                                              ("truncate", s.truncate)) if v is not None}
            self._layers[key] = cls(sequence_axis=1, feature_axis=-1, dtype=dtype, **options)
        return self._layers[key]

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        """x [batch, seq, heads, head_dim] (native) rotated at ``positions`` [batch, seq]."""
        keras = keras_for(self.backend)
        ops = keras.ops
        layer = self.layer(spec, keras.backend.standardize_dtype(x.dtype))
        r, d = spec.rotary_dim, spec.head_dim
        order = interleaved_order(d, r) if spec.convention == "interleaved" else None
        xs = ops.take(x, np.argsort(order), axis=-1) if order is not None else x  # interleaved -> half
        if r == d:
            out = layer(xs, positions=positions)
        else:  # GPTNeoXAttention.call: rotate x[..., :r], concatenate the tail back
            out = ops.concatenate([layer(xs[..., :r], positions=positions), xs[..., r:]], axis=-1)
        return ops.take(out, order, axis=-1) if order is not None else out


TENSORFLOW = KerasHubRope("tensorflow")
JAX = KerasHubRope("jax")
TORCH = KerasHubRope("torch")
