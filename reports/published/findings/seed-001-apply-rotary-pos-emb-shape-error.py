#!/usr/bin/env python3
"""seed-001-apply-rotary-pos-emb (torch 2.13.0+cpu): x1 = x[..., :dim//2] has dim/2 channels while cos and sin, built as cat(freqs, freqs), have dim, so x1 * cos raises a shape error for every dim above 2.

Class: bug. The library's code: seed_001_apply_rotary_pos_emb.py:apply_rotary_pos_emb.
Found by rope-suite: agreement on case agreement/llama2-7b/float64/per_row.
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
R, BASE = 128, 10000.0


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
x64 = np.random.default_rng([4027240943, 0]).standard_normal((2, 6, 3, 128))  # the case's x (seeded by its id)
positions64 = np.array([[2258, 2370, 3620, 3945, 3980, 4006], [766, 1100, 1376, 1934, 2095, 2792]], dtype=np.int64)

try:  # building what a user builds, then the call
    make()(native(x64, DTYPE), native(positions64, POS_DTYPE))
except Exception as err:
    print(f"got: {type(err).__name__}: {err}; wanted: the rotated x")
    reproduced = True
else:
    print("returned without raising")
    reproduced = False

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
