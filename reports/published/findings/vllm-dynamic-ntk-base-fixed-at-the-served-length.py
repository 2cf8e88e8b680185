#!/usr/bin/env python3
"""vllm (torch 2.13.0+cpu, vllm 0.32.0): Dynamic NTK grows the base once, at construction, for the served length max_position (base * (factor * max_position / max_trained_positions - factor + 1) ** (r / (r - 2))) and applies it to every position, where HF grows it per call for max(position) + 1 and leaves calls within the original length unscaled.

Class: different semantics. The library's code: vllm/model_executor/layers/rotary_embedding/dynamic_ntk_scaling_rope.py: DynamicNTKScalingRotaryEmbedding._compute_cos_sin_cache.
Found by rope-suite: agreement on case agreement/dynamic-boundary/float32/contiguous/b1s6h3.
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
        rotary = get_rope(64, max_position=24, is_neox_style=True,
                          rope_parameters={'rope_theta': 10000.0, 'rope_type': 'dynamic', 'factor': 4.0, 'max_trained_positions': 6}, dtype=torch.float32)

    def rope(x, positions):
        batch, seq, heads, head_dim = x.shape
        query = x.reshape(batch * seq, heads * head_dim)
        key = x.new_zeros((batch * seq, head_dim))  # a one-head key whose result is dropped
        out, _ = rotary(positions.reshape(-1), query, key)
        return out.reshape(x.shape)

    return rope


DTYPE, POS_DTYPE = 'float32', 'int64'
x64 = np.random.default_rng([2477606910, 0]).standard_normal((1, 6, 3, 64))  # the case's x (seeded by its id)
positions64 = np.array([[0, 1, 2, 3, 4, 5]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [0, 4, 1, 35], np.array([ 0.566360231456766  ,  0.6074628852295778 ,  0.7533346863747918 , -2.37230302305804   ,
 -0.4587725499623959 , -0.736813144272574  ,  1.0920196892198588 ,  0.22472082000114488,
  0.7916640936159585 , -0.43475113855082215, -1.1704523611564357 ,  0.34523690628960707,
  1.3778827724787068 , -0.18542167308144009,  0.4450664564284777 ,  0.7048875688975932 ,
  0.21946267136945882,  0.3963274524192669 ,  0.2755233815950822 ,  1.584702941405833  ,
 -0.31302470654534614,  0.13520215412244388,  1.7846279903518043 , -1.3773848647723037 ,
 -0.32528883479566695,  1.460082714232217  ,  2.001801492810423  ,  0.21665480341492285,
  0.6018743086956996 , -1.1969547198567108 , -0.6075505086530874 ,  0.2766476224563506 ,
  0.43462561423144036, -1.0119985956309532 , -0.5177567982020697 , -0.4116919745532644 ,
  0.19318240082192362,  0.3915854673713718 ,  1.1150697383123815 , -0.13707874729483988,
  0.9799990042576456 , -0.8506160479385425 , -1.3014037698879584 , -1.1803283810800584 ,
  0.9906529912182072 , -0.7283973427507314 ,  2.055869117183158  , -0.7277301248061558 ,
 -1.1224088116353583 ,  3.172116292637426  ,  0.13079820515166393, -0.42142322126773113,
 -0.5612498900979719 ,  0.8843596130845389 ,  0.7303347391909383 , -0.02243090879062853,
  0.5674807107393599 , -1.5662533236460954 , -0.4794913384320929 ,  1.1448229884996417 ,
  0.1760367838737839 , -1.2474007471120114 ,  1.1006974141110324 , -1.0176159547979151 ]), 4.783607576816549e-06
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 4: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
