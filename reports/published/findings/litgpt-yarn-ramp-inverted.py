#!/usr/bin/env python3
"""litgpt (torch 2.13.0+cpu, litgpt 0.5.13, lightning 2.6.6): build_rope_cache blends theta_interpolation * (1 - ramp) + theta_extrapolation * ramp, where YaRN (and HF's _compute_yarn_parameters) weights extrapolation by 1 - ramp: the high-frequency pairs below the correction range are divided by the factor and the low-frequency pairs above it are left unscaled, the reverse of YaRN

Class: bug. The library's code: litgpt/model.py: build_rope_cache (YaRN branch: theta_extrapolation_factor = ramp_func).
Found by rope-suite: agreement on case agreement/qwen2.5-7b-yarn/float64/per_row.
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
import torch
from litgpt.model import build_rope_cache

def table_length(needed: int) -> int:
    """``seq_len`` for a table that holds positions < ``needed``: a multiple of 4096."""
    return max(4096, -(-needed // 4096) * 4096)


def interleaved_order(head_dim: int, rotary_dim: int) -> torch.Tensor:
    """Indices [head_dim]: x[..., order] lays half-convention pairs (i, i + r/2) side by side."""
    n = rotary_dim // 2
    pairs = torch.stack((torch.arange(n), torch.arange(n, rotary_dim)), dim=-1).flatten()
    return torch.cat((pairs, torch.arange(rotary_dim, head_dim)))


def litgpt_rotate(x: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  rotary_dim: int, interleave: bool) -> torch.Tensor:
    """x [batch, seq, heads, head_dim] through litgpt's attention path: the rows of ``cos``/``sin``
    [seq_len, rotary_dim] at ``positions`` [batch, seq] (``batched_index_select``, as
    ``GPT.forward``), ``apply_rope`` (or ``apply_rope_interleave``) on the first ``rotary_dim``
    channels of x laid out [batch, heads, seq, head_dim], the rest concatenated back
    (``CausalSelfAttention.forward``). An interleaved result comes back in litgpt's regrouped
    order (pairs (i, i + r/2)) and is moved to x's order (2i, 2i + 1) by an exact gather."""
    from litgpt.model import apply_rope, apply_rope_interleave, batched_index_select

    xt = x.transpose(1, 2)
    cos_rows, sin_rows = batched_index_select(cos, 0, positions), batched_index_select(sin, 0, positions)
    if interleave:
        roped = apply_rope_interleave(xt[..., :rotary_dim], cos_rows, sin_rows)
        roped = roped.index_select(-1, interleaved_order(rotary_dim, rotary_dim).to(roped.device))
    else:
        roped = apply_rope(xt[..., :rotary_dim], cos_rows, sin_rows)
    return torch.cat((roped, xt[..., rotary_dim:]), dim=-1).transpose(1, 2)


def make():
    kept = None

    def rope(x, positions):
        nonlocal kept
        needed = int(positions.max()) + 1 if positions.numel() else 1
        if kept is None or kept[0].shape[0] < needed:
            kept = build_rope_cache(seq_len=table_length(needed), **{'n_elem': 128, 'base': 1000000.0, 'condense_ratio': 1, 'extra_config': {'factor': 4.0, 'beta_fast': 32.0, 'beta_slow': 1.0, 'original_max_seq_len': 32768}})
        return litgpt_rotate(x, positions, *kept, 128, False)

    return rope


DTYPE, POS_DTYPE = 'float64', 'int64'
x64 = np.random.default_rng([3812561434, 0]).standard_normal((2, 6, 3, 128))  # the case's x (seeded by its id)
positions64 = np.array([[1321, 2101, 3057, 3570, 3601, 3699], [13, 117, 2356, 2381, 3432, 3766]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [0, 4, 0, 40], np.array([-0.08811718849940231, -0.12699599514942578,  0.4721977490886872 , -1.7941547092367793 ,
  0.3759852779182367 , -1.1268095852610462 ,  0.37670628044667814, -1.1246929197388884 ,
  2.6663034720909717 , -0.7890399657236251 , -1.152134356211222  , -1.4578629435414043 ,
 -0.04702949937906264,  2.5331053883247097 ,  1.5001435286130813 , -0.31978101245959734,
  1.6892260204967315 ,  0.6494504191821782 ,  1.192109248713389  , -0.5339105335380738 ,
  0.647604871405665  , -1.075262389767748  ,  2.132700514304295  , -0.11065216690418493,
 -0.01246416166972586, -0.9067534809842874 ,  0.00584020715409705, -2.019633045803034  ,
 -0.49561113529472045,  1.5556512608064503 , -0.08220334624766817,  1.7221453882763151 ,
 -1.6342597581981102 , -0.25075498273042834, -0.17527136097438495, -0.4959285680734994 ,
 -1.5599003078735754 , -1.265439150471647  ,  0.21330492248368432, -1.5908646216730515 ,
 -0.06276901778701893,  0.1549898388835772 ,  3.4769301338241263 , -0.7604556679934115 ,
 -0.5340509029540652 , -0.1738359711945861 ,  1.0866873949970928 , -2.5449794176710956 ,
  0.2794615756115423 ,  1.7102227637766696 , -0.8290550503015776 , -0.580941492548837  ,
  0.4967599372392268 , -1.3390267241896598 , -0.352920215867011  , -1.9337231975579954 ,
 -0.2954483026105828 , -0.7902482127821282 ,  2.9489208534876394 , -0.26105920596078613,
 -2.066004542399796  , -0.752368431124489  , -2.726146232515628  ,  0.09183838581708553,
 -0.9472116675302567 ,  0.3068584305718588 ,  1.5796390710990964 , -0.9596546298653693 ,
  0.7158413446590125 ,  0.16827945125012242, -1.4799980177190626 ,  2.4093860619784286 ,
  1.2885703966091184 , -0.37570508045890016, -0.6857316324908258 ,  0.22387777321232183,
  1.5602707895653845 , -0.33990833089942196, -1.5693005868805183 , -0.11318090944546372,
  0.5534793505017669 ,  0.1298801662138594 , -1.2140750009193875 ,  0.09111418192231142,
  0.5393499244005647 ,  1.0846038932557753 ,  1.4278530332148214 , -0.519657835900713  ,
  2.210404943275796  ,  0.20695605518619276,  1.844041410068225  ,  1.4627113165016559 ,
 -2.0253476964921413 ,  2.329363506355334  ,  1.001785766272209  ,  0.5089377490919917 ,
 -0.22720903586425267,  0.34208586736401225,  0.8898523987469039 ,  0.9147448861157483 ,
 -0.8316456236015637 , -1.5071362859552204 ,  1.1044309264913135 ,  1.4930859765279345 ,
  2.7722598001701755 , -2.011863459851929  , -1.1692821056589011 , -0.5670632869086825 ,
 -1.4871223785983942 ,  0.84253205632325   ,  0.5576467027257994 , -1.2141468680079117 ,
  0.3146760279549862 ,  0.7776775253088215 , -1.5213430845252012 , -0.8249258939925878 ,
  0.5729130278043926 , -0.38684354363159246,  0.5788646681928045 , -0.7661638317922626 ,
  1.3901697242221207 , -0.2510329630194303 , -2.9717215804874173 , -0.36042621115674567,
  0.47066663301701833,  1.633336902710732  ,  0.7182059795476605 , -1.2396540218778638 ]), 9.841663438057424e-07
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 3601: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
