"""lucidrains' rotary-embedding-torch: ``RotaryEmbedding.rotate_queries_or_keys`` for one
position stream, ``get_axial_freqs`` + ``apply_rotary_emb`` for 2D axial positions.

Read from rotary-embedding-torch 0.9.1, ``rotary_embedding_torch/rotary_embedding_torch.py``.

One position stream. The library's public call rotates a contiguous sequence: positions are
``(arange(seq_len, dtype=x.dtype) + offset) / interpolate_factor`` (``get_seq_pos``), one
offset for the whole batch, the KV-cache use it is written for. The adapter therefore calls
``rotate_queries_or_keys(x[b:b+1, s0:s1], offset=p[b, s0])`` once per maximal run of
consecutive positions in each row (a prefill row is one run; a decode step, a per-row offset
or a packed restart are runs of their own) and concatenates the results. Every position the
library sees is its own ``offset + arange``; nothing is recomputed here. (The lower-level
``apply_rotary_emb(forward(positions), x)`` would take arbitrary positions at once, but it
skips ``get_seq_pos`` and so the position dtype and ``interpolate_factor``, which are part
of what the library does.)

2D axial positions (``Axial2D``: the first r/4 pairs rotate with x, the last r/4 with y).
The library's axial API is ``get_axial_freqs(*dims, offsets=...)``: one arange per axis of a
grid, shifted by one offset per axis, each through ``forward``, concatenated in the order of
``dims``. A user with a W x H patch grid flattened row-major (x fastest, as SAM 2 does) builds
``RotaryEmbedding(dim=r/2)`` once, calls ``get_axial_freqs(W, H, offsets=(x0, y0))`` (x first,
so the x frequencies take the first r/2 channels), flattens ``w h d -> (h w) d`` and rotates
with ``apply_rotary_emb``. The adapter does exactly that per batch row whose positions are
such a grid (every pattern the suite's cases use; a last grid row may be partial, its tokens
are the first ``seq`` cells). A row that is no grid (hypothesis-drawn positions) goes through
the only form of the API that takes an arbitrary (x, y): ``get_axial_freqs(1, 1,
offsets=(x, y))`` per token. Each axis gets base^(-2j/(r/2)), j < r/4 (``freqs_for="lang"``
with dim r/2), exactly Axial2D's frequencies.

Spec -> constructor (``RotaryEmbedding(dim, theta, interpolate_factor, theta_rescale_factor,
freqs_for="lang", seq_before_head_dim=True)``, every other argument the library's default, so
``cache_if_possible=True``):
  * ``rotary_dim`` -> ``dim`` (r/2 with 2D axial positions, one half per axis): the library
    rotates the first ``dim`` channels of the last axis and passes the rest through, so
    r < head_dim is native. ``dim=2`` is accepted by the signature and claimed (it raises
    ZeroDivisionError in ``__init__``: ``theta_rescale_factor ** (dim / (dim - 2))``, the
    suite reports it). ``base`` -> ``theta``.
  * ``seq_before_head_dim=True``: x is [batch, seq, heads, head_dim], the suite's layout.
  * ``convention``: "interleaved" natively (its ``rotate_half`` pairs adjacent channels).
    "half" through the exact channel permutation of :mod:`._layout` (the one Meta <-> HF
    checkpoint conversion applies to q/k), applied to the first r channels and undone after.
  * ``linear`` -> ``interpolate_factor = factor`` (positions divided by it); the library
    asserts factor >= 1, so smaller factors are unsupported.
  * ``ntk`` -> ``theta_rescale_factor = factor``: the library sets
    theta *= factor^(dim / (dim - 2)), static NTK-aware scaling exactly.
  * dynamic, yarn, llama3, longrope: not in the library (``custom_freqs`` would take any
    frequencies, but computing them here is not the library's code): unsupported.
  * ``multi_axis``: ``Axial2D`` as above; ``MRope`` unsupported (no sectioned frequencies in
    the library).

State: ``forward(t, seq_len, offset=0)`` caches the frequencies of its first call with
``offset == 0`` (up to ``cache_max_seq_len`` = 8192 positions) in ``cached_freqs[:seq_len]`` and
serves every later call with ``offset + seq_len <= cached_freqs_seq_len`` from that cache. One
module is kept per (spec, dtype), as a model keeps its own across calls. For one stream the
cached values are those of positions in that dtype, exactly what a fresh computation gives.
``get_axial_freqs`` calls ``forward(arange(n) + offset, seq_len=n)`` without passing the offset,
so the first axis caches its *offset* positions as if they were 0..n-1 and the second axis (and
every later call) is served those: the adapter keeps that default cache, and the suite sees it.

Precision: positions are built in x's dtype on the one-stream path (float16 cannot hold
integers past 2048, bfloat16 past 256, float16 overflows at 65520); the axial path builds them
in int64 and casts to float32 in ``forward``. Frequencies, angles and cos/sin are float32; the
rotation runs in float32 for float16/bfloat16 x (type promotion with the float32 cos/sin) and
in float64 for float64 x, then one rounding to x's dtype. supports() is True for every dtype
and the suite reports what the position dtype costs.

Nothing is supplied: the library computes frequencies, scaling, the axial positions and the
rotation itself (the grid detection only chooses the arguments of its own calls).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch

from rope_suite.conformance.deviations import Deviation, axis_kind
from rope_suite.conformance.spec import Axial2D, RopeSpec

from . import _layout
from ._layout import from_interleaved, to_interleaved

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
WHERE = "rotary_embedding_torch/rotary_embedding_torch.py"


def position_runs(positions: list[int]) -> list[tuple[int, int]]:
    """Maximal [start, stop) token ranges of one row whose positions go up by exactly 1."""
    runs, start = [], 0
    for i in range(1, len(positions) + 1):
        if i == len(positions) or positions[i] != positions[i - 1] + 1:
            runs.append((start, i))
            start = i
    return runs


def rotate_runs(module: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [batch, seq, heads, d] at positions [batch, seq]: ``rotate_queries_or_keys`` once per
    run of consecutive positions of each row, with the run's first position as ``offset``."""
    rows = []
    for b, row in enumerate(positions.tolist()):
        rows.append(torch.cat([module.rotate_queries_or_keys(x[b:b + 1, s0:s1], offset=row[s0])
                               for s0, s1 in position_runs(row)], dim=1))
    return torch.cat(rows, dim=0)


def grid_of(row: list[list[int]]) -> tuple[int, int, int, int] | None:
    """(width, height, x0, y0) when the (x, y) positions of one row are a row-major grid of that
    width starting at (x0, y0), x fastest (the last grid row may be partial); else None."""
    x0, y0 = row[0]
    width = next((t for t, (_, y) in enumerate(row) if y != y0), len(row))
    if any((x, y) != (x0 + t % width, y0 + t // width) for t, (x, y) in enumerate(row)):
        return None
    return width, -(-len(row) // width), x0, y0


def rotate_axial(module: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [batch, seq, heads, d] at 2D positions [batch, seq, 2]: per row, ``get_axial_freqs(W, H,
    offsets=(x0, y0))`` flattened ``w h d -> (h w) d`` when the row is a grid, else
    ``get_axial_freqs(1, 1, offsets=(x, y))`` per token; then ``apply_rotary_emb``."""
    from rotary_embedding_torch import apply_rotary_emb  # lazily: importing the adapter never needs the library

    rows = []
    for b, row in enumerate(positions.tolist()):
        grid = grid_of(row)
        if grid is not None:
            width, height, x0, y0 = grid
            freqs = module.get_axial_freqs(width, height, offsets=(x0, y0))
            freqs = freqs.transpose(0, 1).reshape(width * height, -1)[:len(row)]
        else:
            freqs = torch.cat([module.get_axial_freqs(1, 1, offsets=(px, py)).reshape(1, -1) for px, py in row])
        rows.append(apply_rotary_emb(freqs[:, None, :], x[b:b + 1]))
    return torch.cat(rows, dim=0)


def _rotary_dim(record: dict[str, Any]) -> int | None:
    return (record.get("spec") or {}).get("rotary_dim")


class RotaryEmbeddingTorchRope:
    """``rotary_embedding_torch.RotaryEmbedding`` as a plug-in object."""

    framework = "torch"
    device = "cpu"
    deviations: tuple[Deviation, ...] = (
        Deviation(
            "dim-2-zero-division", "bug",
            "RotaryEmbedding(dim=2) raises ZeroDivisionError: __init__ computes "
            "theta_rescale_factor ** (dim / (dim - 2)) even when theta_rescale_factor is 1",
            f"{WHERE}: RotaryEmbedding.__init__",
            lambda rec: "ZeroDivisionError" in (rec.get("reason") or "")
            and _rotary_dim(rec) == (4 if axis_kind(rec) == "axial2d" else 2)),
        Deviation(
            "axial-offset-cache", "bug",
            "get_axial_freqs passes each axis's arange(n) + offset to forward() without the offset, so the "
            "default cache (cache_if_possible=True) stores the first axis's shifted positions as positions "
            "0..n-1 and serves them to the second axis and to every later call: y takes x's offset "
            "(error 5.9 on sam2 in float32, 5e-6 with the cache off)",
            f"{WHERE}: RotaryEmbedding.get_axial_freqs / RotaryEmbedding.forward",
            lambda rec: axis_kind(rec) == "axial2d" and rec.get("status") == "failed"),
        Deviation(
            "positions-in-x-dtype", "bug",
            "get_seq_pos builds arange(seq_len) + offset in x's dtype: float16 positions round from 2049 on "
            "and overflow at 65520 (NaN output at 2^20), bfloat16 positions round from 257 on",
            f"{WHERE}: RotaryEmbedding.get_seq_pos (called by rotate_queries_or_keys)",
            lambda rec: axis_kind(rec) is None and rec.get("status") == "failed"
            and rec.get("dtype") in ("float16", "bfloat16")),
        Deviation(
            "float32-angles", "precision choice",
            "frequencies (a float32 Parameter), angles and cos/sin are float32 for float64 x",
            f"{WHERE}: RotaryEmbedding.__init__ (freqs .float()) / RotaryEmbedding.forward",
            lambda rec: axis_kind(rec) is None and rec.get("dtype") == "float64" and rec.get("status") == "failed"),
    )

    def __init__(self) -> None:
        self._modules: dict[tuple[RopeSpec, torch.dtype], Any] = {}

    def __repr__(self) -> str:
        return "RotaryEmbeddingTorchRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or not (spec.multi_axis is None or isinstance(spec.multi_axis, Axial2D)):
            return False
        if spec.rope_type == "linear":
            return spec.scaling.factor >= 1.0
        return spec.rope_type in ("default", "ntk")

    @staticmethod
    def constructor(spec: RopeSpec) -> dict[str, Any]:
        """``RotaryEmbedding``'s keyword arguments for ``spec``."""
        scaling, axial = spec.scaling, spec.multi_axis is not None
        return dict(dim=spec.rotary_dim // 2 if axial else spec.rotary_dim, theta=spec.base, freqs_for="lang",
                    seq_before_head_dim=True,
                    interpolate_factor=scaling.factor if spec.rope_type == "linear" else 1.0,
                    theta_rescale_factor=scaling.factor if spec.rope_type == "ntk" else 1.0)

    def module(self, spec: RopeSpec, dtype: torch.dtype) -> Any:
        """The library's module for ``spec``, one per x dtype (its frequency cache is per dtype)."""
        key = (spec, dtype)
        if key not in self._modules:
            cls = importlib.import_module("rotary_embedding_torch").RotaryEmbedding
            self._modules[key] = cls(**self.constructor(spec))
        return self._modules[key]

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] at positions [batch, seq] (one library call per run of
        consecutive positions in a row) or [batch, seq, 2] (axial frequencies per row)."""
        module = self.module(spec, x.dtype)
        rotate = rotate_axial if spec.multi_axis is not None else rotate_runs
        if spec.convention == "interleaved":
            return rotate(module, x, positions)
        return from_interleaved(rotate(module, to_interleaved(x, spec.rotary_dim), positions), spec.rotary_dim)

    def reproduction(self, spec: RopeSpec, dtype: str) -> str | None:
        """Self-contained source of ``make()``: the module built once for ``spec`` and ``rope(x,
        positions)`` calling it as :meth:`rope` does (the helpers are this module's own source)."""
        axial = spec.multi_axis is not None
        helpers = [position_runs, rotate_runs] if not axial else [grid_of, rotate_axial]
        if spec.convention == "half":
            helpers += [_layout.interleaved_order, _layout.to_interleaved, _layout.from_interleaved]
        call = f"{'rotate_axial' if axial else 'rotate_runs'}(module, {{x}}, positions)"
        body = (call.format(x="x") if spec.convention == "interleaved" else
                f"from_interleaved({call.format(x=f'to_interleaved(x, {spec.rotary_dim})')}, {spec.rotary_dim})")
        return "\n\n".join([
            "from __future__ import annotations\n\nfrom typing import Any\n\nimport torch\n"
            "from rotary_embedding_torch import RotaryEmbedding",
            *(inspect.getsource(f) for f in helpers),
            f"def make():\n    module = RotaryEmbedding(**{self.constructor(spec)!r})\n\n"
            f"    def rope(x, positions):\n        return {body}\n\n    return rope\n"])


ROPE = RotaryEmbeddingTorchRope()
