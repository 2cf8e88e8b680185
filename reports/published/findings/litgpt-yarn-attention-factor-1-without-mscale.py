#!/usr/bin/env python3
"""litgpt (torch 2.13.0+cpu, litgpt 0.5.13, lightning 2.6.6): with neither mscale nor mscale_all_dim in extra_config, build_rope_cache leaves attention_scaling at 1.0, where YaRN and HF scale cos and sin by 0.1 ln(factor) + 1 (e.g. 1.139 for Qwen2.5's factor 4)

Class: different semantics. The library's code: litgpt/model.py: build_rope_cache (attention_scaling, YaRN branch).
Found by rope-suite: identity_at_zero on case identity_at_zero/qwen2.5-7b-yarn/float32/per_row.
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


DTYPE, POS_DTYPE = 'float32', 'int64'
x64 = np.random.default_rng([1980539092, 0]).standard_normal((2, 6, 3, 128))  # the case's x (seeded by its id)
positions64 = np.array([[46, 69, 537, 1488, 3056, 3965], [153, 1781, 1846, 2137, 3419, 3574]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [1, 5, 0, 55], np.array([ 1.1773144599205947 , -1.0018936588520695 , -0.9097187549853973 ,  1.212759642956872  ,
  0.3121160529062731 , -1.1003425633671493 ,  1.868963306079215  ,  1.1248147503320927 ,
  1.0448244129892834 ,  1.0000173575690312 ,  0.26706476672118623, -1.7164919711557005 ,
 -2.3883627265854153 , -3.0027150699466985 , -0.3283583670725893 , -1.9023976427882299 ,
 -2.3569174313883763 , -0.5022068778386334 , -1.3288373782877414 , -0.05144404431472938,
  1.3312377371630502 ,  0.6660523035888514 , -2.0535444809937724 , -0.2383361880659799 ,
 -0.3670197838820233 ,  0.2937087785112574 ,  2.445066985472175  ,  0.11217931459147257,
 -0.45436616495870097, -0.5696584789024389 ,  3.5413378920668492 ,  0.5002667336906665 ,
 -0.8282639336204911 ,  0.0077453952476591 ,  1.1992964856351878 ,  1.9900755606607423 ,
 -0.48721950643877365, -0.9378513411363378 ,  0.7016162639422812 ,  0.6559665463776965 ,
  1.415919521142382  ,  0.06116995144985494, -1.1142969166526977 ,  0.5890272391189406 ,
 -0.02040214073162963, -0.3005824155597426 ,  0.3141912005470676 , -1.6974836963135846 ,
  0.35412484668566996, -1.3699134445482055 ,  0.0102467176568075 ,  0.313997923554469  ,
  0.05299575384273304,  0.06304458168102145,  0.0259725035220678 , -2.8127419778222835 ,
 -1.4642118596162148 ,  0.9926387943964713 ,  0.13303302421435675,  2.3972335997907943 ,
 -0.7754402729555653 , -0.5191181361166471 ,  0.34165780639285975, -0.8520583891188577 ,
  0.4498122737358774 ,  0.45571612128915406,  0.17572926987574988,  2.4477346421427595 ,
  0.23457454344229345, -2.1439520006890094 ,  0.25085851043501856, -0.09025144683498262,
  0.8463803820567448 , -0.5317484756492602 ,  0.37598877054127267,  1.5483036721685537 ,
  0.7889225165080849 , -1.0177785014316374 , -2.0788728168445783 ,  1.2725027187666251 ,
 -0.2366094312420223 ,  0.06829734755430432, -0.1851954798463934 , -1.6079934423803774 ,
  0.5060992617735731 ,  0.16295690669973284,  0.46733085235073407, -0.2411984112376916 ,
 -3.544399288780781  , -0.5020482842709642 ,  0.7489242402315315 ,  0.622919533205653  ,
 -2.096585502662278  ,  2.4009048047668333 , -2.9168734971680452 ,  0.6067454313085624 ,
 -2.881665102157279  ,  1.5751709164769103 , -0.6114766197388453 , -1.226159885651308  ,
 -0.6438916255239582 ,  3.165339811701692  ,  0.723848817172881  ,  0.22412167567273242,
 -4.278370107412556  , -0.18117259862054058,  0.7434284605248436 ,  2.161813301806719  ,
 -1.152184573988002  , -0.47581700726478326, -1.8229981290161006 , -0.7544451683298029 ,
 -0.6992252577804902 ,  0.01129349807918093,  1.7460807715601734 , -1.7748275909844218 ,
  1.7106338158491425 ,  0.8547388232734164 ,  1.301139965681506  ,  0.024208920121287  ,
  2.0758743078247606 , -1.0251760678167112 , -0.5833344011951095 , -0.3920817948085498 ,
  0.22430962138879956,  0.3653565677196875 , -1.3032365743576209 ,  0.8834909291661925 ]), 3.6270300674038226e-06
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 3574: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
