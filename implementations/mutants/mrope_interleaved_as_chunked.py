"""Qwen3-VL's interleaved M-RoPE run as Qwen2-VL's chunked M-RoPE.

The mrope_interleaved flag is dropped, so frequency i takes its position stream from the
section blocks (t t ... h h ... w w ...) instead of the stride-3 pattern (t h w t h w ...).
Text tokens (t == h == w) are unaffected, which hides the bug; image tokens get the wrong axis.
alibaba/MNN PR 4133 (interleaved mrope in qwen3-vl); mlx-node/mlx-node PR 80 (Qwen3.5-VL used
the sectioned selector: images "got the wrong rotation axis on ~17% of frequencies").
"""

import torch

from rope_suite.conformance.spec import MRope

from .. import frequencies
from ._base import TorchRope


class MropeInterleavedAsChunked(TorchRope):
    def pair_axes(self, spec):
        axis = spec.multi_axis
        if isinstance(axis, MRope) and axis.interleaved:
            # BUG: the interleaved flag is not read; the sections are laid out in blocks.
            return frequencies.pair_axes(torch, spec.replace(multi_axis=MRope(axis.sections)), torch.int64)
        return super().pair_axes(spec)


IMPLEMENTATION = MropeInterleavedAsChunked()
