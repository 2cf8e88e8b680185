#!/usr/bin/env python3
"""rotary-embedding-torch (torch 2.13.0+cpu, rotary-embedding-torch 0.9.1): get_seq_pos builds arange(seq_len) + offset in x's dtype: float16 positions round from 2049 on and overflow at 65520 (NaN output at 2^20), bfloat16 positions round from 257 on

Class: bug. The library's code: rotary_embedding_torch/rotary_embedding_torch.py: RotaryEmbedding.get_seq_pos (called by rotate_queries_or_keys).
Found by rope-suite: agreement on case agreement/llama2-7b/float16/per_row.
Self-contained (numpy, torch and the library; not rope-suite): calls the library
directly on the case's inputs, prints what it returned against what RoPE gives, and ends
with "reproduced" (exit 0) when the deviation shows, "NOT reproduced" (exit 1) when not.
"""
from __future__ import annotations
import sys

import numpy as np

import torch


def native(a, dtype):
    return torch.from_numpy(a).to(getattr(torch, dtype))


def host(t):
    return t.detach().to(torch.float64).numpy()


# --- the library, called as its users call it (from the adapter) ---
from typing import Any

import torch
from rotary_embedding_torch import RotaryEmbedding

def position_runs(positions: list[int]) -> list[tuple[int, int]]:
    """Maximal [start, stop) token ranges of one row whose positions go up by exactly 1."""
    runs, start = [], 0
    for i in range(1, len(positions) + 1):
        if i == len(positions) or positions[i] != positions[i - 1] + 1:
            runs.append((start, i))
            start = i
    return runs


def rotate_runs(module: Any, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [batch, seq, heads, d] at positions [batch, seq]: ``rotate_queries_or_keys`` once per
    run of consecutive positions of each row, with the run's first position as ``offset``."""
    rows = []
    for b, row in enumerate(positions.tolist()):
        rows.append(torch.cat([module.rotate_queries_or_keys(x[b:b + 1, s0:s1], offset=row[s0])
                               for s0, s1 in position_runs(row)], dim=1))
    return torch.cat(rows, dim=0)


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


def make():
    module = RotaryEmbedding(**{'dim': 128, 'theta': 10000.0, 'freqs_for': 'lang', 'seq_before_head_dim': True, 'interpolate_factor': 1.0, 'theta_rescale_factor': 1.0})

    def rope(x, positions):
        return from_interleaved(rotate_runs(module, to_interleaved(x, 128), positions), 128)

    return rope


DTYPE, POS_DTYPE = 'float16', 'int64'
x64 = np.random.default_rng([1008787984, 0]).standard_normal((2, 6, 3, 128))  # the case's x (seeded by its id)
positions64 = np.array([[676, 1609, 2820, 2892, 2975, 3198], [233, 284, 2514, 2647, 2836, 2961]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [0, 4, 1, 64], np.array([-1.0274944989241299e+00, -9.1446229638868104e-01, -8.5855251918151421e-01, -4.1861123285577873e-01,
 -2.9103118673026024e-01,  1.6828309623413401e-01,  2.4648605558496778e-01, -1.5047783035724954e-01,
  1.5149391765477771e-01, -2.6374850450894756e+00,  2.3585118595282958e-01, -1.0114884295358915e+00,
 -1.2584436722135850e+00, -5.1103693618168000e-01, -6.4525765134420188e-01,  2.0473868308578502e-01,
 -1.1800333027859329e-02,  5.9973133061241157e-01,  3.5970266432505649e-01, -7.1690118481356446e-01,
 -9.1900693816950862e-01,  2.5510345499759335e-03, -4.2996256238463143e-01, -4.5768662510247116e-01,
 -7.4222021655834247e-03, -6.2334595259571535e-01, -2.7623507725278212e-01, -1.1577438255363031e+00,
  6.3447382522184803e-01, -1.3973663034810784e+00, -4.7419420602464479e-01, -3.3993486044117527e-01,
 -7.4959135074820493e-01,  9.1036522248008711e-01, -6.6143392940887991e-01,  1.1908807861515180e+00,
 -4.3318572228152491e-01, -1.1872151787335912e+00, -3.0404634653928730e-01,  6.0727056043993455e-01,
 -1.2166720929540475e+00, -9.1881515268189967e-02,  4.6458132398130725e-01, -1.0336688193004053e+00,
 -2.1257579953418082e-01, -3.2373497018069980e-01,  4.9108289463058191e-01, -5.2647737322699351e-01,
  2.5678127117444322e-01, -5.6689830910917149e-01, -1.0466754326641206e+00,  1.9976816770075906e-01,
  1.0480032787709899e+00,  8.4663254054549464e-01, -1.3195161525756058e+00, -1.8616247862064321e+00,
  4.0530205499272631e-01, -7.0667814429260201e-01, -2.9758689732062416e-02, -7.9451995124534802e-01,
  2.2956810397370928e+00, -1.8787901914413446e-01,  1.9696661597422027e+00, -1.0497864625474218e+00,
  1.7662693872776286e-01,  7.1064229114255972e-01,  4.8812897869366745e-01, -2.4826598127703259e-01,
 -7.0967312559125872e-01,  6.8257713611338722e-01, -4.1108228072533148e-01, -1.7015074484749962e-01,
 -1.4013807143357726e+00,  4.5108951381981466e-01,  5.9944504671818022e-01,  2.7156109150532476e-01,
  6.2314074425192045e-01, -9.2809112930799131e-01,  7.6343133958452092e-01, -2.1408102952405352e+00,
 -9.5300839784166480e-02, -7.8379749977724567e-01, -2.9062375487177983e-01, -3.4656791392641101e-01,
  8.6083820935272781e-01, -6.1249252517260244e-01, -1.9157214129436717e-01,  5.5049695943627230e-01,
 -8.1518539181102800e-01,  2.0828886973854471e-01,  1.4647427810531899e-01,  3.8563641576005003e-01,
  1.4488327442486042e+00, -2.6812032225813081e+00,  1.0876975034895873e+00,  8.5048890018868395e-02,
  7.3909384572091341e-01, -5.3590809680898011e-01,  5.3783634000797509e-01,  1.0176417886176301e+00,
 -3.0194013193360736e-01,  2.1624680512067534e-01, -9.4746620209910426e-01, -1.4733201948707579e+00,
 -6.1416962327127556e-01,  2.5763820775099527e-01, -4.3702942540100392e-01,  1.9464675169013287e-01,
 -3.0597894983112361e-01,  2.0423163726569502e-01, -1.0014935059502545e+00, -6.5571634762133713e-01,
  1.9650942043811161e+00,  8.7285805311159059e-01, -2.0692625095604571e+00,  1.0838446520825389e+00,
 -5.8463790508011948e-01, -5.3332827714705178e-01, -9.7898080569062906e-02, -5.6199105381351622e-01,
 -1.0569364750529175e+00,  1.1366145030262762e+00, -7.5651874179030520e-01, -2.5804715467079187e-01,
  1.6574378163125443e+00, -1.0829483994911677e+00, -2.5851577339641896e-01, -7.5333248221831861e-01]), 0.010077723002463398
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 2975: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
