"""The cases the checks run: named specs, named position patterns, and the inputs they make.

A case is a spec (a model preset or a named variant), a dtype, a shape and a position pattern
named after what real models do with positions (``decode_offset_per_row``, ``packed_restart``,
...). Inputs come from a fixed seed derived from the case id, so every case is reproducible
from its id alone; x is rounded to the case's dtype so the float64 reference sees exactly the
numbers the implementation gets.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .frameworks import round_to
from .presets import PRESETS
from .spec import SCALING_TYPES, Axial2D, RopeSpec

# Specs beyond the model presets: every scaling type's examples (its record in
# spec.SCALING_TYPES), and interleaved partial rotary.
VARIANTS: dict[str, RopeSpec] = {
    **{name: RopeSpec(**kwargs) for kind in SCALING_TYPES.values() for name, kwargs in kind.examples.items()},
    "interleaved-partial-half": RopeSpec(head_dim=64, rotary_dim=32, convention="interleaved"),
    # Each feature as the only departure from the plain spec (rotate-half, whole head, no scaling,
    # one position axis), so a failure is charged to the feature that causes it: Meta's
    # interleaved pairs over the whole head, and 2D axial positions with rotate-half pairs.
    "interleaved-full": RopeSpec(head_dim=64, convention="interleaved"),
    "axial2d-half": RopeSpec(head_dim=64, multi_axis=Axial2D()),
    # Partial rotary at its smallest: one rotated pair (rotary_dim 2), the rest passes through.
    "partial-one-pair": RopeSpec(head_dim=64, rotary_dim=2),
}
# Run at sequence lengths 6 and 7 only (their original length is 6).
BOUNDARY: tuple[str, ...] = tuple(kind.boundary for kind in SCALING_TYPES.values() if kind.boundary)
# One example per scaling type, for the profiles that run fewer specs.
FIRST_EXAMPLES: tuple[str, ...] = tuple(next(iter(kind.examples)) for kind in SCALING_TYPES.values() if kind.examples)

SPECS: dict[str, RopeSpec] = {**PRESETS, **VARIANTS}

CASE_PROFILES: tuple[str, ...] = ("quick", "full")  # what Check.cases selects by
PROFILES: tuple[str, ...] = (*CASE_PROFILES, "strict")
# strict: the quick profile's cases, float64 judged against float64 angles (conformance.accuracy)
CASES_OF: dict[str, str] = {"strict": "quick"}

# Subsets that still cover every kind of feature, for the checks that need fewer cases.
REPRESENTATIVE: dict[str, tuple[str, ...]] = {
    "full": ("llama2-7b", "gpt-j-6b", "phi-2", "llama3.1-8b", "qwen2.5-7b-yarn", "dynamic-above", "longrope-long",
             "qwen3-vl", "sam2"),
    "quick": ("llama2-7b", "gpt-j-6b", "llama3.1-8b", "qwen2.5-7b-yarn", "dynamic-above", "qwen2-vl", "sam2"),
}
# The specs with a pass-through tail (partial rotary).
PARTIAL: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.rotary_dim < spec.head_dim)


def representative(profile: str) -> tuple[str, ...]:
    """The representative specs of ``profile``."""
    return REPRESENTATIVE[profile]

PositionPattern = Callable[[np.random.Generator, RopeSpec, int, int], np.ndarray]


def _streams(spec: RopeSpec, one_axis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give 1D positions [batch, seq] the spec's axes: M-RoPE gets (t, h, w) of an image-like grid
    after the text position; 2D axial gets (x, y) on a square-ish grid."""
    if spec.n_axes == 1:
        return one_axis
    batch, seq = one_axis.shape
    side = max(1, int(np.ceil(np.sqrt(seq))))
    cell = np.arange(seq)
    row, col = cell // side, cell % side
    if spec.n_axes == 2:
        return np.stack([np.broadcast_to(col, (batch, seq)), np.broadcast_to(row, (batch, seq))], axis=-1) \
            + rng.integers(0, 64, size=(batch, 1, 2))
    t = one_axis
    return np.stack([t, t + row, t + col], axis=-1)


def per_row(rng: np.random.Generator, spec: RopeSpec, batch: int, seq: int) -> np.ndarray:
    """Each row its own random positions below 4096 (padding, beams, ragged batches)."""
    return _streams(spec, np.sort(rng.integers(0, 4096, size=(batch, seq)), axis=1), rng)


def contiguous(rng: np.random.Generator, spec: RopeSpec, batch: int, seq: int) -> np.ndarray:
    """0, 1, ..., seq-1 in every row (prefill)."""
    return _streams(spec, np.broadcast_to(np.arange(seq), (batch, seq)).copy(), rng)


def offset(rng: np.random.Generator, spec: RopeSpec, batch: int, seq: int) -> np.ndarray:
    """A chunk continuing a KV cache: start + arange(seq), a different start per row."""
    return _streams(spec, rng.integers(1, 3000, size=(batch, 1)) + np.arange(seq), rng)


def decode_offset_per_row(rng: np.random.Generator, spec: RopeSpec, batch: int, seq: int) -> np.ndarray:
    """One new token per row (seq 1), each row at its own cache length (MLX 3494, Liger PR 477)."""
    return _streams(spec, rng.integers(1, 4096, size=(batch, 1)), rng)


def packed_restart(rng: np.random.Generator, spec: RopeSpec, batch: int, seq: int) -> np.ndarray:
    """Packed sequences: positions restart mid-row where the next document starts (Megatron PR 5243)."""
    out = np.empty((batch, seq), dtype=np.int64)
    for b in range(batch):
        cut = rng.integers(1, seq)
        out[b, :cut], out[b, cut:] = np.arange(cut), np.arange(seq - cut)
    return _streams(spec, out, rng)


def large_positions(rng: np.random.Generator, spec: RopeSpec, batch: int, seq: int) -> np.ndarray:
    """Positions up to 2^20 (long context; float32 angles are coarse here)."""
    return _streams(spec, np.sort(rng.integers((1 << 20) - 4096, (1 << 20) + 1, size=(batch, seq)), axis=1), rng)


PATTERNS: dict[str, PositionPattern] = {f.__name__: f for f in (
    per_row, contiguous, offset, decode_offset_per_row, packed_restart, large_positions)}


@dataclass(frozen=True)
class Case:
    """One input configuration. ``id`` names it completely; inputs are a pure function of it."""

    spec_name: str
    dtype: str
    pattern: str = "per_row"
    batch: int = 2
    seq: int = 6
    heads: int = 3
    pos_dtype: str = "int64"

    @property
    def spec(self) -> RopeSpec:
        return SPECS[self.spec_name]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.seq, self.heads, self.spec.head_dim)

    @property
    def id(self) -> str:
        parts = [self.spec_name, self.dtype, self.pattern]
        if (self.batch, self.seq, self.heads) != (2, 6, 3):
            parts.append(f"b{self.batch}s{self.seq}h{self.heads}")
        if self.pos_dtype != "int64":
            parts.append(self.pos_dtype)
        return "/".join(parts)

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    def inputs(self, salt: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(x, positions): x float64 holding values exactly representable in ``dtype``,
        positions int64 of the pattern's shape."""
        rng = np.random.default_rng([self.seed, salt])
        x = round_to(rng.standard_normal(self.shape), self.dtype)
        positions = PATTERNS[self.pattern](rng, self.spec, self.batch, self.seq)
        return x, np.ascontiguousarray(positions, dtype=np.int64)
