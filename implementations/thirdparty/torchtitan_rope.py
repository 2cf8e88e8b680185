"""torchtitan's RoPE modules: ``ComplexRoPE``, ``CosSinRoPE`` and Qwen3.5's ``MRoPE``.

Read from torchtitan 0.3.0. ``torchtitan/models/common/rope.py`` holds the shared ``RoPE``
module and its two cache formats, used by every torchtitan model: ``ComplexRoPE`` (Llama 3,
DeepSeek-V3: a complex64 ``freqs_cis`` cache, adjacent channels as complex numbers) and
``CosSinRoPE`` (Qwen3, GPT-OSS: a float32 ``cat(cos, sin)`` cache, rotate-half). Both are
imported from ``torchtitan.models.common.rope`` (the package pulls torchtitan's distributed
and protocol modules: ``spmd_types`` and ``tyro`` must be installed; ``pip install --no-deps
torchtitan``). ``MRoPE`` (``torchtitan/models/qwen3_5/rope.py``, a ``CosSinRoPE`` subclass) is
loaded from its file with ``importlib.util.spec_from_file_location``: the ``qwen3_5`` package
``__init__`` imports its model, which needs ``fla`` (flash-linear-attention), not needed for RoPE.

What the library computes: a module is built from its ``Config`` (``dim``, ``max_seq_len``,
``theta``, ``scaling`` "none" / "llama" / "yarn" and their parameters) and precomputes its
cache for positions < ``max_seq_len`` (``_precompute_cache``, float32 frequencies:
``1 / theta^(arange(0, dim, 2)[:dim/2] / dim)``; "llama" is Llama 3.1's frequency scaling with
``scaling_factor``, ``low_freq_factor``, ``high_freq_factor``,
``original_max_position_embeddings``; "yarn" is ``_yarn_inv_freq``, YaRN's ramp between
``theta / rope_factor`` and theta with ``beta_fast``, ``beta_slow``, ``original_seq_len`` and
``truncate``). ``forward(query, key, positions)`` takes q, k [batch, seq, heads, dim] and
positions [batch, seq] (per-row positions: ``_reshape_for_broadcast`` gathers each token's
row) and returns both rotated; the rotation runs on ``x.float()`` and is rounded back with
``type_as``. ``MRoPE.forward`` takes positions [batch, seq, 3] (t, h, w) and builds the
per-token cos/sin with Qwen3-VL's interleaved sections (``_compute_mrope_cache``).

Three plug-in objects, one per entry point, each keeping one module per spec, as a model
keeps its layer's ``rope``; a module is rebuilt (with ``max_seq_len`` = the call's
max(position) + 1 rounded up to a multiple of 4096) only when a call needs a longer cache:
  * :data:`COMPLEX` (``ComplexRoPE``): ``convention`` "interleaved" natively; "half" through the
    exact channel permutation of :mod:`._layout` (HF's q/k checkpoint permutation), a gather
    before and after. Scaling: none, ``llama3`` -> ``scaling="llama"``, ``yarn``.
  * :data:`COS_SIN` (``CosSinRoPE``): "half" natively; "interleaved" through the same
    permutation. Scaling: none and ``yarn`` (the class raises NotImplementedError for "llama").
  * :data:`MROPE` (Qwen3.5's ``MRoPE``): only ``MRope(interleaved=True)`` with 3 sections
    (``mrope_section``; the class takes exactly 3 and interleaves them as Qwen3-VL does: chunked
    Qwen2-VL sections cannot be expressed). "half" natively, "interleaved" permuted. Scaling:
    none and ``yarn`` (its ``CosSinRoPE`` cache).

Spec -> config (the same for all three):
  * ``rotary_dim`` -> ``dim``; x's first r channels go through the module and the rest are
    concatenated back, as torchtitan's Qwen3.5 attention does for partial RoPE
    (``qwen3_5/model.py``: ``xq[..., :rotary_dim]``, ``torch.cat([xq_roped, xq_pass])``).
  * ``base`` -> ``theta``.
  * ``llama3`` -> ``scaling="llama"``, ``scaling_factor=factor``, ``low_freq_factor``,
    ``high_freq_factor``, ``original_max_position_embeddings``.
  * ``yarn`` -> ``scaling="yarn"``, ``rope_factor=factor``, ``beta_fast``/``beta_slow`` (32
    and 1 when unset, the spec's and torchtitan's defaults), ``original_seq_len`` =
    ``original_max_position_embeddings``, ``truncate`` (True when unset). torchtitan's RoPE is
    a pure rotation by design: YaRN's attention factor (mscale) "is intentionally NOT applied
    here -- ... the model folds mscale into its softmax scale" (``_yarn_inv_freq``'s docstring;
    DeepSeek-V3's and GPT-OSS's attention scale the softmax). A yarn spec is supported only
    when its attention factor is 1 (DeepSeek's equal ``mscale`` and ``mscale_all_dim``, or an
    explicit ``attention_factor`` of 1); a factor other than 1 cannot be expressed in the module
    (e.g. Qwen2.5's default 0.1 ln 4 + 1): unsupported, not graded.
  * linear, ntk, dynamic, longrope: not in torchtitan: unsupported. ``Axial2D``: not wired
    (torchtitan's vision encoders build their own 2D caches).
  * ``rope_qk``: q and k in one ``forward``, as the attention calls it (head counts may
    differ). ``rope``: x as the query and a one-head key of zeros whose result is dropped.
  * ``max_position`` = :data:`MAX_POSITION`.

Precision: the caches are float32 (complex64 for ``ComplexRoPE``) and x goes through
``x.float()``: float64 x gets float32 angles and a float32 rotation. supports(float64) is True
and the suite reports what that costs.

Nothing is supplied: frequencies, scaling, the M-RoPE sections and the rotation are torchtitan's.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from collections.abc import Mapping
from typing import Any

import torch

from rope_suite.conformance import reference
from rope_suite.conformance.deviations import Deviation
from rope_suite.conformance.spec import MRope, RopeSpec

from . import _layout
from ._layout import from_interleaved, to_interleaved
from ._tables import table_length

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
MAX_POSITION = 1 << 20
"""Largest position a cache is built for (2^20 + 4096 rows: 1 GiB of cos/sin at dim 128)."""
KINDS: dict[str, tuple[str, str]] = {
    "complex": ("torchtitan/models/common/rope.py", "ComplexRoPE"),
    "cos_sin": ("torchtitan/models/common/rope.py", "CosSinRoPE"),
    "mrope": ("torchtitan/models/qwen3_5/rope.py", "MRoPE"),
}
"""kind -> (the library file, the module class)."""



@functools.cache
def qwen3_5_rope() -> ModuleType:
    """``torchtitan/models/qwen3_5/rope.py``, loaded without importing the ``qwen3_5`` package
    (whose ``__init__`` imports its model, which needs flash-linear-attention)."""
    package = importlib.util.find_spec("torchtitan")
    if package is None or not package.submodule_search_locations:
        raise ImportError("torchtitan is not installed (pip install --no-deps torchtitan)")
    path = Path(package.submodule_search_locations[0]) / "models" / "qwen3_5" / "rope.py"
    spec = importlib.util.spec_from_file_location("rope_suite_torchtitan_qwen3_5_rope", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_class(kind: str) -> Any:
    """The torchtitan module class of ``kind``."""
    if kind == "mrope":
        return qwen3_5_rope().MRoPE
    return getattr(importlib.import_module("torchtitan.models.common.rope"), KINDS[kind][1])


def rotate_partial(rope: Any, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, rotary_dim: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """torchtitan's partial RoPE (Qwen3.5's attention): the module on the first ``rotary_dim``
    channels of q and k, the rest concatenated back."""
    q_rot, k_rot = rope(q[..., :rotary_dim], k[..., :rotary_dim], positions)
    return torch.cat([q_rot, q[..., rotary_dim:]], dim=-1), torch.cat([k_rot, k[..., rotary_dim:]], dim=-1)


def sections_past_mrope_indexing(record: Mapping[str, Any]) -> bool:
    """True for an M-RoPE spec whose h or w section ``_compute_mrope_cache`` cannot index: a zero
    section (``torch.arange(offset, 0, 3)`` raises), or one whose interleaved pairs (offset 1 or 2,
    step 3, below 3 x section) reach past the rotary_dim/2 pairs (the cos column ``low + half``
    is then out of range)."""
    spec = record.get("spec") or {}
    axis = spec.get("multi_axis") or {}
    if axis.get("kind") != "mrope" or len(axis.get("sections") or ()) != 3:
        return False
    _, h, w = axis["sections"]
    pairs = spec["rotary_dim"] // 2
    return h == 0 or w == 0 or 3 * h - 2 >= pairs or 3 * w - 1 >= pairs


MROPE_SECTION_INDEXING = Deviation(
    "mrope-degenerate-sections-raise", "bug",
    "MRoPE._compute_mrope_cache raises for an h or w section of 0 (torch.arange(offset, 0, 3): 'upper bound and "
    "lower bound inconsistent') and IndexError when 3 x section reaches past the rotary pairs, sections for which "
    "Qwen3-VL's interleaving (HF's empty slices) is defined; no released config has such sections",
    "torchtitan/models/qwen3_5/rope.py: MRoPE._compute_mrope_cache",
    lambda rec: rec.get("status") == "failed" and sections_past_mrope_indexing(rec))


def one_head_key(x: torch.Tensor) -> torch.Tensor:
    """A key [batch, seq, 1, head_dim] of zeros, for ``rope`` (the module always rotates a key)."""
    return x.new_zeros((*x.shape[:2], 1, x.shape[3]))


class TorchtitanRope:
    """One of torchtitan's RoPE module classes (``kind``: "complex", "cos_sin", "mrope") as a plug-in object."""

    framework = "torch"
    device = "cpu"
    max_position = MAX_POSITION

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is invalid: allowed {', '.join(KINDS)}")
        self.kind = kind
        self._modules: dict[RopeSpec, Any] = {}
        where, name = KINDS[kind]
        self.deviations: tuple[Deviation, ...] = (Deviation(
            "float32-rotation", "precision choice",
            f"{name} precomputes its cache from float32 frequencies and rotates x.float(), so float64 x gets "
            "float32 angles and a float32 rotation",
            f"{where}: {name}._precompute_cache / apply_rotary_emb",
            lambda rec: rec.get("dtype") == "float64" and rec.get("status") == "failed"),)
        if kind == "mrope":
            self.deviations += (MROPE_SECTION_INDEXING,)

    def __repr__(self) -> str:
        return f"TorchtitanRope({self.kind!r})"

    def supports(self, spec: RopeSpec, dtype_name: str) -> bool:
        if dtype_name not in DTYPES:
            return False
        axis = spec.multi_axis
        if self.kind == "mrope":
            if not (isinstance(axis, MRope) and axis.interleaved and axis.n_axes == 3):
                return False
        elif axis is not None:
            return False
        kinds = ("default", "yarn", "llama3") if self.kind == "complex" else ("default", "yarn")
        if spec.rope_type == "yarn":
            return reference.attention_factor(spec) == 1.0  # the module is a pure rotation (docstring)
        return spec.rope_type in kinds

    def config(self, spec: RopeSpec) -> dict[str, Any]:
        """The module ``Config``'s keyword arguments for ``spec``, all but ``max_seq_len``."""
        if not self.supports(spec, "float32"):
            raise ValueError(f"spec {spec.to_dict()} is invalid for {self!r}: see supports() and the module docstring")
        s = spec.scaling
        out: dict[str, Any] = dict(dim=spec.rotary_dim, theta=spec.base)
        if spec.rope_type == "llama3":
            out.update(scaling="llama", scaling_factor=s.factor, low_freq_factor=s.low_freq_factor,
                       high_freq_factor=s.high_freq_factor,
                       original_max_position_embeddings=s.original_max_position_embeddings)
        elif spec.rope_type == "yarn":
            out.update(scaling="yarn", rope_factor=s.factor, beta_fast=32.0 if s.beta_fast is None else s.beta_fast,
                       beta_slow=1.0 if s.beta_slow is None else s.beta_slow,
                       original_seq_len=s.original_max_position_embeddings,
                       truncate=True if s.truncate is None else s.truncate)
        if self.kind == "mrope":
            out.update(mrope_section=list(spec.multi_axis.sections))
        return out

    def module(self, spec: RopeSpec, needed: int) -> Any:
        """The torchtitan module for ``spec`` whose cache holds at least ``needed`` positions."""
        if needed > MAX_POSITION + 1:
            raise ValueError(f"position {needed - 1} is invalid: this adapter builds torchtitan's RoPE caches for "
                             f"positions <= {MAX_POSITION}")
        module = self._modules.get(spec)
        if module is None or module.config.max_seq_len < needed:
            cls = module_class(self.kind)
            module = cls.Config(**self.config(spec), max_seq_len=table_length(needed)).build()
            self._modules[spec] = module
        return module

    def rope_qk(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, spec: RopeSpec
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k [batch, seq, heads, head_dim] (head counts may differ) rotated at positions [batch, seq]
        ([batch, seq, 3] for M-RoPE) in one ``forward``."""
        needed = int(positions.max()) + 1 if positions.numel() else 1
        rope = self.module(spec, needed)
        r = spec.rotary_dim
        if (spec.convention == "interleaved") == (self.kind == "complex"):
            return rotate_partial(rope, q, k, positions, r)
        permute, unpermute = (to_interleaved, from_interleaved) if self.kind == "complex" else \
            (from_interleaved, to_interleaved)
        qo, ko = rotate_partial(rope, permute(q, r), permute(k, r), positions, r)
        return unpermute(qo, r), unpermute(ko, r)

    def rope(self, x: torch.Tensor, positions: torch.Tensor, spec: RopeSpec) -> torch.Tensor:
        """x [batch, seq, heads, head_dim] rotated at positions; the key's result is dropped."""
        return self.rope_qk(x, one_head_key(x), positions, spec)[0]

    def reproduction(self, spec: RopeSpec, dtype: str) -> str | None:
        """Self-contained source of ``make()``: the module for ``spec``, kept and rebuilt with a longer
        cache when a call needs it, called through :func:`rotate_partial` as :meth:`rope` does."""
        if not self.supports(spec, dtype):
            return None
        r, name = spec.rotary_dim, KINDS[self.kind][1]
        helpers = [table_length, one_head_key, rotate_partial]
        call = "rotate_partial(module, x, one_head_key(x), positions, {r})[0]".format(r=r)
        if (spec.convention == "interleaved") != (self.kind == "complex"):
            permute, unpermute = ("to_interleaved", "from_interleaved") if self.kind == "complex" else \
                ("from_interleaved", "to_interleaved")
            helpers += [_layout.interleaved_order, _layout.to_interleaved, _layout.from_interleaved]
            call = f"{unpermute}(rotate_partial(module, {permute}(x, {r}), one_head_key(x), positions, {r})[0], {r})"
        if self.kind == "mrope":
            load = ("import importlib.util\nfrom pathlib import Path\n\nimport torch\n\n"
                    "_package = importlib.util.find_spec('torchtitan')  # rope.py alone: qwen3_5/__init__ needs fla\n"
                    "_spec = importlib.util.spec_from_file_location(\n"
                    "    'torchtitan_qwen3_5_rope', Path(_package.submodule_search_locations[0]) / 'models' / 'qwen3_5' "
                    "/ 'rope.py')\n_rope = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_rope)\n"
                    "MRoPE = _rope.MRoPE")
        else:
            load = f"import torch\nfrom torchtitan.models.common.rope import {name}"
        return "\n\n".join([
            f"from __future__ import annotations\n\n{load}",
            *(inspect.getsource(f) for f in helpers),
            f"def make():\n    module = None\n\n"
            f"    def rope(x, positions):\n        nonlocal module\n"
            f"        needed = int(positions.max()) + 1 if positions.numel() else 1\n"
            f"        if module is None or module.config.max_seq_len < needed:\n"
            f"            module = {name}.Config(**{self.config(spec)!r}, max_seq_len=table_length(needed)).build()\n"
            f"        return {call}\n\n    return rope\n"])


COMPLEX = TorchtitanRope("complex")
COS_SIN = TorchtitanRope("cos_sin")
MROPE = TorchtitanRope("mrope")
