"""A small, correct PyTorch RoPE that every mutant breaks in exactly one place.

Each step is a method, so a mutant overrides one of them and the bug stays a few lines long.
The numbers (the frequency vector, the attention factor, which position stream drives each
pair) are the first-party ones, computed in PyTorch by
:mod:`rope_suite.implementations.frequencies` as a library builds its ``inv_freq`` buffer; the
tensor work is here and follows HF's channel form::

    out = x * cos + partner(x) * sin        partner = rotate_half ("half") or rotate_every_two

with cos/sin laid out per channel (cat(c, c) for "half", repeat_interleave(c, 2) for
"interleaved"). Precision is standard practice: angles, cos/sin and the rotation in float32
(float64 for float64 inputs), one rounding to x's dtype, the tail copied unchanged.

Steps, in call order (the hooks a mutant may override):
  inverse_frequencies(spec, positions) -> float64 tensor [r/2]
  attention_factor(spec)               -> float
  pair_axes(spec)                      -> int64 tensor [r/2], the position stream of each pair
  angle_positions(x, positions, spec)  -> positions per pair, [batch, seq, r/2], compute dtype
  frequency_tensor(x, positions, spec) -> inv_freq as a tensor, compute dtype
  cos_sin(x, positions, spec)          -> (a cos phi, a sin phi), [batch, seq, 1, r/2]
  pairing(spec)                        -> "half" | "interleaved"
  layout(table, convention)            -> per-pair table laid out per channel
  rotate_partner(x, convention)        -> rotate_half(x) | rotate_every_two(x)
  tail(x, spec)                        -> channels rotary_dim.. (passed through)
  rotate(x, cos, sin, spec)            -> the output
"""

from __future__ import annotations

import torch

from rope_suite.conformance.spec import RopeSpec

from .. import frequencies

DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32,
                                  "float16": torch.float16, "bfloat16": torch.bfloat16}


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 inputs, float32 for every narrower float."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class TorchRope:
    """The correct plug-in; ``framework``, ``device``, ``supports`` and ``rope`` as the contract asks."""

    framework = "torch"
    device = "cpu"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        return dtype_name in DTYPES

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim], integer positions [batch, seq] (or [batch, seq, n_axes])."""
        cos, sin = self.cos_sin(x, positions, spec)
        return self.rotate(x, cos, sin, spec)

    # --- frequencies -------------------------------------------------------------------------
    def inverse_frequencies(self, spec: RopeSpec, positions: torch.Tensor) -> torch.Tensor:
        seq_len = frequencies.sequence_length(torch, positions) if spec.sequence_dependent else None
        return frequencies.inverse_frequencies(torch, spec, seq_len, torch.float64)

    def attention_factor(self, spec: RopeSpec) -> float:
        return frequencies.attention_factor(spec)

    def pair_axes(self, spec: RopeSpec) -> torch.Tensor:
        return frequencies.pair_axes(torch, spec, torch.int64)

    # --- angles and tables ---------------------------------------------------------------------
    def angle_positions(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        pos = positions.reshape(positions.shape[0], positions.shape[1], spec.n_axes)
        return pos.to(compute_dtype(x.dtype)).index_select(-1, self.pair_axes(spec))

    def frequency_tensor(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        return self.inverse_frequencies(spec, positions).to(compute_dtype(x.dtype))

    def cos_sin(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> tuple[torch.Tensor, torch.Tensor]:
        phi = self.angle_positions(x, positions, spec) * self.frequency_tensor(x, positions, spec)
        a = self.attention_factor(spec)
        return (a * torch.cos(phi)).unsqueeze(2), (a * torch.sin(phi)).unsqueeze(2)  # broadcast over heads

    # --- rotation -------------------------------------------------------------------------------
    def pairing(self, spec: RopeSpec) -> str:
        return spec.convention

    def layout(self, table: torch.Tensor, convention: str) -> torch.Tensor:
        if convention == "half":
            return torch.cat((table, table), dim=-1)
        return table.repeat_interleave(2, dim=-1)

    def rotate_partner(self, x: torch.Tensor, convention: str) -> torch.Tensor:
        if convention == "half":
            first, second = x.chunk(2, dim=-1)
            return torch.cat((-second, first), dim=-1)
        pairs = x.unflatten(-1, (-1, 2))
        return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)

    def tail(self, x: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        return x[..., spec.rotary_dim:]

    def rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        convention = self.pairing(spec)
        head = x[..., : spec.rotary_dim].to(cos.dtype)
        cos, sin = self.layout(cos, convention), self.layout(sin, convention)
        rotated = head * cos + self.rotate_partner(head, convention) * sin
        return torch.cat((rotated.to(x.dtype), self.tail(x, spec)), dim=-1)
