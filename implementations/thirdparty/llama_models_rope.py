"""Meta's reference Llama code (llama-models): ``precompute_freqs_cis`` + ``apply_rotary_emb``.

Read from llama-models 0.3.0: ``llama_models/llama3/model.py`` (Llama 3, 3.1, 3.2 text) and
``llama_models/llama4/model.py`` (Llama 4), imported as modules (they need ``torch`` and
``fairscale``, nothing heavier: ``pip install --no-deps llama-models fairscale``).

What the library computes:
  * ``precompute_freqs_cis(dim, end, theta, use_scaled)`` (llama3) -> complex64 [end, dim/2]:
    freqs = 1 / theta^(arange(0, dim, 2)[:dim/2] / dim) (float32), optionally through
    ``apply_scaling`` (Llama 3.1's frequency scaling with its constants written in the function:
    scale_factor 8, low_freq_factor 1, high_freq_factor 4, old_context_len 8192), angles
    ``outer(arange(end, float32), freqs)``, ``polar(1, angles)``.
  * llama4's ``precompute_freqs_cis(dim, end, theta, use_scaled, scale_factor,
    high_freq_factor)``: the same table; its ``apply_scaling`` takes the scale and high-frequency
    factors as parameters (low_freq_factor 1 and old_context_len 8192 are written in) and
    computes per frequency in Python floats (``math.pi``), rounded back to float32
    (``torch.tensor(new_freqs, dtype=freqs.dtype)``).
  * ``apply_rotary_emb(xq, xk, freqs_cis)`` (the same code in both): adjacent channels as complex
    numbers (``view_as_complex(x.float().reshape(..., -1, 2))``), times the table broadcast over
    batch and heads (``reshape_for_broadcast`` asserts it is [seq, dim/2]), ``view_as_real``,
    ``type_as(x)``.
  * ``Transformer`` builds the table once (``precompute_freqs_cis(dim // n_heads,
    max_seq_len * 2, rope_theta, use_scaled_rope[, rope_scaling_factor,
    rope_high_freq_factor])``), keeps it, and each forward slices
    ``freqs_cis[start_pos : start_pos + seqlen]``: one start for the whole batch.

The adapter keeps one table per spec, built with ``end`` = the call's max(position) + 1 rounded
up to a multiple of 4096 and rebuilt longer only when a call needs more rows (the model's is
fixed at 2 x max_seq_len). Since the library takes one [seq, dim/2] table for the whole batch,
each batch row is one ``apply_rotary_emb`` call with that row's table rows,
``freqs_cis[positions[b]]`` (a contiguous row is exactly the model's slice; a row whose
positions are not consecutive, padding or packed documents, selects the same table's rows).

Spec -> call:
  * ``head_dim`` -> ``dim``; ``base`` -> ``theta``. ``rotary_dim`` must equal ``head_dim``
    (the library rotates the whole head; there is no pass-through tail in Meta's models).
  * ``convention``: "interleaved" natively (Meta's complex pairs). "half" through the exact
    channel permutation of :mod:`._layout` (the one HF's ``convert_llama_weights_to_hf.py``
    applies to q/k), a gather before and after, so every number is the library's.
  * :data:`LLAMA3`: no scaling (``use_scaled=False``), or ``llama3`` with exactly the constants
    ``apply_scaling`` has written in (factor 8, low_freq_factor 1, high_freq_factor 4,
    original_max_position_embeddings 8192) -> ``use_scaled=True``; any other llama3 values
    (Llama 3.2's factor 32, say) cannot be expressed: unsupported.
  * :data:`LLAMA4`: no scaling, or ``llama3`` with low_freq_factor 1 and
    original_max_position_embeddings 8192 (written in) -> ``use_scaled=True``,
    ``scale_factor=factor``, ``high_freq_factor`` (Llama 4 Scout's high_freq_factor 1 equals
    its low one, which a llama3 spec cannot state).
  * Other scalings and ``multi_axis``: not in the library: unsupported.
  * ``rope`` passes x as ``xq`` and a one-head key of zeros whose result is dropped (the
    library cannot reshape a key with no heads); ``rope_qk`` passes q and k, as
    ``Attention.forward`` does. ``max_position`` = :data:`MAX_POSITION`.

Precision: the table is complex64 from float32 angles and x goes through ``x.float()``, so
float64 x loses its low bits before a complex64 rotation; supports(float64) is True and the
suite reports what that costs. float16/bfloat16 x is rotated in float32 and rounded once.

Nothing is supplied: the frequencies, the scaling and the rotation are the library's.
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
from ._tables import table_length

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
MAX_POSITION = 1 << 20
"""Largest position a table is built for (2^20 + 4096 rows of complex64: 512 MiB at head_dim 128)."""
LLAMA3_CONSTANTS = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 8192}
"""What llama3/model.py's ``apply_scaling`` has written in."""



def rotate_rows(apply_rotary_emb: Any, q: torch.Tensor, k: torch.Tensor, freqs_cis: torch.Tensor,
                positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k [batch, seq, heads, head_dim] through ``apply_rotary_emb``, one call per batch row with
    that row's table rows ``freqs_cis[positions[b]]`` (the library takes one table per batch)."""
    rows = [apply_rotary_emb(q[b:b + 1], k[b:b + 1], freqs_cis[positions[b]]) for b in range(q.shape[0])]
    return torch.cat([qb for qb, _ in rows]), torch.cat([kb for _, kb in rows])


def one_head_key(x: torch.Tensor) -> torch.Tensor:
    """A key [batch, seq, 1, head_dim] of zeros, for ``rope`` (``apply_rotary_emb`` always takes a key)."""
    return x.new_zeros((*x.shape[:2], 1, x.shape[3]))


class LlamaModelsRope:
    """Meta's ``precompute_freqs_cis`` + ``apply_rotary_emb`` (llama3 or llama4 module) as a plug-in object."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION

    def __init__(self, version: str) -> None:
        if version not in ("llama3", "llama4"):
            raise ValueError(f"version={version!r} is invalid: allowed 'llama3', 'llama4'")
        self.version = version
        self.module_name = f"llama_models.{version}.model"
        self._tables: dict[RopeSpec, torch.Tensor] = {}
        self.deviations: tuple[Deviation, ...] = (Deviation(
            "float32-rotation", "precision choice",
            "the table is complex64 from float32 angles and apply_rotary_emb rotates x.float(), so float64 x gets "
            "float32 angles and a float32 rotation",
            f"llama_models/{version}/model.py: precompute_freqs_cis, apply_rotary_emb",
            lambda rec: rec.get("dtype") == "float64" and rec.get("status") == "failed"),)

    def __repr__(self) -> str:
        return f"LlamaModelsRope({self.version!r})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.multi_axis is not None or spec.rotary_dim != spec.head_dim:
            return False
        if spec.rope_type == "default":
            return True
        if spec.rope_type != "llama3":
            return False
        s = spec.scaling
        fixed = LLAMA3_CONSTANTS if self.version == "llama3" else {
            k: LLAMA3_CONSTANTS[k] for k in ("low_freq_factor", "original_max_position_embeddings")}
        return all(getattr(s, key) == value for key, value in fixed.items())

    def arguments(self, spec: RopeSpec) -> dict[str, Any]:
        """``precompute_freqs_cis``'s keyword arguments for ``spec``, all but ``end``."""
        if not self.supports(spec, "float32"):
            raise ValueError(f"spec {spec.to_dict()} is invalid for {self!r}: see supports() and the module docstring")
        scaled = spec.rope_type == "llama3"
        out: dict[str, Any] = dict(dim=spec.head_dim, theta=spec.base, use_scaled=scaled)
        if self.version == "llama4":
            out.update(scale_factor=spec.scaling.factor if scaled else None,
                       high_freq_factor=spec.scaling.high_freq_factor if scaled else None)
        return out

    def table(self, spec: RopeSpec, needed: int) -> torch.Tensor:
        """The library's ``freqs_cis`` for ``spec`` with at least ``needed`` rows: kept, and rebuilt
        longer only when a call needs more."""
        if needed > MAX_POSITION + 1:
            raise ValueError(f"position {needed - 1} is invalid: this adapter builds Meta's freqs_cis for "
                             f"positions <= {MAX_POSITION}")
        kept = self._tables.get(spec)
        if kept is None or kept.shape[0] < needed:
            precompute = importlib.import_module(self.module_name).precompute_freqs_cis
            kept = precompute(end=table_length(needed), **self.arguments(spec))
            self._tables[spec] = kept
        return kept

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated at positions [batch, seq]."""
        needed = int(positions.max()) + 1 if positions.numel() else 1
        freqs_cis = self.table(spec, needed).to(q.device)
        apply = importlib.import_module(self.module_name).apply_rotary_emb
        if spec.convention == "interleaved":
            return rotate_rows(apply, q, k, freqs_cis, positions)
        r = spec.rotary_dim
        qo, ko = rotate_rows(apply, to_interleaved(q, r), to_interleaved(k, r), freqs_cis, positions)
        return from_interleaved(qo, r), from_interleaved(ko, r)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at positions [batch, seq]; the key is one head of
        zeros whose result is dropped (the library rejects a key with no heads)."""
        return self.rope_qk(x, one_head_key(x), positions, spec)[0]

    def reproduction(self, spec: RopeSpec, dtype: str) -> str | None:
        """Self-contained source of ``make()``: the table for ``spec``, kept and rebuilt longer when a
        call needs it, and :func:`rotate_rows`, as :meth:`rope` calls them."""
        if not self.supports(spec, dtype):
            return None
        r = spec.rotary_dim
        helpers = [table_length, one_head_key, rotate_rows]
        call = "rotate_rows(apply_rotary_emb, x, one_head_key(x), kept, positions)[0]"
        if spec.convention == "half":
            helpers += [_layout.interleaved_order, _layout.to_interleaved, _layout.from_interleaved]
            call = (f"from_interleaved(rotate_rows(apply_rotary_emb, to_interleaved(x, {r}), one_head_key(x), kept, "
                    f"positions)[0], {r})")
        return "\n\n".join([
            f"from __future__ import annotations\n\nfrom typing import Any\n\nimport torch\n"
            f"from {self.module_name} import apply_rotary_emb, precompute_freqs_cis",
            *(inspect.getsource(f) for f in helpers),
            f"def make():\n    kept = None\n\n"
            f"    def rope(x, positions):\n        nonlocal kept\n"
            f"        needed = int(positions.max()) + 1 if positions.numel() else 1\n"
            f"        if kept is None or kept.shape[0] < needed:\n"
            f"            kept = precompute_freqs_cis(end=table_length(needed), **{self.arguments(spec)!r})\n"
            f"        return {call}\n\n    return rope\n"])


LLAMA3 = LlamaModelsRope("llama3")
LLAMA4 = LlamaModelsRope("llama4")
