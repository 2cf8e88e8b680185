"""PyTorch RoPE, eager and under ``torch.compile``: float32 angles and rotation (float64 for float64).

The frequency vector, the attention factor and the pair-to-axis map come from
:mod:`conformance.reference` on the host, on every call (as a library builds its
``inv_freq`` buffer; nothing is cached, so dynamic NTK and LongRoPE see this call's
max(position) + 1). The tensor work is here: angles, cos/sin, the rotation of the pairs
through slices ("half": ``x[..., :r/2]``, ``x[..., r/2:r]``) or a ``[..., r/2, 2]`` view
("interleaved"), and the pass-through tail. Precision follows torchtune / flash-attn:
angles, cos/sin and the multiply in float32, one rounding to x's dtype at the end.

The compiled variant compiles the same functions (``dynamic=True``, ``fullgraph=True``) and
takes the frequencies, the attention factor and the per-pair positions as tensors, so a new
spec, scaling, axis layout or position never recompiles; batch, seq and heads are marked
unbacked for the call, so no size recompiles either (decode, batch 1 and one head included).
What remains is one graph per (x dtype, convention, partial or full rotary, grad or not):
at most 32 per function, each a few seconds of inductor time on a CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from conformance import reference
from conformance.spec import RopeSpec

DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32,
                                  "float16": torch.float16, "bfloat16": torch.bfloat16}
# Up to 32 graphs per function (see above); dynamo's default limit of 8 would fail the call
# (fullgraph) or fall back to eager.
RECOMPILE_LIMIT = 64


def cos_sin(positions: torch.Tensor, inv_freq: torch.Tensor, scale: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(a cos phi, a sin phi), each [batch, seq, 1, r/2] in inv_freq's dtype.

    positions: [batch, seq, r/2], the position that drives each pair, in inv_freq's dtype;
    scale: the attention factor a, 0-d.
    """
    phi = positions * inv_freq
    return (scale * torch.cos(phi)).unsqueeze(2), (scale * torch.sin(phi)).unsqueeze(2)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Rotate the first r = 2 * cos.shape[-1] channels of x in cos's dtype, round to x's dtype,
    append the tail x[..., r:] unchanged. Returns a new tensor."""
    n = cos.shape[-1]
    r = 2 * n
    work = cos.dtype
    if interleaved:
        pairs = x[..., :r].unflatten(-1, (n, 2))
        a, b = pairs[..., 0].to(work), pairs[..., 1].to(work)
        rotated = torch.stack((a * cos - b * sin, b * cos + a * sin), dim=-1).flatten(-2).to(x.dtype)
        if r == x.shape[-1]:
            return rotated
        return torch.cat((rotated, x[..., r:]), dim=-1)
    a, b = x[..., :n].to(work), x[..., n:r].to(work)
    return torch.cat(((a * cos - b * sin).to(x.dtype), (b * cos + a * sin).to(x.dtype), x[..., r:]), dim=-1)


def rope_tensors(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor, scale: torch.Tensor,
                 interleaved: bool) -> torch.Tensor:
    """One rotation from prepared tensors (what gets compiled)."""
    cos, sin = cos_sin(positions, inv_freq, scale)
    return rotate(x, cos, sin, interleaved)


def rope_qk_tensors(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor,
                    scale: torch.Tensor, interleaved: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """q and k rotated with one cos/sin computation."""
    cos, sin = cos_sin(positions, inv_freq, scale)
    return rotate(q, cos, sin, interleaved), rotate(k, cos, sin, interleaved)


def _check(x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec, name: str = "x") -> None:
    if x.dim() != 4 or x.shape[-1] != spec.head_dim:
        raise ValueError(f"{name}.shape={tuple(x.shape)} is invalid: expected [batch, seq, heads, "
                         f"head_dim={spec.head_dim}]")
    if x.dtype not in DTYPES.values():
        raise ValueError(f"{name}.dtype={x.dtype} is invalid: supported {', '.join(DTYPES)}")
    if positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == torch.bool:
        raise ValueError(f"positions.dtype={positions.dtype} is invalid: positions must be integers (int32 or int64)")
    want = "[batch, seq]" if spec.n_axes == 1 else f"[batch, seq, {spec.n_axes}]"
    rank = 2 if spec.n_axes == 1 else 3
    if positions.dim() != rank or (rank == 3 and positions.shape[-1] != spec.n_axes):
        raise ValueError(f"positions.shape={tuple(positions.shape)} is invalid: this spec takes positions {want}")
    if tuple(positions.shape[:2]) != tuple(x.shape[:2]):
        raise ValueError(f"positions.shape={tuple(positions.shape)} is invalid: its (batch, seq) must match "
                         f"{name}'s {tuple(x.shape[:2])}")
    if positions.numel() and int(positions.min()) < 0:
        raise ValueError(f"positions min={int(positions.min())} is invalid: positions must be >= 0")


def prepare(x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positions per pair [batch, seq, r/2], inv_freq [r/2], scale []) on x's device in x's
    compute dtype (float64 for float64, float32 otherwise); the frequencies come from the
    reference for this call's positions.

    Each pair's position stream is gathered here, outside the compiled code: an index into
    positions inside it would be an indirect load that keeps inductor from vectorising.
    """
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    seq_len = None
    if spec.sequence_dependent:
        seq_len = reference.sequence_length(positions.detach().cpu().numpy())
    inv_freq = torch.from_numpy(reference.inverse_frequencies(spec, seq_len)).to(device=x.device, dtype=work)
    scale = torch.tensor(reference.attention_factor(spec), dtype=work, device=x.device)
    axes = torch.from_numpy(reference.pair_axes(spec)).to(x.device)
    streams = positions.reshape(positions.shape[0], positions.shape[1], spec.n_axes)
    return streams.to(device=x.device, dtype=work).index_select(-1, axes), inv_freq, scale


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
        self._compiled: tuple[Callable[..., torch.Tensor], Callable[..., tuple[torch.Tensor, torch.Tensor]]] | None = None

    def _functions(self) -> tuple[Callable[..., torch.Tensor], Callable[..., tuple[torch.Tensor, torch.Tensor]]]:
        """(rope, rope_qk) on prepared tensors: plain functions, or compiled on first use
        (importing torch._dynamo costs seconds; eager users should not pay it)."""
        if not self.compiled:
            return rope_tensors, rope_qk_tensors
        if self._compiled is None:
            self._compiled = (torch.compile(rope_tensors, dynamic=True, fullgraph=True),
                              torch.compile(rope_qk_tensors, dynamic=True, fullgraph=True))
        return self._compiled

    def __repr__(self) -> str:
        return f"TorchRope(compiled={self.compiled})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return dtype_name in DTYPES

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """Rotate x [batch, seq, heads, head_dim] at integer positions [batch, seq] (or
        [batch, seq, n_axes]); a new tensor of x's shape and dtype, differentiable in x."""
        _check(x, positions, spec)
        return self._call(0, (x,), prepare(x, positions, spec), spec)

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rope(q), rope(k)) with one cos/sin computation; q and k may differ in heads (GQA)."""
        _check(q, positions, spec, "q")
        _check(k, positions, spec, "k")
        if k.dtype != q.dtype or k.device != q.device:
            raise ValueError(f"k.dtype={k.dtype} on {k.device} is invalid: must match q's {q.dtype} on {q.device}")
        return self._call(1, (q, k), prepare(q, positions, spec), spec)

    def _call(self, which: int, xs: tuple[torch.Tensor, ...], prepared: tuple[torch.Tensor, ...],
              spec: RopeSpec) -> Any:
        function = self._functions()[which]
        interleaved = spec.convention == "interleaved"
        if not self.compiled:
            return function(*xs, *prepared, interleaved)
        with (torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT),
              unbacked_dims(*xs, dims=(0, 1, 2)), unbacked_dims(prepared[0], dims=(0, 1))):
            return function(*xs, *prepared, interleaved)


EAGER = TorchRope(compiled=False)
COMPILED = TorchRope(compiled=True)
