"""keras-hub's ``keras_hub.layers.RotaryEmbedding`` under each Keras 3 backend, and the Llama 3
rotary class keras-hub's Llama models build.

``TENSORFLOW``, ``JAX`` and ``TORCH`` call the same layer (read from keras-hub 0.32,
``keras_hub/src/layers/modeling/rotary_embedding.py``) with the backend's native tensors.
``LLAMA3_TORCH`` calls ``LlamaRotaryEmbedding`` (``keras_hub/src/models/llama/
llama_rotary_embedding.py``, what ``LlamaAttention`` builds for Llama 3.1), built from the spec
alone (no weights, no backbone), under the torch backend only: the class is the same Keras code
under every backend, and one backend keeps the run short.
The Keras backend is process-global and fixed when ``keras`` is first imported, so each
object sets ``os.environ["KERAS_BACKEND"]`` at its first call (not at module import) and then
imports keras; if keras was already imported with another backend it raises RuntimeError:
each of the three must run in a process of its own. (``import tensorflow`` imports keras
too, with the backend in the environment at that moment, default "tensorflow".)

float64 under JAX: importing this module turns on ``jax_enable_x64`` for the process
(``JAX_ENABLE_X64=1`` before jax is imported, ``jax.config.update`` if it already is), so the
keras-hub-jax target, in its own process like every Keras target, has float64 arrays and its
float64 cases run; without x64, jax would silently make every float64 input float32.

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

Spec -> ``LlamaRotaryEmbedding(max_wavelength, frequency_adjustment_factor, low_freq_factor,
high_freq_factor, pretraining_sequence_length, sequence_axis=1, feature_axis=-1, dtype)``: only
``rope_type: llama3``, with ``factor`` -> ``frequency_adjustment_factor`` and
``original_max_position_embeddings`` -> ``pretraining_sequence_length`` (the names
``LlamaBackbone`` passes them under); called, sliced and permuted as the layer above.

Not wired: ``Phi3SuScaledRotaryEmbedding`` (keras_hub/src/models/phi3) computes
``einsum("i,j->ij", positions, inverse_freq)`` and so takes one position vector for the whole
batch, not per-row positions, and switches factors on ``start_index + seq_len`` rather than on
the positions; keras-hub 0.32 has no Qwen2-VL, and its Qwen3.5 M-RoPE is a function
(``qwen3_5_attention._apply_mrope``) inside the attention layer, not a rotary class.

Precision: the layer's ``dtype`` is x's dtype (as keras-hub models pass their
``dtype_policy``), so the rotation runs in x's dtype with float32 angles and cos/sin rounded
to it; the YaRN attention factor is computed in x's dtype too. float64 is claimed on every
backend (JAX through x64, above); a float64 caller gets float32 angles (``_get_inverse_freq``
and the positions are float32), and the suite reports that instead of hiding it.

Nothing is supplied: the layers compute frequencies, scaling and the rotation themselves (the
slice and concatenation for partial rotary are keras-hub's own model code's).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

import numpy as np

from rope_suite.conformance.deviations import Deviation, rope_type
from rope_suite.conformance.spec import RopeSpec

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
KERAS_ROPE_TYPES: dict[str, str] = {"default": "linear", "linear": "linear", "dynamic": "dynamic", "yarn": "yarn"}
LAYER = "keras_hub/src/layers/modeling/rotary_embedding.py"


def enable_x64() -> None:
    """Turn on ``jax_enable_x64`` for this process (float64 arrays under the JAX backend)."""
    if "jax" in sys.modules:
        sys.modules["jax"].config.update("jax_enable_x64", True)
    else:
        os.environ["JAX_ENABLE_X64"] = "1"


enable_x64()


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


def _failed(record: Any) -> bool:
    return record.get("status") == "failed"


class KerasHubRope:
    """A keras-hub rotary layer under one Keras backend, as a plug-in object: the general
    ``RotaryEmbedding``, or with ``llama3`` the ``LlamaRotaryEmbedding`` of its Llama models."""

    def __init__(self, backend: str, llama3: bool = False) -> None:
        self.backend = backend
        self.llama3 = llama3
        self.framework = backend
        self.device = "cpu"
        self._layers: dict[tuple[RopeSpec, str], Any] = {}
        self.deviations: tuple[Deviation, ...] = (
            Deviation(
                "dynamic-is-not-ntk", "different semantics",
                "rope_type='dynamic' divides every inverse frequency by scaling_factor^(d/(d-2)) at every "
                "length: no original length, no dependence on the positions, and theta_0 scaled too, so it "
                "is neither HF's dynamic NTK (unscaled up to L0, then a grown base) nor static NTK",
                f"{LAYER}: RotaryEmbedding._get_inverse_freq",
                lambda rec: rope_type(rec) == "dynamic" and _failed(rec)),
            Deviation(
                "float32-angles", "precision choice",
                "inverse frequencies, positions and angles are float32 whatever the layer's dtype, so "
                "float64 x gets float32 angles",
                f"{LAYER}: RotaryEmbedding._get_inverse_freq / _compute_cos_sin_embedding"
                + (" (keras_hub/src/models/llama/llama_rotary_embedding.py: LlamaRotaryEmbedding."
                   "_get_inverse_freq)" if llama3 else ""),
                lambda rec: rec.get("dtype") == "float64" and _failed(rec)),
        )

    def __repr__(self) -> str:
        return f"KerasHubRope({self.backend!r}, llama3={self.llama3})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.multi_axis is not None:
            return False
        if self.llama3:
            return spec.rope_type == "llama3"
        if spec.rope_type not in KERAS_ROPE_TYPES:
            return False
        s = spec.scaling
        if spec.rope_type == "yarn":  # the layer's attention factor is always 0.1 ln(factor) + 1
            return s.attention_factor is None and not (s.mscale and s.mscale_all_dim)
        return True

    def constructor(self, spec: RopeSpec, dtype: str) -> tuple[str, dict[str, Any]]:
        """(class name under ``keras_hub.src``, keyword arguments) of the layer for ``spec`` in ``dtype``."""
        s = spec.scaling
        options: dict[str, Any] = {"max_wavelength": spec.base}
        if self.llama3:
            options |= {"frequency_adjustment_factor": s.factor, "low_freq_factor": s.low_freq_factor,
                        "high_freq_factor": s.high_freq_factor,
                        "pretraining_sequence_length": s.original_max_position_embeddings}
            where = "models.llama.llama_rotary_embedding.LlamaRotaryEmbedding"
        else:
            options["rope_type"] = KERAS_ROPE_TYPES[spec.rope_type]
            if s is not None:
                options["scaling_factor"] = s.factor
            if spec.rope_type == "yarn":
                options |= {"original_max_position_embeddings": s.original_max_position_embeddings}
                options |= {k: v for k, v in (("beta_fast", s.beta_fast), ("beta_slow", s.beta_slow),
                                              ("truncate", s.truncate)) if v is not None}
            where = "layers.modeling.rotary_embedding.RotaryEmbedding"
        return where, {**options, "sequence_axis": 1, "feature_axis": -1, "dtype": dtype}

    def layer(self, spec: RopeSpec, dtype: str) -> Any:
        """The layer for ``spec`` computing in ``dtype`` (one per pair: its dtype policy is fixed)."""
        key = (spec, dtype)
        if key not in self._layers:
            keras_for(self.backend)
            where, options = self.constructor(spec, dtype)
            module, _, name = f"keras_hub.src.{where}".rpartition(".")
            self._layers[key] = getattr(importlib.import_module(module), name)(**options)
        return self._layers[key]

    def rope(self, x: Any, positions: Any, spec: RopeSpec) -> Any:
        """x [batch, seq, heads, head_dim] (native) rotated at ``positions`` [batch, seq]."""
        keras = keras_for(self.backend)
        layer = self.layer(spec, keras.backend.standardize_dtype(x.dtype))
        order = interleaved_order(spec.head_dim, spec.rotary_dim) if spec.convention == "interleaved" else None
        return rotate(keras.ops, layer, x, positions, spec.rotary_dim, order)

    def reproduction(self, spec: RopeSpec, dtype: str) -> str | None:
        """Self-contained source of ``make()``: the backend chosen, the layer built once for
        ``spec`` in ``dtype``, and ``rope(x, positions)`` calling it as :meth:`rope` does."""
        where, options = self.constructor(spec, dtype)
        module, _, name = f"keras_hub.src.{where}".rpartition(".")
        order = (f"np.array({interleaved_order(spec.head_dim, spec.rotary_dim).tolist()})"
                 if spec.convention == "interleaved" else "None")
        x64 = '\nimport jax\njax.config.update("jax_enable_x64", True)' if self.backend == "jax" else ""
        return "\n\n".join([
            f"from __future__ import annotations\n\nimport os\n\nos.environ.setdefault(\"KERAS_BACKEND\", "
            f"{self.backend!r})\nfrom typing import Any\n\nimport numpy as np{x64}\nimport keras\n"
            f"from {module} import {name}",
            inspect.getsource(rotate),
            f"def make():\n    layer = {name}(**{options!r})\n    order = {order}\n\n"
            f"    def rope(x, positions):\n        return rotate(keras.ops, layer, x, positions, {spec.rotary_dim}, order)"
            f"\n\n    return rope\n"])


def rotate(ops: Any, layer: Any, x: Any, positions: Any, rotary_dim: int, order: np.ndarray | None) -> Any:
    """``layer(x, positions=positions)`` on x [batch, seq, heads, head_dim]: the first
    ``rotary_dim`` channels rotate, the rest are concatenated back (``GPTNeoXAttention.call``);
    with ``order`` (interleaved pairs) the channels are gathered to the layer's rotate-half
    layout before and back after."""
    xs = ops.take(x, np.argsort(order), axis=-1) if order is not None else x  # interleaved -> half
    if rotary_dim == x.shape[-1]:
        out = layer(xs, positions=positions)
    else:  # GPTNeoXAttention.call: rotate x[..., :r], concatenate the tail back
        out = ops.concatenate([layer(xs[..., :rotary_dim], positions=positions), xs[..., rotary_dim:]], axis=-1)
    return ops.take(out, order, axis=-1) if order is not None else out


TENSORFLOW = KerasHubRope("tensorflow")
JAX = KerasHubRope("jax")
TORCH = KerasHubRope("torch")
LLAMA3_TORCH = KerasHubRope("torch", llama3=True)
