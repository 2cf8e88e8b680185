"""A fused Triton RoPE kernel: q and k rotated in one launch, cos/sin computed in-kernel.

Contract (implementations/registry.py): ``rope(x, positions, spec)`` and
``rope_qk(q, k, positions, spec)`` take x, q, k [batch, seq, heads, head_dim] (torch,
float32/float16/bfloat16; q and k may have different head counts) and integer positions
[batch, seq] (or [batch, seq, n_axes] for M-RoPE and 2D axial specs), and return new tensors
of the input's shape and dtype. Inputs are never written.

Design (one kernel, :func:`_rope_kernel`):
  - grid (token blocks, head splits); a program computes cos/sin for its BLOCK_T tokens once,
    then loops over its slice of q's heads and the matching slice of k's heads, so those
    cos/sin serve every head it touches, of q and of k (one launch for both);
  - angles are float32 ``position * inv_freq`` with ``inv_freq`` computed in PyTorch by
    :mod:`rope_suite.implementations.frequencies` (float64, rounded to float32 once on the host),
    cos/sin are float32 and carry its ``attention_factor``; the multiply is float32 and the
    result is stored in the input dtype;
  - "half" pairs load the two contiguous halves; "interleaved" pairs load the rotary channels
    in one piece and view them as [.., r/2, 2], so both conventions issue 16-byte loads;
  - channels >= rotary_dim are loaded and stored as they are (bit-identical);
  - the backward is the same kernel with the sine negated: grad_x = a R^T g.
``cos_sin="cache"`` reads a [max_pos, r/2] float32 cos/sin table (built in float64 with
PyTorch on x's device, :meth:`TritonRope._table`) instead of computing cos/sin in the kernel.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from rope_suite.conformance.spec import RopeSpec

from . import frequencies

# Without a CUDA device the kernel can only run under Triton's interpreter (numpy on the CPU);
# the flag is read when a kernel is decorated, so it must be set before the @triton.jit below.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402  (after the interpreter switch above)
import triton.language as tl  # noqa: E402

__all__ = ["TritonRope", "IMPLEMENTATION", "CACHED"]

# float64 is left out on purpose: it would compile and run (interpreter and CUDA), but the
# rotation is float32 by design (angles, cos/sin and the multiply), so a float64 result would
# carry float32 accuracy while claiming float64 -- a precision the kernel does not deliver.
_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16,
                                    "bfloat16": torch.bfloat16}


@triton.jit
def _rope_kernel(
    q_ptr, k_ptr, qo_ptr, ko_ptr, pos_ptr, freq_ptr, axes_ptr, cos_ptr, sin_ptr,
    n_tokens, seq, hq, hk, hq_per_split, hk_per_split,
    q_sb, q_ss, q_sh, k_sb, k_ss, k_sh,  # input strides (elements): batch, seq, head
    qo_st, qo_sh, ko_st, ko_sh,  # output strides: token, head (outputs are contiguous)
    p_sb, p_ss, p_sa,  # position strides: batch, seq, axis
    cache_stride, scale,
    N_PAIRS: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_TAIL: tl.constexpr,
    INTERLEAVED: tl.constexpr, MULTI_AXIS: tl.constexpr, USE_CACHE: tl.constexpr,
    BACKWARD: tl.constexpr, HAS_K: tl.constexpr,
):
    # 64-bit token index: batch * stride overflows int32 for large activations.
    tok = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    t_mask = tok < n_tokens
    b = tok // seq
    s = tok - b * seq
    pair = tl.arange(0, BLOCK_P)
    p_mask = pair < N_PAIRS

    # cos/sin once per token, [BLOCK_T, BLOCK_P] (or [BLOCK_T, 1] positions broadcast).
    pos_off = b * p_sb + s * p_ss
    if MULTI_AXIS:
        axis = tl.load(axes_ptr + pair, mask=p_mask, other=0)
        cs_mask = t_mask[:, None] & p_mask[None, :]
        pos = tl.load(pos_ptr + pos_off[:, None] + axis[None, :] * p_sa, mask=cs_mask, other=0)
    else:
        pos = tl.load(pos_ptr + pos_off, mask=t_mask, other=0)[:, None]
    if USE_CACHE:
        cs_off = pos.to(tl.int64) * cache_stride + pair[None, :]
        cs_mask2 = t_mask[:, None] & p_mask[None, :]
        cos = tl.load(cos_ptr + cs_off, mask=cs_mask2, other=1.0)
        sin = tl.load(sin_ptr + cs_off, mask=cs_mask2, other=0.0)
    else:
        inv_freq = tl.load(freq_ptr + pair, mask=p_mask, other=0.0)
        angle = pos.to(tl.float32) * inv_freq[None, :]
        cos = tl.cos(angle) * scale
        sin = tl.sin(angle) * scale
    if BACKWARD:
        sin = -sin  # R^T: the rotation by -phi
    cos = cos[:, None, :]
    sin = sin[:, None, :]

    # This program's slice of q's heads and the matching slice of k's, all with the same cos/sin.
    split = tl.program_id(1)
    _rotate_heads(q_ptr, qo_ptr, b, s, tok, t_mask, split * hq_per_split, (split + 1) * hq_per_split, hq,
                  q_sb, q_ss, q_sh, qo_st, qo_sh, pair, p_mask, cos, sin,
                  N_PAIRS, HEAD_DIM, BLOCK_H, BLOCK_P, BLOCK_TAIL, INTERLEAVED)
    if HAS_K:
        _rotate_heads(k_ptr, ko_ptr, b, s, tok, t_mask, split * hk_per_split, (split + 1) * hk_per_split, hk,
                      k_sb, k_ss, k_sh, ko_st, ko_sh, pair, p_mask, cos, sin,
                      N_PAIRS, HEAD_DIM, BLOCK_H, BLOCK_P, BLOCK_TAIL, INTERLEAVED)


@triton.jit
def _rotate_heads(x_ptr, o_ptr, b, s, tok, t_mask, h_lo, h_hi, n_heads, sb, ss, sh, o_st, o_sh,
                  pair, p_mask, cos, sin,
                  N_PAIRS: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_H: tl.constexpr,
                  BLOCK_P: tl.constexpr, BLOCK_TAIL: tl.constexpr, INTERLEAVED: tl.constexpr):
    """Rotate heads [h_lo, min(h_hi, n_heads)) of BLOCK_T tokens, BLOCK_H at a time; copy the tail.

    h_hi - h_lo is a multiple of BLOCK_H (the host makes it so), so ``head < n_heads`` is the
    only head mask needed.
    """
    for h0 in range(h_lo, h_hi, BLOCK_H):
        _rotate_block(x_ptr, o_ptr, b, s, tok, t_mask, h0 + tl.arange(0, BLOCK_H), n_heads, sb, ss, sh,
                      o_st, o_sh, pair, p_mask, cos, sin, N_PAIRS, HEAD_DIM, BLOCK_P, BLOCK_TAIL, INTERLEAVED)


@triton.jit
def _rotate_block(x_ptr, o_ptr, b, s, tok, t_mask, head, n_heads, sb, ss, sh, o_st, o_sh,
                  pair, p_mask, cos, sin,
                  N_PAIRS: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_P: tl.constexpr,
                  BLOCK_TAIL: tl.constexpr, INTERLEAVED: tl.constexpr):
    """One [BLOCK_T, BLOCK_H, head_dim] tile: rotate the pairs, copy the tail."""
    row_mask = t_mask[:, None] & (head < n_heads)[None, :]  # [T, H]
    head = head.to(tl.int64)  # head * stride can pass 2^31 for strided (e.g. [b, h, s, d]) views
    x_row = (b * sb + s * ss)[:, None] + head[None, :] * sh  # [T, H]
    o_row = (tok * o_st)[:, None] + head[None, :] * o_sh
    x_row = x_row[:, :, None]
    o_row = o_row[:, :, None]
    out_ty = o_ptr.dtype.element_ty
    if INTERLEAVED:
        # One contiguous (vectorised) load of the rotary channels, viewed as [T, H, P, 2] pairs.
        c = tl.arange(0, 2 * BLOCK_P)[None, None, :]
        mask2 = row_mask[:, :, None] & (c < 2 * N_PAIRS)
        x = tl.load(x_ptr + x_row + c, mask=mask2, other=0.0).to(tl.float32)
        x1, x2 = tl.split(tl.reshape(x, (x.shape[0], x.shape[1], BLOCK_P, 2)))
        o = tl.join(x1 * cos - x2 * sin, x2 * cos + x1 * sin)
        tl.store(o_ptr + o_row + c, _rounded(tl.reshape(o, x.shape), out_ty), mask=mask2)
    else:
        p = pair[None, None, :]
        mask = row_mask[:, :, None] & p_mask[None, None, :]  # [T, H, P]
        x1 = tl.load(x_ptr + x_row + p, mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(x_ptr + x_row + p + N_PAIRS, mask=mask, other=0.0).to(tl.float32)
        tl.store(o_ptr + o_row + p, _rounded(x1 * cos - x2 * sin, out_ty), mask=mask)
        tl.store(o_ptr + o_row + p + N_PAIRS, _rounded(x2 * cos + x1 * sin, out_ty), mask=mask)
    if BLOCK_TAIL > 0:
        # Channels past rotary_dim: loaded and stored in the input dtype, bit for bit.
        c = 2 * N_PAIRS + tl.arange(0, BLOCK_TAIL)[None, None, :]
        tail_mask = row_mask[:, :, None] & (c < HEAD_DIM)
        tl.store(o_ptr + o_row + c, tl.load(x_ptr + x_row + c, mask=tail_mask), mask=tail_mask)


@triton.jit
def _rounded(y, out_ty: tl.constexpr):
    """float32 -> out_ty, rounded to nearest even.

    For bfloat16 the rounding is done on the bits first, so the conversion that follows is exact:
    CUDA's cvt rounds to nearest even but Triton's interpreter truncates, which would bias every
    bfloat16 result toward zero on the CPU. NaNs pass through untouched.
    """
    if out_ty == tl.bfloat16:
        bits = y.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        y = tl.where(y != y, y, bits.to(tl.float32, bitcast=True))
    return y.to(out_ty)


@dataclass(frozen=True)
class _Plan:
    """Everything the kernel needs for one call besides the tensors (kept for the backward).

    inv_freq float32 [r/2] and axes int32 [r/2] (the position stream of each pair) from
    :mod:`rope_suite.implementations.frequencies`; scale the attention factor (1 when the
    cos/sin table carries it); cos/sin the [L, r/2] float32 table in cache mode, else None;
    tiling the launch-shape overrides.
    """

    spec: RopeSpec
    inv_freq: torch.Tensor
    axes: torch.Tensor
    scale: float
    cos: torch.Tensor | None
    sin: torch.Tensor | None
    tiling: dict[str, Any]


def _launch(plan: _Plan, q: torch.Tensor, k: torch.Tensor | None, positions: torch.Tensor,
            backward: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    spec = plan.spec
    batch, seq, hq, head_dim = q.shape
    hk = k.shape[2] if k is not None else 0
    q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    k_out = torch.empty(k.shape, dtype=k.dtype, device=k.device) if k is not None else None
    n_tokens = batch * seq
    if n_tokens == 0 or (hq == 0 and hk == 0):
        return q_out, k_out
    # The kernel addresses the last axis as contiguous; the others go by their strides.
    q = q if q.stride(-1) == 1 else q.contiguous()
    if k is not None and k.stride(-1) != 1:
        k = k.contiguous()
    n_pairs = spec.n_pairs
    block_p = triton.next_power_of_2(n_pairs)
    tail = head_dim - spec.rotary_dim
    block_tail = triton.next_power_of_2(tail) if tail else 0
    t = _tiles(n_tokens, hq, hk, max(2 * block_p, block_tail), q.element_size(), q.device, **plan.tiling)
    # Each program loops over its heads BLOCK_H at a time: round its share to a multiple.
    hq_per = triton.cdiv(triton.cdiv(hq, t.n_split), t.block_h) * t.block_h
    hk_per = triton.cdiv(triton.cdiv(hk, t.n_split), t.block_h) * t.block_h
    kk = k if k is not None else q  # any valid pointer when HAS_K is off; never read
    ko = k_out if k_out is not None else q_out
    cos = plan.cos if plan.cos is not None else plan.inv_freq  # likewise when USE_CACHE is off
    sin = plan.sin if plan.sin is not None else plan.inv_freq
    grid = (triton.cdiv(n_tokens, t.block_t), t.n_split)
    _rope_kernel[grid](
        q, kk, q_out, ko, positions, plan.inv_freq, plan.axes, cos, sin,
        n_tokens, seq, hq, hk, hq_per, hk_per,
        q.stride(0), q.stride(1), q.stride(2), kk.stride(0), kk.stride(1), kk.stride(2),
        hq * head_dim, head_dim, hk * head_dim, head_dim,
        positions.stride(0), positions.stride(1), positions.stride(2) if positions.dim() == 3 else 0,
        cos.stride(0) if cos.dim() == 2 else 0, plan.scale,
        N_PAIRS=n_pairs, HEAD_DIM=head_dim, BLOCK_T=t.block_t, BLOCK_H=t.block_h, BLOCK_P=block_p,
        BLOCK_TAIL=block_tail,
        INTERLEAVED=spec.convention == "interleaved", MULTI_AXIS=spec.n_axes > 1,
        USE_CACHE=plan.cos is not None, BACKWARD=backward, HAS_K=k is not None,
        num_warps=t.num_warps, enable_fp_fusion=True,
    )
    return q_out, k_out


@dataclass(frozen=True)
class Tiles:
    """A launch shape: tokens per program, heads per loop step, head splits (grid axis 1), warps."""

    block_t: int
    block_h: int
    n_split: int
    num_warps: int


@functools.lru_cache(maxsize=None)
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _tiles(n_tokens: int, hq: int, hk: int, width: int, elem_bytes: int, device: torch.device,
           interpret: bool = False, block_t: int | None = None, n_split: int | None = None,
           num_warps: int | None = None) -> Tiles:
    """Choose the launch shape (any of block_t, n_split, num_warps may be forced).

    width: the widest channel tile of a head (both pair halves, or the tail).
    GPU: one head per loop step, BLOCK_T tokens so that each of about 128 threads moves two
    16-byte vectors per step (BLOCK_T = 16 for bf16 and head_dim 128); cos/sin are computed once
    per program and reused by every head of its loop, so the fewer head splits the cheaper.
    Heads are split over grid axis 1 only until about 1024 threads per SM are in flight
    (short sequences, decode).
    Interpreter: the cost is per program and per operation, not per element, so one program
    takes every head of as many tokens as fit in 2^15 channel slots.
    """
    heads = max(hq, hk, 1)
    if interpret:
        block_h = triton.next_power_of_2(heads)
        bt = block_t or min(triton.next_power_of_2(n_tokens), max(1, 32768 // (block_h * width)))
        return Tiles(bt, block_h, n_split or 1, num_warps or 4)
    vec = max(1, 16 // elem_bytes)  # channels per 16-byte vector
    bt = block_t or min(triton.next_power_of_2(n_tokens), max(1, 256 * vec // width))
    threads = max(32, min(256, bt * width // (2 * vec)))
    splits = n_split
    if splits is None:
        splits, target = 1, 1024 * _sm_count(device)
        while triton.cdiv(n_tokens, bt) * splits * threads < target and splits < heads:
            splits *= 2
    warps = num_warps or triton.next_power_of_2(threads) // 32
    return Tiles(bt, 1, min(splits, heads), warps)


class _RopeFunction(torch.autograd.Function):
    """y = a R(phi) x; dL/dx = a R(phi)^T dL/dy (the same kernel with the sine negated)."""

    @staticmethod
    def forward(ctx: Any, plan: _Plan, positions: torch.Tensor, q: torch.Tensor,
                k: torch.Tensor | None) -> Any:
        ctx.plan = plan
        ctx.save_for_backward(positions)
        ctx.set_materialize_grads(False)  # an unused output needs no launch in backward
        q_out, k_out = _launch(plan, q, k, positions, backward=False)
        return q_out if k_out is None else (q_out, k_out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: torch.Tensor | None) -> Any:
        (positions,) = ctx.saved_tensors
        gq = grads[0]
        gk = grads[1] if len(grads) > 1 else None
        if gq is None and gk is None:
            return None, None, None, None
        if gq is None:  # only k's output reached the loss: rotate its gradient alone
            return None, None, None, _launch(ctx.plan, gk, None, positions, backward=True)[0]
        dq, dk = _launch(ctx.plan, gq, gk, positions, backward=True)
        return None, None, dq, dk


class TritonRope:
    """The plug-in object: ``rope``, ``rope_qk``, ``supports``, ``framework``, ``device``.

    cos_sin: ``"kernel"`` computes cos/sin in the kernel from positions and float32 inverse
    frequencies; ``"cache"`` reads them from a [max_pos, r/2] float32 table computed in float64
    (grown as positions need, which reads max(positions) every call; rebuilt every call for
    sequence-dependent specs).
    max_position: cache mode only: the table's last row, like a model's max_position_embeddings
      (default 2^21); larger positions raise ValueError. Declared to the suite as ``max_position``.
    block_t, n_split, num_warps: force the launch shape (tuning); None lets ``_tiles`` choose.
    """

    _KEEP = 8  # host-side constants and tables kept, most recently used first

    framework = "torch"

    def __init__(self, cos_sin: str = "kernel", *, max_position: int | None = None, block_t: int | None = None,
                 n_split: int | None = None, num_warps: int | None = None) -> None:
        if cos_sin not in ("kernel", "cache"):
            raise ValueError(f"cos_sin={cos_sin!r} is invalid: allowed 'kernel', 'cache'")
        self.cos_sin = cos_sin
        self.max_position = (max_position or 1 << 21) if cos_sin == "cache" else None
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        interpret = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
        # Launch-shape overrides for tuning (see _tiles); None lets the heuristic choose.
        self._tiling = {"interpret": interpret, "block_t": block_t, "n_split": n_split, "num_warps": num_warps}
        self._constants: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._tables: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def supports(self, spec: RopeSpec, dtype: str) -> bool:
        """Every spec; float32, float16, bfloat16 (float64: see ``_DTYPES``)."""
        return isinstance(spec, RopeSpec) and dtype in _DTYPES and frequencies.implemented(spec)

    def rope(self, x: torch.Tensor, positions: Any, spec: RopeSpec) -> torch.Tensor:
        """Rotate x [batch, seq, heads, head_dim] at positions; a new tensor like x."""
        x = self._check_x(x, spec, "x")
        pos = self._positions(positions, spec, x.shape[:2])
        return _RopeFunction.apply(self._plan(spec, pos), pos, x, None)

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: Any, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate q and k (head counts may differ) in one launch; new tensors like q and k."""
        q, k = self._check_x(q, spec, "q"), self._check_x(k, spec, "k")
        if q.shape[:2] != k.shape[:2] or q.dtype != k.dtype:
            raise ValueError(f"k.shape={tuple(k.shape)}, k.dtype={k.dtype} is invalid: needs q's "
                             f"(batch, seq)={tuple(q.shape[:2])} and dtype {q.dtype}")
        pos = self._positions(positions, spec, q.shape[:2])
        q_out, k_out = _RopeFunction.apply(self._plan(spec, pos), pos, q, k)
        return q_out, k_out

    # --- inputs -------------------------------------------------------------------------------
    def _check_x(self, x: Any, spec: RopeSpec, name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x)
        if x.dim() != 4 or x.shape[-1] != spec.head_dim:
            raise ValueError(f"{name}.shape={tuple(x.shape)} is invalid: expected "
                             f"[batch, seq, heads, head_dim={spec.head_dim}]")
        if x.dtype not in _DTYPES.values():
            raise ValueError(f"{name}.dtype={x.dtype} is invalid: allowed {', '.join(_DTYPES)}")
        return x.to(self.device)

    def _positions(self, positions: Any, spec: RopeSpec, leading: torch.Size) -> torch.Tensor:
        pos = torch.as_tensor(positions, device=self.device)
        if pos.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"positions.dtype={pos.dtype} is invalid: positions must be int32 or int64")
        want = (*leading,) if spec.n_axes == 1 else (*leading, spec.n_axes)
        if tuple(pos.shape) != tuple(want):
            raise ValueError(f"positions.shape={tuple(pos.shape)} is invalid: this spec takes "
                             f"positions {list(want)} for x's (batch, seq)")
        # Checked where it is free (positions in host memory); on a GPU it would cost a sync per call.
        if pos.device.type == "cpu" and pos.numel() and int(pos.min()) < 0:
            raise ValueError(f"positions.min()={int(pos.min())} is invalid: positions must be >= 0")
        return pos

    # --- host-side constants ------------------------------------------------------------------
    def _plan(self, spec: RopeSpec, pos: torch.Tensor) -> _Plan:
        # Sequence-dependent frequencies (dynamic NTK, LongRoPE) follow max(position)+1 of this
        # call and are never cached; the rest depend on the spec alone.
        seq_len = frequencies.sequence_length(torch, pos) if spec.sequence_dependent else None
        key = (spec, pos.device)
        consts = self._constants.get(key) if not spec.sequence_dependent else None
        if consts is not None:
            self._constants.move_to_end(key)
        if consts is None:
            inv_freq = frequencies.inverse_frequencies(torch, spec, seq_len, torch.float64)
            consts = (inv_freq.to(device=pos.device, dtype=torch.float32),
                      frequencies.pair_axes(torch, spec, torch.int32).to(pos.device))
            if not spec.sequence_dependent:
                _remember(self._constants, key, consts, self._KEEP)
        cos = sin = None
        scale = frequencies.attention_factor(spec)
        if self.cos_sin == "cache":
            cos, sin = self._table(spec, pos, seq_len)
            scale = 1.0  # the table carries the attention factor
        return _Plan(spec, consts[0], consts[1], float(scale), cos, sin, self._tiling)

    def _table(self, spec: RopeSpec, pos: torch.Tensor, seq_len: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(a cos(m theta), a sin(m theta)) [L, r/2] float32 for positions m = 0..L-1, computed in
        float64 on pos's device (angles, cos/sin and the attention factor a) and rounded once.

        One row serves every pair whatever its position stream: the kernel reads row m of pair
        i for the position that drives pair i.
        """
        needed = int(pos.max()) + 1 if pos.numel() else 1
        if needed - 1 > self.max_position:
            raise ValueError(f"positions.max()={needed - 1} is invalid: beyond this cache's "
                             f"max_position={self.max_position}")
        key = (spec, pos.device)
        table = self._tables.get(key) if not spec.sequence_dependent else None
        if table is not None:
            self._tables.move_to_end(key)
        if table is None or table[0].shape[0] < needed:
            # Sequence-dependent specs: exactly max(position)+1 rows, the frequencies of this
            # call's sequence length; otherwise grow in powers of two.
            rows = seq_len if spec.sequence_dependent else triton.next_power_of_2(max(needed, 16))
            inv_freq = frequencies.inverse_frequencies(torch, spec, seq_len, torch.float64).to(pos.device)
            phi = torch.arange(rows, dtype=torch.float64, device=pos.device)[:, None] * inv_freq
            a = frequencies.attention_factor(spec)
            table = ((a * torch.cos(phi)).to(torch.float32).contiguous(),
                     (a * torch.sin(phi)).to(torch.float32).contiguous())
            if not spec.sequence_dependent:
                _remember(self._tables, key, table, self._KEEP)
        return table


def _remember(cache: OrderedDict, key: Any, value: Any, keep: int) -> None:
    """Insert as most recent; drop the least recently used past ``keep`` (tables can be large)."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > keep:
        cache.popitem(last=False)


IMPLEMENTATION = TritonRope("kernel")
CACHED = TritonRope("cache")
