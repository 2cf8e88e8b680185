#!/usr/bin/env python3
"""vllm (torch 2.13.0+cpu, vllm 0.32.0): YaRN, dynamic NTK and LongRoPE precompute cos/sin only for positions below the context they serve (original_max_position_embeddings * factor rows), so a later position has no angle and index_select raises IndexError, where the spec (and HF) rotate any position.

Class: different semantics. The library's code: vllm/model_executor/layers/rotary_embedding/yarn_scaling_rope.py: _compute_cos_sin_cache; dynamic_ntk_scaling_rope.py: _compute_cos_sin_cache; phi3_long_rope_scaled_rope.py: forward; base.py: RotaryEmbedding.forward_static (index_select).
Found by rope-suite: agreement on case agreement/dynamic-above/float64/per_row.
Self-contained (numpy, torch and the library; not rope-suite): calls the library
directly on the case's inputs, prints what it returned against what RoPE gives, and ends
with "reproduced" (exit 0) when the deviation shows, "NOT reproduced" (exit 1) when not.
"""
import sys

import numpy as np

import torch


def native(a, dtype):
    return torch.from_numpy(a).to(getattr(torch, dtype))


def host(t):
    return t.detach().to(torch.float64).numpy()


# --- the library, called as its users call it (from the adapter) ---
import math
import os
import types

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")  # before vLLM is imported: its platform

from vllm.config import VllmConfig, set_current_vllm_config
from vllm.model_executor.layers.rotary_embedding import get_rope


def make():
    config = VllmConfig()
    with set_current_vllm_config(config):
        rotary = get_rope(64, max_position=1024, is_neox_style=True,
                          rope_parameters={'rope_theta': 10000.0, 'rope_type': 'dynamic', 'factor': 4.0, 'max_trained_positions': 256}, dtype=torch.float64)

    def rope(x, positions):
        batch, seq, heads, head_dim = x.shape
        query = x.reshape(batch * seq, heads * head_dim)
        key = x.new_zeros((batch * seq, head_dim))  # a one-head key whose result is dropped
        out, _ = rotary(positions.reshape(-1), query, key)
        return out.reshape(x.shape)

    return rope


DTYPE, POS_DTYPE = 'float64', 'int64'
x64 = np.random.default_rng([2518138177, 0]).standard_normal((2, 6, 3, 64))  # the case's x (seeded by its id)
positions64 = np.array([[403, 785, 1978, 2495, 3902, 4092], [445, 472, 474, 1206, 1304, 3669]], dtype=np.int64)

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
