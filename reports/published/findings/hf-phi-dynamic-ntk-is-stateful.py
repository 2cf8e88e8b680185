#!/usr/bin/env python3
"""hf-phi (torch 2.13.0+cpu, transformers 5.24.0): The dynamic NTK module grows inv_freq on a call longer than any before and resets it only on a call shorter than the original length, so a call between the original length and an earlier, longer call gets the earlier call's frequencies.

Class: stateful by design. The library's code: transformers/modeling_rope_utils.py: dynamic_rope_update (dynamic_frequency_update), _compute_dynamic_ntk_parameters.
Found by rope-suite: stateless on case stateless/dynamic-above/float32/per_row.
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
import torch
import transformers
from transformers.models.phi.modeling_phi import apply_rotary_pos_emb, PhiRotaryEmbedding


def make():
    rotary = PhiRotaryEmbedding(transformers.PhiConfig(**{'hidden_size': 64, 'num_attention_heads': 1, 'num_hidden_layers': 1, 'intermediate_size': 8, 'vocab_size': 16, 'max_position_embeddings': 256, 'rope_parameters': {'rope_type': 'dynamic', 'rope_theta': 10000.0, 'factor': 4.0, 'partial_rotary_factor': 1.0}}))

    def rope(x, positions):
        cos, sin = rotary(x, positions)
        r = cos.shape[-1]  # PhiAttention.forward: rotate the first rotary_ndims, concatenate the rest
        x_rot, _ = apply_rotary_pos_emb(x[..., :r], x[..., :r], cos, sin, unsqueeze_dim=2)
        return torch.cat((x_rot, x[..., r:]), dim=-1)

    return rope


DTYPE, POS_DTYPE = 'float32', 'int64'
x64 = np.random.default_rng([52694927, 0]).standard_normal((2, 6, 3, 64))  # the case's x (seeded by its id)
positions64 = np.array([[1539, 1927, 2809, 3221, 3450, 3602], [1145, 1813, 2245, 2265, 2595, 2747]], dtype=np.int64)

# one instance kept across calls, as inside a model, against a fresh instance per call
base = positions64 % 200
rope, reproduced, earlier = make(), False, []
for label, offset in [('long', 5000), ('middle', 800), ('short', 0)]:
    positions = native(base + offset, POS_DTYPE)
    got = host(rope(native(x64, DTYPE), positions))
    fresh = host(make()(native(x64, DTYPE), positions))
    difference = float(np.abs(got - fresh).max())
    print(f"{label} call (max position {int((base + offset).max())}) after {', '.join(earlier) or 'no call'}: "
          f"differs from a fresh instance by {difference:.3g}")
    earlier.append(label)
    if difference > 0:
        reproduced = True
        break

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
