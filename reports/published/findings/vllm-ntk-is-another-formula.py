#!/usr/bin/env python3
"""vllm (torch 2.13.0+cpu, vllm 0.32.0): rope_type 'ntk' multiplies the base by factor and divides every inverse frequency by factor ** (2 / r), i.e. theta_i * factor ** (-(2i + 2) / r), where NTK-aware scaling grows the base to base * factor ** (r / (r - 2)), i.e. theta_i * factor ** (-2i / (r - 2)): the two agree only on the last pair.

Class: different semantics. The library's code: vllm/model_executor/layers/rotary_embedding/ntk_scaling_rope.py: NTKScalingRotaryEmbedding._compute_inv_freq.
Found by rope-suite: agreement on case agreement/ntk-x8/float64/per_row.
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
    rotary, rows = None, 0  # the module, and the positions its table holds

    def rope(x, positions):
        nonlocal rotary, rows
        needed = int(positions.max()) + 1 if positions.numel() else 1
        if rotary is None or rows < needed:  # a longer table: the next multiple of 4096 (x 1 rows)
            max_position = max(4096, -(-math.ceil(needed / 1) // 4096) * 4096)
            with set_current_vllm_config(config):
                rotary = get_rope(64, max_position=max_position, is_neox_style=True,
                                  rope_parameters={'rope_theta': 10000.0, 'rope_type': 'ntk', 'factor': 8.0}, dtype=x.dtype)
            rows = math.ceil(max_position * 1)
        batch, seq, heads, head_dim = x.shape
        query = x.reshape(batch * seq, heads * head_dim)
        key = x.new_zeros((batch * seq, head_dim))  # a one-head key whose result is dropped
        out, _ = rotary(positions.reshape(-1), query, key)
        return out.reshape(x.shape)

    return rope


DTYPE, POS_DTYPE = 'float64', 'int64'
x64 = np.random.default_rng([1961890349, 0]).standard_normal((2, 6, 3, 64))  # the case's x (seeded by its id)
positions64 = np.array([[677, 678, 2823, 2919, 3148, 3558], [321, 1860, 1885, 2875, 3503, 3867]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [0, 1, 0, 44], np.array([-0.3789875009072697 , -1.3215837612407937 , -0.6570306911328059 ,  0.165936206964299  ,
  0.45170892283659253, -0.5773222431601914 , -0.9618400235621727 , -0.5604734223181658 ,
  0.24684080584978932,  0.0513157392675012 ,  1.1155615292171992 ,  0.9635266093213151 ,
 -2.3690948152448903 , -0.7261847802836514 , -1.8793825833833766 , -0.46596644448218316,
 -0.6829844162109926 , -0.6890476322186724 ,  1.1826039227901766 , -1.0901159970333925 ,
 -1.6255735217269616 ,  2.5905740748892865 , -0.03255583784374551, -0.6003134024242602 ,
 -0.02244642562660931, -1.0952821446061944 ,  1.8814958512034352 , -1.910960898007644  ,
 -0.17024558707698814, -2.077637115059221  , -0.6102761144587244 , -0.6483495288986063 ,
 -0.5004571823920628 ,  0.2934826167151746 ,  0.43424431305111816, -0.9290788392512197 ,
 -0.24385593397872019, -0.3858517558407185 , -0.19137408069089107, -0.3582563070105782 ,
  0.6927844205697861 ,  0.33172559086133363, -0.10834294333994199,  0.22448499728788673,
 -0.36243247914221355, -1.1583345420076057 ,  0.29911652488593427, -0.7459106156415014 ,
  2.502506271010865  ,  1.1574780834889833 , -2.0827212508411774 ,  0.331368920684558  ,
 -0.29801663744475293,  0.2472162099404126 , -0.19476133240579424,  0.951949929366814  ,
 -0.9397225860970405 ,  0.45485244116702817, -0.03635106293861284,  1.3923157773799588 ,
  1.2641269794050796 , -1.4687143182251552 ,  0.14042078132301272,  0.42549044507674116]), 1.1636961213376626e-05
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 678: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
