"""What the benchmarks time: shape presets from real models and phases, and the two profiles.

A :class:`Shape` is one model phase at one size (decode with a KV-cache offset per row,
prefill, long context, a vision grid, grouped-query attention); a :class:`BenchCase` is a
shape in one dtype, one direction (``forward`` or ``forward+backward``) and one mode
(``q``: rope(q); ``qk``: rope_qk(q, k)). The case id ``shape/dtype/direction/mode`` names it
everywhere: pytest ids, results rows, reports.

Inputs come from a fixed seed, are built in NumPy and converted once, before any timing.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np

from rope_suite.conformance.presets import preset
from rope_suite.conformance.spec import RopeSpec

PROFILES: tuple[str, ...] = ("quick", "full")
ITEMSIZE: dict[str, int] = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
POSITION_ITEMSIZE = 8  # positions are int64


@dataclass(frozen=True)
class Shape:
    """One model phase at one size.

    phase: decode | prefill | long | vision | gqa.
    spec_name: a preset (``rope-suite presets``); its head_dim is the tensors' last axis.
    heads_q, heads_k: heads of q and of k (k only in mode ``qk``; GQA has heads_k < heads_q).
    kv_offset: decode only, the largest KV-cache length a row may already hold; each row's one
        new token sits at its own offset drawn below it (continuous batching).
    grid: vision only, (height, width) of the patch grid; seq = height * width, positions (x, y).
    """

    name: str
    phase: str
    spec_name: str
    batch: int
    seq: int
    heads_q: int
    heads_k: int
    kv_offset: int = 0
    grid: tuple[int, int] | None = None

    @property
    def spec(self) -> RopeSpec:
        return preset(self.spec_name)

    def positions(self, seed: int) -> np.ndarray:
        """int64 positions [batch, seq] (or [batch, seq, 2] for a vision grid)."""
        if self.grid is not None:
            h, w = self.grid
            ys, xs = np.divmod(np.arange(h * w), w)
            return np.broadcast_to(np.stack((xs, ys), axis=-1), (self.batch, h * w, 2)).astype(np.int64).copy()
        if self.kv_offset:
            rng = np.random.default_rng(seed)
            start = rng.integers(self.kv_offset // 8, self.kv_offset, size=(self.batch, 1))
            return (start + np.arange(self.seq)).astype(np.int64)
        return np.broadcast_to(np.arange(self.seq, dtype=np.int64), (self.batch, self.seq)).copy()


SHAPES: dict[str, Shape] = {s.name: s for s in (
    # Llama 2 7B (32 heads of 128), one new token per sequence at per-row KV offsets up to 4096.
    Shape("decode-b32", "decode", "llama2-7b", batch=32, seq=1, heads_q=32, heads_k=32, kv_offset=4096),
    Shape("decode-b64", "decode", "llama2-7b", batch=64, seq=1, heads_q=32, heads_k=32, kv_offset=4096),
    # Llama 2 7B prefill of one prompt; with long-32k, the throughput-versus-length series.
    Shape("prefill-512", "prefill", "llama2-7b", batch=1, seq=512, heads_q=32, heads_k=32),
    Shape("prefill-2048", "prefill", "llama2-7b", batch=1, seq=2048, heads_q=32, heads_k=32),
    Shape("prefill-8192", "prefill", "llama2-7b", batch=1, seq=8192, heads_q=32, heads_k=32),
    Shape("long-32k", "long", "llama2-7b", batch=1, seq=32768, heads_q=32, heads_k=32),
    # SAM 2 memory attention: 2D axial RoPE over the image-embedding grid (one head of 256).
    Shape("vision-sam2-32x32", "vision", "sam2", batch=4, seq=32 * 32, heads_q=1, heads_k=1, grid=(32, 32)),
    Shape("vision-sam2-64x64", "vision", "sam2", batch=4, seq=64 * 64, heads_q=1, heads_k=1, grid=(64, 64)),
    # Llama 3.1 8B: 32 query heads, 8 KV heads, llama3 frequency scaling.
    Shape("gqa-llama3-512", "gqa", "llama3.1-8b", batch=1, seq=512, heads_q=32, heads_k=8),
    Shape("gqa-llama3-2048", "gqa", "llama3.1-8b", batch=1, seq=2048, heads_q=32, heads_k=8),
)}


@dataclass(frozen=True)
class BenchCase:
    """A shape in one dtype, direction and mode."""

    shape: Shape
    dtype: str
    direction: str = "forward"
    mode: str = "q"

    @property
    def id(self) -> str:
        return f"{self.shape.name}/{self.dtype}/{self.direction}/{self.mode}"

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    def tensor_shapes(self) -> list[tuple[int, ...]]:
        """[batch, seq, heads, head_dim] of q (and of k in mode qk)."""
        s, d = self.shape, self.shape.spec.head_dim
        shapes = [(s.batch, s.seq, s.heads_q, d)]
        if self.mode == "qk":
            shapes.append((s.batch, s.seq, s.heads_k, d))
        return shapes

    def elements(self) -> int:
        """Elements of q (and k): what the rotation computes."""
        return sum(int(np.prod(t)) for t in self.tensor_shapes())

    def tensor_bytes(self) -> int:
        """Bytes of q (and k): what an out-of-place copy of the inputs reads, and writes again."""
        return self.elements() * ITEMSIZE[self.dtype]

    def bytes_moved(self) -> int:
        """Bytes the operation must move: read x (q and k), write the output, read the positions
        once. Forward+backward moves that twice (the backward reads the cotangent, writes the
        gradient, and reads the positions again). cos/sin tables are not counted: computing
        them from the positions is allowed, so reading a table is the implementation's choice."""
        s = self.shape
        positions = s.batch * s.seq * s.spec.n_axes * POSITION_ITEMSIZE
        once = 2 * self.tensor_bytes() + positions
        return once * (2 if self.direction == "forward+backward" else 1)

    def inputs(self) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
        """(tensors, positions, cotangents) in float32 NumPy (the caller converts to the dtype)."""
        rng = np.random.default_rng(self.seed)
        tensors = [rng.standard_normal(t, dtype=np.float32) for t in self.tensor_shapes()]
        cotangents = ([rng.standard_normal(t, dtype=np.float32) for t in self.tensor_shapes()]
                      if self.direction == "forward+backward" else [])
        return tensors, self.shape.positions(self.seed), cotangents

    def to_dict(self) -> dict:
        s = self.shape
        return {"case": self.id, "shape": s.name, "phase": s.phase, "spec": s.spec_name, "batch": s.batch,
                "seq": s.seq, "heads_q": s.heads_q, "heads_k": s.heads_k if self.mode == "qk" else None,
                "head_dim": s.spec.head_dim, "rotary_dim": s.spec.rotary_dim, "dtype": self.dtype,
                "direction": self.direction, "mode": self.mode}


def _cases(shapes: tuple[str, ...], dtypes: tuple[str, ...], direction: str, mode: str) -> list[BenchCase]:
    return [BenchCase(SHAPES[s], d, direction, mode) for s in shapes for d in dtypes]


# quick (CI): the throughput-versus-length series in float32 plus one case of every other kind.
QUICK: tuple[BenchCase, ...] = tuple(
    _cases(("decode-b32", "prefill-512", "prefill-2048"), ("float32",), "forward", "q")
    + _cases(("prefill-512",), ("bfloat16",), "forward", "q")
    + _cases(("prefill-512",), ("float32",), "forward+backward", "q")
    + _cases(("gqa-llama3-512",), ("float32",), "forward", "qk")
    + _cases(("vision-sam2-32x32",), ("float32",), "forward", "q"))

# full: every shape forward (three dtypes where the shape is cheap, two where it is long);
# fused q+k and forward+backward on the shapes where they matter.
FULL: tuple[BenchCase, ...] = tuple(
    _cases(("decode-b32",), ("float32",), "forward", "q")
    + _cases(("decode-b64", "prefill-512", "prefill-2048"), ("float32", "bfloat16", "float16"), "forward", "q")
    + _cases(("prefill-8192", "long-32k", "vision-sam2-64x64"), ("float32", "bfloat16"), "forward", "q")
    + _cases(("decode-b64", "prefill-2048", "gqa-llama3-2048"), ("float32", "bfloat16"), "forward", "qk")
    + _cases(("decode-b64", "vision-sam2-64x64"), ("float32",), "forward+backward", "q")
    + _cases(("prefill-2048",), ("float32", "bfloat16"), "forward+backward", "q")
    + _cases(("gqa-llama3-2048",), ("float32",), "forward+backward", "qk"))


def resized(case: BenchCase, bytes_moved: int) -> BenchCase:
    """The same case (spec, dtype, direction, mode, heads, kind of positions) with as many tokens
    as move about ``bytes_moved`` bytes: decode rows, prompt tokens, or whole rows of a vision
    grid (at least one). The timing of the work on data resident in the cache uses it."""
    s = case.shape
    tokens = max(1, round(bytes_moved * s.batch * s.seq / case.bytes_moved()))
    if s.grid is not None:
        width = s.grid[1]
        rows = max(1, round(tokens / width))
        shape = dataclasses.replace(s, name=f"{s.name}~{rows}x{width}", batch=1, seq=rows * width, grid=(rows, width))
    elif s.phase == "decode":
        shape = dataclasses.replace(s, name=f"{s.name}~b{tokens}", batch=tokens)
    else:
        shape = dataclasses.replace(s, name=f"{s.name}~{tokens}", batch=1, seq=tokens)
    return dataclasses.replace(case, shape=shape)


def profile_cases(profile: str) -> tuple[BenchCase, ...]:
    """The cases of ``profile`` ("quick" or "full")."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is invalid: allowed {', '.join(PROFILES)}")
    return QUICK if profile == "quick" else FULL


def memory_needed(case: BenchCase) -> int:
    """A generous bound on the bytes a case holds at once: inputs, cotangents, output, gradient
    and an eager implementation's float32 temporaries (about six tensors of x's size)."""
    float32_bytes = case.tensor_bytes() * 4 // ITEMSIZE[case.dtype]
    return 4 * case.tensor_bytes() + 6 * float32_bytes
