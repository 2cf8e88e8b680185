"""lucidrains' x-transformers: ``RotaryEmbedding`` + ``apply_rotary_pos_emb``.

Read from x-transformers 2.31.10, ``x_transformers/x_transformers.py``, the module
``AttentionLayers`` builds its rotary embedding from (``rotary_pos_emb=True``).

What the library computes: ``RotaryEmbedding(dim, use_xpos, scale_base, interpolation_factor,
base, base_rescale_factor)`` sets ``base *= base_rescale_factor ** (dim / (dim - 2))`` (Python
floats) and keeps ``inv_freq = 1 / base ** (arange(0, dim, 2).float() / dim)``, a float32
buffer. ``forward(t)`` takes positions [n] or [b, n] (``AttentionLayers`` passes ``pos``, by
default ``arange(seq)``, or the caller's own) and returns ``(freqs, 1.)`` without xpos, freqs =
``einsum('b i, j -> b i j', t.type_as(inv_freq), inv_freq) / interpolation_factor``
(float32 angles, divided by the factor after the product) laid out
``stack((freqs, freqs), -1)`` flattened: [f0, f0, f1, f1, ...], [b, n, dim].
``apply_rotary_pos_emb(t, freqs, scale)`` (t [b, h, n, d], freqs made [b, 1, n, dim]) takes the
last n rows of freqs, rotates ``t[..., :dim]`` as ``t * freqs.cos() * scale + rotate_half(t) *
freqs.sin() * scale`` and concatenates ``t[..., dim:]`` unchanged ("partial rotary embeddings,
Wang et al. GPT-J"), then ``.type(orig_dtype)``. Its ``rotate_half``, despite the name, pairs
*adjacent* channels (``'... (d r) -> ... d r', r = 2``, then ``stack((-x2, x1))``): GPT-J's
interleaved pairs (2i, 2i + 1), matching the [f0, f0, f1, f1, ...] layout, not GPT-NeoX's
rotate-half. Both functions run under ``disable_autocast``.

Spec -> call (``RotaryEmbedding(dim, interpolation_factor, base, base_rescale_factor)``,
``use_xpos=False``; one module per spec, kept across calls as ``AttentionLayers`` keeps
``self.rotary_pos_emb``):
  * ``rotary_dim`` -> ``dim`` (``AttentionLayers``' ``rotary_emb_dim``, by default head_dim/2):
    the exponent's denominator is ``dim`` and ``apply_rotary_pos_emb`` passes channels past it
    through, so r < head_dim is HF partial rotary, natively. ``rotary_dim=2`` is accepted by the
    signature and claimed (``__init__`` evaluates ``base_rescale_factor ** (dim / (dim - 2))``
    even when the factor is 1, which divides by zero at dim 2; the suite reports what happens).
  * ``base`` -> ``base``.
  * ``convention``: "interleaved" natively (above). "half" through the exact channel permutation
    of :mod:`._layout` (Meta <-> HF checkpoint conversion) on the first r channels, a gather
    before and after, bit-exact, so every number is x-transformers'.
  * ``linear`` -> ``interpolation_factor = factor`` (angles / factor: HF's theta_i / s up to the
    order of rounding; the library asserts factor >= 1, which every spec's factor is).
  * ``ntk`` -> ``base_rescale_factor = factor``: base * factor^(dim / (dim - 2)) with dim = r,
    static NTK-aware scaling exactly (the comment cites bloc97's post).
  * dynamic, yarn, llama3, longrope: not in the library. ``use_xpos`` (xPos's per-position
    magnitude scale) is out of scope: no RopeSpec means it, so it stays off.
  * ``multi_axis``: unsupported (one position stream).
  * Positions [batch, seq] go to ``forward`` as they are (it takes [b, n]), giving one table row
    per token; x is transposed to [batch, heads, seq, head_dim] (``Attention``'s layout for q
    and k) and back. One ``forward`` and one ``apply_rotary_pos_emb`` per call, with the
    ``scale`` forward returned (1.0), as ``Attention.forward`` passes it.

Precision: inv_freq and angles are float32 (positions cast with ``type_as(inv_freq)``, exact
below 2^24); cos/sin float32; the products follow dtype promotion (float32 for float16/bfloat16
x, float64 for float64 x with float32 cos/sin), then one rounding to x's dtype.

Nothing is supplied: the library computes frequencies, its scalings, the partial tail and the
rotation.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import RopeSpec

from . import _layout
from ._layout import from_interleaved, to_interleaved

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
WHERE = "x_transformers/x_transformers.py"


def rotate(module: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [batch, seq, heads, head_dim] at positions [batch, seq]: ``module(positions)`` (a kept
    ``RotaryEmbedding``) and ``apply_rotary_pos_emb`` on x as [batch, heads, seq, head_dim]."""
    from x_transformers.x_transformers import apply_rotary_pos_emb

    freqs, scale = module(positions)
    return apply_rotary_pos_emb(x.transpose(1, 2), freqs, scale).transpose(1, 2)


DIM_2_ZERO_DIVISION = Deviation(
    "dim-2-zero-division", "bug",
    "RotaryEmbedding(dim=2) raises ZeroDivisionError: __init__ computes base_rescale_factor ** (dim / (dim - 2)) "
    "even when base_rescale_factor is 1, so a rotary dimension of one pair (rotary_emb_dim=2, which "
    "AttentionLayers accepts) cannot be built.",
    f"{WHERE}: RotaryEmbedding.__init__",
    lambda record: "ZeroDivisionError" in (record.get("reason") or "")
    and (record.get("spec") or {}).get("rotary_dim") == 2)


FLOAT32_ANGLES = Deviation(
    "float32-angles", "precision choice",
    "inv_freq is a float32 buffer and forward casts positions to it (t.type_as(inv_freq)), so angles and "
    "cos/sin are float32 and a float64 input gets float32 angles.",
    f"{WHERE}: RotaryEmbedding.__init__ (arange(...).float()) / RotaryEmbedding.forward",
    lambda record: record.get("dtype") == "float64" and record.get("status") == "failed")


class XTransformersRope:
    """``x_transformers.x_transformers.RotaryEmbedding`` as a plug-in object."""

    framework = "torch"
    device = "cpu"
    deviations: tuple[Deviation, ...] = (DIM_2_ZERO_DIVISION, FLOAT32_ANGLES)

    def __init__(self) -> None:
        self._modules: dict[RopeSpec, Any] = {}

    def __repr__(self) -> str:
        return "XTransformersRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return dtype_name in DTYPES and spec.multi_axis is None and spec.rope_type in ("default", "linear", "ntk")

    @staticmethod
    def constructor(spec: RopeSpec) -> dict[str, Any]:
        """``RotaryEmbedding``'s keyword arguments for ``spec``."""
        factor = spec.scaling.factor if spec.scaling is not None else 1.0
        return dict(dim=spec.rotary_dim, base=spec.base,
                    interpolation_factor=factor if spec.rope_type == "linear" else 1.0,
                    base_rescale_factor=factor if spec.rope_type == "ntk" else 1.0)

    def module(self, spec: RopeSpec) -> Any:
        """The library's ``RotaryEmbedding`` for ``spec``, built once and kept."""
        if spec not in self._modules:
            cls = importlib.import_module("x_transformers.x_transformers").RotaryEmbedding
            self._modules[spec] = cls(**self.constructor(spec))
        return self._modules[spec]

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at positions [batch, seq]."""
        module = self.module(spec)
        if spec.convention == "interleaved":
            return rotate(module, x, positions)
        return from_interleaved(rotate(module, to_interleaved(x, spec.rotary_dim), positions), spec.rotary_dim)

    def reproduction(self, spec: RopeSpec, dtype_name: str) -> str | None:
        """Self-contained source of ``make()``: the module built once for ``spec`` and ``rope(x,
        positions)`` calling it as :meth:`rope` does (the helpers are this module's own source)."""
        if not self.supports(spec, dtype_name):
            return None
        r = spec.rotary_dim
        helpers: list[Any] = [rotate]
        body = "rotate(module, x, positions)"
        if spec.convention == "half":
            helpers += [_layout.interleaved_order, _layout.to_interleaved, _layout.from_interleaved]
            body = f"from_interleaved(rotate(module, to_interleaved(x, {r}), positions), {r})"
        return "\n\n".join([
            "from __future__ import annotations\n\nfrom typing import Any\n\nimport torch\n"
            "from x_transformers.x_transformers import RotaryEmbedding",
            *(inspect.getsource(f) for f in helpers),
            f"def make():\n    module = RotaryEmbedding(**{self.constructor(spec)!r})  # kept across calls\n\n"
            f"    def rope(x, positions):\n        return {body}\n\n    return rope\n"])


X_TRANSFORMERS = XTransformersRope()
