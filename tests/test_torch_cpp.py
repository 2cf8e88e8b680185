"""The C++ CPU kernel of torch-cpp, on what the conformance checks do not reach: both store
paths (streaming and cached) give the same bits, strided inputs, the kernel's own input
errors, and a backward that is itself differentiable. Its RoPE semantics are judged by the
conformance checks like every implementation's (``rope-suite check torch-cpp``)."""

from __future__ import annotations

import pytest

from conftest import need
from rope_suite.conformance.presets import preset
from rope_suite.conformance.spec import RopeSpec


@pytest.fixture(scope="module")
def kernel():
    need("torch")
    need("ninja")
    from rope_suite.implementations import torch_cpp

    return torch_cpp


SPECS = [preset("llama2-7b"), preset("gpt-j-6b"), preset("phi-2"),
         RopeSpec(head_dim=40, rotary_dim=24, base=500.0, convention="half")]  # rows of 80 bytes in half precision


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.convention}-{s.rotary_dim}of{s.head_dim}")
def test_streaming_and_cached_stores_write_the_same_bits(kernel, spec: RopeSpec, dtype: str) -> None:
    import torch

    from rope_suite.implementations import torch_rope

    x = torch.randn(2, 37, 3, spec.head_dim, generator=torch.Generator().manual_seed(1)).to(getattr(torch, dtype))
    positions = torch.arange(37).repeat(2, 1) + torch.tensor([[0], [4093]])
    pos, inv_freq, scale = torch_rope.prepare(x, positions, spec)
    tokens = x.reshape(74, 3, spec.head_dim)
    outs = [kernel.extension().rope(tokens, pos, inv_freq, float(scale), spec.convention == "interleaved", False, s)
            for s in (0, 1, -1)]
    assert outs[0].dtype == x.dtype and outs[0].shape == tokens.shape
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    assert torch.equal(outs[0][..., spec.rotary_dim:], tokens[..., spec.rotary_dim:])  # the tail, bit for bit
    assert not torch.equal(outs[0][1:], tokens[1:])  # it did rotate


def test_strided_input_equals_contiguous(kernel) -> None:
    import torch

    spec = preset("llama2-7b")
    base = torch.randn(3, 16, 2, spec.head_dim)
    strided = base.transpose(0, 1)  # [16, 3, 2, D], not contiguous
    positions = torch.arange(3).repeat(16, 1) + 5
    got = kernel.IMPLEMENTATION.rope(strided, positions, spec)
    assert torch.equal(got, kernel.IMPLEMENTATION.rope(strided.contiguous(), positions, spec))
    assert torch.equal(strided, base.transpose(0, 1))  # the input is not written


@pytest.mark.parametrize("args, message", [
    (lambda t: (t.zeros(4, 2, 8), t.zeros(3, 1), t.zeros(4)), "positions must be contiguous [tokens=4, 1 or 4]"),
    (lambda t: (t.zeros(4, 2, 8), t.zeros(4, 1), t.zeros(5)), "inv_freq must be contiguous [r/2 <= 4]"),
    (lambda t: (t.zeros(4, 2, 8), t.zeros(4, 1, dtype=t.float64), t.zeros(4, dtype=t.float64)),
     "positions and inv_freq must be Float for Float x, got Double"),
    (lambda t: (t.zeros(4, 8), t.zeros(4, 1), t.zeros(4)), "x must be a contiguous CPU tensor [tokens, heads, head_dim]"),
])
def test_kernel_rejects_bad_arguments_by_name(kernel, args, message: str) -> None:
    import torch

    with pytest.raises(RuntimeError) as err:
        kernel.extension().rope(*args(torch), 1.0, False, False)
    assert message in str(err.value), str(err.value)


def test_backward_is_differentiable_twice(kernel) -> None:
    import torch

    spec = preset("phi-2")  # partial rotary: the tail's gradient passes through
    x = torch.randn(1, 5, 2, spec.head_dim, dtype=torch.float64, requires_grad=True)
    positions = torch.arange(5)[None] * 977
    assert torch.autograd.gradcheck(lambda t: kernel.IMPLEMENTATION.rope(t, positions, spec), (x,))
    assert torch.autograd.gradgradcheck(lambda t: kernel.IMPLEMENTATION.rope(t, positions, spec), (x,))
