#!/usr/bin/env python3
"""x-transformers (torch 2.13.0+cpu, x-transformers 2.31.10): RotaryEmbedding(dim=2) raises ZeroDivisionError: __init__ computes base_rescale_factor ** (dim / (dim - 2)) even when base_rescale_factor is 1, so a rotary dimension of one pair (rotary_emb_dim=2, which AttentionLayers accepts) cannot be built.

Class: bug. The library's code: x_transformers/x_transformers.py: RotaryEmbedding.__init__.
Found by rope-suite: agreement on case agreement/partial-one-pair/float64/per_row.
Self-contained (numpy, torch and the library; not rope-suite): calls the library
directly on the case's inputs, prints what it returned against what RoPE gives, and ends
with "reproduced" (exit 0) when the deviation shows, "NOT reproduced" (exit 1) when not.
"""
from __future__ import annotations
import sys

import numpy as np

import torch


def native(a, dtype):
    return torch.from_numpy(a).to(getattr(torch, dtype))


def host(t):
    return t.detach().to(torch.float64).numpy()


# --- the library, called as its users call it (from the adapter) ---
from typing import Any

import torch
from x_transformers.x_transformers import RotaryEmbedding

def rotate(module: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [batch, seq, heads, head_dim] at positions [batch, seq]: ``module(positions)`` (a kept
    ``RotaryEmbedding``) and ``apply_rotary_pos_emb`` on x as [batch, heads, seq, head_dim]."""
    from x_transformers.x_transformers import apply_rotary_pos_emb

    freqs, scale = module(positions)
    return apply_rotary_pos_emb(x.transpose(1, 2), freqs, scale).transpose(1, 2)


def interleaved_order(head_dim: int, rotary_dim: int) -> torch.Tensor:
    """Indices [head_dim]: x[..., order] lays half-convention pairs (i, i + r/2) side by side."""
    n = rotary_dim // 2
    pairs = torch.stack((torch.arange(n), torch.arange(n, rotary_dim)), dim=-1).flatten()
    return torch.cat((pairs, torch.arange(rotary_dim, head_dim)))


def to_interleaved(x: torch.Tensor, rotary_dim: int) -> torch.Tensor:
    """x [..., head_dim] with half-convention pairs, regathered so each pair is adjacent."""
    return x.index_select(-1, interleaved_order(x.shape[-1], rotary_dim).to(x.device))


def from_interleaved(x: torch.Tensor, rotary_dim: int) -> torch.Tensor:
    """Inverse of :func:`to_interleaved`."""
    order = interleaved_order(x.shape[-1], rotary_dim)
    return x.index_select(-1, torch.argsort(order).to(x.device))


def make():
    module = RotaryEmbedding(**{'dim': 2, 'base': 10000.0, 'interpolation_factor': 1.0, 'base_rescale_factor': 1.0})  # kept across calls

    def rope(x, positions):
        return from_interleaved(rotate(module, to_interleaved(x, 2), positions), 2)

    return rope


DTYPE, POS_DTYPE = 'float64', 'int64'
x64 = np.random.default_rng([1173036574, 0]).standard_normal((2, 6, 3, 64))  # the case's x (seeded by its id)
positions64 = np.array([[845, 1726, 2287, 2604, 2934, 3692], [165, 1035, 2048, 2052, 2586, 3769]], dtype=np.int64)

try:  # building what a user builds, then the call
    make()(native(x64, DTYPE), native(positions64, POS_DTYPE))
except Exception as err:
    print(f"got: {type(err).__name__}: {err}; wanted: the rotated x")
    reproduced = True
else:
    print("returned without raising")
    reproduced = False

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
