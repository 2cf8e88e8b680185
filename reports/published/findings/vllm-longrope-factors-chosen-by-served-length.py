#!/usr/bin/env python3
"""vllm (torch 2.13.0+cpu, vllm 0.32.0): LongRoPE chooses long or short factors once, at construction, from the served max_model_len (long whenever it exceeds original_max_position_embeddings, for every position, so that the KV cache stays valid), where HF chooses per call by max(position) + 1 > original length.

Class: different semantics. The library's code: vllm/model_executor/layers/rotary_embedding/phi3_long_rope_scaled_rope.py: Phi3LongRoPEScaledRotaryEmbedding.__init__ (use_long_rope).
Found by rope-suite: agreement on case agreement/longrope-boundary/float32/contiguous/b1s6h3.
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
    # vLLM reads only model_config.max_model_len here: the served length
    config.model_config = types.SimpleNamespace(max_model_len=192)
    with set_current_vllm_config(config):
        rotary = get_rope(48, max_position=192, is_neox_style=True,
                          rope_parameters={'rope_theta': 10000.0, 'rope_type': 'longrope', 'factor': 32.0, 'original_max_position_embeddings': 6, 'short_factor': [1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35, 1.4, 1.45, 1.5, 1.55, 1.6, 1.65, 1.7000000000000002, 1.75, 1.8, 1.85, 1.9, 1.9500000000000002, 2.0, 2.05, 2.1, 2.1500000000000004], 'long_factor': [1.0, 2.5, 4.0, 5.5, 7.0, 8.5, 10.0, 11.5, 13.0, 14.5, 16.0, 17.5, 19.0, 20.5, 22.0, 23.5, 25.0, 26.5, 28.0, 29.5, 31.0, 32.5, 34.0, 35.5]}, dtype=torch.float32)

    def rope(x, positions):
        batch, seq, heads, head_dim = x.shape
        query = x.reshape(batch * seq, heads * head_dim)
        key = x.new_zeros((batch * seq, head_dim))  # a one-head key whose result is dropped
        out, _ = rotary(positions.reshape(-1), query, key)
        return out.reshape(x.shape)

    return rope


DTYPE, POS_DTYPE = 'float32', 'int64'
x64 = np.random.default_rng([3417867836, 0]).standard_normal((1, 6, 3, 48))  # the case's x (seeded by its id)
positions64 = np.array([[0, 1, 2, 3, 4, 5]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [0, 5, 0, 2], np.array([-1.4507796585774924 , -0.4709478253525331 ,  0.9317112832809544 , -3.6695348697888583 ,
  0.6490745092122294 , -0.8226195427449011 , -2.654732983048524  ,  0.02436219798226669,
  0.10631383684211315, -0.22426978092077304,  0.3680932273397829 ,  0.05817813665342665,
 -0.34235679447374684, -1.8821142461320315 ,  0.42502869366546536,  0.21902635461065206,
 -1.84288826880611   , -0.24249027313738064, -1.702645300189477  ,  0.19846060884914957,
  0.11717532807528351, -1.355775381424056  , -0.45992711865938024,  2.2245886454436894 ,
 -1.564400651657433  ,  1.0481838514432082 , -0.9592270118531518 , -1.092618892666577  ,
 -3.045513999603176  , -1.633223428342939  , -1.2227526658787344 ,  1.1545031358022535 ,
 -3.976652314397912  ,  0.804979196032756  , -3.6984826946761853 ,  1.235512970979183  ,
  2.4599924095770387 ,  1.5854897426675076 ,  2.812604449093391  , -4.017970202735689  ,
  1.1251725695660835 ,  1.7009273135233236 , -0.607970204034544  ,  1.3205181258743917 ,
  0.512114282859089  ,  0.02211095699594342, -1.9868589121459113 , -2.213921442155476  ]), 3.597026106789449e-06
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 5: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
