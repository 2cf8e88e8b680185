#!/usr/bin/env python3
"""ggml-freq-factors (numpy 2.4.6, ggml_python 0.0.45): Each pair's angle is a running float32 product (theta = p, then theta *= theta_scale per pair, with theta_scale = powf(freq_base, -2/n_dims) rounded once), so its relative error grows with the pair index: 2.4e-6 at pair 63 of a 128-channel head (about 40 float32 roundings) where standard practice, float32 theta_i times p, has 1.2e-7; errors reach 1.04 to 4.7 times the allowed error from positions of a few thousand.

Class: precision choice. The library's code: ggml/src/ggml-cpu/ops.cpp: ggml_rope_cache_init and ggml_mrope_cache_init (theta *= theta_scale), ggml_compute_forward_rope_flt (theta_scale).
Found by rope-suite: agreement on case agreement/llama3.1-8b/float32/per_row.
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


def llama3_freq_factors(rotary_dim: int, base: float, factor: float, low_freq_factor: float,
                        high_freq_factor: float, original_max_position_embeddings: int) -> np.ndarray:
    """llama.cpp's ``rope_freqs`` tensor for Llama 3.1 scaling (``convert_hf_to_gguf.py``,
    ``LlamaModel.generate_extra_tensors``): per pair 1 (short wavelengths), factor (long), else
    1 / ((1 - smooth) / factor + smooth); ggml divides each frequency by it."""
    freqs = 1.0 / (base ** (np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim))
    low_wavelen = original_max_position_embeddings / low_freq_factor
    high_wavelen = original_max_position_embeddings / high_freq_factor
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (original_max_position_embeddings / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


CALL = {'op': 'ext', 'n_dims': 128, 'mode': 2, 'sections': (0, 0, 0, 0), 'n_ctx_orig': 0, 'freq_base': 500000.0, 'freq_scale': 1.0, 'ext_factor': 0.0, 'attn_factor': 1.0, 'beta_fast': 32.0, 'beta_slow': 1.0, 'gather': 0}  # the ggml rope call's arguments


def make():
    def rope(x, positions):
        positions = np.asarray(positions)
        return ggml_rope([x], positions, CALL, llama3_freq_factors(128, 500000.0, 8.0, 1.0, 4.0, 8192))[0]

    return rope


DTYPE, POS_DTYPE = 'float32', 'int64'
x64 = np.random.default_rng([2777022851, 0]).standard_normal((2, 6, 3, 128))  # the case's x (seeded by its id)
positions64 = np.array([[188, 966, 1449, 1995, 2143, 4085], [206, 730, 1289, 2437, 2711, 2807]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [1, 2, 0, 21], np.array([ 3.6624030145354691e-01, -9.4193543397922874e-01, -1.3401538219411852e-01, -7.3340615132287745e-01,
 -4.6475501338663228e-01,  6.5108841787512106e-01,  6.6146530989124064e-01,  2.4264170308013790e+00,
 -8.5171062791149765e-01,  1.1617005047278939e+00,  2.3320348200043428e-01,  8.0690633829501845e-01,
 -3.9938945722583674e-01,  1.0291254783209141e+00,  7.8483600705609557e-01, -3.3758728202933841e-01,
 -1.5143442761089781e-01, -8.2188367262562034e-01, -4.3213264896917103e-01,  7.2175677588110387e-01,
 -1.6093179788356582e+00,  1.0759159233506085e-01,  1.3508626194493636e+00, -4.6244670068710803e-02,
 -1.0135304212995817e+00, -2.7009753516937490e-01,  2.1827544595974153e+00, -3.2551258079059220e-01,
  3.1974954673213452e-01, -7.4973083569220922e-01, -3.0779866466735906e-01, -1.2792330223099184e+00,
  1.9162833802998636e+00, -7.1920761880924033e-01,  1.6591949347076276e+00, -2.9020749398920348e-01,
 -6.1946827863117782e-01, -6.6324515756200852e-01,  1.7808495148897214e+00, -6.5746099807008118e-01,
 -1.2210568386738456e+00, -4.9997530991749350e-01,  1.7856463397247273e+00, -8.8388666730219023e-01,
  1.7007348232038209e+00,  2.9680097559988927e-01, -6.6151667772301959e-01,  1.1805004975677238e+00,
  5.3470190036363818e-01,  3.6158007825648447e-01, -4.0445257269793611e-01, -2.2403488380240741e+00,
  1.7151938675281135e+00,  5.4492086037280818e-01, -1.4063297948671551e+00, -1.1608706714981369e+00,
 -9.2227823059897296e-01,  3.5186032912552467e-01, -7.3662802877339018e-01,  7.7684986789172822e-02,
 -5.0015182177934980e-01, -4.0679752021300458e-01, -6.1921984619463633e-01,  1.3694685374350164e+00,
  5.8032860771612138e-01,  1.2456951602856718e+00,  6.9413864413837334e-01,  5.5189354140100477e-01,
  4.5671895106017996e-01,  2.1415938658268560e-01,  1.4353878007551353e+00,  1.7154904333067786e+00,
 -3.7825730083160730e-02,  7.6503967307625897e-01, -1.0756747414269401e+00,  1.4521489724082980e-02,
 -5.6952231110987706e-01,  9.3649689684276760e-01,  6.5230422230596286e-01,  4.5371919317339936e-02,
 -1.1894642953846551e-01, -1.1337388348280146e+00, -1.4562362400775184e+00,  7.9694029153649604e-01,
 -9.0846642449436921e-01, -1.3316825984842562e+00, -1.2256980294539834e+00, -1.2047346678227526e+00,
 -1.0003566639976322e+00,  4.6230048833435650e-02,  3.4668453801469079e-01,  3.8958123099429887e-01,
  1.5767129337346553e+00,  3.1452832798361224e-02, -6.3785948379210622e-01, -7.1852577821799135e-01,
  5.6628582460950194e-01,  1.2231293460525292e+00,  1.0390882319080941e+00, -8.1826448944712815e-01,
 -6.9550134806029540e-01,  2.7634227489443455e-03,  1.0879987979245642e+00, -3.3994734106333607e-01,
 -5.9943357979450618e-01,  1.4814387787554264e+00,  7.1878603400171825e-02,  2.4479639590063904e-01,
  1.2764696656831513e+00,  6.2156051696413861e-01, -3.3155711812888328e-01,  8.0483060680677176e-01,
  1.3550064265583115e+00,  1.0119896777954991e+00, -1.4039487575685938e-01,  4.9741023404369872e-01,
  4.4377064828671392e-01, -4.8606470861723150e-02, -2.0788970291669471e+00,  1.1962230308341257e+00,
  6.6858338695196018e-01,  7.6595544204411747e-01, -1.4349067727207214e+00, -1.7332286199840421e+00,
  1.4660458645034378e+00, -5.5621815446059897e-01, -2.9552811814479272e+00, -9.9048527486603699e-01]), 1.2952317237614955e-05
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 1289: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
