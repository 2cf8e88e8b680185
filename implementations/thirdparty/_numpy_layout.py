"""The channel permutation of :mod:`._layout` as NumPy indices, for the JAX adapters (equinox,
gemma): an exact gather with ``jnp.take``, no arithmetic, differentiable.

Channel i < r/2 goes to 2i, channel r/2 + i to 2i + 1 (the q/k row permutation of HF's
``convert_llama_weights_to_hf.py``); channels past r keep their place.
"""

from __future__ import annotations

import numpy as np


def interleaved_order(head_dim: int, rotary_dim: int) -> np.ndarray:
    """Indices [head_dim]: x[..., order] lays half-convention pairs (i, i + r/2) side by side, so
    ``x[..., argsort(order)]`` takes interleaved pairs to the rotate-half layout and
    ``y[..., order]`` brings them back."""
    n = rotary_dim // 2
    pairs = np.stack((np.arange(n), np.arange(n, rotary_dim)), axis=-1).reshape(-1)
    return np.concatenate((pairs, np.arange(rotary_dim, head_dim)))
