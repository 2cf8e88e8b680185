"""Bare RoPE functions in the common calling conventions, for ``rope-suite check --signature``:
correct ones, written as their originals are, and one with the sign of sin flipped."""

import torch


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x):
    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)


def apply_rotary_emb(x, cos, sin):  # x-cos-sin
    return x * cos + rotate_half(x) * sin


def apply_rotary_emb_sign_flipped(x, cos, sin):  # x-cos-sin, rotating by minus the angle
    return x * cos - rotate_half(x) * sin


def apply_rotary_emb_gptj(x, cos, sin):  # x-cos-sin-interleaved
    return x * cos + rotate_every_two(x) * sin


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):  # qk-cos-sin, as HF's
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def apply_rotary_emb_complex(x, freqs_cis):  # x-freqs-cis, Meta's, in x's precision
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).to(freqs_cis.real.dtype).contiguous())
    return torch.view_as_real(pairs * freqs_cis[None, :, None, :]).flatten(3).type_as(x)


def rope_seq_dim(x, seq_len, dim):  # x-seq-dim: positions 0..seq_len-1, base 10000
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    emb = torch.cat((angles, angles), dim=-1)
    return x * emb.cos().to(x.dtype) + rotate_half(x) * emb.sin().to(x.dtype)
