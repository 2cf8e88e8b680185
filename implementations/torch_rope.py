"""PyTorch RoPE, eager and under ``torch.compile``: float32 angles and rotation (float64 for float64).

The frequency vector, the attention factor and the pair-to-axis map are computed in PyTorch
by :mod:`rope_suite.implementations.frequencies` (as a library builds its ``inv_freq``
buffer: float64 on the CPU, rounded once to the compute dtype, then moved to x's device),
keyed by the spec and, for dynamic NTK and LongRoPE, this call's max(position) + 1: a pure
function of both, cached, so no state carries from one call to the next. The tensor work is
here: angles, cos/sin, the rotation of the pairs through a ``[..., 2, r/2]`` view ("half":
``x[..., :r/2]``, ``x[..., r/2:r]``) or a ``[..., r/2, 2]`` view ("interleaved"), and the
pass-through tail. Precision follows torchtune / flash-attn: angles, cos/sin and the
multiply in float32, one rounding to x's dtype at the end.

The compiled variant compiles the same two functions (``dynamic=True``, ``fullgraph=True``):
cos/sin once per token, then the rotation of each tensor, streaming (see
``TorchRope._functions`` for why they are two graphs). They take the frequencies, the
attention factor and the per-pair positions as tensors, so a new spec, scaling, axis layout
or position never recompiles; tokens (batch x seq) and heads are marked unbacked for the
call, so no size recompiles either (decode, batch 1 and one head included). What remains is
one graph per (dtype, convention, partial or full rotary, grad or not) for the rotation, and
one per (compute dtype, one position per token or one per pair) for cos/sin, each a few
seconds of inductor time on a CPU.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch

from rope_suite.conformance.spec import RopeSpec

from . import frequencies

DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32,
                                  "float16": torch.float16, "bfloat16": torch.bfloat16}
# Up to 32 graphs per function (see above); dynamo's default limit of 8 would fail the call
# (fullgraph) or fall back to eager.
RECOMPILE_LIMIT = 64


def cos_sin(positions: torch.Tensor, inv_freq: torch.Tensor, scale: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(a cos phi, a sin phi), each [tokens, 1, r/2] in inv_freq's dtype.

    positions: [tokens, r/2], the position that drives each pair, or [tokens, 1], one for
    every pair, in inv_freq's dtype;
    scale: the attention factor a, 0-d.
    """
    phi = positions * inv_freq
    return (scale * torch.cos(phi)).unsqueeze(-2), (scale * torch.sin(phi)).unsqueeze(-2)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Rotate the first r = 2 * cos.shape[-1] channels of x in cos's dtype, round to x's dtype,
    append the tail x[..., r:] unchanged. Returns a new tensor.

    The pairs are read through a view: ``[..., 2, r/2]`` for "half" (a = x[..., :r/2], b =
    x[..., r/2:r]), ``[..., r/2, 2]`` for "interleaved", and the two rotated components are
    stacked back along the same axis. For "half" the innermost axis stays r/2 contiguous
    channels, which inductor turns into plain vector loads and stores (a ``cat`` of the halves
    becomes masked loads).
    """
    n = cos.shape[-1]
    r = 2 * n
    work = cos.dtype
    if interleaved:
        pairs, axis = x[..., :r].unflatten(-1, (n, 2)), -1
        a, b = pairs[..., 0], pairs[..., 1]
    else:
        pairs, axis = x[..., :r].unflatten(-1, (2, n)), -2
        a, b = pairs[..., 0, :], pairs[..., 1, :]
    a, b = a.to(work), b.to(work)
    rotated = torch.stack((a * cos - b * sin, b * cos + a * sin), dim=axis).flatten(-2).to(x.dtype)
    if r == x.shape[-1]:
        return rotated
    return torch.cat((rotated, x[..., r:]), dim=-1)


def _check(x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec, name: str = "x") -> None:
    """ValueError unless x is [batch, seq, heads, head_dim] in a supported dtype and positions are
    integers >= 0 of the shape the spec takes for x."""
    _check_shapes(x, positions, spec, name)
    if positions.numel() and int(positions.min()) < 0:
        raise ValueError(f"positions min={int(positions.min())} is invalid: positions must be >= 0")


def _check_shapes(x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec, name: str = "x") -> None:
    """``_check`` without reading the positions' values (for a kernel that checks them as it reads
    them). Every call pays for it, so it reads each shape once and builds no message unless one
    is raised (about 1.5 us a call, 4.8 us with tuples and messages built up front)."""
    shape, where = x.shape, positions.shape
    if len(shape) != 4 or shape[3] != spec.head_dim:
        raise ValueError(f"{name}.shape={tuple(shape)} is invalid: expected [batch, seq, heads, "
                         f"head_dim={spec.head_dim}]")
    if x.dtype not in _SUPPORTED:
        raise ValueError(f"{name}.dtype={x.dtype} is invalid: supported {', '.join(DTYPES)}")
    if not _integer(positions.dtype):
        raise ValueError(f"positions.dtype={positions.dtype} is invalid: positions must be integers (int32 or int64)")
    n_axes = spec.n_axes
    if len(where) != (2 if n_axes == 1 else 3) or (n_axes > 1 and where[2] != n_axes):
        want = "[batch, seq]" if n_axes == 1 else f"[batch, seq, {n_axes}]"
        raise ValueError(f"positions.shape={tuple(where)} is invalid: this spec takes positions {want}")
    if where[0] != shape[0] or where[1] != shape[1]:
        raise ValueError(f"positions.shape={tuple(where)} is invalid: its (batch, seq) must match "
                         f"{name}'s {tuple(shape[:2])}")


_SUPPORTED = frozenset(DTYPES.values())


@functools.cache
def _integer(dtype: torch.dtype) -> bool:
    """Whether positions of this dtype are integers (not floating, complex or bool)."""
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _check_qk(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec,
              check: Callable[..., None] = _check) -> None:
    """``check`` (``_check`` or ``_check_shapes``) for q and for k, and k in q's dtype on q's device."""
    check(q, positions, spec, "q")
    check(k, positions, spec, "k")
    if k.dtype != q.dtype or k.device != q.device:
        raise ValueError(f"k.dtype={k.dtype} on {k.device} is invalid: must match q's {q.dtype} on {q.device}")


def prepare(x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positions [tokens = batch * seq, 1 or r/2], inv_freq [r/2], scale []) on x's device in
    x's compute dtype (float64 for float64, float32 otherwise); the frequencies are those of
    this call's positions.

    A single-axis spec gives one position per token (it broadcasts over the pairs); a
    multi-axis spec gives each pair its own stream, gathered here, outside the compiled code:
    an index into positions inside it would be an indirect load that keeps inductor from
    vectorising.
    """
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    seq_len = None
    if spec.sequence_dependent:
        seq_len = frequencies.sequence_length(torch, positions.detach())
    inv_freq, scale, axes = frequency_tensors(spec, seq_len, x.device, work)
    streams = positions.reshape(-1, spec.n_axes).to(device=x.device, dtype=work)
    if spec.n_axes > 1:
        streams = streams.index_select(-1, axes)
    return streams, inv_freq, scale


@functools.lru_cache(maxsize=64)
def frequency_tensors(spec: RopeSpec, seq_len: int | None, device: torch.device, dtype: torch.dtype
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inv_freq [r/2], attention factor [], pair-to-axis map [r/2]) as tensors on ``device``,
    inv_freq computed in float64 and rounded once to ``dtype``. A pure function of its
    arguments (seq_len is this call's max(position) + 1 for a sequence-dependent spec, else
    None), cached so a call does not rebuild them on the host: the tensors are read, never
    written."""
    inv_freq = frequencies.inverse_frequencies(torch, spec, seq_len, torch.float64)
    return (inv_freq.to(device=device, dtype=dtype),
            torch.tensor(frequencies.attention_factor(spec), dtype=dtype, device=device),
            frequencies.pair_axes(torch, spec, torch.int64).to(device))


_MARKS = ("_dynamo_", "_specialize_on", "_has_dynamo_dim_marking")


@contextlib.contextmanager
def unbacked_dims(*tensors: torch.Tensor, dims: tuple[int, ...]) -> Iterator[None]:
    """Mark ``dims`` of each tensor unbacked for one compiled call.

    A backed size-1 dim gets its own graph (0/1 specialisation): decode (seq 1), batch 1 and
    one head would each recompile, for every dtype and convention. An unbacked dim takes one
    graph for every size. head_dim stays backed: with it unbacked inductor emits scalar loops
    (about 1.5x slower on CPU). The marks are attributes on the tensor object, so they are
    removed afterwards (a user's tensor must not carry them into their own compiled code); a
    tensor the caller has marked is left as it is.
    """
    from torch._dynamo import decorators

    mark_unbacked = getattr(decorators, "mark_unbacked", None)  # absent in old torch: recompile instead
    marked = []
    for t in tensors:
        if mark_unbacked is None or any(k.startswith(_MARKS) for k in t.__dict__):
            continue
        marked.append((t, set(t.__dict__)))
        for d in dims:
            mark_unbacked(t, d)
    try:
        yield
    finally:
        for t, keys in marked:
            for k in set(t.__dict__) - keys:
                del t.__dict__[k]


class TorchRope:
    """The plug-in object for PyTorch tensors; ``compiled`` runs the math under torch.compile."""

    framework = "torch"
    device = "cpu"

    def __init__(self, compiled: bool) -> None:
        self.compiled = compiled
        self._compiled: tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]], Callable[..., torch.Tensor]] | None = None

    def _functions(self) -> tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]], Callable[..., torch.Tensor]]:
        """(cos_sin, rotate): plain functions, or compiled on first use (importing
        torch._dynamo costs seconds; eager users should not pay it).

        They are compiled apart on purpose: in one graph inductor fuses the [tokens, 1, r/2]
        cos/sin into the rotation and evaluates sin and cos again for every head, which makes
        the rotation compute-bound on a CPU (Llama 2 prefill, float32, 2 cores: 18-28 GB/s
        against 27-33 GB/s with cos/sin computed once per token and the rotation streaming).
        """
        if not self.compiled:
            return cos_sin, rotate
        if self._compiled is None:
            self._compiled = (torch.compile(cos_sin, dynamic=True, fullgraph=True),
                              torch.compile(rotate, dynamic=True, fullgraph=True))
        return self._compiled

    def __repr__(self) -> str:
        return f"TorchRope(compiled={self.compiled})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return dtype_name in DTYPES and frequencies.implemented(spec)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """Rotate x [batch, seq, heads, head_dim] at integer positions [batch, seq] (or
        [batch, seq, n_axes]); a new tensor of x's shape and dtype, differentiable in x."""
        _check(x, positions, spec)
        return self._call((x,), prepare(x, positions, spec), spec)[0]

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rope(q), rope(k)) with one cos/sin computation; q and k may differ in heads (GQA)."""
        _check_qk(q, k, positions, spec)
        q_out, k_out = self._call((q, k), prepare(q, positions, spec), spec)
        return q_out, k_out

    def _call(self, xs: tuple[torch.Tensor, ...], prepared: tuple[torch.Tensor, ...], spec: RopeSpec
              ) -> list[torch.Tensor]:
        """Each of xs rotated with one cos/sin computed from the prepared tensors.

        The rotation sees each x as [tokens = batch * seq, heads, head_dim]: inductor
        parallelises a kernel's outermost loop, and with batch outermost a batch-1 prefill
        would run on one thread.
        """
        angles, rotation = self._functions()
        interleaved = spec.convention == "interleaved"
        tokens = [x.flatten(0, 1) for x in xs]
        if not self.compiled:
            cos, sin = angles(*prepared)
            return [rotation(x, cos, sin, interleaved).unflatten(0, xs[0].shape[:2]) for x in tokens]
        out = []
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            with unbacked_dims(prepared[0], dims=(0,)):
                cos, sin = angles(*prepared)
            with unbacked_dims(cos, sin, dims=(0,)):
                for x in tokens:
                    with unbacked_dims(x, dims=(0, 1)):
                        out.append(rotation(x, cos, sin, interleaved).unflatten(0, xs[0].shape[:2]))
        return out


EAGER = TorchRope(compiled=False)
COMPILED = TorchRope(compiled=True)
