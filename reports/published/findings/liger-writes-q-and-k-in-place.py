#!/usr/bin/env python3
"""liger (torch 2.13.0+cpu, triton 3.9.0, liger_kernel 0.8.5, transformers 5.24.0): The kernel stores the rotated q and k into the tensors it is given and returns them, so the caller's q and k are overwritten.

Class: in place by design. The library's code: liger_kernel/ops/rope.py: rope_forward (_triton_rope's tl.store into q_ptr, k_ptr); liger_kernel/ops/qwen2vl_mrope.py: qwen2vl_mrope_forward.
Found by rope-suite: output_contract on case output_contract/llama2-7b/float32/per_row.
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
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before Liger is imported: read when its kernels are decorated

import transformers
from liger_kernel.transformers.rope import liger_rotary_pos_emb
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding


def make():
    rotary = GPTNeoXRotaryEmbedding(transformers.GPTNeoXConfig(**{'hidden_size': 128, 'num_attention_heads': 1, 'num_hidden_layers': 1, 'intermediate_size': 8, 'vocab_size': 16, 'max_position_embeddings': 4096, 'rope_parameters': {'rope_type': 'default', 'rope_theta': 10000.0, 'partial_rotary_factor': 1.0}}))

    def rope(x, positions):
        cos, sin = rotary.to(x.device)(x, positions)
        k = x.new_zeros((*x.shape[:2], 1, x.shape[3]))  # a one-head key whose result is dropped
        q, _ = liger_rotary_pos_emb(x.transpose(1, 2), k.transpose(1, 2), cos, sin)
        return q.transpose(1, 2)

    return rope


DTYPE, POS_DTYPE = 'float32', 'int64'
x64 = np.random.default_rng([1698259745, 0]).standard_normal((2, 6, 3, 128))  # the case's x (seeded by its id)
positions64 = np.array([[167, 2010, 2150, 2690, 3868, 4020], [200, 335, 836, 1771, 3571, 3584]], dtype=np.int64)

x = native(x64, DTYPE)
before = host(x).copy()
make()(x, native(positions64, POS_DTYPE))
changed = float(np.abs(host(x) - before).max())
print(f"x after the call differs from x before it by up to {changed:.3g}; wanted: x untouched")
reproduced = changed > 0

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
