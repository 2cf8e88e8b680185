"""PyTorch RoPE in one C++ pass over x (``rope_cpu.cpp``), built when the plug-in is loaded.

The frequencies are :mod:`rope_suite.implementations.torch_rope`'s own (float32 angles,
float64 for float64 inputs; inv_freq computed in PyTorch by
:mod:`rope_suite.implementations.frequencies`). The kernel reads the integer positions itself
(and raises the ValueError for a negative one), takes the tokens in parallel (ATen's threads):
for each token it computes the angles and their cos/sin once (SLEEF's sincos, the routine
behind torch.compile's vectorised CPU sin and cos), then rotates the pairs of every head, of
q and of k in ``rope_qk``: one pass over the tokens for both. The rotation is in ATen's vector
type, float16 and bfloat16 widened to float32 and rounded back once in vector registers. Where
the output takes a quarter of the last-level cache or more it is written with non-temporal
stores, so it costs one stream of bytes, not two (see ``rope_cpu.cpp`` for the measurements).
The backward is the same kernel rotating the incoming gradients by -phi (R(phi)^T = R(-phi)),
itself differentiable, through a C++ autograd Function (``RopeFunction``: a Python
``autograd.Function`` cost about 45 us in the forward and again in the backward; a
forward+backward of one token took 0.21 ms, now 0.15 ms, where a ``torch.autograd.grad`` of
``x * 2`` takes 0.12 ms on the same machine). A call with no gradient to track skips autograd.

The kernel is compiled by ``torch.utils.cpp_extension.load`` (ninja and a C++ compiler: the
compiler torch.compile uses on a CPU) when this module is imported, in about a minute, then
cached by PyTorch under ``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``). At
import, not at the first call: built inside the first call it was timed as that call (68 s, over
the full bench profile's 60 s limit for one call, so the first case went untimed).
It is built for the machine it runs on (``-march=native``), so the build's name carries a hash
of the CPU's feature flags: a cache shared between different CPUs never loads a binary built
for another.

Why a hand-written kernel beside torch.compile: in one graph inductor recomputes cos/sin for
every head, and its bfloat16 and float16 loops convert through scalar code; this kernel
streams at the copy's speed out of the cache in every dtype (see README, "Published reports").
In the cache, bfloat16 and float16 are bound by instructions, not bytes: the AVX2 loop is 56
instructions per 16 pairs in bfloat16 and 37 in float16, against 27 in float32 (widen, 4
products and 2 sums, round to nearest even with NaN kept, narrow). Where the CPU has AVX-512 BF16
(Zen 4, Sapphire Rapids) bfloat16 narrows with one instruction per 32 channels, and its work in
the cache is about a third less than through ATen's integer rounding.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from pathlib import Path
from typing import Any

import torch

from rope_suite.conformance.spec import RopeSpec

from . import frequencies, torch_rope

SOURCE = Path(__file__).with_name("rope_cpu.cpp")
FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=off", "-fopenmp"]


def cpu_features() -> str:
    """The CPU's feature flags (Linux), else the machine type: what -march=native depends on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


@functools.cache
def extension() -> Any:
    """The compiled kernel module (built, or loaded from PyTorch's extension cache)."""
    from torch.utils.cpp_extension import load

    tag = hashlib.sha256(cpu_features().encode()).hexdigest()[:8]
    return load(name=f"rope_suite_cpu_{tag}", sources=[str(SOURCE)], extra_cflags=FLAGS,
                extra_ldflags=["-fopenmp"], verbose=False)


@functools.lru_cache(maxsize=64)
def constants(spec: RopeSpec, seq_len: int | None, work: torch.dtype) -> tuple[torch.Tensor, float, torch.Tensor]:
    """(inv_freq [r/2] in ``work``, the attention factor, the pair-to-axis map int64 [r/2]):
    :func:`torch_rope.frequency_tensors`'s, with the factor as a number. Cached: read, never written."""
    inv_freq, scale, axes = torch_rope.frequency_tensors(spec, seq_len, torch.device("cpu"), work)
    return inv_freq, float(scale), axes


class TorchCppRope:
    """The plug-in object: PyTorch CPU tensors, rotation in the C++ kernel (built or loaded from
    the cache when the object is created)."""

    framework = "torch"
    device = "cpu"

    def __init__(self) -> None:
        extension()

    def __repr__(self) -> str:
        return "TorchCppRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return dtype_name in torch_rope.DTYPES and frequencies.implemented(spec)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """Rotate x [batch, seq, heads, head_dim] at integer positions [batch, seq] (or
        [batch, seq, n_axes]); a new tensor of x's shape and dtype, differentiable in x."""
        torch_rope._check_shapes(x, positions, spec)
        return self._rope((x,), positions, spec)[0]

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rope(q), rope(k)) in one pass over the tokens: cos/sin computed once per token for
        both; q and k may differ in heads (GQA)."""
        torch_rope._check_qk(q, k, positions, spec, check=torch_rope._check_shapes)
        q_out, k_out = self._rope((q, k), positions, spec)
        return q_out, k_out

    @staticmethod
    def _rope(xs: tuple[torch.Tensor, ...], positions: torch.Tensor, spec: RopeSpec) -> tuple[torch.Tensor, ...]:
        """The kernel over xs, through autograd only where a gradient can flow. The kernel reads
        x [batch, seq, heads, head_dim] and the positions as they are (int64; it raises the
        ValueError for a negative one); the frequencies are those of this call's positions
        (cached per spec and, for dynamic NTK and LongRoPE, max(position) + 1). A call costs
        about 7 us of Python around the kernel (one token: 12.9 us a call, the kernel alone 5.5 us,
        on the 2-core Zen 1 EPYC)."""
        work = torch.float64 if xs[0].dtype == torch.float64 else torch.float32
        seq_len = frequencies.sequence_length(torch, positions.detach()) if spec.sequence_dependent else None
        inv_freq, scale, axes = constants(spec, seq_len, work)
        if positions.dtype != torch.int64 or not positions.is_contiguous():
            positions = positions.to(torch.int64).contiguous()
        interleaved = spec.convention == "interleaved"
        kernel = extension()
        if torch.is_grad_enabled() and (xs[0].requires_grad or xs[-1].requires_grad):  # xs: (x,) or (q, k)
            return tuple(kernel.rope_differentiable(list(xs), positions.detach(), spec.n_axes, axes, inv_freq, scale,
                                                    interleaved, False))
        return tuple(kernel.rope([x if x.is_contiguous() else x.contiguous() for x in xs], positions, spec.n_axes,
                                 axes, inv_freq, scale, interleaved, False))


IMPLEMENTATION = TorchCppRope()
