"""Moving channels between the two pairings: an exact gather, no arithmetic.

Libraries that only rotate adjacent pairs (torchtune, rotary-embedding-torch) take a
"half" spec through the permutation that converting a checkpoint between Meta's layout
and HF's applies to the q/k rows of each head (HF ``convert_llama_weights_to_hf.py``,
``permute``): channel i < r/2 goes to 2i, channel r/2 + i to 2i + 1. Channels past r keep
their place. Being a gather it is bit-exact and differentiable, so the numbers are the
library's own.
"""

from __future__ import annotations

import torch


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
