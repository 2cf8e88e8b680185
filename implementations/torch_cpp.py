"""PyTorch RoPE in one C++ pass over x (``rope_cpu.cpp``), built on first use.

The frequencies and the per-pair positions are :mod:`rope_suite.implementations.torch_rope`'s own
(float32 angles, float64 for float64 inputs; inv_freq computed in PyTorch by
:mod:`rope_suite.implementations.frequencies`). The kernel takes
the tokens in parallel (ATen's threads): for each token it computes the angles and their
cos/sin (SLEEF's sincos, the routine behind torch.compile's vectorised CPU sin and cos), then
rotates the pairs of every head in the compute type, rounds once, and copies the tail. Where
x and the output together exceed the last-level cache the output is written with
non-temporal stores, so it costs one stream of bytes, not two. The backward is the same kernel
rotating by -phi (R(phi)^T = R(-phi)), itself differentiable.

The kernel is compiled by ``torch.utils.cpp_extension.load`` (ninja and a C++ compiler: the
compiler torch.compile uses on a CPU) the first time a call needs it, in about half a minute,
then cached by PyTorch under ``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``).
It is built for the machine it runs on (``-march=native``), so the build's name carries a hash
of the CPU's feature flags: a cache shared between different CPUs never loads a binary built
for another.

Why a hand-written kernel beside torch.compile: in one graph inductor recomputes cos/sin for
every head; given them as a table it streams at about 85% of a same-size copy on this
project's 2-core EPYC. Out of the cache, this kernel beats the framework's own copy (which
pays the read-for-ownership); see README, "Published reports".
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


class Rope(torch.autograd.Function):
    """out = x [tokens, heads, head_dim] rotated by phi = positions * inv_freq (scaled by
    ``scale``), or by -phi when ``inverse``; its gradient is the other rotation of the
    incoming gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor, scale: float,
                interleaved: bool, inverse: bool) -> torch.Tensor:
        ctx.save_for_backward(positions, inv_freq)
        ctx.options = (scale, interleaved, inverse)
        return extension().rope(x.contiguous(), positions, inv_freq, scale, interleaved, inverse)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        positions, inv_freq = ctx.saved_tensors
        scale, interleaved, inverse = ctx.options
        return Rope.apply(grad, positions, inv_freq, scale, interleaved, not inverse), None, None, None, None, None


class TorchCppRope:
    """The plug-in object: PyTorch CPU tensors, rotation in the C++ kernel."""

    framework = "torch"
    device = "cpu"

    def __repr__(self) -> str:
        return "TorchCppRope()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return dtype_name in torch_rope.DTYPES and frequencies.implemented(spec)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """Rotate x [batch, seq, heads, head_dim] at integer positions [batch, seq] (or
        [batch, seq, n_axes]); a new tensor of x's shape and dtype, differentiable in x."""
        torch_rope._check(x, positions, spec)
        return self._rope(x, torch_rope.prepare(x, positions, spec), spec)

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rope(q), rope(k)) from one preparation of the positions; q and k may differ in heads (GQA)."""
        torch_rope._check_qk(q, k, positions, spec)
        prepared = torch_rope.prepare(q, positions, spec)
        return self._rope(q, prepared, spec), self._rope(k, prepared, spec)

    @staticmethod
    def _rope(x: torch.Tensor, prepared: tuple[torch.Tensor, torch.Tensor, torch.Tensor], spec: RopeSpec
              ) -> torch.Tensor:
        positions, inv_freq, scale = prepared
        tokens = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
        out = Rope.apply(tokens, positions.contiguous(), inv_freq, float(scale), spec.convention == "interleaved",
                         False)
        return out.view(x.shape)


IMPLEMENTATION = TorchCppRope()
