#!/usr/bin/env python3
"""seed-001-apply-rotary-pos-emb (torch 2.13.0+cpu): x1 * cos + x2 * sin is not a rotation (established by reading the code, and shown by the one-pair spec, dim 2, where the shapes broadcast): it gives one value per pair, the first coordinate of a rotation by minus the angle, in both of the pair's channels, where RoPE gives (x1 cos - x2 sin, x2 cos + x1 sin).

Class: bug. The library's code: seed_001_apply_rotary_pos_emb.py:apply_rotary_pos_emb.
Found by rope-suite: agreement on case agreement/partial-one-pair/float64/per_row.
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
import importlib.util
import numpy as np
import torch

PATH = '/work/shared/seed-snippets/seed_001_apply_rotary_pos_emb.py'
R, BASE = 2, 10000.0


def make():
    loaded = importlib.util.spec_from_file_location('snippet', PATH)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    f = module.apply_rotary_pos_emb

    def rope(x, positions):
        batch, seq, heads, _ = x.shape
        rows, slot, length = token_lanes(np.asarray(positions), heads)
        tokens = torch.cat([x[..., :R].reshape(batch * seq * heads, R), torch.zeros_like(x[:1, 0, 0, :R])])
        laid_out = tokens[torch.as_tensor(np.where(rows < 0, batch * seq * heads, rows).reshape(-1))]
        out = f(laid_out.reshape(rows.shape[0], length, R), length, R)
        back = out.reshape(rows.shape[0] * length, -1)[torch.as_tensor(slot)]
        return torch.cat([back.reshape(batch, seq, heads, -1), x[..., R:]], -1)

    return rope


def token_lanes(positions: np.ndarray, heads: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Lay tokens [batch, seq, heads] out in rows of length L = max(position) + 1 so that token
    (b, s, h) sits at index positions[b, s] of its row: (rows [n_rows, L] of token numbers
    b*seq*heads + s*heads + h, or -1 for an empty slot; slot [tokens] of each token in the flattened
    rows; L). Tokens of one batch row and head share a row unless they repeat a position."""
    batch, seq = positions.shape
    length = int(positions.max()) + 1 if positions.size else 1
    rows: list[np.ndarray] = []
    slot = np.empty(batch * seq * heads, dtype=np.int64)
    for b in range(batch):
        lanes: list[np.ndarray] = []
        for s in range(seq):
            p = int(positions[b, s])
            lane = next((i for i, row in enumerate(lanes) if row[p] < 0), None)
            if lane is None:
                lanes.append(np.full(length, -1, dtype=np.int64))
                lane = len(lanes) - 1
            lanes[lane][p] = s
        for h in range(heads):
            for row in lanes:
                token = np.where(row >= 0, (b * seq + row) * heads + h, -1)
                slot[token[token >= 0]] = len(rows) * length + np.flatnonzero(row >= 0)
                rows.append(token)
    return np.stack(rows), slot, length


DTYPE, POS_DTYPE = 'float64', 'int64'
x64 = np.random.default_rng([1173036574, 0]).standard_normal((2, 6, 3, 64))  # the case's x (seeded by its id)
positions64 = np.array([[845, 1726, 2287, 2604, 2934, 3692], [165, 1035, 2048, 2052, 2586, 3769]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [1, 0, 2, 0], np.array([-1.4478827796940463 , -0.7352322432317514 ,  1.2074419485598886 , -0.08014785130521211,
 -0.15157273152666656,  1.130876652441803  ,  1.1134267795888462 ,  1.3610300621022593 ,
  0.7443996239924704 , -0.9567785989886299 , -0.11436467049198441, -1.2078245743154918 ,
 -0.10299590727173616,  0.13777588494929402,  0.7424440312272685 , -0.2612106873791232 ,
  0.4638496421852063 ,  0.9797722301131256 ,  0.08470741082526034,  0.3870013866399555 ,
 -0.02345631215212104,  1.222064586334901  ,  0.6501270708319049 , -0.7064469893299564 ,
  0.6490497899373513 , -1.5655439823370558 , -1.5567538189335035 ,  1.0725554645994586 ,
  0.6024614904136769 ,  2.183792213498518  , -1.0855512885281582 , -0.06093490859874391,
 -2.9999969262458457 ,  0.023062969479017  ,  0.01745699506863763, -1.2222742952518082 ,
 -0.14246745395602514, -0.3344771255051975 , -1.236133826689753  ,  1.863743766050975  ,
 -0.20143236407306442, -0.6083167271050145 ,  0.8308740445443015 , -2.217605572607078  ,
 -0.8531901559644998 ,  0.454200426825089  , -0.20656661414761981,  0.2242246391731088 ,
  0.10640820877871249,  0.8199600996798565 , -0.44925478854613043, -0.7879416430422606 ,
  0.8702109484054827 , -0.6551415215755796 , -2.180139771871122  ,  0.3180158690648131 ,
 -1.3236865136913105 , -0.9739100740636762 , -0.1218831948397161 ,  0.27936210076557905,
 -1.857086487325047  , -0.6941171943827468 ,  0.07482759199969392, -1.0851470897486464 ]), 0.0001681736277852221
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 165: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
