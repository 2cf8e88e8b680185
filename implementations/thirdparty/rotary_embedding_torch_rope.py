"""lucidrains' rotary-embedding-torch: ``RotaryEmbedding.rotate_queries_or_keys``.

The library's public call rotates a contiguous sequence: positions are
``(arange(seq_len, dtype=x.dtype) + offset) / interpolate_factor`` (``get_seq_pos``), one
offset for the whole batch, the KV-cache use it is written for. The adapter therefore calls
``rotate_queries_or_keys(x[b:b+1, s0:s1], offset=p[b, s0])`` once per maximal run of
consecutive positions in each row (a prefill row is one run; a decode step, a per-row offset
or a packed restart are runs of their own) and concatenates the results. Every position the
library sees is its own ``offset + arange``; nothing is recomputed here. (The lower-level
``apply_rotary_emb(forward(positions), x)`` would take arbitrary positions at once, but it
skips ``get_seq_pos`` and so the position dtype and ``interpolate_factor``, which are part
of what the library does.)

Spec -> constructor (``RotaryEmbedding(dim, theta, interpolate_factor, theta_rescale_factor,
freqs_for="lang", seq_before_head_dim=True)``):
  * ``rotary_dim`` -> ``dim``: the library rotates the first ``dim`` channels of the last
    axis and passes the rest through, so r < head_dim is native. ``base`` -> ``theta``.
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
  * ``multi_axis``: unsupported; ``get_axial_freqs`` builds a grid of arange positions per
    axis, not per-token (x, y) or (t, h, w) positions.

State: ``forward`` caches the frequencies of the first offset-0 call (up to
``cache_max_seq_len`` = 8192 positions) and serves later calls that fit from that cache.
One module is kept per (spec, dtype): the cached values are those of positions in that dtype,
exactly what a fresh computation in that dtype gives, so results do not depend on the order
of calls; sharing one module across dtypes would serve one dtype's positions to another.

Precision: positions are built in x's dtype (float16 cannot hold integers past 2048, bfloat16
past 256); frequencies, angles and cos/sin are float32; the rotation runs in float32 for
float16/bfloat16 x (type promotion with the float32 cos/sin), then one rounding to x's dtype.
supports() is True for every dtype and the suite reports what the position dtype costs.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from rope_suite.conformance.spec import RopeSpec

from ._layout import from_interleaved, to_interleaved

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")


def position_runs(positions: list[int]) -> list[tuple[int, int]]:
    """Maximal [start, stop) token ranges of one row whose positions go up by exactly 1."""
    runs, start = [], 0
    for i in range(1, len(positions) + 1):
        if i == len(positions) or positions[i] != positions[i - 1] + 1:
            runs.append((start, i))
            start = i
    return runs


class RotaryEmbeddingTorchRope:
    """``rotary_embedding_torch.RotaryEmbedding`` as a plug-in object."""

    framework = "torch"
    device = "cpu"

    def __init__(self) -> None:
        self._modules: dict[tuple[RopeSpec, torch.dtype], Any] = {}

    def __repr__(self) -> str:
        return "RotaryEmbeddingTorchRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES or spec.multi_axis is not None:
            return False
        if spec.rope_type == "linear":
            return spec.scaling.factor >= 1.0
        return spec.rope_type in ("default", "ntk")

    def module(self, spec: RopeSpec, dtype: torch.dtype) -> Any:
        """The library's module for ``spec``, one per x dtype (its frequency cache is per dtype)."""
        key = (spec, dtype)
        if key not in self._modules:
            scaling = spec.scaling
            cls = importlib.import_module("rotary_embedding_torch").RotaryEmbedding
            self._modules[key] = cls(
                dim=spec.rotary_dim, theta=spec.base, freqs_for="lang", seq_before_head_dim=True,
                interpolate_factor=scaling.factor if spec.rope_type == "linear" else 1.0,
                theta_rescale_factor=scaling.factor if spec.rope_type == "ntk" else 1.0)
        return self._modules[key]

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] at positions [batch, seq]: one library call per run of
        consecutive positions in a row."""
        module = self.module(spec, x.dtype)
        half = spec.convention == "half"
        xi = to_interleaved(x, spec.rotary_dim) if half else x
        rows = []
        for b, row in enumerate(positions.tolist()):
            rows.append(torch.cat([module.rotate_queries_or_keys(xi[b:b + 1, s0:s1], offset=row[s0])
                                   for s0, s1 in position_runs(row)], dim=1))
        out = torch.cat(rows, dim=0)
        return from_interleaved(out, spec.rotary_dim) if half else out


ROPE = RotaryEmbeddingTorchRope()
