#!/usr/bin/env python3
"""ggml (numpy 2.4.6, ggml_python 0.0.45): Interleaved M-RoPE (GGML_ROPE_TYPE_IMROPE, Qwen3-VL) turns every pair outside the three interleaved sections (i % 3 == k with i >= 3 sections[k]) with a fourth position stream, which llama.cpp sets to 0 for text tokens, where HF's apply_interleaved_mrope turns them with the temporal stream: for Qwen3-VL (sections 24, 20, 20) pairs 61 and 62 are not rotated at all (error 0.0024 at position 3688, 1270 times the allowed error; 0.31 on a drawn spec with sections (0, 0, 1)).

Class: different semantics. The library's code: ggml/src/ggml-cpu/ops.cpp: ggml_mrope_cache_init (is_imrope branch: theta = theta_e); llama.cpp src/llama-graph.cpp: llm_graph_input_pos::set_input (4th dim is 0).
Found by rope-suite: agreement on case agreement/qwen3-vl/float32/per_row.
Self-contained (numpy, numpy and the library; not rope-suite): calls the library
directly on the case's inputs, prints what it returned against what RoPE gives, and ends
with "reproduced" (exit 0) when the deviation shows, "NOT reproduced" (exit 1) when not.
"""
from __future__ import annotations
import sys

import numpy as np

def native(a, dtype):
    if dtype == "bfloat16":
        import ml_dtypes
        return a.astype(ml_dtypes.bfloat16)
    return a.astype(dtype)


def host(t):
    return np.asarray(t, dtype=np.float64)


# --- the library, called as its users call it (from the adapter) ---
import ctypes
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

def interleaved_to_half(head_dim: int, rotary_dim: int) -> np.ndarray:
    """Indices [head_dim]: x[..., order] moves interleaved pairs (2i, 2i + 1) to (i, i + r/2)."""
    return np.concatenate([np.arange(0, rotary_dim, 2), np.arange(1, rotary_dim, 2), np.arange(rotary_dim, head_dim)])


def ggml_rope(xs: Sequence[np.ndarray], positions: np.ndarray, call: Mapping[str, Any],
              freq_factors: np.ndarray | None = None) -> list[np.ndarray]:
    """Each x [batch, seq, heads, head_dim] (float32 or float16) rotated by one ggml rope node of
    one graph, at positions [batch, seq] or [batch, seq, n_axes]; ``call`` holds the operator's
    arguments (op "ext" or "multi", n_dims, mode, sections, n_ctx_orig, freq_base, freq_scale,
    ext_factor, attn_factor, beta_fast, beta_slow) and ``gather`` (interleaved pairs moved to
    rotate-half around a multi-axis call)."""
    import ggml
    import ggml.utils

    batch, seq = positions.shape[:2]
    n_tokens = batch * seq
    order = None
    if call["gather"]:
        order = interleaved_to_half(xs[0].shape[-1], call["gather"])
        xs = [x[..., order] for x in xs]
    if call["op"] == "multi":  # llama.cpp's layout: every token's stream 0, then 1, 2, 3 (absent: 0)
        streams = positions.reshape(n_tokens, -1).T
        pos = np.zeros((4, n_tokens), dtype=np.int32)
        pos[:len(streams)] = streams
    else:
        pos = positions.reshape(n_tokens)
    pos = np.ascontiguousarray(pos.reshape(-1), dtype=np.int32)
    tokens = [np.ascontiguousarray(x.reshape(n_tokens, x.shape[2], x.shape[3])) for x in xs]
    size = (sum(2 * t.nbytes for t in tokens) + pos.nbytes + 4 * xs[0].shape[-1] * 64
            + 16 * ggml.ggml_tensor_overhead() + ggml.ggml_graph_overhead() + (1 << 20))
    ctx = ggml.ggml_init(ggml.ggml_init_params(mem_size=size, mem_buffer=None))
    try:
        pos_t = ggml.utils.from_numpy(pos, ctx)
        ff_t = None if freq_factors is None else ggml.utils.from_numpy(np.asarray(freq_factors, dtype=np.float32), ctx)
        graph = ggml.ggml_new_graph(ctx)
        outs = []
        for t in tokens:
            a = ggml.utils.from_numpy(t, ctx)  # ne = [head_dim, heads, n_tokens]
            args = (call["n_ctx_orig"], call["freq_base"], call["freq_scale"], call["ext_factor"],
                    call["attn_factor"], call["beta_fast"], call["beta_slow"])
            if call["op"] == "multi":
                sections = (ctypes.c_int * 4)(*call["sections"])
                out = ggml.ggml_rope_multi(ctx, a, pos_t, ff_t, call["n_dims"], sections, call["mode"], *args)
            else:
                out = ggml.ggml_rope_ext(ctx, a, pos_t, ff_t, call["n_dims"], call["mode"], *args)
            ggml.ggml_build_forward_expand(graph, out)
            outs.append(out)
        ggml.ggml_graph_compute_with_ctx(ctx, graph, 1)
        ys = [ggml.utils.to_numpy(out).copy().reshape(x.shape) for out, x in zip(outs, xs)]
    finally:
        ggml.ggml_free(ctx)
    if order is not None:
        inverse = np.argsort(order)
        ys = [y[..., inverse] for y in ys]
    return ys


CALL = {'op': 'multi', 'n_dims': 128, 'mode': 40, 'sections': (24, 20, 20, 0), 'n_ctx_orig': 0, 'freq_base': 5000000.0, 'freq_scale': 1.0, 'ext_factor': 0.0, 'attn_factor': 1.0, 'beta_fast': 32.0, 'beta_slow': 1.0, 'gather': 0}  # the ggml rope call's arguments


def make():
    def rope(x, positions):
        positions = np.asarray(positions)
        return ggml_rope([x], positions, CALL, None)[0]

    return rope


DTYPE, POS_DTYPE = 'float32', 'int64'
x64 = np.random.default_rng([3736423253, 0]).standard_normal((2, 6, 3, 128))  # the case's x (seeded by its id)
positions64 = np.array([[[1171, 1171, 1171], [1412, 1412, 1413], [1798, 1798, 1800], [2862, 2863, 2862], [3688, 3689, 3689], [4035, 4036, 4037]], [[63, 63, 63], [123, 123, 124], [653, 653, 655], [855, 856, 855], [1823, 1824, 1824], [2754, 2755, 2756]]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [0, 4, 2, 125], np.array([-1.1491181029971245 ,  2.4816862387809975 , -0.11717080045674655,  1.5673377595166935 ,
 -0.10633299495021431, -0.6000491948756825 , -0.7598350991276399 , -0.8351163772472414 ,
 -0.8882243799258847 ,  0.5644960728333586 ,  0.6433382423673953 , -2.204834961841723  ,
  0.886727723288347  ,  0.5240012233869269 ,  1.3195584688955624 , -1.8494193443748828 ,
  0.45620733297275873,  0.6464534679246895 , -0.0726952776557182 ,  0.8584432346844719 ,
  0.663815519987923  , -0.6202260621836461 , -1.577587543189113  , -0.16825212686484897,
  0.5779580250824958 ,  0.9307021611119812 , -0.21783139287989467,  1.1768571160392391 ,
  1.4031522277514779 , -1.7790797887150946 , -2.406932950945195  ,  0.40701363200254326,
  0.5634849388173733 ,  0.5807258708535481 ,  0.36928603199009846,  1.9250711885785101 ,
  1.1571346260042439 , -0.8704173885193289 ,  0.6759563815272338 ,  0.8193698927808525 ,
  0.39883390214365744,  0.02313166074438888, -0.2795696125476563 ,  1.9404137551535672 ,
 -0.534246323177644  ,  0.6375434305971209 ,  0.31754132048589745, -0.45487004680209814,
 -0.7996642568190486 , -0.08056625540765279, -1.004759230547386  , -0.05310907418618786,
 -0.5430464962242375 , -0.5308958013194708 , -1.1440892221886036 , -0.35890187601729595,
  0.3622571866203924 , -0.01486038001417077, -1.0581919458952254 , -0.3251302098326306 ,
 -0.02000025904380574, -1.548802106078017  ,  1.1702893370497407 ,  0.9569254813770662 ,
 -1.509846610547324  , -1.0987557878717729 , -0.38097276428279847,  0.9379408305714926 ,
 -0.31240008166169825, -0.5934050207459876 , -0.6281210835049296 , -0.7304516752060262 ,
 -0.7948915601397839 , -1.8634276054395746 , -0.6948231186368453 , -0.8984947563613056 ,
 -0.8984542570829241 , -1.3209522941086689 , -0.08072918918562721,  1.0027521672523751 ,
 -2.1289586400477942 ,  1.0522034189035145 , -0.7348437787683951 , -0.09223013605084066,
 -0.5691397185855775 , -0.31500977109774564, -1.0907188277424749 ,  1.25767937922782   ,
  0.9069921855118459 ,  1.4949109208960145 , -0.8155717401637823 , -1.036787045625206  ,
 -0.03079984417093429, -0.33773646324073603, -0.39213831381112707,  0.3349124537293632 ,
  0.8727913910270855 ,  0.9104545929959034 , -0.1675881450226897 , -1.1716272177617688 ,
 -0.678859796874061  ,  0.28157665363067763, -0.9655542663119212 ,  0.736148702673382  ,
  0.0912998775725585 , -1.3163086577750955 , -0.892609175876104  ,  1.4895690753327537 ,
 -1.2041727552161683 , -0.2375138937195881 ,  0.4386921509982513 ,  0.06899724386709771,
 -0.7714853457727741 , -0.24249719764365318,  0.18648273292404605, -1.695524878459142  ,
 -2.1684120914384906 , -0.3315757543389714 , -0.22150514292129392,  0.08350738198013936,
 -0.1079584578189056 , -0.9643775972399456 , -0.732639780979229  , -0.3750230645984074 ,
 -0.5047707478436133 , -0.12809533004825266, -0.180993159699925  ,  0.705925489636738  ]), 1.8490996109128737e-06
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position [3688, 3689, 3689]: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
