#!/usr/bin/env python3
"""rotary-embedding-torch (torch 2.13.0+cpu, rotary-embedding-torch 0.9.1): RotaryEmbedding(dim=2) raises ZeroDivisionError: __init__ computes theta_rescale_factor ** (dim / (dim - 2)) even when theta_rescale_factor is 1

Class: bug. The library's code: rotary_embedding_torch/rotary_embedding_torch.py: RotaryEmbedding.__init__.
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
from rotary_embedding_torch import RotaryEmbedding

def position_runs(positions: list[int]) -> list[tuple[int, int]]:
    """Maximal [start, stop) token ranges of one row whose positions go up by exactly 1."""
    runs, start = [], 0
    for i in range(1, len(positions) + 1):
        if i == len(positions) or positions[i] != positions[i - 1] + 1:
            runs.append((start, i))
            start = i
    return runs


def rotate_runs(module: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [batch, seq, heads, d] at positions [batch, seq]: ``rotate_queries_or_keys`` once per
    run of consecutive positions of each row, with the run's first position as ``offset``."""
    rows = []
    for b, row in enumerate(positions.tolist()):
        rows.append(torch.cat([module.rotate_queries_or_keys(x[b:b + 1, s0:s1], offset=row[s0])
                               for s0, s1 in position_runs(row)], dim=1))
    return torch.cat(rows, dim=0)


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
    module = RotaryEmbedding(**{'dim': 2, 'theta': 10000.0, 'freqs_for': 'lang', 'seq_before_head_dim': True, 'interpolate_factor': 1.0, 'theta_rescale_factor': 1.0})

    def rope(x, positions):
        return from_interleaved(rotate_runs(module, to_interleaved(x, 2), positions), 2)

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
